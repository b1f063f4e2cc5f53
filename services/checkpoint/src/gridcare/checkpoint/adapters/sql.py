"""The checkpoint's repositories on its store, and the load of its in-memory state.

(The gate scan path writes the register itself, by group commit: ``entrypoints/scans.py``.)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.contracts.refdata import (
    Building,
    Community,
    CommunityPolicy,
    Compound,
    ControlLevel,
    Gate,
    Household,
    Resident,
)
from gridcare.shared.envelope import utcnow
from gridcare.shared.localtime import as_utc
from gridcare.shared.store import upsert_row

from ..domain.holds import Hold
from ..domain.permits import Permit
from ..domain.state import GateState
from . import tables as T

REFERENCE_TABLES = {
    Community.TYPE: T.communities,
    Compound.TYPE: T.compounds,
    Building.TYPE: T.buildings,
    Household.TYPE: T.households,
    Resident.TYPE: T.residents,
    Gate.TYPE: T.gates,
}
PASSAGE_FIELDS = ("gate_id", "scan_id", "compound_id", "person_id", "direction", "verdict")


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    return {k: as_utc(v) if isinstance(v, datetime) else v for k, v in row.items()}


class Policies:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def put(self, p: CommunityPolicy) -> None:
        row = {"community_id": p.community_id, "policy": p.model_dump(mode="json")}
        await upsert_row(self.session, T.policies, row)


class Controls:
    """A compound's control level as set by the office or screening."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, compound_id: str) -> dict[str, Any] | None:
        c = T.compound_controls.c
        q = sa.select(T.compound_controls).where(c.compound_id == compound_id)
        row = (await self.session.execute(q)).first()
        return None if row is None else _utc(dict(row._mapping))

    async def put(self, compound_id: str, level: ControlLevel, by: str, reason: str, at) -> None:
        row = {"compound_id": compound_id, "level": level.value, "set_by": by, "reason": reason}
        await upsert_row(self.session, T.compound_controls, {**row, "set_at": at})

    async def all(self) -> list[dict[str, Any]]:
        rows = await self.session.execute(sa.select(T.compound_controls))
        return [_utc(dict(r._mapping)) for r in rows]


class Holds:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, person_id: str) -> Hold | None:
        q = sa.select(T.person_status).where(T.person_status.c.person_id == person_id)
        row = (await self.session.execute(q)).first()
        return None if row is None else _hold(row)

    async def put(self, hold: Hold) -> None:
        await upsert_row(
            self.session,
            T.person_status,
            {
                "person_id": hold.person_id,
                "status": hold.status,
                "holds_at_gate": hold.holds_at_gate,
                "holds_at_home": hold.holds_at_home,
                "status_label": hold.label,
                "household_id": hold.household_id,
                "until": hold.until,
                "decided_at": hold.decided_at,
            },
        )


def _hold(row: Any) -> Hold:
    return Hold(
        person_id=row.person_id,
        status=row.status,
        holds_at_gate=row.holds_at_gate,
        holds_at_home=row.holds_at_home,
        household_id=row.household_id,
        decided_at=as_utc(row.decided_at),
        label=row.status_label or {},
        until=as_utc(row.until),
    )


class Permits:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def outings_since(self, household_id: str, since: datetime) -> int:
        p = T.permits.c
        q = (
            sa.select(sa.func.count())
            .select_from(T.permits)
            .where(p.household_id == household_id, p.kind == "outing", p.valid_from >= since)
        )
        return int(await self.session.scalar(q) or 0)

    async def add(self, row: dict[str, Any]) -> None:
        await self.session.execute(sa.insert(T.permits).values(row))

    async def overdue(self, now: datetime) -> list[dict[str, Any]]:
        """Permits whose holder is out past the return time and not alerted yet."""
        p = T.permits.c
        q = sa.select(T.permits).where(
            p.state == "out", p.return_by < now, p.overdue_alerted_at.is_(None)
        )
        return [_utc(dict(r._mapping)) for r in await self.session.execute(q)]

    async def alerted(self, permit_id: str, at: datetime) -> None:
        await self.session.execute(
            sa.update(T.permits)
            .where(T.permits.c.permit_id == permit_id)
            .values(overdue_alerted_at=at)
        )

    async def purge_closed_before(self, cutoff: datetime) -> None:
        p = T.permits.c
        await self.session.execute(
            sa.delete(T.permits).where(p.state == "closed", p.valid_until < cutoff)
        )


