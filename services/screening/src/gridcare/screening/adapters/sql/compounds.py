"""Compounds' control levels (sealed, epidemic-free)."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.contracts.refdata import (
    ControlLevel,
)
from gridcare.shared.localtime import as_utc
from gridcare.shared.store import upsert_row

from ...domain.compounds import CompoundState
from .. import tables as T


def _compound(row) -> CompoundState:
    return CompoundState(
        compound_id=row.compound_id,
        level=ControlLevel(row.level),
        set_by=row.set_by,
        reason=row.reason,
        set_at=as_utc(row.set_at),
        last_case_at=as_utc(row.last_case_at),
        last_case_person_id=row.last_case_person_id,
        epidemic_free_since=as_utc(row.epidemic_free_since),
    )


class CompoundLevels:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, compound_id: str) -> CompoundState | None:
        row = (
            await self.session.execute(
                sa.select(T.compound_levels).where(T.compound_levels.c.compound_id == compound_id)
            )
        ).first()
        return None if row is None else _compound(row)

    async def save(self, state: CompoundState) -> None:
        values = dataclasses.asdict(state)
        values["level"] = state.level.value
        await upsert_row(self.session, T.compound_levels, values)

    async def all(self) -> list[CompoundState]:
        q = sa.select(T.compound_levels).order_by(T.compound_levels.c.compound_id)
        return [_compound(r) for r in await self.session.execute(q)]
