"""Dispatch's repositories on its store."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.contracts.refdata import Building, Community, Grid, Household, Resident
from gridcare.shared.localtime import as_utc

from ..domain.holds import Hold
from ..domain.tasks import Task
from . import tables as T

REFERENCE_TABLES = {
    Resident.TYPE: T.residents,
    Household.TYPE: T.households,
    Building.TYPE: T.buildings,
    Grid.TYPE: T.grids,
    Community.TYPE: T.communities,
}

_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


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
        closed_at=as_utc(row.closed_at) if row.closed_at else None,
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
                closed_at=task.closed_at,
            )
        )

    async def open_of(
        self, kind: str, *, household_id: str | None = None, person_id: str | None = None
    ) -> list[Task]:
        """The open tasks of a kind about a household or a person."""
        c = T.tasks.c
        q = sa.select(T.tasks).where(c.kind == kind, c.status == "open")
        if household_id is not None:
            q = q.where(c.household_id == household_id)
        if person_id is not None:
            q = q.where(c.person_id == person_id)
        return [_task(r) for r in await self.session.execute(q.order_by(c.created_at))]

    async def close(self, task_id: str, status: str, at) -> None:
        c = T.tasks.c
        await self.session.execute(
            sa.update(T.tasks)
            .where(c.task_id == task_id, c.status == "open")
            .values(status=status, closed_at=at)
        )

    async def newest(self, limit: int, assignee_id: str | None = None) -> list[Task]:
        q = sa.select(T.tasks).order_by(T.tasks.c.created_at.desc()).limit(limit)
        if assignee_id:
            q = q.where(T.tasks.c.assignee_id == assignee_id)
        return [_task(r) for r in await self.session.execute(q)]


class Holds:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_household(self, household_id: str) -> None:
        """Wait for any other transaction about this household (its row's lock, held to
        the commit). The row is made first if absent: one racing it waits for that insert
        to commit and inserts nothing (``ON CONFLICT DO NOTHING``)."""
        t = T.household_locks
        insert = _INSERT.get(self.session.get_bind().dialect.name)
        if insert is not None:
            await self.session.execute(
                insert(t).values(household_id=household_id, version=0).on_conflict_do_nothing()
            )
        done = await self.session.execute(
            sa.update(t).where(t.c.household_id == household_id).values(version=t.c.version + 1)
        )
        if not done.rowcount:  # another database: a racing insert fails and is retried
            await self.session.execute(sa.insert(t).values(household_id=household_id, version=1))

    async def get(self, person_id: str) -> Hold | None:
        q = sa.select(T.holds).where(T.holds.c.person_id == person_id)
        row = (await self.session.execute(q)).first()
        if row is None:
            return None
        return Hold(
            person_id=row.person_id,
            household_id=row.household_id,
            status=row.status,
            at_home=row.at_home,
            decided_at=as_utc(row.decided_at),
        )

    async def put(self, hold: Hold) -> None:
        values = {
            "household_id": hold.household_id,
            "status": hold.status,
            "at_home": hold.at_home,
            "decided_at": hold.decided_at,
        }
        done = await self.session.execute(
            sa.update(T.holds).where(T.holds.c.person_id == hold.person_id).values(**values)
        )
        if not done.rowcount:
            await self.session.execute(
                sa.insert(T.holds).values(person_id=hold.person_id, **values)
            )

    async def anyone_at_home(self, household_id: str) -> bool:
        c = T.holds.c
        q = sa.select(sa.literal(1)).where(c.household_id == household_id, c.at_home.is_(True))
        return bool(await self.session.scalar(q.limit(1)))
