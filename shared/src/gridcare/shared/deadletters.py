"""Dead letters: the messages a service gave up on, kept whole for inspection and replay.

A dead letter is a row of the service's ``dead_letters`` table (payload, headers, reason,
deliveries) and an ``ops.MessageDeadLettered`` event on ``deadletter.<service>``, written
in one transaction. Every service answers ``api.<service>.dead_letters.list`` and
``.replay`` (``api.py``): the office tool lists them and, once the cause is fixed,
republishes one to its original subject.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from . import outbox
from .envelope import Envelope, Event, utcnow
from .localtime import as_utc
from .metrics import Metrics
from .store import Store

log = logging.getLogger(__name__)

DEAD_LETTERED = "deadletter.{service}"


#: The most of a dead message's payload its announcement carries (the store keeps it
#: whole): a message near the server's limit (1 MB) must not make an announcement over it.
EXCERPT_BYTES = 4096
#: ... and of its headers: this many, each value cut to this length.
EXCERPT_HEADERS, EXCERPT_HEADER_VALUE = 32, 256


class MessageDeadLettered(Event):
    """A consumer gave up on a message; it is kept whole (with the reason) for replay in
    the service's store, and announced with a bounded excerpt of it."""

    TYPE = "ops.MessageDeadLettered"
    VERSION = 2  # 2: payload_b64 is an excerpt (payload_bytes, payload_truncated)
    service: str
    consumer: str
    original_subject: str
    event_id: str | None
    reason: str
    deliveries: int
    payload_b64: str  # the first EXCERPT_BYTES of the payload
    headers: dict[str, str]
    payload_bytes: int | None = None  # the whole payload's size
    payload_truncated: bool = False

    def subject(self) -> str:
        return DEAD_LETTERED.format(service=self.service)


class UnknownDeadLetter(LookupError):
    pass


Publish = Callable[[str, bytes, dict[str, str]], Awaitable[Any]]


class DeadLetters:
    def __init__(
        self, store: Store, service: str, metrics: Metrics, on_outbox: Callable[[], None]
    ) -> None:
        self.store = store
        self.service = service
        self.metrics = metrics
        self.on_outbox = on_outbox

    async def record(
        self,
        *,
        consumer: str,
        subject: str,
        payload: bytes,
        reason: str,
        headers: dict[str, str] | None = None,
        deliveries: int = 1,
        event_id: str | None = None,
        correlation_id: str | None = None,
        stream_seq: int | None = None,
    ) -> None:
        """Keep a message given up on: the row and its event, in one transaction."""
        headers = headers or {}
        if len(subject) > 255:  # the column's width: a garbage subject, never a device's
            reason = f"(subject cut from {len(subject)} characters) {reason}"
            subject = subject[:255]
        reason = reason[:4000]
        dead = MessageDeadLettered(
            service=self.service,
            consumer=consumer,
            original_subject=subject,
            event_id=event_id,
            reason=reason,
            deliveries=deliveries,
            payload_b64=base64.b64encode(payload[:EXCERPT_BYTES]).decode(),
            headers={
                k[:EXCERPT_HEADER_VALUE]: v[:EXCERPT_HEADER_VALUE]
                for k, v in list(headers.items())[:EXCERPT_HEADERS]
            },
            payload_bytes=len(payload),
            payload_truncated=len(payload) > EXCERPT_BYTES,
        )
        env = Envelope.wrap(
            dead, source=self.service, correlation_id=correlation_id, causation_id=event_id
        )
        async with self.store.transaction() as session:
            await session.execute(
                sa.insert(self.store.tables.dead_letters).values(
                    consumer=consumer,
                    subject=subject,
                    event_id=event_id,
                    stream_seq=stream_seq,
                    deliveries=deliveries,
                    reason=reason,
                    payload=payload,
                    headers=headers,
                    created_at=utcnow(),
                )
            )
            await session.execute(
                sa.insert(self.store.tables.outbox).values(outbox.row(env, dead.subject()))
            )
        self.on_outbox()
        self.metrics.dead_letters.labels(consumer).inc()
        log.error("dead-lettered (%s): %s", consumer, reason)

    async def list(self, limit: int = 50, pending_only: bool = False) -> list[dict[str, Any]]:
        t = self.store.tables.dead_letters
        q = sa.select(t).order_by(t.c.id.desc()).limit(limit)
        if pending_only:
            q = q.where(t.c.replayed_at.is_(None))
        async with self.store.sessions() as s:
            rows = (await s.execute(q)).all()
        return [
            {
                "id": r.id,
                "consumer": r.consumer,
                "subject": r.subject,
                "event_id": r.event_id,
                "deliveries": r.deliveries,
                "reason": r.reason,
                "created_at": _iso(r.created_at),
                "replayed_at": _iso(r.replayed_at),
                "payload_bytes": len(r.payload),
            }
            for r in rows
        ]

    async def count(self) -> tuple[int, int]:
        """(all, not replayed yet)."""
        t = self.store.tables.dead_letters
        async with self.store.sessions() as s:
            total = await s.scalar(sa.select(sa.func.count()).select_from(t))
            pending = await s.scalar(
                sa.select(sa.func.count()).select_from(t).where(t.c.replayed_at.is_(None))
            )
        return int(total or 0), int(pending or 0)

    async def replay(self, dead_letter_id: int, publish: Publish) -> dict[str, Any]:
        """Republish one dead letter's message to its original subject, once more. Its
        ``Nats-Msg-Id`` is new (the stream must not take it for the original's repeat); the
        consumer's inbox still knows the event id, and the original was never handled."""
        t = self.store.tables.dead_letters
        async with self.store.sessions() as s:
            row = (await s.execute(sa.select(t).where(t.c.id == dead_letter_id))).first()
        if row is None:
            raise UnknownDeadLetter(f"no dead letter {dead_letter_id} in {self.service}")
        headers = dict(row.headers)
        headers["Nats-Msg-Id"] = f"{row.event_id or row.id}-replay-{time.time_ns()}"
        await publish(row.subject, row.payload, headers)
        now = utcnow()
        async with self.store.transaction() as s:
            await s.execute(sa.update(t).where(t.c.id == dead_letter_id).values(replayed_at=now))
        return {"id": dead_letter_id, "subject": row.subject, "replayed_at": now.isoformat()}


def _iso(t: datetime | None) -> str | None:
    return None if t is None else as_utc(t).isoformat()
