"""The resident edge for check-ins (the edge contract §4.1): ``resident.<person_id>.checkin``,
core NATS request/reply in a queue group (any instance answers). The reply is sent once the
check-in is committed: ``{"checkin_id", "status": "recorded" | "replaced", "follow_up",
"message": {"zh", "en"}}``, or ``{"error": {"code": "invalid_checkin" | "unknown_person",
"detail": [{"field", "error"}, ...]}}`` naming every bad field. Never a silent timeout: an
unexpected failure is ``unavailable`` (retry with the same ``checkin_id``).

Group commit: check-ins that arrive while a transaction is being written wait and go into
the next one together (``Batcher``; ``checkins.check_in_many``: set-based, one commit and
one fsync for all). Taken one at a time, one transaction each, screening answered about
125 check-ins/s on a loaded machine whose fsync took 3-4 ms, and used 0.3 of a core
(waiting for the disk); batched, it is CPU-bound (bench/screening_bench.py,
bench/results/screening.md). Under steady traffic a check-in lingers ``linger_s`` for
others to join (a transaction costs about as much as ten check-ins); the transaction is a
blocking unit of work (``uow.blocking``: on SQLite on the loop's thread, no thread hop per
statement). ``checkin_batch_size`` and ``checkin_commit_duration_seconds`` are its metrics.

The subject is answered by nats-py directly (``CheckinEdge``, wired in bootstrap.py), like
the gate scan (checkpoint/entrypoints/scans.py): through FastStream each check-in had its
``Context`` parameters (the message, the runtime, the clock) resolved by ``Context.use`` in
a worker thread (fast_depends runs a sync dependency through anyio's thread pool), three
thread hops a check-in, most of the service's CPU per check-in outside the handler.
``router()`` declares the same subscriber for the AsyncAPI document (``bootstrap.asyncapi``)
and stays a working FastStream entry point."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from faststream import Context
from faststream.nats import NatsRouter
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from gridcare.contracts.edge import RESIDENT_CHECKIN_ALL, CheckinRequest
from gridcare.shared.aio import FOREGROUND, Linger
from gridcare.shared.consumers import RUNTIME
from gridcare.shared.errors import ApiError, bad_fields, error

from ..handlers import checkins
from . import CLOCK

log = logging.getLogger(__name__)

QUEUE = "gridcare-screening-checkins"
#: check-ins handled at once (each waits for its batch's commit)
WORKERS = 256
#: check-ins in one transaction at most
MAX_BATCH = 256
#: fewer than this queued, under steady traffic: linger for more to join the transaction
SMALL_BATCH = 32
#: a commit begun less than this long ago means steady traffic (an isolated check-in, after
#: a quiet spell, is written at once)
BUSY_GAP_S = 0.02


def problems(data: bytes, person: str) -> tuple[CheckinRequest | None, list[dict[str, str]]]:
    """The request, or every bad field of it (the subject's person included)."""
    found: list[dict[str, str]] = []
    req = None
    try:
        req = CheckinRequest.model_validate_json(data)
    except ValidationError as exc:
        found = bad_fields(exc)
    try:
        given = json.loads(data).get("person_id")
    except (ValueError, AttributeError):
        given = None
    if isinstance(given, str) and given != person:
        found.append({"field": "person_id", "error": f"must be the subject's person ({person!r})"})
    return (None if found else req), found


class Batcher:
    """Group commit of check-ins: the first one to arrive is written at once; those that
    arrive meanwhile wait and are written together in the next transaction. A batch that
    fails as a whole is taken again one check-in a transaction, so one bad check-in gets
    ``unavailable`` and the others their replies."""

    def __init__(
        self,
        rt: Any,
        clock: Callable[[], datetime],
        publish: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None,
        linger_s: float = 0.0,
        metrics: Any = None,
    ) -> None:
        self.rt = rt  # what gives a unit of work (the service)
        self.clock = clock
        self.publish = publish  # a reply to a subject (``put``'s replies)
        self.linger = Linger(linger_s, BUSY_GAP_S, SMALL_BATCH)
        self.batch_size = self.commit_seconds = None
        if metrics is not None:
            self.batch_size = metrics.histogram(
                "checkin_batch_size",
                "Check-ins written per transaction",
                buckets=(1, 2, 5, 10, 20, 50, 100, 256),
            )
            self.commit_seconds = metrics.histogram(
                "checkin_commit_duration_seconds",
                "Time of one transaction of check-ins",
                buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
            )
        # each check-in with who waits for its reply: a future, or a reply subject
        self.queue: list[tuple[CheckinRequest, asyncio.Future | str]] = []
        self.task: asyncio.Task | None = None

    async def submit(self, req: CheckinRequest) -> dict[str, Any]:
        """Queue ``req`` and wait for its reply (once its batch is committed)."""
        fut = asyncio.get_running_loop().create_future()
        self._queue(req, fut)
        return await fut

    def put(self, req: CheckinRequest, reply_to: str) -> None:
        """Queue ``req``; its reply is published to ``reply_to`` once its batch is
        committed."""
        self._queue(req, reply_to)

    def _queue(self, req: CheckinRequest, sink: asyncio.Future | str) -> None:
        self.queue.append((req, sink))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain(), name="checkin-writer")

    async def idle(self) -> None:
        """Wait until every check-in queued is written and answered."""
        while self.task is not None and not self.task.done():
            await asyncio.wait({self.task})

    async def _drain(self) -> None:
        FOREGROUND.begin()  # the morning pass makes way for what people wait on
        try:
            await self._write_all()
        finally:
            FOREGROUND.end()

    async def _write_all(self) -> None:
        loop = asyncio.get_running_loop()
        while self.queue:
            await self.linger.before_commit(len(self.queue))  # others may join this commit
            batch, self.queue = self.queue[:MAX_BATCH], self.queue[MAX_BATCH:]
            reqs = [req for req, _ in batch]
            t0 = loop.time()
            try:
                replies = await checkins.check_in_many(reqs, self._uow(), self.clock())
            except Exception:
                log.exception("a batch of %d check-ins failed; taking them one by one", len(reqs))
                replies = [await self._one(req) for req in reqs]
            if self.batch_size is not None and self.commit_seconds is not None:
                self.batch_size.observe(len(reqs))
                self.commit_seconds.observe(loop.time() - t0)
            for (_, sink), reply in zip(batch, replies, strict=True):
                if isinstance(sink, str):
                    if self.publish is not None:
                        await self.publish(sink, reply)
                elif not sink.done():
                    sink.set_result(reply)
            FOREGROUND.step()

    def _uow(self) -> Any:
        uow = self.rt.unit_of_work()
        uow.blocking = True  # on SQLite: on the loop's thread, no thread hop per statement
        return uow

    async def _one(self, req: CheckinRequest) -> dict[str, Any]:
        try:
            return await checkins.check_in(req, self._uow(), self.clock())
        except ApiError as exc:
            return exc.reply()
        except Exception:
            log.exception("a check-in failed")
            return error("unavailable", [{"field": "", "error": "internal error; retry"}])


