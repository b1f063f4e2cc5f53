"""Notify's repositories in memory, and providers that record or fail: for handler tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..domain.alerts import Alert
from ..domain.messages import WAITING, Message
from .providers import Accepted, Outgoing, ProviderFailed


class Messages:
    def __init__(self) -> None:
        self.rows: dict[str, Message] = {}
        self.log: list[dict[str, Any]] = []

    async def add_new(self, messages: Sequence[Message]) -> int:
        new = [m for m in messages if m.message_id not in self.rows]
        for m in new:
            self.rows[m.message_id] = m
        return len(new)

    async def get(self, message_id: str) -> Message | None:
        return self.rows.get(message_id)

    async def find_one(self, *, delivery_key: str | None = None, provider_ref: str | None = None):
        for m in self.rows.values():
            if (delivery_key and m.delivery_key == delivery_key) or (
                provider_ref and m.provider_ref == provider_ref
            ):
                return m
        return None

    async def save(self, messages: Iterable[Message]) -> None:
        for m in messages:
            self.rows[m.message_id] = m

    async def due(self, now: datetime, limit: int, max_priority: int = 2) -> list[Message]:
        found = [
            m
            for m in self.rows.values()
            if m.status in WAITING and m.next_attempt_at <= now and m.priority <= max_priority
        ]
        found.sort(key=lambda m: (m.priority, m.next_attempt_at, m.seq))
        return found[:limit]

    async def next_due(self) -> datetime | None:
        times = [m.next_attempt_at for m in self.rows.values() if m.status in WAITING]
        return min(times, default=None)

    async def held_for(self, recipient_id: str) -> list[Message]:
        found = [
            m for m in self.rows.values() if m.recipient_id == recipient_id and m.status == "held"
        ]
        return sorted(found, key=lambda m: m.created_at)

    async def sent_since(self, recipients: Sequence[str], since: datetime) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self.rows.values():
            capped = m.priority and m.alert_id is None
            if m.recipient_id in recipients and m.sent_at and m.sent_at >= since and capped:
                out[m.recipient_id] = out.get(m.recipient_id, 0) + 1
        return out

    async def sending_to_queued(self, now: datetime) -> int:
        stuck = [m for m in self.rows.values() if m.status == "sending"]
        for m in stuck:
            self.rows[m.message_id] = dataclasses.replace(m, status="queued")
        return len(stuck)

    async def counts(self, request_id: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self.rows.values():
            if m.request_id == request_id:
                out[m.status] = out.get(m.status, 0) + 1
        return out

    async def cancel_waiting(self, request_id: str) -> int:
        waiting = [
            m for m in self.rows.values() if m.request_id == request_id and m.status in WAITING
        ]
        for m in waiting:
            self.rows[m.message_id] = dataclasses.replace(m, status="cancelled")
        return len(waiting)

    async def of_alert(self, alert_id: str) -> list[Message]:
        return [m for m in self.rows.values() if m.alert_id == alert_id]

    async def newest(self, limit: int, recipient_id: str | None = None) -> list[Message]:
        found = [m for m in self.rows.values() if recipient_id in (None, m.recipient_id)]
        return sorted(found, key=lambda m: (m.created_at, m.seq), reverse=True)[:limit]

    async def depth(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for m in self.rows.values():
            if m.status in WAITING:
                out[m.priority] = out.get(m.priority, 0) + 1
        return out

    async def record(self, entries: Sequence[dict[str, Any]]) -> None:
        self.log.extend(dict(e) for e in entries)

    async def history(self, message_id: str) -> list[dict[str, Any]]:
        return [e for e in self.log if e["message_id"] == message_id]


class Requests:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def get(self, request_id: str) -> dict[str, Any] | None:
        row = self.rows.get(request_id)
        return None if row is None else dict(row)

    async def put(self, row: dict[str, Any]) -> None:
        self.rows[row["request_id"]] = {**self.rows.get(row["request_id"], {}), **row}


class Alerts:
    def __init__(self) -> None:
        self.rows: dict[str, Alert] = {}
        self.people: dict[tuple[str, str], dict[str, Any]] = {}

    async def get(self, alert_id: str) -> Alert | None:
        return self.rows.get(alert_id)

    async def save(self, alert: Alert) -> None:
        self.rows[alert.alert_id] = alert

    async def due(self, now: datetime) -> list[Alert]:
        found = [a for a in self.rows.values() if a.open and a.due_at and a.due_at <= now]
        return sorted(found, key=lambda a: a.due_at or now)

    async def open_count(self) -> int:
        return sum(1 for a in self.rows.values() if a.status != "acknowledged")

    async def add_recipient(
        self, alert_id: str, person_id: str, name: str, language: str, step: int, at: datetime
    ) -> None:
        self.people.setdefault(
            (alert_id, person_id),
            {
                "alert_id": alert_id,
                "person_id": person_id,
                "name": name,
                "language": language,
                "step": step,
                "notified_at": at,
            },
        )

    async def recipients(self, alert_id: str) -> list[dict[str, Any]]:
        found = [p for (a, _), p in self.people.items() if a == alert_id]
        return sorted(found, key=lambda p: p["notified_at"])


class RecordingProviders:
    """Providers in memory: keep every message sent; ``failing`` names URLs (or URL
    prefixes) that fail, with ``retry`` saying how."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.failing: dict[str, bool] = {}  # url prefix -> retry

    def provider_of(self, url: str) -> str:
        return url.split("://", 1)[0] + "://" + url.split("://", 1)[-1].split("/", 1)[0]

    async def send(self, out: Outgoing) -> Accepted:
        for prefix, retry in self.failing.items():
            if out.url.startswith(prefix):
                raise ProviderFailed("the provider answered 503", retry=retry)
        self.sent.append(out)
        return Accepted(provider_ref=f"ref-{len(self.sent)}")

    async def aclose(self) -> None:
        pass
