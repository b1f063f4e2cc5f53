"""Screening's repositories on its store."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.contracts.refdata import (
    Building,
    Community,
    Compound,
    Grid,
    Household,
    Resident,
    Staff,
)
from gridcare.shared.localtime import as_utc
from gridcare.shared.store import upsert_row

from ..domain.cases import Case, Observation
from ..domain.quarantine import HouseholdQuarantine, Intake, Occupant, RoomTaken, Site
from ..domain.status import HealthStatus, StatusDecision
from . import tables as T

REFERENCE_TABLES = {
    Resident.TYPE: T.residents,
    Household.TYPE: T.households,
    Building.TYPE: T.buildings,
    Compound.TYPE: T.compounds,
    Community.TYPE: T.communities,
    Staff.TYPE: T.staff,  # who may decide a status, in which role
    Grid.TYPE: T.grids,  # a grid's worker decides as a grid_worker
}


def _case(row) -> Case:
    return Case(
        case_id=row.case_id,
        person_id=row.person_id,
        kind=row.kind,
        status=row.status,
        opened_at=as_utc(row.opened_at),
        reason=row.reason,
        source_ref=row.source_ref,
    )


class Cases:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_case_of(self, person_id: str, kind: str) -> Case | None:
        c = T.cases.c
        row = (
            await self.session.execute(
                sa.select(T.cases).where(
                    c.person_id == person_id, c.kind == kind, c.status == "open"
                )
            )
        ).first()
        return None if row is None else _case(row)

    async def add(self, case: Case) -> None:
        await self.session.execute(
            sa.insert(T.cases).values(
                case_id=case.case_id,
                person_id=case.person_id,
                kind=case.kind,
                status=case.status,
                opened_at=case.opened_at,
                reason=case.reason,
                source_ref=case.source_ref,
            )
        )

    async def observe(self, case: Case, observation: Observation) -> bool:
        o = T.observations.c
        seen = await self.session.scalar(
            sa.select(sa.literal(1)).where(
                o.case_id == case.case_id, o.source_ref == observation.source_ref
            )
        )
        if seen:
            return False
        await self.session.execute(
            sa.insert(T.observations).values(
                case_id=case.case_id,
                observed_at=observation.observed_at,
                kind=observation.kind,
                value=observation.value,
                source_ref=observation.source_ref,
            )
        )
        return True

    async def newest(self, limit: int, person_id: str | None = None) -> list[Case]:
        q = sa.select(T.cases).order_by(T.cases.c.opened_at.desc()).limit(limit)
        if person_id:
            q = q.where(T.cases.c.person_id == person_id)
        return [_case(r) for r in await self.session.execute(q)]


def _decision(row) -> StatusDecision:
    return StatusDecision(
        person_id=row.person_id,
        status=HealthStatus(row.status),
        set_by=row.set_by,
        reason=row.reason,
        at=as_utc(row.at),
        until=as_utc(row.until),
        role=row.role,
        previous=HealthStatus(row.previous_status) if row.previous_status else None,
        source=row.source,
    )


class Statuses:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, person_id: str) -> StatusDecision | None:
        row = (
            await self.session.execute(
                sa.select(T.person_status).where(T.person_status.c.person_id == person_id)
            )
        ).first()
        return None if row is None else _decision(row)

    async def record(self, decision: StatusDecision) -> None:
        values = {
            "person_id": decision.person_id,
            "status": decision.status.value,
            "set_by": decision.set_by,
            "reason": decision.reason,
            "at": decision.at,
            "until": decision.until,
            "role": decision.role,
            "previous_status": decision.previous.value if decision.previous else None,
            "source": decision.source,
        }
        await upsert_row(self.session, T.person_status, values)
        await self.session.execute(sa.insert(T.status_history).values(values))

    async def history(self, person_id: str) -> list[StatusDecision]:
        h = T.status_history.c
        q = sa.select(T.status_history).where(h.person_id == person_id).order_by(h.at, h.id)
        return [_decision(r) for r in await self.session.execute(q)]


# --- quarantine -----------------------------------------------------------------------------
def _household_quarantine(row) -> HouseholdQuarantine:
    return HouseholdQuarantine(
        household_id=row.household_id,
        started_at=as_utc(row.started_at),
        until=as_utc(row.until),
        started_by=row.started_by,
        reason=row.reason,
        status=row.status,
        ended_at=as_utc(row.ended_at),
        ended_by=row.ended_by,
        end_reason=row.end_reason,
    )


class HouseholdQuarantines:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def active_of(self, household_id: str) -> HouseholdQuarantine | None:
        q = T.household_quarantines.c
        row = (
            await self.session.execute(
                sa.select(T.household_quarantines).where(
                    q.household_id == household_id, q.status == "active"
                )
            )
        ).first()
        return None if row is None else _household_quarantine(row)

    async def save(self, hq: HouseholdQuarantine) -> None:
        await upsert_row(
            self.session,
            T.household_quarantines,
            {
                "household_id": hq.household_id,
                "started_at": hq.started_at,
                "until": hq.until,
                "started_by": hq.started_by,
                "reason": hq.reason,
                "status": hq.status,
                "ended_at": hq.ended_at,
                "ended_by": hq.ended_by,
                "end_reason": hq.end_reason,
            },
        )

    async def active(self) -> list[HouseholdQuarantine]:
        q = T.household_quarantines.c
        rows = await self.session.execute(
            sa.select(T.household_quarantines)
            .where(q.status == "active")
            .order_by(q.until, q.household_id)
        )
        return [_household_quarantine(r) for r in rows]


def _site(row) -> Site:
    return Site(
        site_id=row.site_id,
        name=row.name,
        address=row.address,
        community_id=row.community_id,
        added_at=as_utc(row.added_at),
        added_by=row.added_by,
    )


def _occupant(row) -> Occupant:
    return Occupant(
        person_id=row.person_id,
        site_id=row.site_id,
        room_id=row.room_id,
        since=as_utc(row.since),
        intake_id=row.intake_id,
    )


class Sites:
    """Central quarantine sites, their rooms and who is in them. A room holds one person:
    the store's unique (site, room) refuses a second, whoever commits first wins."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, site_id: str) -> Site | None:
        row = (
            await self.session.execute(
                sa.select(T.quarantine_sites).where(T.quarantine_sites.c.site_id == site_id)
            )
        ).first()
        return None if row is None else _site(row)

    async def add(self, site: Site) -> None:
        await self.session.execute(
            sa.insert(T.quarantine_sites).values(
                site_id=site.site_id,
                name=site.name,
                address=site.address,
                community_id=site.community_id,
                added_at=site.added_at,
                added_by=site.added_by,
            )
        )

    async def all(self) -> list[Site]:
        q = sa.select(T.quarantine_sites).order_by(T.quarantine_sites.c.site_id)
        return [_site(r) for r in await self.session.execute(q)]

    async def rooms(self, site_id: str) -> list[str]:
        r = T.quarantine_rooms.c
        q = sa.select(r.room_id).where(r.site_id == site_id)
        return list((await self.session.scalars(q)).all())

    async def add_rooms(self, site_id: str, room_ids: list[str]) -> None:
        await self.session.execute(
            sa.insert(T.quarantine_rooms), [{"site_id": site_id, "room_id": r} for r in room_ids]
        )

    async def occupants(self, site_id: str | None = None) -> list[Occupant]:
        o = T.quarantine_occupants.c
        q = sa.select(T.quarantine_occupants).order_by(o.site_id, o.room_id)
        if site_id is not None:
            q = q.where(o.site_id == site_id)
        return [_occupant(r) for r in await self.session.execute(q)]

    async def occupant(self, person_id: str) -> Occupant | None:
        o = T.quarantine_occupants.c
        row = (
            await self.session.execute(
                sa.select(T.quarantine_occupants).where(o.person_id == person_id)
            )
        ).first()
        return None if row is None else _occupant(row)

    async def occupy(self, occupants: list[Occupant]) -> None:
        """Put each in their room (a stay begins); :class:`RoomTaken` if the store refuses
        one (a room or a person taken by a transaction committed meanwhile)."""
        if not occupants:
            return
        rows = [
            {
                "person_id": o.person_id,
                "site_id": o.site_id,
                "room_id": o.room_id,
                "since": o.since,
                "intake_id": o.intake_id,
            }
            for o in occupants
        ]
        try:
            await self.session.execute(sa.insert(T.quarantine_occupants), rows)
        except IntegrityError as exc:
            raise RoomTaken(str(exc.orig)) from exc
        await self.session.execute(
            sa.insert(T.quarantine_stays),
            [
                {
                    "person_id": o.person_id,
                    "site_id": o.site_id,
                    "room_id": o.room_id,
                    "started_at": o.since,
                    "intake_id": o.intake_id,
                }
                for o in occupants
            ],
        )

    async def vacate(self, person_ids: list[str], at: datetime, reason: str) -> None:
        """Free their rooms; their stays end."""
        o, s = T.quarantine_occupants.c, T.quarantine_stays.c
        await self.session.execute(
            sa.delete(T.quarantine_occupants).where(o.person_id.in_(person_ids))
        )
        await self.session.execute(
            sa.update(T.quarantine_stays)
            .where(s.person_id.in_(person_ids), s.ended_at.is_(None))
            .values(ended_at=at, end_reason=reason)
        )

    async def intake(self, intake_id: str) -> Intake | None:
        row = (
            await self.session.execute(
                sa.select(T.quarantine_intakes).where(
                    T.quarantine_intakes.c.intake_id == intake_id
                )
            )
        ).first()
        if row is None:
            return None
        return Intake(
            row.intake_id, row.site_id, tuple(row.people), row.by, row.reason, as_utc(row.at)
        )

    async def add_intake(self, intake: Intake) -> None:
        try:
            await self.session.execute(
                sa.insert(T.quarantine_intakes).values(
                    intake_id=intake.intake_id,
                    site_id=intake.site_id,
                    people=list(intake.people),
                    by=intake.by,
                    reason=intake.reason,
                    at=intake.at,
                )
            )
        except IntegrityError as exc:  # the same intake, committed meanwhile: try again
            raise RoomTaken(str(exc.orig)) from exc

    async def stays_of(self, intake_id: str) -> list[Occupant]:
        """The rooms an intake gave (its stays, ended or not), in room order."""
        s = T.quarantine_stays.c
        rows = await self.session.execute(
            sa.select(T.quarantine_stays).where(s.intake_id == intake_id).order_by(s.id)
        )
        return [
            Occupant(r.person_id, r.site_id, r.room_id, as_utc(r.started_at), r.intake_id)
            for r in rows
        ]
