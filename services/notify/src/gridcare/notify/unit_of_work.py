"""Notify's unit of work: the repositories a handler loads through, on the store
(:class:`SqlUnitOfWork`) or in memory (:class:`FakeUnitOfWork`, for handler tests)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from gridcare.shared import uow
from gridcare.shared.projection import MemoryReferenceData, SqlReferenceData

from .adapters import memory, sql
from .adapters.directory import Directory
from .domain.alerts import Alert
from .domain.messages import Message


class Messages(Protocol):
    async def add_new(self, messages: Sequence[Message]) -> int: ...
    async def get(self, message_id: str) -> Message | None: ...
    async def find_one(
        self, *, delivery_key: str | None = None, provider_ref: str | None = None
    ) -> Message | None: ...
    async def save(self, messages: Iterable[Message]) -> None: ...
    async def due(self, now: datetime, limit: int, max_priority: int = 2) -> list[Message]: ...
    async def next_due(self) -> datetime | None: ...
    async def held_for(self, recipient_id: str) -> list[Message]: ...
    async def sent_since(self, recipients: Sequence[str], since: datetime) -> dict[str, int]: ...
    async def sending_to_queued(self, now: datetime) -> int: ...
    async def counts(self, request_id: str) -> dict[str, int]: ...
    async def cancel_waiting(self, request_id: str) -> int: ...
    async def of_alert(self, alert_id: str) -> list[Message]: ...
    async def newest(self, limit: int, recipient_id: str | None = None) -> list[Message]: ...
    async def depth(self) -> dict[int, int]: ...
    async def record(self, entries: Sequence[dict[str, Any]]) -> None: ...
    async def history(self, message_id: str) -> list[dict[str, Any]]: ...


class Requests(Protocol):
    async def get(self, request_id: str) -> dict[str, Any] | None: ...
    async def put(self, row: dict[str, Any]) -> None: ...


class Alerts(Protocol):
    async def get(self, alert_id: str) -> Alert | None: ...
    async def save(self, alert: Alert) -> None: ...
    async def due(self, now: datetime) -> list[Alert]: ...
    async def open_count(self) -> int: ...
    async def add_recipient(
        self, alert_id: str, person_id: str, name: str, language: str, step: int, at: datetime
    ) -> None: ...
    async def recipients(self, alert_id: str) -> list[dict[str, Any]]: ...


class NotifyUnitOfWork(uow.UnitOfWork):
    places: Directory  # (``places``: the name every service's projection handler uses)
    messages: Messages
    requests: Requests
    alerts: Alerts


class SqlUnitOfWork(uow.SqlUnitOfWork, NotifyUnitOfWork):
    def repositories(self) -> None:
        self.places = Directory(SqlReferenceData(self.session, sql.REFERENCE_TABLES))
        self.messages = sql.Messages(self.session)
        self.requests = sql.Requests(self.session)
        self.alerts = sql.Alerts(self.session)


class FakeUnitOfWork(uow.FakeUnitOfWork, NotifyUnitOfWork):
    def __init__(self, source: str = "notify", inbound: uow.Inbound | None = None) -> None:
        super().__init__(source, inbound)
        self.refdata = MemoryReferenceData(sql.REFERENCE_TABLES)
        self.places = Directory(self.refdata)
        self.messages = memory.Messages()
        self.requests = memory.Requests()
        self.alerts = memory.Alerts()

    def state(self) -> dict[str, Any]:
        return {
            **{f"ref:{k}": v for k, v in self.refdata.rows.items()},
            "messages": self.messages.rows,
            "history": self.messages.log,
            "requests": self.requests.rows,
            "alerts": self.alerts.rows,
            "alert_people": self.alerts.people,
        }
