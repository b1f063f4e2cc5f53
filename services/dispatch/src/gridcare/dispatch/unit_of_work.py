"""Dispatch's unit of work: the repositories a handler loads through, on the store
(:class:`SqlUnitOfWork`) or in memory (:class:`FakeUnitOfWork`, for handler tests)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from gridcare.shared import uow
from gridcare.shared.projection import MemoryReferenceData, SqlReferenceData

from .adapters import memory, sql
from .adapters.places import Places
from .domain.holds import Hold
from .domain.tasks import Task


class Tasks(Protocol):
    async def exists(self, task_id: str) -> bool: ...
    async def add(self, task: Task) -> None: ...
    async def newest(self, limit: int, assignee_id: str | None = None) -> list[Task]: ...
    async def open_of(
        self, kind: str, *, household_id: str | None = None, person_id: str | None = None
    ) -> list[Task]: ...
    async def close(self, task_id: str, status: str, at: datetime) -> None: ...


class Holds(Protocol):
    """Each person's latest decision from screening (who is confined at home)."""

    async def lock_household(self, household_id: str) -> None: ...
    async def get(self, person_id: str) -> Hold | None: ...
    async def put(self, hold: Hold) -> None: ...
    async def anyone_at_home(self, household_id: str) -> bool: ...


class DispatchUnitOfWork(uow.UnitOfWork):
    places: Places
    tasks: Tasks
    holds: Holds


class SqlUnitOfWork(uow.SqlUnitOfWork, DispatchUnitOfWork):
    def repositories(self) -> None:
        self.places = Places(SqlReferenceData(self.session, sql.REFERENCE_TABLES))
        self.tasks = sql.Tasks(self.session)
        self.holds = sql.Holds(self.session)


class FakeUnitOfWork(uow.FakeUnitOfWork, DispatchUnitOfWork):
    def __init__(self, source: str = "dispatch", inbound: uow.Inbound | None = None) -> None:
        super().__init__(source, inbound)
        self.refdata = MemoryReferenceData(sql.REFERENCE_TABLES)
        self.places = Places(self.refdata)
        self.tasks = memory.Tasks()
        self.holds = memory.Holds()

    def state(self) -> dict[str, Any]:
        return {
            **{f"ref:{k}": v for k, v in self.refdata.rows.items()},
            "tasks": self.tasks.rows,
            "holds": self.holds.rows,
        }
