"""The resident edge for check-ins (the edge contract §4.1): ``resident.<person_id>.checkin``,
core NATS request/reply in a queue group (any instance answers). The reply is sent once the
check-in is committed: ``{"checkin_id", "status": "recorded" | "replaced", "follow_up",
"message": {"zh", "en"}}``, or ``{"error": {"code": "invalid_checkin" | "unknown_person",
"detail": [{"field", "error"}, ...]}}`` naming every bad field. Never a silent timeout: an
unexpected failure is ``unavailable`` (retry with the same ``checkin_id``).

Group commit: up to ``WORKERS`` check-ins are handled at once; those that arrive while a
transaction is being written wait and go into the next one together
(``checkins.check_in_many``: one commit, one fsync for all). Taken one at a time, one
transaction each, screening answered about 125 check-ins/s on a loaded machine whose fsync
took 3-4 ms, and used 0.3 of a core (waiting for the disk); batched, it is CPU-bound
(bench/screening_bench.py, bench/results/screening.md)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from faststream import Context
from faststream.nats import NatsRouter
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from gridcare.contracts.edge import RESIDENT_CHECKIN_ALL, CheckinRequest
from gridcare.shared.consumers import RUNTIME
from gridcare.shared.errors import ApiError, error

from ..handlers import checkins
from . import CLOCK

log = logging.getLogger(__name__)

QUEUE = "gridcare-screening-checkins"
#: check-ins handled at once (each waits for its batch's commit)
WORKERS = 256
#: check-ins in one transaction at most
MAX_BATCH = 256


def problems(data: bytes, person: str) -> tuple[CheckinRequest | None, list[dict[str, str]]]:
    """The request, or every bad field of it (the subject's person included)."""
    found: list[dict[str, str]] = []
    req = None
    try:
        req = CheckinRequest.model_validate_json(data)
    except ValidationError as exc:
        found = [
            {"field": ".".join(map(str, e["loc"])) or "(body)", "error": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
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

    def __init__(self, rt: Any, clock: Callable[[], datetime]) -> None:
        self.rt = rt
        self.clock = clock
        self.queue: list[tuple[CheckinRequest, asyncio.Future]] = []
        self.task: asyncio.Task | None = None

    async def submit(self, req: CheckinRequest) -> dict[str, Any]:
        fut = asyncio.get_running_loop().create_future()
        self.queue.append((req, fut))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain(), name="checkin-writer")
        return await fut

    async def _drain(self) -> None:
        while self.queue:
            batch, self.queue = self.queue[:MAX_BATCH], self.queue[MAX_BATCH:]
            reqs = [req for req, _ in batch]
            try:
                replies = await checkins.check_in_many(reqs, self.rt.unit_of_work(), self.clock())
            except Exception:
                log.exception("a batch of %d check-ins failed; taking them one by one", len(reqs))
                replies = [await self._one(req) for req in reqs]
            for (_, fut), reply in zip(batch, replies, strict=True):
                if not fut.done():
                    fut.set_result(reply)

    async def _one(self, req: CheckinRequest) -> dict[str, Any]:
        try:
            return await checkins.check_in(req, self.rt.unit_of_work(), self.clock())
        except ApiError as exc:
            return exc.reply()
        except Exception:
            log.exception("a check-in failed")
            return error("unavailable", [{"field": "", "error": "internal error; retry"}])


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
