"""Quarantine: households at home, central sites, their rooms and intakes."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.shared.localtime import as_utc
from gridcare.shared.store import upsert_row

from ...domain.quarantine import HouseholdQuarantine, Intake, Occupant, RoomTaken, Site
from .. import tables as T


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

    async def lock(self, household_id: str) -> None:
        """The household's row locked until this transaction ends (PostgreSQL; SQLite's
        one writer needs nothing, and renders no ``FOR UPDATE``)."""
        h = T.households.c
        await self.session.execute(
            sa.select(h.household_id).where(h.household_id == household_id).with_for_update()
        )

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
                sa.select(T.quarantine_intakes).where(T.quarantine_intakes.c.intake_id == intake_id)
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
