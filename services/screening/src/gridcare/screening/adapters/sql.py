"""Screening's repositories on its store."""

from __future__ import annotations

import sqlalchemy as sa
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