class Register:
    """The entry/exit register, read (and purged) by the office's side."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def passage(self, gate_id: str, scan_id: str) -> dict[str, Any] | None:
        pc = T.passages.c
        q = sa.select(T.passages).where(pc.gate_id == gate_id, pc.scan_id == scan_id)
        row = (await self.session.execute(q)).first()
        return None if row is None else _utc(dict(row._mapping))

    async def between(
        self,
        start: datetime,
        end: datetime,
        gate_id: str | None,
        compound_id: str | None,
        *,
        limit: int | None = None,
        after: tuple[datetime, int] | None = None,
    ) -> list[dict[str, Any]]:
        """Passages scanned within [start, end] at a gate or a compound, in (scanned_at,
        id) order; at most ``limit``, from just after ``after`` (a page's last row)."""
        pc = T.passages.c
        q = sa.select(T.passages).where(pc.scanned_at.between(start, end))
        q = q.where(pc.gate_id == gate_id) if gate_id else q.where(pc.compound_id == compound_id)
        if after is not None:
            at, last = after
            q = q.where(sa.or_(pc.scanned_at > at, sa.and_(pc.scanned_at == at, pc.id > last)))
        q = q.order_by(pc.scanned_at, pc.id).limit(limit)
        return [_utc(dict(r._mapping)) for r in await self.session.execute(q)]

    async def newest(
        self, limit: int, gate_id: str | None, person_id: str | None
    ) -> list[dict[str, Any]]:
        pc = T.passages.c
        q = sa.select(T.passages).order_by(pc.id.desc()).limit(limit)
        if gate_id:
            q = q.where(pc.gate_id == gate_id)
        if person_id:
            q = q.where(pc.person_id == person_id)
        return [_utc(dict(r._mapping)) for r in await self.session.execute(q)]

    async def overridden(self, gate_id: str, scan_id: str) -> bool:
        o = T.overrides.c
        q = sa.select(sa.literal(1)).where(o.gate_id == gate_id, o.scan_id == scan_id)
        return bool(await self.session.scalar(q))

    async def add_override(self, row: dict[str, Any]) -> None:
        await self.session.execute(sa.insert(T.overrides).values(row))

    async def add_door_event(self, row: dict[str, Any]) -> None:
        await self.session.execute(sa.insert(T.door_events).values(row))

    async def door_event(self, household_id: str, event_id: str) -> dict[str, Any] | None:
        d = T.door_events.c
        q = sa.select(T.door_events).where(d.household_id == household_id, d.event_id == event_id)
        row = (await self.session.execute(q)).first()
        return None if row is None else _utc(dict(row._mapping))

    async def purge_before(self, cutoff: datetime) -> int:
        """Passages, door events and overrides the checkpoint received before ``cutoff``
        (our clock, whatever the devices' clocks said): gone.

        Passages have no index on ``decided_at``: ids grow with it (one writer per store),
        so the first passage decided at or after the cutoff, found walking up the ids, ends
        the range to delete. A passage a clock step back left out of order below it waits
        for a later purge; none decided after the cutoff is deleted."""
        pc = T.passages.c
        first_kept = await self.session.scalar(
            sa.select(pc.id).where(pc.decided_at >= cutoff).order_by(pc.id).limit(1)
        )
        old = sa.delete(T.passages).where(pc.decided_at < cutoff)
        if first_kept is not None:
            old = old.where(pc.id < first_kept)
        n = (await self.session.execute(old)).rowcount
        await self.session.execute(
            sa.delete(T.door_events).where(T.door_events.c.received_at < cutoff)
        )
        await self.session.execute(sa.delete(T.overrides).where(T.overrides.c.at < cutoff))
        return n or 0


class GateHealthRows:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self) -> list[dict[str, Any]]:
        return [
            _utc(dict(r._mapping)) for r in await self.session.execute(sa.select(T.gate_health))
        ]

    async def put(self, gate_id: str, last_seen_at, firmware: str | None, online: bool) -> None:
        row = {"gate_id": gate_id, "last_seen_at": last_seen_at, "firmware": firmware}
        await upsert_row(self.session, T.gate_health, {**row, "online": online})


