"""Screening's unit of work: the repositories a handler loads through, on the store
(:class:`SqlUnitOfWork`) or in memory (:class:`FakeUnitOfWork`, for handler tests)."""

from __future__ import annotations

from typing import Any, Protocol

from gridcare.shared import uow
from gridcare.shared.projection import MemoryReferenceData, SqlReferenceData

from .adapters import memory, sql
from .adapters.places import Places
from .domain.cases import Case, Observation
from .domain.status import StatusDecision


class Cases(Protocol):
    async def open_case_of(self, person_id: str, kind: str) -> Case | None: ...
    async def add(self, case: Case) -> None: ...
    async def observe(self, case: Case, observation: Observation) -> bool:
        """Add the reading to the case; False if it is there already."""
        ...

    async def newest(self, limit: int, person_id: str | None = None) -> list[Case]: ...


class Statuses(Protocol):
    async def get(self, person_id: str) -> StatusDecision | None: ...
    async def record(self, decision: StatusDecision) -> None: ...
    async def history(self, person_id: str) -> list[StatusDecision]: ...


class ScreeningUnitOfWork(uow.UnitOfWork):
    places: Places
    cases: Cases
    statuses: Statuses


class SqlUnitOfWork(uow.SqlUnitOfWork, ScreeningUnitOfWork):
    def repositories(self) -> None:
        self.places = Places(SqlReferenceData(self.session, sql.REFERENCE_TABLES))
        self.cases = sql.Cases(self.session)
        self.statuses = sql.Statuses(self.session)


class FakeUnitOfWork(uow.FakeUnitOfWork, ScreeningUnitOfWork):
    def __init__(self, source: str = "screening", inbound: uow.Inbound | None = None) -> None:
        super().__init__(source, inbound)
        self.refdata = MemoryReferenceData(sql.REFERENCE_TABLES)
        self.places = Places(self.refdata)
        self.cases = memory.Cases()
        self.statuses = memory.Statuses()

    def state(self) -> dict[str, Any]:
        return {
            **{f"ref:{k}": v for k, v in self.refdata.rows.items()},
            "cases": self.cases.rows,
            "statuses": self.statuses.current,
            "history": self.statuses.log,
        }
