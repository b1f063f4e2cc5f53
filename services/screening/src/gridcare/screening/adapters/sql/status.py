"""Each person's health status and its history."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.shared.localtime import as_utc
from gridcare.shared.store import upsert_row

from ...domain.status import HealthStatus, StatusDecision
from .. import tables as T


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
