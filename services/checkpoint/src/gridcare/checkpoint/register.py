"""The entry/exit register, written by group commit.

Every verdict is made durable *before* its reply is sent, without a transaction per scan:
scans queue while the previous batch commits, then the whole queue is written in one
transaction (passages, permit changes, their outbox events, and one ``PassagesRecorded``
for the batch), and then every reply of the batch is sent. Under load the batches grow by
themselves; when idle a scan waits for one small commit.

A scan already in the register (a device retry the responder's memory did not catch, e.g.
after a restart) violates the register's unique key; the batch is then written again
leaving such scans out, and they get their stored reply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.expression import Executable

from gridcare.shared.envelope import Envelope, new_id, utcnow
from gridcare.shared.events import PassagesRecorded
from gridcare.shared.service import Service

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


@dataclass
class Entry:
    passage: dict[str, Any]  # a row of T.passages (its "reply" column is the reply)
    events: list[tuple[str, Envelope]]  # (subject, envelope) to go out through the outbox
    effects: list[Executable] = field(default_factory=list)  # e.g. a permit's new state
    undo: list[Callable[[], None]] = field(default_factory=list)  # if it is not written
    waiters: list[Any] = field(default_factory=list)  # who gets the reply (the responder's)

    @property
    def key(self) -> tuple[str, str]:
        return self.passage["gate_id"], self.passage["scan_id"]


# settle(entry, reply, written): reply is None when the batch could not be written.
Settle = Callable[[Entry, dict[str, Any] | None, bool], Awaitable[None]]


def passage_event(p: dict[str, Any]) -> dict[str, Any]:
    """One passage as it appears in ``PassagesRecorded`` (JSON-ready)."""
    out = {k: p[k] for k in PASSAGE_EVENT_FIELDS}
    out["scanned_at"] = p["scanned_at"].isoformat()
    out["decided_at"] = p["decided_at"].isoformat()
    return out


class Register:
    def __init__(self, svc: Service, settle: Settle, max_batch: int = 1000) -> None:
        self.svc = svc
        self.settle = settle
        self.max_batch = max_batch
        self._queue: list[Entry] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
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
        while not self._stopping or self._queue:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                try:
                    results = await self._commit(batch)
                except Exception:
                    log.exception("register commit failed for %d scans", len(batch))
                    results = [(None, False)] * len(batch)
                for entry, (reply, written) in zip(batch, results, strict=True):
                    try:
                        await self.settle(entry, reply, written)
                    except Exception:
                        log.exception("could not settle scan %s", entry.key)
                self.svc.relay.wake()

    async def _commit(self, batch: list[Entry]) -> list[tuple[dict[str, Any], bool]]:
        t0 = asyncio.get_running_loop().time()
        try:
            results = await self._write(batch, stored={})
        except IntegrityError:  # some scan is in the register already: leave it out
            results = await self._write(batch, stored=await self._stored(batch))
        self.batch_size.observe(len(batch))
        self.commit_seconds.observe(asyncio.get_running_loop().time() - t0)
        return results

    async def _stored(self, batch: list[Entry]) -> dict[tuple[str, str], dict[str, Any]]:
        p = T.passages.c
        async with self.svc.store.sessions() as s:
            rows = await s.execute(
                sa.select(p.gate_id, p.scan_id, p.reply).where(
                    sa.tuple_(p.gate_id, p.scan_id).in_([e.key for e in batch])
                )
            )
            return {(g, sid): reply for g, sid, reply in rows}

    async def _write(self, batch: list[Entry], stored: dict) -> list[tuple[dict, bool]]:
        new = [e for e in batch if e.key not in stored]
        store = self.svc.store
        if new:
            now = utcnow()
            batch_env = Envelope(
                event_id=new_id(),
                type=PassagesRecorded.TYPE,
                source="checkpoint",
                correlation_id=new_id(),
                data={"passages": [passage_event(e.passage) for e in new]},
            )
            envs = [(PassagesRecorded.model_construct().subject(), batch_env)]
            envs += [pair for e in new for pair in e.events]
            async with store.connection() as conn:
                await conn.execute(sa.insert(T.passages), [e.passage for e in new])
                for e in new:
                    for stmt in e.effects:
                        await conn.execute(stmt)
                await conn.execute(
                    sa.insert(store.tables.outbox),
                    [
                        {
                            "event_id": env.event_id,
                            "subject": subject,
                            "payload": env.to_bytes(),
                            "headers": env.headers(),
                            "created_at": now,
                            "attempts": 0,
                        }
                        for subject, env in envs
                    ],
                )
        return [
            (stored[e.key], False) if e.key in stored else (e.passage["reply"], True) for e in batch
        ]
