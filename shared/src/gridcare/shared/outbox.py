"""Transactional outbox.

A unit of work (``uow.py``) writes an event's row in its own transaction, next to the state
change it announces. The :class:`Relay` publishes pending rows in commit order with
``Nats-Msg-Id`` set to the event id and marks a row sent only after the stream's PubAck; if
the process dies in between, the row is published again and JetStream's duplicate window
(or the consumer's processed-messages table beyond it) absorbs the repeat.

The outbox never blocks. A row whose publish fails is tried again after a growing delay
(the consumers' schedule: ``consumers.backoff``), so the rows behind it go on. A row the
server refuses (a full stream that discards nothing, a wrong expected sequence) is set
aside (*parked*) with the reason after ``max_attempts`` refusals; one that can never be
published as it is (over the server's ``max_payload``, or a subject no stream takes) is
parked at once. Parked rows are counted (``outbox_parked_total``), listed by the office
tool (``gridcare outbox <service>``, ``api.<service>.outbox.list``) and put back in line by
``--replay`` once the cause is fixed. A timeout (JetStream without a leader for a while)
is nobody's refusal: retried, never parked. While NATS itself is unreachable nothing is
held against the rows: the relay waits and tries the same rows again.

The order kept: **per subject, commit order**. A subject's rows are published one after
the other's PubAck (the subjects side by side), and a row that failed holds back the later
rows of its own subject (an entity's events: a gate's offline and online, say) until it is
published or parked; rows of other subjects go on. Parking a row lets the rows behind it
go: that is the one way a subject's order can break, and it is logged and listed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from nats.errors import MaxPayloadError
from nats.js.api import PubAck
from nats.js.errors import APIError

from .aio import stop_task, wait_event
from .envelope import Envelope, utcnow
from .localtime import as_utc
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


class Unpublishable(Exception):
    """A row that can never be published as it is: parked at once."""


def message_size(payload: bytes, headers: dict[str, str]) -> int:
    """What a message takes of the server's ``max_payload``: its payload and its headers
    (``NATS/1.0`` and ``Key: value`` lines, as they go on the wire)."""
    head = sum(len(k.encode()) + len(str(v).encode()) + 4 for k, v in headers.items())
    return len(payload) + (head + 12 if headers else 0)


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
        max_attempts: int = 20,
        retry_after: Callable[[int], float] = lambda attempt: min(2.0**attempt, 300.0),
        max_payload: Callable[[], int | None] = lambda: None,
        connected: Callable[[], bool] = lambda: True,
    ) -> None:
        self.store = store
        self.publish = publish
        self.metrics = metrics
        self.batch = batch
        self.poll_s = poll_s
        self.linger_s = linger_s
        self.max_attempts = max_attempts
        self.retry_after = retry_after  # seconds before attempt n+1, after n refusals
        self.max_payload = max_payload  # the server's limit, once connected
        self.connected = connected
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        # Whether some row may be waiting for its next attempt (and so hold back the later
        # rows of its subject): checked once at start, then known from what this relay did.
        self._maybe_waiting = True
        # Built once, so SQLAlchemy compiles each once too: a busy service relays many
        # times a second.
        t = store.tables.outbox
        due = sa.or_(t.c.next_attempt_at.is_(None), t.c.next_attempt_at <= sa.bindparam("now"))
        self._pending = (
            sa.select(t.c.id, t.c.subject, t.c.payload, t.c.headers, t.c.attempts)
            .where(t.c.sent_at.is_(None), t.c.parked_at.is_(None), due)
            .order_by(t.c.id)
            .limit(sa.bindparam("batch"))
        )
        self._waiting = (
            sa.select(t.c.subject, sa.func.min(t.c.id))
            .where(
                t.c.sent_at.is_(None),
                t.c.parked_at.is_(None),
                t.c.next_attempt_at > sa.bindparam("now"),
            )
            .group_by(t.c.subject)
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
        """Publish up to one batch of the rows due, in order. Returns how many were sent
        (a full batch means: there may be more, go on at once)."""
        if not self.connected():
            return 0  # nothing is held against the rows: the same ones go once NATS is back
        now = utcnow()
        maybe_waiting = self._maybe_waiting

        def due(conn: sa.Connection) -> tuple[list[Any], bool]:
            rows = conn.execute(self._pending, {"batch": self.batch, "now": now}).all()
            if rows and maybe_waiting:
                held = dict(conn.execute(self._waiting, {"now": now}).all())
                return [r for r in rows if r.id < held.get(r.subject, r.id + 1)], bool(held)
            return rows, maybe_waiting

        rows, self._maybe_waiting = await self.store.blocking_read(due)
        self.metrics.outbox_pending.set(len(rows))
        if not rows:
            return 0
        limit = self.max_payload()
        # Each subject's rows in order, one after another's PubAck; the subjects side by
        # side (pipelined). A subject stops at its first failure: its later rows are not
        # sent past it (they go with it, in a later pass).
        by_subject: dict[str, list[Any]] = {}
        for r in rows:
            by_subject.setdefault(r.subject, []).append(r)
        sent_ids: list[int] = []
        failed: list[tuple[Any, BaseException]] = []

        async def in_order(queue: list[Any]) -> None:
            for r in queue:
                try:
                    await self._publish(r.subject, r.payload, dict(r.headers), limit)
                except Exception as exc:
                    failed.append((r, exc))
                    if _never(exc):
                        continue  # parked now: it holds nothing back
                    return
                sent_ids.append(r.id)

        await asyncio.gather(*(in_order(q) for q in by_subject.values()))
        if sent_ids:  # only rows whose PubAck came back
            values = {"ids": sent_ids, "now": utcnow()}
            await self.store.blocking_write(lambda conn: conn.execute(self._mark_sent, values))
            self.metrics.outbox_published.inc(len(sent_ids))
        if failed:
            await self._failed(failed, now)
        return len(sent_ids) if len(sent_ids) == len(rows) else 0

    async def _publish(
        self, subject: str, payload: bytes, headers: dict[str, str], limit: int | None
    ) -> PubAck:
        size = message_size(payload, headers)
        if limit is not None and size > limit:
            raise Unpublishable(f"{size} bytes, over the server's max_payload of {limit}")
        return await self.publish(subject, payload, headers)

    async def _failed(self, failed: list[tuple[Any, BaseException]], now: datetime) -> None:
        """Each failed row is tried again later (the delay grows with its attempts), so it
        holds back no row of another subject; one that can never be published, or that
        the stream refused ``max_attempts`` times, is parked. A timeout or a lost
        connection is nobody's refusal: retried for as long as it takes, never parked."""
        t = self.store.tables.outbox
        self.metrics.outbox_publish_errors.inc(len(failed))
        parked: list[tuple[Any, str]] = []

        def record(conn: sa.Connection) -> None:
            for r, exc in failed:
                attempts = r.attempts + 1
                why = _refusal(exc)
                values: dict[str, Any] = {
                    "attempts": attempts,
                    "last_error": (why or repr(exc))[:1000],
                }
                never = _never(exc)
                if never or (why is not None and attempts >= self.max_attempts):
                    values["parked_at"] = now
                    parked.append((r, why or repr(exc)))
                else:
                    values["next_attempt_at"] = now + timedelta(seconds=self.retry_after(attempts))
                conn.execute(sa.update(t).where(t.c.id == r.id).values(**values))

        await self.store.blocking_write(record)
        self._maybe_waiting = True
        if len(parked) < len(failed):
            first = next(e for r, e in failed if all(r is not p for p, _ in parked))
            log.warning(
                "outbox: %d of the rows failed, each tried again later; first: %s",
                len(failed) - len(parked),
                _refusal(first) or repr(first),
            )
        for r, why in parked:
            self.metrics.outbox_parked.inc()
            log.error(
                "outbox: row %d (%s) set aside after %d attempts: %s; "
                "`gridcare outbox <service> --replay %d` once the cause is fixed",
                r.id,
                r.subject,
                r.attempts + 1,
                why,
                r.id,
            )

    async def pending(self) -> int:
        """Rows not sent yet, parked ones aside."""
        t = self.store.tables.outbox
        async with self.store.sessions() as session:
            return (
                await session.execute(
                    sa.select(sa.func.count())
                    .select_from(t)
                    .where(t.c.sent_at.is_(None), t.c.parked_at.is_(None))
                )
            ).scalar_one()

    async def parked(self, limit: int = 50) -> list[dict[str, Any]]:
        """The rows set aside, newest first (for ``outbox.list``)."""
        t = self.store.tables.outbox
        q = (
            sa.select(t.c.id, t.c.event_id, t.c.subject, t.c.payload, t.c.attempts)
            .add_columns(t.c.last_error, t.c.created_at, t.c.parked_at)
            .where(t.c.parked_at.is_not(None), t.c.sent_at.is_(None))
            .order_by(t.c.id.desc())
            .limit(limit)
        )
        async with self.store.sessions() as s:
            rows = (await s.execute(q)).all()
        return [
            {
                "id": r.id,
                "event_id": r.event_id,
                "subject": r.subject,
                "payload_bytes": len(r.payload),
                "attempts": r.attempts,
                "reason": r.last_error,
                "created_at": _iso(r.created_at),
                "parked_at": _iso(r.parked_at),
            }
            for r in rows
        ]

    async def count_parked(self) -> int:
        t = self.store.tables.outbox
        async with self.store.sessions() as s:
            found = await s.scalar(
                sa.select(sa.func.count())
                .select_from(t)
                .where(t.c.parked_at.is_not(None), t.c.sent_at.is_(None))
            )
        return int(found or 0)

    async def replay(self, row_id: int) -> dict[str, Any]:
        """Put a parked row back in line (its attempts start again); raises LookupError."""
        t = self.store.tables.outbox
        async with self.store.transaction() as s:
            found = (
                await s.execute(
                    sa.select(t.c.subject).where(
                        t.c.id == row_id, t.c.parked_at.is_not(None), t.c.sent_at.is_(None)
                    )
                )
            ).first()
            if found is None:
                raise LookupError(f"no parked outbox row {row_id}")
            await s.execute(
                sa.update(t)
                .where(t.c.id == row_id)
                .values(parked_at=None, next_attempt_at=None, attempts=0)
            )
        self.wake()
        return {"id": row_id, "subject": found.subject, "replayed_at": utcnow().isoformat()}


def _never(exc: BaseException) -> bool:
    """The row can never be published as it is (its size, a subject no stream takes)."""
    return isinstance(exc, Unpublishable | MaxPayloadError | LookupError)


def _refusal(exc: BaseException) -> str | None:
    """Why a row was refused, if the fault is the row's (its size, its subject, the
    stream's answer to it); None for a fault of the connection (a timeout, a reconnect),
    which is held against no row."""
    if isinstance(exc, Unpublishable):
        return str(exc)
    if isinstance(exc, MaxPayloadError):
        return "over the server's max_payload"
    if isinstance(exc, LookupError):  # no stream takes the subject
        return str(exc)
    if isinstance(exc, APIError) and exc.err_code is not None:  # e.g. 10077: a full stream
        return f"refused by the stream: {exc.description or exc!r} (code {exc.err_code})"
    return None


def _iso(t: datetime | None) -> str | None:
    return None if t is None else as_utc(t).isoformat()
