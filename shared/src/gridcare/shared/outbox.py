"""Transactional outbox.

A unit of work (``uow.py``) writes an event's row in its own transaction, next to the state
change it announces. The :class:`Relay` publishes pending rows in order with ``Nats-Msg-Id`` set to
the event id and marks a row sent only after the stream's PubAck; if the process dies in
between, the row is published again and JetStream's duplicate window (or the consumer's
processed-messages table beyond it) absorbs the repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

import sqlalchemy as sa
from nats.js.api import PubAck

from .aio import stop_task, wait_event
from .envelope import Envelope, utcnow
from .metrics import Metrics
from .store import Store

log = logging.getLogger(__name__)

Publisher = Callable[[str, bytes, dict[str, str]], Awaitable[PubAck]]


def row(envelope: Envelope, subject: str, created_at: datetime | None = None) -> dict:
    """The outbox row of ``envelope`` (its columns are :data:`COLUMNS`)."""
    return {
        "event_id": envelope.event_id,
        "subject": subject,
        "payload": envelope.to_bytes(),
        "headers": envelope.headers(),
        "created_at": created_at or utcnow(),
        "attempts": 0,
    }


COLUMNS = ("event_id", "subject", "payload", "headers", "created_at", "attempts")


class Relay:
    def __init__(
        self,
        store: Store,
        publish: Publisher,
        metrics: Metrics,
        *,
        batch: int = 100,
        poll_s: float = 0.5,
        linger_s: float = 0.0,
    ) -> None:
        self.store = store
        self.publish = publish
        self.metrics = metrics
        self.batch = batch
        self.poll_s = poll_s
        self.linger_s = linger_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        # Built once, so SQLAlchemy compiles each once too: a busy service relays many
        # times a second.
        t = store.tables.outbox
        self._pending = (
            sa.select(t.c.id, t.c.subject, t.c.payload, t.c.headers)
            .where(t.c.sent_at.is_(None))
            .order_by(t.c.id)
            .limit(sa.bindparam("batch"))
        )
        self._mark_sent = (
            sa.update(t)
            .where(t.c.id.in_(sa.bindparam("ids", expanding=True)))
            .values(sent_at=sa.bindparam("now"), attempts=t.c.attempts + 1)
        )

    def wake(self) -> None:
        """Called after a commit that added outbox rows: publish now, not at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed; retrying")
                sent = 0
            if sent < self.batch:  # drained: wait for a wake-up or the poll interval
                if await wait_event(self._wake, self.poll_s):
                    # Woken by a commit: let the next few commits join this pass (one
                    # read, one pipelined publish and one update for all of them).
                    await asyncio.sleep(self.linger_s)
                self._wake.clear()

    async def relay_once(self) -> int:
        """Publish up to one batch of pending rows, in order. Returns how many were sent."""
        t = self.store.tables.outbox
        async with self.store.engine.connect() as conn:
            rows = (await conn.execute(self._pending, {"batch": self.batch})).all()
        self.metrics.outbox_pending.set(len(rows))
        # Publish the whole batch pipelined (the server keeps the order of one connection),
        # then mark sent exactly the rows whose PubAck came back.
        results = await asyncio.gather(
            *(self.publish(r.subject, r.payload, dict(r.headers)) for r in rows),
            return_exceptions=True,
        )
        sent_ids = [
            r.id for r, res in zip(rows, results, strict=True) if not isinstance(res, BaseException)
        ]
        failed = [
            (r, res) for r, res in zip(rows, results, strict=True) if isinstance(res, BaseException)
        ]
        if failed:

            def count_failures(conn: sa.Connection) -> None:
                for row, exc in failed:
                    conn.execute(
                        sa.update(t)
                        .where(t.c.id == row.id)
                        .values(attempts=t.c.attempts + 1, last_error=repr(exc)[:1000])
                    )

            await self.store.blocking_write(count_failures)
            self.metrics.outbox_publish_errors.inc(len(failed))
            log.warning(
                "outbox: %d of %d publishes failed, first: %r", len(failed), len(rows), failed[0][1]
            )
        if sent_ids:  # only rows whose PubAck came back
            values = {"ids": sent_ids, "now": utcnow()}
            await self.store.blocking_write(lambda conn: conn.execute(self._mark_sent, values))
            self.metrics.outbox_published.inc(len(sent_ids))
        return len(sent_ids) if not failed else 0

    async def pending(self) -> int:
        t = self.store.tables.outbox
        async with self.store.sessions() as session:
            return (
                await session.execute(
                    sa.select(sa.func.count()).select_from(t).where(t.c.sent_at.is_(None))
                )
            ).scalar_one()
