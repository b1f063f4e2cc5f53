"""The entry/exit register, written by group commit.

Every verdict is made durable *before* its reply is sent, without a transaction per scan:
scans queue while the previous batch commits, then the whole queue is written in one
transaction (passages, permit changes and their rare outbox events, e.g. a fever), and then
every reply of the batch is sent. Under load the batches grow by themselves; when idle a
scan waits for one small commit. The passages are announced (``PassagesRecorded``) by
``feed.py``, which follows the passages table: a commit writes no outbox row for them.

The transaction is a :meth:`Store.blocking_write`: on SQLite a blocking connection on the
event loop's own thread, with the passages inserted through the DBAPI cursor in one
``executemany`` (:class:`BulkInsert`). That blocks the loop for the commit (a fraction of a
millisecond), and it is still the fastest way measured (bench/): aiosqlite pays a thread hop
per statement, and a writer thread, or a commit in a thread, waits for the GIL behind the
busy loop (up to the 5 ms switch interval). On PostgreSQL it runs through the async engine.

A scan already in the register (a device retry the responder's memory did not catch, e.g.
after a restart) violates the register's unique key; the batch is then written again
leaving such scans out, and they get their stored reply.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import Executable

from gridcare.shared import outbox
from gridcare.shared.envelope import Envelope, utcnow
from gridcare.shared.service import Service
from gridcare.shared.store import BulkInsert

from . import tables as T

log = logging.getLogger(__name__)

PASSAGE_EVENT_FIELDS = (
    "scan_id",
    "gate_id",
    "compound_id",
    "person_id",
    "direction",
    "verdict",
    "reasons",
    "temperature_c",
)
# The columns the register writes (``id`` is the database's).
PASSAGE_COLUMNS = tuple(c.name for c in T.passages.columns if c.name != "id")
# a commit starting within this of the previous one means traffic is steady: linger
BUSY_GAP_S = 0.01
PASSAGES = BulkInsert(T.passages, PASSAGE_COLUMNS, json_text={"reply", "reasons"})


@dataclass
class Entry:
    passage: dict[str, Any]  # a row of T.passages (its "reply" column is the reply)
    events: list[tuple[str, Envelope]]  # (subject, envelope) to go out through the outbox
    effects: list[Executable] = field(default_factory=list)  # e.g. a permit's new state
    undo: list[Callable[[], None]] = field(default_factory=list)  # if it is not written
    waiters: list[Any] = field(default_factory=list)  # who gets the reply (the responder's)
    reply_body: bytes = b""  # the reply as sent (and stored), JSON

    @property
    def key(self) -> tuple[str, str]:
        return self.passage["gate_id"], self.passage["scan_id"]


# settle(entry, reply, written): reply is None when the batch could not be written.
Settle = Callable[[Entry, dict[str, Any] | None, bool], Awaitable[None]]
Result = tuple[dict[str, Any] | None, bool]  # (the reply, written now) of one scan
# what one commit added: passages.id after (start, end], and those passages as announced
Written = tuple[int, int, list[dict[str, Any]]]
TOP_ID = f"SELECT max(id) FROM {T.passages.name}"  # through the DBAPI cursor: cheaper


@cache
def reasons_json(reasons: tuple[str, ...]) -> str:
    """The ``reasons`` column (JSON text): a few distinct values, each encoded once."""
    return json.dumps(list(reasons), ensure_ascii=False)


def passage_event(p: dict[str, Any]) -> dict[str, Any]:
    """One passage as it appears in ``PassagesRecorded`` (JSON-ready)."""
    out = {k: p[k] for k in PASSAGE_EVENT_FIELDS}
    out["scanned_at"] = p["scanned_at"].isoformat()
    out["decided_at"] = p["reply"]["decided_at"]  # the same instant, already as text
    return out


class Register:
    def __init__(
        self,
        svc: Service,
        settle: Settle,
        max_batch: int = 1000,
        linger_s: float = 0.0,
        small_batch: int = 32,
        on_commit: Callable[[int, int, list[dict[str, Any]]], None] = lambda *_: None,
    ) -> None:
        self.svc = svc
        self.settle = settle
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.small_batch = small_batch
        self.on_commit = on_commit  # after each commit that added passages (the feed's)
        self._queue: list[Entry] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._last_commit = -1e9  # loop time of the last commit's start
        self._outbox = BulkInsert(svc.store.tables.outbox, outbox.COLUMNS)
        m = svc.metrics
        self.batch_size = m.histogram(
            "register_batch_size",
            "Scans written per register commit",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
        )
        self.commit_seconds = m.histogram(
            "register_commit_duration_seconds",
            "Time of one register commit",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="register-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task:
            await self._task

    def submit(self, entry: Entry) -> None:
        """Queue ``entry``; ``settle`` is called once it is written (or could not be)."""
        self._queue.append(entry)
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping or self._queue:
            await self._wake.wait()
            self._wake.clear()
            if (
                self.linger_s
                and len(self._queue) < self.small_batch
                and not self._stopping
                and loop.time() - self._last_commit < BUSY_GAP_S
            ):
                # steady traffic, small batches: let the next scans join this commit (a
                # commit costs about as much CPU as a dozen verdicts); an isolated scan
                # is committed at once
                await asyncio.sleep(self.linger_s)
            self._last_commit = loop.time()
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                try:
                    results, added = await self._commit(batch)
                except Exception:
                    log.exception("register commit failed for %d scans", len(batch))
                    results, added = [(None, False)] * len(batch), None
                for entry, (reply, written) in zip(batch, results, strict=True):
                    try:
                        await self.settle(entry, reply, written)
                    except Exception:
                        log.exception("could not settle scan %s", entry.key)
                if any(e.events for e in batch):  # the outbox has rows (a fever, say)
                    self.svc.relay.wake()
                if added is not None:
                    self.on_commit(*added)

    async def _commit(self, batch: list[Entry]) -> tuple[list[Result], Written | None]:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        store = self.svc.store
        try:
            out = await store.blocking_write(partial(self._write, batch, {}))
        except store.integrity_errors:  # a scan is in the register already: leave it out
            stored = await store.blocking_write(partial(self._stored, batch))
            out = await store.blocking_write(partial(self._write, batch, stored))
        self.batch_size.observe(len(batch))
        self.commit_seconds.observe(loop.time() - t0)
        return out

    # --- in the transaction ---------------------------------------------------------------
    @staticmethod
    def _stored(batch: list[Entry], conn: sa.Connection) -> dict[tuple[str, str], Any]:
        p = T.passages.c
        rows = conn.execute(
            sa.select(p.gate_id, p.scan_id, p.reply).where(
                sa.tuple_(p.gate_id, p.scan_id).in_([e.key for e in batch])
            )
        )
        return {(g, sid): reply for g, sid, reply in rows}

    def _write(
        self, batch: list[Entry], stored: dict, conn: sa.Connection
    ) -> tuple[list[Result], Written | None]:
        new = [e for e in batch if e.key not in stored]
        written = None
        if new:
            PASSAGES.execute(
                conn,
                (
                    {
                        **e.passage,
                        "reply": e.reply_body.decode(),
                        "reasons": reasons_json(tuple(e.passage["reasons"])),
                    }
                    for e in new
                ),
            )
            for e in new:
                for stmt in e.effects:
                    conn.execute(stmt)
            events = [pair for e in new for pair in e.events]
            if events:
                now = utcnow()
                self._outbox.execute(
                    conn, (outbox.row(env, subject, now) for subject, env in events)
                )
            cur = conn.connection.cursor()
            cur.execute(TOP_ID)
            top = cur.fetchone()[0]
            written = (top - len(new), top, [passage_event(e.passage) for e in new])
        results = [
            (stored[e.key], False) if e.key in stored else (e.passage["reply"], True) for e in batch
        ]
        return results, written
