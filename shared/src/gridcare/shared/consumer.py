"""The reliable consumer: how every gridcare service handles a stream message.

Never FastStream's default ack policy (it ``term()``s a message on the first exception).
For each delivery of a durable pull consumer:

1. The envelope and the payload are validated; a message that can never be handled
   (bad JSON, bad schema) is dead-lettered at once.
2. A message delivered more than ``max_deliveries`` times (the service crashed or timed out
   on it before; one more if its last attempt was put off, see 4) is dead-lettered with
   that reason.
3. In one transaction: the ``processed_messages`` row (consumer, event id) is written next
   to the handler's effect and its outbox rows. A message already in that table is a
   duplicate: acked, not handled again.
4. After the commit the message is acked. On an exception the transaction rolls back and
   the message is NACKed with exponential backoff; on the last attempt it is dead-lettered,
   unless this process started consuming less than one ``ack_wait`` ago: what a killed
   predecessor held unacknowledged (the reference data the message needs, say) comes back
   only within that time, so the last attempt is made once it has passed.

A dead letter is a row in the service's ``dead_letters`` table (with the payload, headers
and reason, for inspection and replay) and a ``deadletter.<service>`` event.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import nats.errors
import sqlalchemy as sa
from faststream import AckPolicy
from faststream.nats import ConsumerConfig, JStream, PullSub
from faststream.nats.annotations import NatsMessage
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from . import logs, outbox
from .envelope import Envelope, Event, stable_id, utcnow
from .events import MessageDeadLettered
from .subjects import StreamSpec

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)


def _fetch_timeout_shim() -> None:
    """nats-py 2.15/2.16 sometimes ends an idle ``fetch(batch>1)`` with a bare
    ``asyncio.TimeoutError`` instead of ``nats.errors.TimeoutError``; FastStream 0.7.8 only
    expects the latter, so its pull loop crashes and is restarted with an error in the log
    every few seconds. Translate the exception; harmless once either library is fixed."""
    pull = JetStreamContext.PullSubscription
    if getattr(pull.fetch, "_gridcare_shim", False):
        return
    original = pull.fetch

    async def fetch(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        except nats.errors.TimeoutError:
            raise
        except TimeoutError as exc:
            raise nats.errors.TimeoutError from exc

    fetch._gridcare_shim = True  # type: ignore[attr-defined]
    pull.fetch = fetch  # type: ignore[method-assign]


_fetch_timeout_shim()


@dataclass
class HandlerContext:
    """What a handler gets besides the event: its transaction and a way to emit events."""

    session: AsyncSession
    envelope: Envelope
    service: Service
    subject: str = ""  # the NATS subject the message came on
    emitted: list[Envelope] = field(default_factory=list)
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once this transaction has committed (e.g. update an in-memory view)."""
        self._after_commit.append(fn)

    async def emit(self, event: Event, *, event_id: str | None = None) -> Envelope:
        """Write ``event`` to the outbox in this transaction, caused by the current message."""
        env = Envelope.wrap(event, source=self.service.name, cause=self.envelope, event_id=event_id)
        await outbox.add(self.session, self.service.store, env, event.subject())
        self.emitted.append(env)
        return env


Handler = Callable[[HandlerContext, Any], Awaitable[None]]


class Permanent(Exception):
    """Raised by a handler for a message that no retry can fix: dead-lettered at once."""


