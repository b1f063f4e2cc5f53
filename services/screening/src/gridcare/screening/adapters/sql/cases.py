"""Cases: a fever at the gate, and the readings that follow."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.shared.localtime import as_utc

from ...domain.cases import Case, Observation
from .. import tables as T


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
