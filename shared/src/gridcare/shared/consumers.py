"""The reliable consumer: how every gridcare service takes a message from a stream.

Never FastStream's default ack policy (``REJECT_ON_ERROR`` terminates a message on its
first exception). Every subscriber of a :class:`ConsumerRouter` is a durable pull consumer
with ``AckPolicy.MANUAL``, and :class:`ReliableConsumer` (the router's middleware) decides
what becomes of each delivery:

1. A message that can never be handled (not JSON, not the declared schema: FastStream's
   validation error) is dead-lettered at once: retrying cannot fix it.
2. A message delivered more than :func:`max_attempts` times (the service died or timed
   out on it before; one more if its last attempt was put off, see 4) is dead-lettered.
3. The handler runs. Its unit of work (``uow.py``, handed to it by ``Depends(message_uow)``)
   commits the effect, its events and the inbox record in one transaction; a message
   already in the inbox raises :class:`~gridcare.shared.uow.AlreadyHandled`: a duplicate,
   acked.
4. Success: ack. An exception: NACK with a delay that doubles each attempt up to a
   maximum, with jitter (:func:`backoff`), for as long as the retry horizon (an hour by
   default: a provider or a database down for minutes loses nothing); on the last attempt
   (:func:`max_attempts`), a dead letter instead, unless the service started consuming less than one
   ``ack_wait`` ago: what a killed predecessor held unacknowledged (the reference data the
   message needs, say) comes back only within that time, so the last attempt is made once
   it has passed. :class:`Permanent` is an error no retry can fix: dead-lettered at once.

Pull subscriptions fetch one message at a time (``batch_size=1``) and hand it to one of
``workers`` concurrent handlers: a batched fetch that is idle waits for its batch to fill,
and nats-py 2.16 may end an idle batched fetch with a bare ``asyncio.TimeoutError`` that
FastStream 0.7.8's pull loop does not expect.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from faststream import AckPolicy, BaseMiddleware, Context, Depends, StreamMessage
from faststream.nats import ConsumerConfig, JStream, NatsRouter, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js.api import DeliverPolicy
from pydantic import BaseModel, ConfigDict, ValidationError

from . import logs
from .deadletters import DeadLetters
from .envelope import Envelope, stable_id
from .errors import Permanent
from .metrics import Metrics
from .settings import Settings
from .streams import StreamSpec
from .uow import AlreadyHandled, Inbound, UnitOfWork

log = logging.getLogger(__name__)

#: The FastStream context key of the running service (``service.Service``).
RUNTIME = "gridcare"
#: ... and of the message being handled (:class:`Inbound`), set by the middleware.
INBOUND = "gridcare_inbound"


class Runtime(Protocol):
    """What the consumer machinery needs of the running service."""

    name: str
    settings: Settings
    metrics: Metrics
    dead_letters: DeadLetters
    consuming_since: float  # time.monotonic() when its consumers started

    def unit_of_work(self, inbound: Inbound | None = None) -> UnitOfWork: ...


class _Head(BaseModel):
    """The envelope's identity, read without its data (for the inbox and the logs)."""

    model_config = ConfigDict(extra="ignore")
    event_id: str
    type: str = ""
    correlation_id: str = ""


def inbound_of(msg: StreamMessage[Any], device_id_field: str | None = None) -> Inbound | None:
    """The inbox identity of a stream message: its envelope's event id, or for a device's
    bare payload a stable hash of the subject and the payload's own id field."""
    raw = msg.raw_message
    consumer = raw.metadata.consumer or ""
    try:
        if device_id_field is None:
            head = _Head.model_validate_json(msg.body)
            return Inbound(consumer, head.event_id, head.correlation_id or head.event_id, head.type)
        device_id = _DeviceHead.model_validate_json(msg.body).model_extra.get(device_id_field)
        eid = stable_id("edge", raw.subject, str(device_id))
        return Inbound(consumer, eid, eid)
    except (ValidationError, AttributeError):
        return None


class _DeviceHead(BaseModel):
    model_config = ConfigDict(extra="allow")


async def message_uow(
    runtime: Runtime = Context(RUNTIME), inbound: Inbound | None = Context(INBOUND, default=None)
) -> UnitOfWork:
    """``Depends(message_uow)``: the unit of work for the envelope being handled (its
    identity read once, by :class:`ReliableConsumer`). A coroutine, as every dependency
    here: fast_depends runs a plain function in a worker thread."""
    return runtime.unit_of_work(inbound)


