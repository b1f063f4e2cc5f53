"""What the gate path needs to know, in memory: the verdict never waits on a database.

Loaded from the checkpoint's store at start and kept current by the consumers (updated
after each commit), so a change reaches every gate of this instance as soon as its event
is handled. Permit uses are applied here at decision time (and written with the passage),
so two quick exits cannot both use a permit's last use. Who is out of each compound is
kept here too (each person's last passage let through its gates), so the register needs
no index by compound and person, which every gate commit would have to update.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.shared.envelope import utcnow
from gridcare.shared.events import (
    HOLDING_STATUSES,
    Building,
    CommunityPolicy,
    Compound,
    ControlLevel,
    Gate,
    Household,
    Resident,
)
from gridcare.shared.store import as_utc

from . import tables as T
from .domain import PermitView, Policy


@dataclass
class GateState:
    gate_compound: dict[str, str] = field(default_factory=dict)
    compound_level: dict[str, ControlLevel] = field(default_factory=dict)
    compound_community: dict[str, str] = field(default_factory=dict)
    building_compound: dict[str, str] = field(default_factory=dict)
    household_building: dict[str, str] = field(default_factory=dict)
    resident_household: dict[str, str] = field(default_factory=dict)
    policies: dict[str, Policy] = field(default_factory=dict)  # community -> policy
    community_policy: dict[str, CommunityPolicy] = field(default_factory=dict)
    controls: dict[str, tuple[ControlLevel, datetime]] = field(default_factory=dict)
    held: dict[str, tuple[str, str | None, datetime]] = field(default_factory=dict)
    quarantined_households: Counter = field(default_factory=Counter)
    permits: dict[str, PermitView] = field(default_factory=dict)
    permit_holder: dict[str, str] = field(default_factory=dict)
    holder_permits: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    default_policy: Policy = field(default_factory=Policy)
    # compound -> person -> (gate, direction, scanned_at) of their last passage let through
    # the compound's gates (allowed, or overridden by duty staff): who is out
    last_passed: defaultdict[str, dict[str, tuple[str, str, datetime]]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    async def load(self, s: AsyncSession) -> None:
        async def pairs(*cols):
            return dict((await s.execute(sa.select(*cols))).all())

        self.gate_compound = await pairs(T.gates.c.gate_id, T.gates.c.compound_id)
        for cid, community, level in await s.execute(
            sa.select(
                T.compounds.c.compound_id,
                T.compounds.c.community_id,
                T.compounds.c.control_level,
            )
        ):
            self.compound_community[cid] = community
            self.compound_level[cid] = ControlLevel(level)
        self.building_compound = await pairs(T.buildings.c.building_id, T.buildings.c.compound_id)
        self.household_building = await pairs(
            T.households.c.household_id, T.households.c.building_id
        )
        self.resident_household = await pairs(T.residents.c.resident_id, T.residents.c.household_id)
        for (body,) in await s.execute(sa.select(T.policies.c.policy)):
            self.set_policy(CommunityPolicy.model_validate(body))
        for cid, level, at in await s.execute(
            sa.select(
                T.compound_controls.c.compound_id,
                T.compound_controls.c.level,
                T.compound_controls.c.set_at,
            )
        ):
            self.controls[cid] = (ControlLevel(level), at)
        for pid, status, household, at in await s.execute(
            sa.select(
                T.person_status.c.person_id,
                T.person_status.c.status,
                T.person_status.c.household_id,
                T.person_status.c.decided_at,
            )
        ):
            self.set_status(pid, status, household, at)
        p = T.permits.c
        for row in (
            await s.execute(
                sa.select(T.permits).where(sa.or_(p.state != "closed", p.valid_until > utcnow()))
            )
        ).all():
            self.put_permit(
                row.holder_id,
                PermitView(
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
        await self.load_last_passed(s)

    async def load_last_passed(self, s: AsyncSession) -> None:
        """Each person's last passage let through, per compound, from the register (one
        pass over it at start; the passages that follow arrive through :meth:`passed`)."""
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
            sa.select(pc.compound_id, pc.person_id, pc.gate_id, pc.direction, pc.scanned_at)
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
        self.last_passed.clear()
        for compound, person, gate, direction, at in await s.execute(q):
            self.passed(compound, person, gate, direction, at)

    # --- updates from the consumers (after commit) ---------------------------------------
    def apply(self, entity: object) -> None:
        match entity:
            case Gate():
                self.gate_compound[entity.gate_id] = entity.compound_id
            case Compound():
                self.compound_level[entity.compound_id] = ControlLevel(entity.control_level)
                self.compound_community[entity.compound_id] = entity.community_id
            case Building():
                self.building_compound[entity.building_id] = entity.compound_id
            case Household():
                self.household_building[entity.household_id] = entity.building_id
            case Resident():
                self.resident_household[entity.resident_id] = entity.household_id
            case CommunityPolicy():
                self.set_policy(entity)

    def set_policy(self, p: CommunityPolicy) -> None:
        self.community_policy[p.community_id] = p
        self.policies[p.community_id] = Policy.from_event(p)

    def set_control(self, compound_id: str, level: ControlLevel, at: datetime) -> None:
        self.controls[compound_id] = (level, at)

    def set_status(self, person_id: str, status: str, household: str | None, at: datetime) -> None:
        old = self.held.pop(person_id, None)
        if old and old[1]:
            self.quarantined_households[old[1]] -= 1
            if self.quarantined_households[old[1]] <= 0:
                del self.quarantined_households[old[1]]
        if status in HOLDING_STATUSES:
            household = household or self.resident_household.get(person_id)
            self.held[person_id] = (status, household, at)
            if household:
                self.quarantined_households[household] += 1

    def put_permit(self, holder: str, permit: PermitView) -> None:
        # A closed permit stays in view until its window ends: an exit on it is then
        # `permit_expired` (used up), not `permit_required` (never had one).
        self.permits[permit.permit_id] = permit
        self.permit_holder[permit.permit_id] = holder
        self.holder_permits[holder].add(permit.permit_id)

    def forget_permits_before(self, t: datetime) -> None:
        """Drop permits whose window ended before ``t`` (housekeeping)."""
        for pid, p in list(self.permits.items()):
            if p.valid_until < t:
                del self.permits[pid]
                self.holder_permits[self.permit_holder.pop(pid)].discard(pid)

    def passed(self, compound: str, person: str, gate: str, direction: str, at: datetime) -> None:
        """A passage of ``person`` let through a gate of ``compound`` is in the register
        (written, or overridden); the latest by scan time counts."""
        # as UTC: a device's own offset (+08:00) is kept out; SQLite gives naive UTC
        at = as_utc(at).astimezone(UTC)
        people = self.last_passed[compound]
        known = people.get(person)
        if known is None or at >= known[2]:
            people[person] = (gate, direction, at)

    def forget_passages_before(self, t: datetime) -> None:
        """The register forgets passages scanned before ``t`` (retention): so does this."""
        for people in self.last_passed.values():
            for person in [p for p, last in people.items() if last[2] < t]:
                del people[person]

    def out_of(self, compound: str) -> list[tuple[str, str, datetime]]:
        """(person, gate, since) of the residents of ``compound`` whose last passage let
        through its gates was an exit, the earliest first."""
        return sorted(
            (
                (person, gate, at)
                for person, (gate, direction, at) in self.last_passed.get(compound, {}).items()
                if direction == "out" and self.home_compound(person) == compound
            ),
            key=lambda r: r[2],
        )

    def use_permit(self, permit: PermitView, at: datetime) -> PermitView:
        """An exit on ``permit``: one use gone, out until ``return_by``."""
        h = permit.return_within_h
        return_by = at + timedelta(hours=h) if h else permit.valid_until
        used = dataclasses.replace(
            permit, uses_left=permit.uses_left - 1, state="out", return_by=return_by
        )
        self.put_permit(self.permit_holder[permit.permit_id], used)
        return used

    def close_permit(self, permit: PermitView) -> PermitView:
        """A return on ``permit``: usable again if it has uses left, else closed."""
        state = "issued" if permit.uses_left > 0 else "closed"
        back = dataclasses.replace(permit, state=state, return_by=None)
        self.put_permit(self.permit_holder[permit.permit_id], back)
        return back

    # --- queries of the gate path ---------------------------------------------------------
    def home_compound(self, person_id: str) -> str | None:
        household = self.resident_household.get(person_id)
        building = self.household_building.get(household) if household else None
        return self.building_compound.get(building) if building else None

    def level(self, compound_id: str) -> ControlLevel:
        if compound_id in self.controls:
            return self.controls[compound_id][0]
        return self.compound_level.get(compound_id, ControlLevel.PRECAUTION)

    def policy(self, compound_id: str) -> Policy:
        return self.policies.get(self.compound_community.get(compound_id, ""), self.default_policy)

    def community_policy_of(self, compound_id: str) -> CommunityPolicy | None:
        return self.community_policy.get(self.compound_community.get(compound_id, ""))

    def permits_of(self, person_id: str) -> tuple[PermitView, ...]:
        held = self.holder_permits.get(person_id)
        return tuple(self.permits[p] for p in held) if held else ()
