"""Dispatch's repositories on its store."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.contracts.refdata import Building, Community, Grid, Household, Resident
from gridcare.shared.localtime import as_utc

from ..domain.tasks import Task
from . import tables as T

REFERENCE_TABLES = {
    Resident.TYPE: T.residents,
    Household.TYPE: T.households,
    Building.TYPE: T.buildings,
    Grid.TYPE: T.grids,
    Community.TYPE: T.communities,
}


def _task(row) -> Task:
    return Task(
        task_id=row.task_id,
        kind=row.kind,
        source_ref=row.source_ref or "",
        person_id=row.person_id,
        household_id=row.household_id or "",
        case_id=row.case_id,
        grid_id=row.grid_id,
        assignee_id=row.assignee_id,
        urgent=row.urgent,
        status=row.status,
        due_by=as_utc(row.due_by),
        created_at=as_utc(row.created_at),
    )


class Tasks:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def exists(self, task_id: str) -> bool:
        q = sa.select(sa.literal(1)).where(T.tasks.c.task_id == task_id)
        return bool(await self.session.scalar(q))

    async def add(self, task: Task) -> None:
        await self.session.execute(
            sa.insert(T.tasks).values(
                task_id=task.task_id,
                kind=task.kind,
                person_id=task.person_id,
                household_id=task.household_id,
                case_id=task.case_id,
                source_ref=task.source_ref,
                urgent=task.urgent,
                grid_id=task.grid_id,
                assignee_id=task.assignee_id,
                status=task.status,
                due_by=task.due_by,
                created_at=task.created_at,
            )
        )

    async def newest(self, limit: int, assignee_id: str | None = None) -> list[Task]:
        q = sa.select(T.tasks).order_by(T.tasks.c.created_at.desc()).limit(limit)
        if assignee_id:
            q = q.where(T.tasks.c.assignee_id == assignee_id)
        return [_task(r) for r in await self.session.execute(q)]