async def short_message_uow(
    runtime: Runtime = Context(RUNTIME), inbound: Inbound | None = Context(INBOUND, default=None)
) -> UnitOfWork:
    """``Depends(short_message_uow)``: :func:`message_uow` for a handler whose transaction
    is a few statements about one person or place. On SQLite it runs on the store's
    blocking connection (``uow.blocking``) and holds the write lock for a fraction of a
    millisecond. Through aiosqlite it held the lock across a thread hop a statement, each
    waiting its turn on a busy loop, and every writer queued behind it: in screening, the
    three consumers of each fever's ``PersonStatusChanged`` stalled the check-ins waiting
    for the lock (p99 42-75 ms at 1,000 check-ins/s with 20 fevers/s; 18-21 ms with
    this). Not for a handler that writes thousands of rows (it would hold the loop)."""
    uow = await message_uow(runtime, inbound)
    uow.blocking = True
    return uow


def device_uow(id_field: str) -> Callable[..., UnitOfWork]:
    """``Depends(device_uow("event_id"))``: the unit of work for a device's bare payload,
    idempotent on that field of the payload (and the subject)."""

    async def dependency(msg: NatsMessage, runtime: Runtime = Context(RUNTIME)) -> UnitOfWork:
        return runtime.unit_of_work(inbound_of(msg, id_field))

    return dependency


class ReliableConsumer(BaseMiddleware):
    """The policy above, around every subscriber of a :class:`ConsumerRouter`."""

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        rt: Runtime = self.context.get(RUNTIME)
        s = rt.settings
        raw = msg.raw_message
        consumer = raw.metadata.consumer or "?"
        attempt = raw.metadata.num_delivered or 1
        inbound = inbound_of(msg) if msg.body[:1] == b"{" else None
        t0 = time.perf_counter()
        logs.bind(
            event_id=inbound.event_id if inbound else None,
            correlation_id=inbound.correlation_id if inbound else None,
            consumer=consumer,
        )
        count = rt.metrics.messages.labels
        try:
            if attempt > max_attempts(s) + 1:
                why = f"delivered {attempt} times without an ack (the service died or timed out)"
                await self._dead_letter(rt, msg, inbound, attempt, why)
                return None
            try:
                with self.context.scope(INBOUND, inbound):
                    await call_next(msg)
            except AlreadyHandled:
                await msg.ack()
                count(consumer, "duplicate").inc()
                return None
            except ValidationError as exc:
                why = f"invalid message: {describe(exc)}"
                await self._dead_letter(rt, msg, inbound, attempt, why)
                return None
            except Permanent as exc:
                await self._dead_letter(rt, msg, inbound, attempt, f"rejected: {exc}")
                return None
            except Exception as exc:
                await self._failed(rt, msg, inbound, attempt, exc)
                return None
            await msg.ack()
            count(consumer, "handled").inc()
            rt.metrics.handler_seconds.labels(consumer).observe(time.perf_counter() - t0)
            return None
        finally:
            logs.unbind("event_id", "correlation_id", "consumer")

    async def _failed(
        self,
        rt: Runtime,
        msg: StreamMessage[Any],
        inbound: Inbound | None,
        attempt: int,
        exc: Exception,
    ) -> None:
        s = rt.settings
        last = max_attempts(s)
        grace = rt.consuming_since + s.ack_wait_s - time.monotonic()
        put_off = attempt == last and grace > 0
        if attempt >= last and not put_off:
            log.error("handler failed on the last attempt", exc_info=exc)
            why = f"failed {attempt} times, retried for {_span(s.retry_horizon_s)}: {exc!r}"
            await self._dead_letter(rt, msg, inbound, attempt, why)
            return
        delay = grace if put_off else backoff(s, attempt)
        log.warning("handler failed (attempt %d), retry in %.1fs: %r", attempt, delay, exc)
        rt.metrics.messages.labels(msg.raw_message.metadata.consumer or "?", "retried").inc()
        await msg.nack(delay=delay)

    async def _dead_letter(
        self,
        rt: Runtime,
        msg: StreamMessage[Any],
        inbound: Inbound | None,
        attempt: int,
        reason: str,
    ) -> None:
        """Record the message and why we gave up, then ack it. If even that fails, NACK."""
        raw = msg.raw_message
        consumer = raw.metadata.consumer or "?"
        try:
            await rt.dead_letters.record(
                consumer=consumer,
                subject=raw.subject,
                payload=bytes(raw.data),
                headers={k: str(v) for k, v in (raw.headers or {}).items()},
                reason=reason,
                deliveries=attempt,
                event_id=inbound.event_id if inbound else None,
                correlation_id=inbound.correlation_id if inbound else None,
                stream_seq=raw.metadata.sequence.stream,
            )
        except Exception:
            log.exception("could not record a dead letter; the message will be redelivered")
            await msg.nack(delay=backoff(rt.settings, attempt))
            return
        rt.metrics.messages.labels(consumer, "dead_lettered").inc()
        await msg.ack()