def encode(reply: dict[str, Any]) -> bytes:
    """A reply as FastStream would send it: compact JSON, UTF-8."""
    return json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode()


class CheckinEdge:
    """``resident.*.checkin`` by nats-py: a queue-group subscription whose callback checks
    the request and queues it for the ``Batcher`` (never waiting for the commit, so the
    next message is taken at once); the writer publishes each reply once its batch is
    committed. ``drain`` (at stop) takes no more and answers every check-in received."""

    def __init__(self, svc: Any, clock: Callable[[], datetime], linger_s: float = 0.0) -> None:
        self.svc = svc
        self.batcher = Batcher(
            svc,
            clock,
            publish=self._reply,
            linger_s=linger_s,
            metrics=svc.metrics,
        )
        self._sub: Any = None

    async def subscribe(self) -> None:
        self._sub = await self.svc.nc.subscribe(
            RESIDENT_CHECKIN_ALL, queue=QUEUE, cb=self._on_msg, pending_msgs_limit=200_000
        )
        await self.svc.nc.flush()  # the server has the subscription before we say ready

    async def drain(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await asyncio.wait_for(sub.drain(), 10.0)
            except Exception:  # closed, or the server did not answer: residents retry
                log.warning("the check-in subscription did not drain", exc_info=True)
        await self.batcher.idle()

    async def _on_msg(self, msg: Any) -> None:
        if not msg.reply:
            return  # not a request: nobody to answer
        parts = msg.subject.split(".")
        person = parts[1] if len(parts) == 3 else ""
        try:
            req, bad = problems(msg.data, person)
        except Exception:
            log.exception("a check-in could not be read")
            await self._reply(msg.reply, UNAVAILABLE)
            return
        if req is None:
            await self._reply(msg.reply, error("invalid_checkin", bad))
            return
        self.batcher.put(req, msg.reply)

    async def _reply(self, to: str, reply: dict[str, Any]) -> None:
        try:
            await self.svc.nc.publish(to, encode(reply))
        except Exception:  # the connection is gone: the resident retries (same checkin_id)
            log.warning("a check-in's reply could not be sent", exc_info=True)


UNAVAILABLE = error("unavailable", [{"field": "", "error": "internal error; retry"}])


def router() -> NatsRouter:
    r = NatsRouter()
    batchers: dict[int, Batcher] = {}  # one per running service (its runtime)

    @r.subscriber(
        RESIDENT_CHECKIN_ALL,
        queue=QUEUE,
        max_workers=WORKERS,
        title="screening:resident.*.checkin",
        description="A resident's daily health check-in (edge contract §4.1).",
    )
    async def checkin(
        body: Any,
        msg: NatsMessage,
        rt: Any = Context(RUNTIME),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict[str, Any]:
        parts = msg.raw_message.subject.split(".")
        person = parts[1] if len(parts) == 3 else ""
        req, bad = problems(msg.raw_message.data, person)
        if req is None:
            return error("invalid_checkin", bad)
        batcher = batchers.get(id(rt))
        if batcher is None or batcher.rt is not rt:
            batcher = batchers[id(rt)] = Batcher(rt, clock)
        try:
            return await batcher.submit(req)
        except Exception:
            log.exception("a check-in failed")
            return error("unavailable", [{"field": "", "error": "internal error; retry"}])

    return r
