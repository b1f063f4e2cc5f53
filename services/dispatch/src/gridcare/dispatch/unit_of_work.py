"""Dispatch's unit of work: the repositories a handler loads through, on the store
(:class:`SqlUnitOfWork`) or in memory (:class:`FakeUnitOfWork`, for handler tests)."""

from __future__ import annotations

from typing import Any, Protocol

from gridcare.shared import uow
from gridcare.shared.projection import MemoryReferenceData, SqlReferenceData

from .adapters import memory, sql
from .adapters.places import Places
from .domain.tasks import Task


class Tasks(Protocol):
    async def exists(self, task_id: str) -> bool: ...
    async def add(self, task: Task) -> None: ...
    async def newest(self, limit: int, assignee_id: str | None = None) -> list[Task]: ...


class DispatchUnitOfWork(uow.UnitOfWork):
    places: Places
    tasks: Tasks


class SqlUnitOfWork(uow.SqlUnitOfWork, DispatchUnitOfWork):
    def repositories(self) -> None:
        self.places = Places(SqlReferenceData(self.session, sql.REFERENCE_TABLES))
        self.tasks = sql.Tasks(self.session)


class FakeUnitOfWork(uow.FakeUnitOfWork, DispatchUnitOfWork):
    def __init__(self, source: str = "dispatch", inbound: uow.Inbound | None = None) -> None:
        super().__init__(source, inbound)
        self.refdata = MemoryReferenceData(sql.REFERENCE_TABLES)
        self.places = Places(self.refdata)
        self.tasks = memory.Tasks()

    def state(self) -> dict[str, Any]:
        return {**{f"ref:{k}": v for k, v in self.refdata.rows.items()}, "tasks": self.tasks.rows}
