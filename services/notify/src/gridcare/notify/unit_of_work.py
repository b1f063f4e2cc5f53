"""Notify's unit of work: the repositories a handler loads through, on the store
(:class:`SqlUnitOfWork`) or in memory (:class:`FakeUnitOfWork`, for handler tests)."""

from __future__ import annotations

from typing import Any, Protocol

from gridcare.shared import uow
from gridcare.shared.projection import MemoryReferenceData, SqlReferenceData

from .adapters import memory, sql
from .adapters.places import Places
from .domain.deliveries import Delivery


class Deliveries(Protocol):
    async def get(self, notification_id: str) -> Delivery | None: ...
    async def save(self, delivery: Delivery) -> None: ...
    async def newest(self, limit: int) -> list[Delivery]: ...


class NotifyUnitOfWork(uow.UnitOfWork):
    places: Places
    deliveries: Deliveries


class SqlUnitOfWork(uow.SqlUnitOfWork, NotifyUnitOfWork):
    def repositories(self) -> None:
        self.places = Places(SqlReferenceData(self.session, sql.REFERENCE_TABLES))
        self.deliveries = sql.Deliveries(self.session)


class FakeUnitOfWork(uow.FakeUnitOfWork, NotifyUnitOfWork):
    def __init__(self, source: str = "notify", inbound: uow.Inbound | None = None) -> None:
        super().__init__(source, inbound)
        self.refdata = MemoryReferenceData(sql.REFERENCE_TABLES)
        self.places = Places(self.refdata)
        self.deliveries = memory.Deliveries()

    def state(self) -> dict[str, Any]:
        return {
            **{f"ref:{k}": v for k, v in self.refdata.rows.items()},
            "deliveries": self.deliveries.rows,
        }