def describe(exc: ValidationError) -> str:
    """Every bad field of a message, on one line (its path in the message: ``data.x``)."""
    parts = []
    for e in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"][1:]) or "(body)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def _nominal(settings: Settings, attempt: int) -> float:
    """The delay after failed attempt ``attempt`` (1, 2, ...) before jitter."""
    if attempt > 60:  # 2**60 times any base is past any max: no float overflow
        return settings.retry_max_delay_s
    return min(settings.retry_base_delay_s * 2 ** (attempt - 1), settings.retry_max_delay_s)


def backoff(settings: Settings, attempt: int, rand: Callable[[], float] = random.random) -> float:
    """How long to wait after failed attempt ``attempt``: the base delay doubled each
    attempt up to the maximum, stretched by a random part of up to ``retry_jitter`` (the
    messages of one outage come back spread out, not in one burst)."""
    return _nominal(settings, attempt) * (1 + settings.retry_jitter * rand())


def max_attempts(settings: Settings) -> int:
    """The attempts a failing message gets: the last is the first that starts at least
    ``retry_horizon_s`` after the first one did (counting each delay at its shortest, so
    jitter only lengthens the horizon). With the defaults (1 s doubling to 5 min, an hour)
    that is 21 attempts."""
    base, top, horizon = settings.retry_base_delay_s, settings.retry_max_delay_s, 0.0
    attempt = 1
    while horizon < settings.retry_horizon_s:
        delay = _nominal(settings, attempt)
        if delay >= top or delay <= 0:  # the doubling is over: the rest at the maximum
            if top <= 0 or base <= 0:
                return attempt  # no delays at all: nothing to spread over the horizon
            return attempt + math.ceil((settings.retry_horizon_s - horizon) / top)
        horizon += delay
        attempt += 1
    return attempt


def _span(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:g} s"


class ConsumerRouter(NatsRouter):
    """A router of durable stream consumers, each under the reliable policy."""

    def __init__(self, settings: Settings, **kwargs: Any) -> None:
        super().__init__(middlewares=(ReliableConsumer,), **kwargs)
        self.settings = settings

    def consumer(
        self,
        subject: str,
        *,
        durable: str,
        stream: StreamSpec,
        workers: int = 8,
        description: str | None = None,
    ) -> Callable:
        """Decorator: a durable pull consumer of ``stream`` filtered on ``subject``.

        ``workers=1`` takes messages one at a time, in the stream's order (for decisions
        that must take effect in order, and at once)."""
        return self.subscriber(
            subject,
            stream=JStream(stream.name, declare=False),  # streams are declared at start
            durable=durable,
            pull_sub=PullSub(batch_size=1, timeout=5.0),
            max_workers=workers,
            ack_policy=AckPolicy.MANUAL,
            deliver_policy=DeliverPolicy.ALL,
            # max_deliver stays unlimited on the server: we bound attempts ourselves and
            # dead-letter, so the server never silently stops delivering a message.
            config=ConsumerConfig(ack_wait=self.settings.ack_wait_s, max_deliver=-1),
            title=f"{durable}:{subject}",
            description=description,
        )

    def projection(
        self,
        subject: str,
        *,
        durable: str,
        stream: StreamSpec,
        types: Mapping[str, type[BaseModel]],
        handle: Callable[[Any, UnitOfWork], Awaitable[None]],
        workers: int = 8,
        description: str | None = None,
    ) -> None:
        """A consumer of a stream of several event types (reference data, say): each
        message of a type in ``types`` is validated as it and handed to ``handle(event,
        uow)``; a type not in ``types`` is another service's business, acked and skipped."""

        @self.consumer(
            subject, durable=durable, stream=stream, workers=workers, description=description
        )
        async def project(
            env: Envelope[dict[str, Any]], uow: UnitOfWork = Depends(message_uow)
        ) -> None:
            kind = types.get(env.type)
            if kind is not None:
                await handle(kind.model_validate(env.data), uow)