@dataclass
class ReliableConsumer:
    service: Service
    durable: str
    subject: str
    stream: StreamSpec
    handlers: dict[str, tuple[type[Event], Handler]] = field(default_factory=dict)
    batch: int = 16  # 1: lowest latency (returns on the first message)
    # Edge mode: messages are a device's bare JSON (not envelopes) of this one model; the
    # envelope is made here, its id a stable hash of the device's own id field.
    edge: tuple[type[Event], str] | None = None

    started: float = field(default_factory=time.monotonic)  # set again when consuming starts

    def on(self, model: type[Event], fn: Handler) -> None:
        self.handlers[model.TYPE] = (model, fn)

    def register(self) -> None:
        s = self.service.settings
        self.service.broker.subscriber(
            self.subject,
            durable=self.durable,
            stream=JStream(self.stream.name, declare=False),
            # A short timeout: an idle batched fetch waits for its whole batch until then.
            pull_sub=PullSub(batch_size=self.batch, timeout=0.2),
            ack_policy=AckPolicy.MANUAL,
            deliver_policy=DeliverPolicy.ALL,
            # max_deliver stays unlimited on the server: we bound attempts ourselves and
            # dead-letter, so the server never silently stops delivering a message.
            config=ConsumerConfig(ack_wait=s.ack_wait_s, max_deliver=-1),
            title=f"{self.durable}:{self.subject}",
        )(self._on_message)

    def _edge_envelope(self, msg: NatsMessage) -> Envelope:
        assert self.edge is not None
        model, id_field = self.edge
        payload = model.model_validate_json(msg.body)
        eid = stable_id("edge", msg.raw_message.subject, str(getattr(payload, id_field)))
        return Envelope(
            event_id=eid,
            type=model.TYPE,
            source="device",
            correlation_id=eid,
            data=payload.model_dump(mode="json"),
        )

    def backoff(self, attempt: int) -> float:
        s = self.service.settings
        return min(s.retry_base_delay_s * 2 ** (attempt - 1), s.retry_max_delay_s)

    async def _on_message(self, msg: NatsMessage) -> None:
        svc = self.service
        raw = msg.raw_message
        attempt = raw.metadata.num_delivered or 1
        t0 = time.perf_counter()
        try:
            env = self._edge_envelope(msg) if self.edge else Envelope.from_bytes(msg.body)
        except ValidationError as exc:
            what = f"invalid {self.edge[0].TYPE}" if self.edge else "not a gridcare envelope"
            await self._dead_letter(msg, None, attempt, f"{what}: {exc}")
            return
        logs.bind(event_id=env.event_id, correlation_id=env.correlation_id, consumer=self.durable)
        try:
            entry = self.handlers.get(env.type)
            if entry is None:  # another consumer's business: nothing to do
                await msg.ack()
                svc.metrics.messages.labels(self.durable, "ignored").inc()
                return
            model, fn = entry
            try:
                event = model.model_validate(env.data)
            except ValidationError as exc:
                await self._dead_letter(msg, env, attempt, f"invalid {env.type}: {exc}")
                return
            if attempt > svc.settings.max_deliveries + 1:
                await self._dead_letter(
                    msg,
                    env,
                    attempt,
                    f"delivered {attempt} times without an ack (the service died or timed out)",
                )
                return
            try:
                outcome = await self._handle(env, event, fn, msg.raw_message.subject)
            except Permanent as exc:
                await self._dead_letter(msg, env, attempt, f"rejected: {exc}")
                return
            except Exception as exc:
                wait_for_predecessor = self.started + svc.settings.ack_wait_s - time.monotonic()
                put_off = attempt == svc.settings.max_deliveries and wait_for_predecessor > 0
                if attempt >= svc.settings.max_deliveries and not put_off:
                    log.exception("handler failed on the last attempt")
                    await self._dead_letter(msg, env, attempt, f"failed {attempt} times: {exc!r}")
                else:
                    delay = wait_for_predecessor if put_off else self.backoff(attempt)
                    log.warning(
                        "handler failed (attempt %d), retry in %.1fs: %r", attempt, delay, exc
                    )
                    svc.metrics.messages.labels(self.durable, "retried").inc()
                    await msg.nack(delay=delay)
                return
            await msg.ack()
            svc.metrics.messages.labels(self.durable, outcome).inc()
            svc.metrics.handler_seconds.labels(self.durable).observe(time.perf_counter() - t0)
        finally:
            logs.unbind("event_id", "correlation_id", "consumer")

    async def _handle(self, env: Envelope, event: Event, fn: Handler, subject: str) -> str:
        svc = self.service
        t = svc.store.tables.processed
        async with svc.store.transaction() as session:
            seen = await session.scalar(
                sa.select(sa.literal(1)).where(
                    t.c.consumer == self.durable, t.c.event_id == env.event_id
                )
            )
            if seen:
                return "duplicate"
            await session.execute(
                sa.insert(t).values(
                    consumer=self.durable, event_id=env.event_id, processed_at=utcnow()
                )
            )
            ctx = HandlerContext(session=session, envelope=env, service=svc, subject=subject)
            await fn(ctx, event)
        for fn in ctx._after_commit:
            fn()
        if ctx.emitted:
            svc.relay.wake()
        return "handled"

    async def _dead_letter(
        self, msg: NatsMessage, env: Envelope | None, attempt: int, reason: str
    ) -> None:
        """Record the message and why we gave up, then ack it. If even that fails, NACK."""
        svc = self.service
        raw = msg.raw_message
        headers = {k: str(v) for k, v in (raw.headers or {}).items()}
        try:
            await record_dead_letter(
                svc,
                consumer=self.durable,
                subject=raw.subject,
                payload=bytes(raw.data),
                headers=headers,
                reason=reason,
                deliveries=attempt,
                cause=env,
                stream_seq=raw.metadata.sequence.stream,
            )
        except Exception:
            log.exception("could not record dead letter; message will be redelivered")
            await msg.nack(delay=self.backoff(attempt))
            return
        svc.metrics.messages.labels(self.durable, "dead_lettered").inc()
        await msg.ack()


async def record_dead_letter(
    svc: Service,
    *,
    consumer: str,
    subject: str,
    payload: bytes,
    reason: str,
    headers: dict[str, str] | None = None,
    deliveries: int = 1,
    cause: Envelope | None = None,
    stream_seq: int | None = None,
) -> None:
    """Keep a message a service gave up on: a ``dead_letters`` row (for inspection and
    replay) and a ``deadletter.<service>`` event, in one transaction."""
    headers = headers or {}
    reason = reason[:4000]
    async with svc.store.transaction() as session:
        await session.execute(
            sa.insert(svc.store.tables.dead_letters).values(
                consumer=consumer,
                subject=subject,
                event_id=cause.event_id if cause else None,
                stream_seq=stream_seq,
                deliveries=deliveries,
                reason=reason,
                payload=payload,
                headers=headers,
                created_at=utcnow(),
            )
        )
        dead = MessageDeadLettered(
            service=svc.name,
            consumer=consumer,
            original_subject=subject,
            event_id=cause.event_id if cause else None,
            reason=reason,
            deliveries=deliveries,
            payload_b64=base64.b64encode(payload).decode(),
            headers=headers,
        )
        out = Envelope.wrap(dead, source=svc.name, cause=cause)
        await outbox.add(session, svc.store, out, dead.subject())
    svc.relay.wake()
    svc.metrics.dead_letters.labels(consumer).inc()
    log.error("dead-lettered (%s): %s", consumer, reason)
