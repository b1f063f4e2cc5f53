"""Notify's repositories on its store."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.contracts.refdata import Community, Compound, Gate, Grid
from gridcare.shared.localtime import as_utc
from gridcare.shared.store import upsert_row

from ..domain.deliveries import Delivery
from . import tables as T

REFERENCE_TABLES = {
    Grid.TYPE: T.grids,
    Gate.TYPE: T.gates,
    Compound.TYPE: T.compounds,
    Community.TYPE: T.communities,
}
COLUMNS = [c.name for c in T.deliveries.columns]


def _delivery(row) -> Delivery:
    values = dict(row._mapping)
    values["created_at"] = as_utc(values["created_at"])
    values["delivered_at"] = as_utc(values["delivered_at"])
    return Delivery(**values)


class Deliveries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, notification_id: str) -> Delivery | None:
        q = sa.select(T.deliveries).where(T.deliveries.c.notification_id == notification_id)
        row = (await self.session.execute(q)).first()
        return None if row is None else _delivery(row)

    async def save(self, delivery: Delivery) -> None:
        await upsert_row(self.session, T.deliveries, {c: getattr(delivery, c) for c in COLUMNS})

    async def newest(self, limit: int) -> list[Delivery]:
        d = T.deliveries.c
        q = sa.select(T.deliveries).order_by(d.created_at.desc(), d.delivered_at.desc())
        return [_delivery(r) for r in await self.session.execute(q.limit(limit))]
