"""``PassagesRecorded``: the register announces its passages from the passages table itself.

The gate path commits hundreds of times a second. An outbox row per commit (its JSON, its
insert, its three index entries, and the relay's update marking it sent) cost about as much
as the passages themselves (bench/, docs/checkpoint.md). So passages do not go through the
outbox: the passages table *is* their outbox. This feed follows it by ``id`` and publishes
up to ``batch`` passages per message, in order.

Passages become visible in ``id`` order: the register is their only writer and commits one
batch at a time. ``passage_feed`` (one row) holds how far the feed has gone:

- every passage with ``id <= sent_to`` has been published (PubAck received);
- ``(sent_to, pending_to]`` is the range being published. Its event id is
  ``stable_id(type, sent_to, pending_to)``, so a range published again after a crash is the
  same message: JetStream's duplicate window, or the consumer's processed-messages table
  beyond it, absorbs the repeat, as with the outbox.

One small write per published message: it records the new range and, with it, that the
previous one was acknowledged. The retention purge never deletes a passage the feed has not
published (``housekeeping.purge_register``).

The register hands each commit's passages to :meth:`PassageFeed.committed` (ids ``(start,
end]``, as announced), so in steady running the feed publishes from memory and reads
nothing back. It reads the table when memory does not join up with what it has published:
after a start, after a range that must be published again, when the ids of a commit were
not contiguous, or when NATS was away long enough for the memory buffer to fill.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import sqlalchemy as sa

from gridcare.shared.aio import stop_task, wait_event
from gridcare.shared.envelope import Envelope, stable_id
from gridcare.shared.events import PassagesRecorded
from gridcare.shared.service import Service
from gridcare.shared.store import as_utc

from . import tables as T
from .register import PASSAGE_EVENT_FIELDS

log = logging.getLogger(__name__)

NAME = "passages"  # the row of passage_feed
SUBJECT = PassagesRecorded.model_construct().subject()
COLUMNS = ("id", *PASSAGE_EVENT_FIELDS, "scanned_at", "decided_at")  # what is read back
# built once: SQLAlchemy then compiles it once too (the feed saves many times a second)
SAVE = (
    sa.update(T.passage_feed)
    .where(T.passage_feed.c.name == NAME)
    .values(sent_to=sa.bindparam("sent_to"), pending_to=sa.bindparam("pending_to"))
)


def passage_event(row: Any) -> dict[str, Any]:
    """One register row as it appears in ``PassagesRecorded`` (JSON-ready): the same as
    ``register.passage_event`` of the passage before it was written."""
    out = {c: getattr(row, c) for c in PASSAGE_EVENT_FIELDS}
    out["scanned_at"] = as_utc(row.scanned_at).isoformat()
    out["decided_at"] = as_utc(row.decided_at).isoformat()
    return out


class PassageFeed:
    def __init__(
        self,
        svc: Service,
        *,
        batch: int = 500,
        linger_s: float = 0.02,
        poll_s: float = 1.0,
        max_buffered: int = 100_000,
    ) -> None:
        self.svc = svc
        self.max_buffered = max_buffered
        # commits not yet published, in order and joined up: (start, end, passages)
        self._chunks: deque[tuple[int, int, list[dict[str, Any]]]] = deque()
        self._buffered = 0
        self.batch = batch
        self.linger_s = linger_s
        self.poll_s = poll_s
        self.sent_to: int | None = None  # None: not read from the store yet
        self.pending_to = 0
        self._saved = (-1, -1)  # what passage_feed holds
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        m = svc.metrics
        self.published = m.counter(
            "passages_published_total", "Passages announced in PassagesRecorded messages"
        )
        self.backlog = m.gauge(
            "passages_unpublished", "Committed passages waiting in memory to be announced"
        )

    def committed(self, start: int, end: int, passages: list[dict[str, Any]]) -> None:
        """The register committed ``passages``, ids ``(start, end]``: publish them soon."""
        joined = not self._chunks or self._chunks[-1][1] == start
        if joined and end - start == len(passages) and self._buffered < self.max_buffered:
            self._chunks.append((start, end, passages))
            self._buffered += len(passages)
        else:  # they will be read back from the table
            self._chunks.clear()
            self._buffered = 0
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="passage-feed")

    async def stop(self) -> None:
        """Publish what is committed (bounded), then stop."""
        if self._task is None:
            return
        await stop_task(self._task)
        self._task = None
        try:
            await asyncio.wait_for(self.drain(), 5.0)
        except Exception:
            log.warning("passage feed: not all passages published before stop", exc_info=True)

    async def drain(self) -> None:
        while await self.publish_once() >= self.batch:
            pass
        await self._mark_acknowledged()

    async def _mark_acknowledged(self) -> None:
        if self.sent_to is not None and self.sent_to == self.pending_to:
            await self._save(self.sent_to, self.pending_to)

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.publish_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("passage feed pass failed; retrying in %.1f s", self.poll_s)
                await asyncio.sleep(self.poll_s)  # NATS away, say: not once per commit
                continue
            if sent < self.batch:
                if await wait_event(self._wake, self.poll_s):
                    await asyncio.sleep(self.linger_s)  # let a few more commits join
                else:  # quiet: record that the last range was acknowledged
                    await self._mark_acknowledged()
                self._wake.clear()

    async def publish_once(self) -> int:
        """Publish the next range of passages (at most ``batch``); how many were published."""
        if self.sent_to is None:
            await self._load()
        assert self.sent_to is not None
        first = self.sent_to
        while self._chunks and self._chunks[0][0] < first:  # published already (or partly)
            self._buffered -= len(self._chunks.popleft()[2])
        if self.pending_to > first:  # a range was being published: the same range again
            last = self.pending_to
            passages = [passage_event(r) for r in await self._rows(first, last)]
        elif self._chunks and self._chunks[0][0] == first:  # in memory: no read
            passages = []
            while self._chunks and (not passages or len(passages) < self.batch):
                _, last, more = self._chunks.popleft()
                self._buffered -= len(more)
                passages += more
            await self._save(first, last)
        else:  # read from the table, up to where memory takes over
            rows = await self._rows(first, self._chunks[0][0] if self._chunks else None)
            if not rows:
                self.backlog.set(0)
                return 0
            last = rows[-1].id
            passages = [passage_event(r) for r in rows]
            await self._save(first, last)
        self.backlog.set(self._buffered)
        if passages:
            eid = stable_id(PassagesRecorded.TYPE, str(first), str(last))
            env = Envelope(
                event_id=eid,
                type=PassagesRecorded.TYPE,
                source="checkpoint",
                correlation_id=eid,
                data={"passages": passages},
            )
            await self.svc.publish_to_stream(SUBJECT, env.to_bytes(), env.headers())
            self.published.inc(len(passages))
        self.sent_to = last
        return len(passages)

    async def _rows(self, after: int, upto: int | None) -> list[Any]:
        c = T.passages.c
        q = sa.select(*(c[name] for name in COLUMNS)).where(c.id > after)
        if upto is not None:
            q = q.where(c.id <= upto)
        q = q.order_by(c.id).limit(self.batch)
        async with self.svc.store.sessions() as s:
            return list((await s.execute(q)).all())

    async def _load(self) -> None:
        f = T.passage_feed.c
        async with self.svc.store.sessions() as s:
            row = (
                await s.execute(sa.select(f.sent_to, f.pending_to).where(f.name == NAME))
            ).first()
            # a new feed starts after what is already in the register (a store from before
            # the feed existed announced its passages through the outbox)
            if row is None:
                top = (await s.execute(sa.select(sa.func.max(T.passages.c.id)))).scalar() or 0
        if row is None:
            await self.svc.store.blocking_write(
                lambda conn: conn.execute(
                    sa.insert(T.passage_feed).values(name=NAME, sent_to=top, pending_to=top)
                )
            )
            self.sent_to = self.pending_to = top
        else:
            self.sent_to, self.pending_to = row.sent_to, row.pending_to
        self._saved = (self.sent_to, self.pending_to)

    async def _save(self, sent_to: int, pending_to: int) -> None:
        if (sent_to, pending_to) == self._saved:
            return
        values = {"sent_to": sent_to, "pending_to": pending_to}
        await self.svc.store.blocking_write(lambda conn: conn.execute(SAVE, values))
        self.sent_to, self.pending_to = sent_to, pending_to
        self._saved = (sent_to, pending_to)
