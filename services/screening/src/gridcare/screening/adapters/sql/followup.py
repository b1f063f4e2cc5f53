"""Follow-up periods and their days (handlers/followup.py)."""

from __future__ import annotations

import dataclasses
from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.shared.localtime import as_utc
from gridcare.shared.store import upsert_row

from ...domain import followup as fu
from .. import tables as T


def _follow_up(row) -> fu.FollowUp:
    return fu.FollowUp(
        follow_up_id=row.follow_up_id,
        person_id=row.person_id,
        reason=row.reason,
        started_on=row.started_on,
        ends_on=row.ends_on,
        status=row.status,
        opened_at=as_utc(row.opened_at),
        last_symptom_day=row.last_symptom_day,
        last_test_at=as_utc(row.last_test_at),
        last_test_negative=row.last_test_negative,
        released_at=as_utc(row.released_at),
        release_reason=row.release_reason,
    )


class FollowUps:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_of(self, person_id: str) -> fu.FollowUp | None:
        t = T.follow_ups
        row = (
            await self.session.execute(
                sa.select(t).where(t.c.person_id == person_id, t.c.status == "open")
            )
        ).first()
        return None if row is None else _follow_up(row)

    async def save(self, f: fu.FollowUp) -> None:
        await upsert_row(self.session, T.follow_ups, dataclasses.asdict(f))

    async def put_day(self, d: fu.FollowUpDay) -> bool:
        """Record the day (the newest report of the day replaces an earlier one); True if
        the person had no record for that day yet."""
        t = T.follow_up_days
        values = {**dataclasses.asdict(d), "symptoms": list(d.symptoms)}
        where = sa.and_(t.c.person_id == d.person_id, t.c.day == d.day)
        done = await self.session.execute(sa.update(t).where(where).values(values))
        if done.rowcount:
            return False
        await self.session.execute(sa.insert(t).values(values))
        return True

    async def of_person(self, person_id: str) -> list[fu.FollowUp]:
        t = T.follow_ups
        q = sa.select(t).where(t.c.person_id == person_id).order_by(t.c.started_on)
        return [_follow_up(r) for r in await self.session.execute(q)]

    async def days_of(self, person_id: str) -> list[fu.FollowUpDay]:
        t = T.follow_up_days
        q = sa.select(t).where(t.c.person_id == person_id).order_by(t.c.day)
        return [
            fu.FollowUpDay(
                r.person_id,
                r.day,
                r.follow_up_id,
                r.source,
                r.source_ref,
                r.temperature_c,
                tuple(r.symptoms or ()),
                as_utc(r.recorded_at),
            )
            for r in await self.session.execute(q)
        ]

    async def open_ending_by(self, day: date, limit: int = 1000) -> list[fu.FollowUp]:
        t = T.follow_ups
        q = (
            sa.select(t)
            .where(t.c.status == "open", t.c.ends_on <= day)
            .order_by(t.c.ends_on, t.c.person_id)
            .limit(limit)
        )
        return [_follow_up(r) for r in await self.session.execute(q)]