# --- the state the gate path answers from, loaded once at start ------------------------------
async def load_state(s: AsyncSession, state: GateState) -> None:
    async def pairs(*cols):
        return dict((await s.execute(sa.select(*cols))).all())

    state.gate_compound = await pairs(T.gates.c.gate_id, T.gates.c.compound_id)
    state.gate_name = await pairs(T.gates.c.gate_id, T.gates.c.name)
    for cid, community, level in await s.execute(
        sa.select(
            T.compounds.c.compound_id, T.compounds.c.community_id, T.compounds.c.control_level
        )
    ):
        state.compound_community[cid] = community
        state.compound_level[cid] = ControlLevel(level)
    state.community_zone = await pairs(T.communities.c.community_id, T.communities.c.time_zone)
    state.building_compound = await pairs(T.buildings.c.building_id, T.buildings.c.compound_id)
    state.household_building = await pairs(T.households.c.household_id, T.households.c.building_id)
    state.resident_household = await pairs(T.residents.c.resident_id, T.residents.c.household_id)
    for (body,) in await s.execute(sa.select(T.policies.c.policy)):
        state.set_policy(CommunityPolicy.model_validate(body))
    c = T.compound_controls.c
    for cid, level, at in await s.execute(sa.select(c.compound_id, c.level, c.set_at)):
        state.controls[cid] = (ControlLevel(level), as_utc(at))
    for row in await s.execute(sa.select(T.person_status)):
        state.set_hold(_hold(row))
    p = T.permits.c
    recent = sa.or_(p.state != "closed", p.valid_until > utcnow() - timedelta(days=1))
    for row in (await s.execute(sa.select(T.permits).where(recent))).all():
        state.put_permit(
            row.holder_id,
            Permit(
                permit_id=row.permit_id,
                kind=row.kind,
                valid_from=as_utc(row.valid_from),
                valid_until=as_utc(row.valid_until),
                uses_left=row.uses_left,
                state=row.state,
                return_by=as_utc(row.return_by),
                return_within_h=row.return_within_h,
            ),
        )
    await load_last_passed(s, state)


async def load_last_passed(s: AsyncSession, state: GateState) -> None:
    """Each person's last passage let through, per compound, from the register (one pass
    over it at start; the passages that follow arrive through ``GateState.passed``)."""
    pc, oc = T.passages.c, T.overrides.c
    with_overrides = T.passages.outerjoin(
        T.overrides, sa.and_(oc.gate_id == pc.gate_id, oc.scan_id == pc.scan_id)
    )
    let_through = sa.or_(pc.verdict == "allow", oc.scan_id.is_not(None))
    last = (
        sa.select(pc.compound_id, pc.person_id, sa.func.max(pc.scanned_at).label("t"))
        .select_from(with_overrides)
        .where(let_through)
        .group_by(pc.compound_id, pc.person_id)
        .subquery()
    )
    q = (
        sa.select(
            pc.compound_id, pc.person_id, pc.gate_id, pc.direction, pc.scanned_at, pc.decided_at
        )
        .select_from(
            with_overrides.join(
                last,
                sa.and_(
                    last.c.compound_id == pc.compound_id,
                    last.c.person_id == pc.person_id,
                    last.c.t == pc.scanned_at,
                ),
            )
        )
        .where(let_through)  # not a refused scan made at the same instant
    )
    state.last_passed.clear()
    for compound, person, gate, direction, at, received in await s.execute(q):
        state.passed(compound, person, gate, direction, at, received)
