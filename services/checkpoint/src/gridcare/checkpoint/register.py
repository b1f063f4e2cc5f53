"""The entry/exit register, written by group commit.

Every verdict is made durable *before* its reply is sent, without a transaction per scan:
scans wait in a queue while the previous batch commits, then the whole queue is written
in one transaction (passages and their outbox events), and every waiting reply is released.
Under load the batches grow by themselves; when idle a scan waits for one small commit.

A scan already in the register (the device retried with the same ``scan_id``, maybe after
a restart) gets the stored reply and is not written again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.expression import Executable

from gridcare.shared.envelope import Envelope, utcnow
from gridcare.shared.service import Service

from . import tables as T

log = logging.getLogger(__name__)


@dataclass
class Entry:
    passage: dict[str, Any]  # a row of T.passages (its "reply" column is the reply)
    events: list[tuple[str, Envelope]]  # (subject, envelope) to go out through the outbox
    effects: list[Executable] = field(default_factory=list)  # e.g. a permit's new state

    @property
    def key(self) -> tuple[str, str]:
        return self.passage["gate_id"], self.passage["scan_id"]


class Register:
    def __init__(self, svc: Service, max_batch: int = 1000) -> None:
        self.svc = svc
        self.max_batch = max_batch
        self._queue: list[tuple[Entry, asyncio.Future]] = []
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

    async def record(self, entry: Entry) -> tuple[dict[str, Any], bool]:
        """Make ``entry`` durable. Returns the reply to send and whether it was written now
        (False: the register had this scan already; its stored reply is returned)."""
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._queue.append((entry, fut))
        self._wake.set()
        return await fut

    async def _run(self) -> None:
        while not self._stopping or self._queue:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                try:
                    replies = await self._commit([e for e, _ in batch])
                except Exception as exc:
                    log.exception("register commit failed for %d scans", len(batch))
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), reply in zip(batch, replies, strict=True):
                    if not fut.done():
                        fut.set_result(reply)
                self.svc.relay.wake()

    async def _commit(self, batch: list[Entry]) -> list[tuple[dict[str, Any], bool]]:
        t0 = asyncio.get_running_loop().time()
        store = self.svc.store
        first: dict[tuple[str, str], Entry] = {}
        for e in batch:  # a repeat inside the batch shares the first one's fate
            first.setdefault(e.key, e)
        p = T.passages.c
        async with store.transaction() as s:
            stored = dict(
                ((g, sid), reply)
                for g, sid, reply in (
                    await s.execute(
                        sa.select(p.gate_id, p.scan_id, p.reply).where(
                            sa.tuple_(p.gate_id, p.scan_id).in_(list(first))
                        )
                    )
                )
            )
            new = [e for k, e in first.items() if k not in stored]
            if new:
                await s.execute(sa.insert(T.passages), [e.passage for e in new])
                for e in new:
                    for stmt in e.effects:
                        await s.execute(stmt)
                now = utcnow()
                rows = [
                    {
                        "event_id": env.event_id,
                        "subject": subject,
                        "payload": env.to_bytes(),
                        "headers": env.headers(),
                        "created_at": now,
                        "attempts": 0,
                    }
                    for e in new
                    for subject, env in e.events
                ]
                if rows:
                    await s.execute(sa.insert(store.tables.outbox), rows)
        self.batch_size.observe(len(batch))
        self.commit_seconds.observe(asyncio.get_running_loop().time() - t0)
        return [
            (stored[e.key], False)
            if e.key in stored
            else (first[e.key].passage["reply"], first[e.key] is e)
            for e in batch
        ]
