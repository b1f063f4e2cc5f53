"""Service APIs: each service answers its queries and office commands on core NATS.

``api.<service>.<op>`` (never captured by a stream: a stream would answer a request with
its own PubAck), queue group ``gridcare-<service>-api``. A request is a JSON object; the
reply is ``{"result": ...}`` or ``{"error": {"code": ..., "detail": [{"field", "error"},
...]}}``: ``invalid_request`` names every bad field, a handler's :class:`ApiError` gives
its own code (``unknown_compound``, ``quota_exceeded``, ...), anything else is
``unavailable`` (logged). Every service also answers the common operations here: its
dead letters (``dead_letters.list``, ``dead_letters.replay``), its outbox rows set aside
(``outbox.list``, ``outbox.replay``) and a health summary
(``health``). The office tool (``gridcare``) and other services speak only to these.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from faststream import BaseMiddleware, Context, StreamMessage
from faststream.nats import NatsRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .consumers import RUNTIME
from .deadletters import UnknownDeadLetter
from .errors import ApiError, error

__all__ = ["API", "ApiError", "ApiRouter", "Request", "common_api", "error", "unit_of_work"]

log = logging.getLogger(__name__)

API = "api.{service}.{op}"


def invalid(exc: ValidationError, code: str = "invalid_request") -> dict[str, Any]:
    """Every bad field of a request, named by its path in the request."""
    detail = []
    for e in exc.errors(include_url=False):
        loc = [str(p) for p in e["loc"][1:]]  # the first is the handler's parameter
        detail.append(
            {"field": ".".join(loc) or "(body)", "error": e["msg"].removeprefix("Value error, ")}
        )
    return error(code, detail)


#: What a reply's headers and framing may take of the server's max_payload.
REPLY_HEADROOM = 4096


def too_large(size: int, limit: int) -> dict[str, Any]:
    """The reply to a request whose answer would not fit in one NATS message."""
    return error(
        "reply_too_large",
        [
            {
                "field": "(request)",
                "error": f"the answer is {size} bytes, over the {limit} bytes one reply can "
                "carry: ask for less (a smaller limit or window, or page with 'after')",
            }
        ],
    )


class ApiErrors(BaseMiddleware):
    """Every reply in one shape; a failing handler still answers (never a timeout)."""

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        rt = self.context.get(RUNTIME)
        op = msg.raw_message.subject
        t0 = time.perf_counter()
        try:
            result = {"result": await call_next(msg)}
            outcome = "ok"
        except ValidationError as exc:
            result, outcome = invalid(exc), "invalid"
        except ApiError as exc:
            result, outcome = exc.reply(), exc.code
        except Exception:
            log.exception("api %s failed", op)
            result = error("unavailable", [{"field": "", "error": "internal error; retry"}])
            outcome = "unavailable"
        if rt is not None and outcome == "ok":
            size = len(json.dumps(result, ensure_ascii=False, default=str).encode())
            limit = rt.max_payload()
            if limit is not None and size > limit - REPLY_HEADROOM:
                log.warning("api %s: a reply of %d bytes is over the server's limit", op, size)
                result, outcome = too_large(size, limit), "reply_too_large"
        if rt is not None:
            rt.metrics.api_requests.labels(op, outcome).inc()
            rt.metrics.api_seconds.labels(op).observe(time.perf_counter() - t0)
        return result


class ApiRouter(NatsRouter):
    """The request/reply operations of one service."""

    def __init__(self, service: str, **kwargs: Any) -> None:
        super().__init__(middlewares=(ApiErrors,), **kwargs)
        self.service = service

    def op(self, name: str, *, description: str | None = None) -> Callable:
        """Decorator: the handler of ``api.<service>.<name>``; it returns the result."""
        subject = API.format(service=self.service, op=name)
        return self.subscriber(
            subject, queue=f"gridcare-{self.service}-api", title=subject, description=description
        )


async def unit_of_work(rt: Any = Context(RUNTIME)) -> Any:
    """``Depends(unit_of_work)``: a unit of work on the service's store, for an API call.
    (A coroutine: fast_depends runs a plain function dependency in a worker thread, a
    thread hop per call.)"""
    return rt.unit_of_work()


class Request(BaseModel):
    """Base of API requests: an unknown field is refused (a typo must not pass)."""

    model_config = ConfigDict(extra="forbid")


class ListDeadLetters(Request):
    limit: int = Field(50, ge=1, le=1000)
    pending_only: bool = False


class ReplayDeadLetter(Request):
    id: int = Field(ge=1)


class ListParked(Request):
    limit: int = Field(50, ge=1, le=1000)


class ReplayParked(Request):
    id: int = Field(ge=1)


class Empty(Request):
    pass


def common_api(service: str) -> ApiRouter:
    """The operations every service answers: dead letters and a health summary."""
    api = ApiRouter(service)

    @api.op("dead_letters.list", description="The newest dead letters, with their reasons.")
    async def list_dead_letters(req: ListDeadLetters, rt: Any = Context(RUNTIME)) -> dict:
        rows = await rt.dead_letters.list(req.limit, req.pending_only)
        return {"service": service, "dead_letters": rows}

    @api.op(
        "dead_letters.replay",
        description="Republish one dead letter's message to its subject (once the cause is fixed).",
    )
    async def replay_dead_letter(req: ReplayDeadLetter, rt: Any = Context(RUNTIME)) -> dict:
        try:
            return await rt.dead_letters.replay(req.id, rt.publish_to_stream)
        except UnknownDeadLetter as exc:
            raise ApiError("unknown_dead_letter", str(exc), "id") from None

    @api.op("outbox.list", description="Outbox rows set aside as unpublishable, with why.")
    async def list_parked(req: ListParked, rt: Any = Context(RUNTIME)) -> dict:
        return {"service": service, "parked": await rt.relay.parked(req.limit)}

    @api.op("outbox.replay", description="Put a set-aside outbox row back in line.")
    async def replay_parked(req: ReplayParked, rt: Any = Context(RUNTIME)) -> dict:
        try:
            return await rt.relay.replay(req.id)
        except LookupError as exc:
            raise ApiError("unknown_outbox_row", str(exc), "id") from None

    @api.op("health", description="Readiness, outbox backlog, dead letters, uptime.")
    async def health(req: Empty, rt: Any = Context(RUNTIME)) -> dict:
        return await rt.health()

    return api
