"""The sender: the loop that takes the messages whose time has come and hands them to the
providers (an entry point driven by time and by commits, not by a stream).

It claims due messages (``handlers.claim``: the attempt committed first), most urgent
first, while fewer than ``notify_max_in_flight`` are between claim and outcome; an urgent
message is claimed even when that many are. Each message waits for its provider's token
(``flow.Gate``: urgent before normal before bulk), is not sent to a provider whose circuit
is open (it fails over to its next route at once), and is sent outside any transaction.
Outcomes are committed in batches (``handlers.settle``); a message given up on becomes a
dead letter of notify's (``gridcare dead-letters notify``), replayable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gridcare.contracts.notify import NotificationRetryRequested
from gridcare.shared.aio import stop_task, wait_event
from gridcare.shared.envelope import Envelope, utcnow

from .. import handlers
from ..adapters.providers import Outgoing, ProviderFailed
from ..domain.flow import Gate
from ..domain.messages import PRIORITIES, Message

log = logging.getLogger(__name__)

#: Outcomes are committed at least this often, or as soon as this many are waiting (a
#: provider has the message already: committing its outcome later delays nobody).
SETTLE_S, SETTLE_BATCH = 0.1, 200
#: At most this many messages claimed at a time; and, while the rest wait for a
#: provider's tokens, no fewer than CLAIM_MIN but for urgent ones (a claim is a transaction:
#: a trickle of tiny claims at a capped provider's pace costs more than the sending).
CLAIM_BATCH, CLAIM_MIN = 200, 50


class Sender:
    def __init__(
        self,
        svc: Any,
        delivery: handlers.Delivery,
        providers: Any,
        gate: Gate,
        *,
        max_in_flight: int,
        retry_after: Callable[[int], float],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.svc = svc
        self.d = delivery
        self.providers = providers
        self.gate = gate
        self.max_in_flight = max_in_flight
        self.retry_after = retry_after
        self.clock = clock
        self.in_flight = 0
        self._outcomes: list[handlers.Outcome] = []
        self._wake = asyncio.Event()
        self._urgent_waiting = False
        self._settled = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []
        m = svc.metrics
        self.sent = m.counter(
            "deliveries_total", "Messages by channel and outcome", ["channel", "outcome"]
        )
        self.latency = m.histogram(
            "provider_duration_seconds",
            "Time a provider took to accept (or refuse) one message",
            ["provider"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.request_to_provider = m.histogram(
            "request_to_provider_seconds",
            "From a message's creation to its provider accepting it, by priority",
            ["priority"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600),
        )

    # --- lifecycle -------------------------------------------------------------------------
    def wake(self, urgent: bool = False) -> None:
        """Something is due now (a request was written, a message failed over);
        ``urgent``: an urgent message, whose claim goes before other writers."""
        self._urgent_waiting = self._urgent_waiting or urgent
        self._wake.set()

    async def start(self) -> None:
        requeued = await handlers.restart(self.svc.unit_of_work(), self.clock())
        if requeued:
            log.warning(
                "%d messages were being sent when notify stopped: sent again with the same "
                "delivery key (a provider that honours it drops the repeat)",
                requeued,
            )
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="notify-claim"),
            asyncio.create_task(self._settle_loop(), name="notify-settle"),
        ]

    async def stop(self) -> None:
        """Stop claiming; let what is in flight finish (bounded) and commit its outcomes."""
        claim = self._loops[0] if self._loops else None
        await stop_task(claim)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10.0)
        for task in list(self._tasks):
            await stop_task(task)
        for task in self._loops[1:]:
            await stop_task(task)
        self._loops = []
        await self._flush()

    # --- claiming ----------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        while True:
            try:
                claimed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claiming messages failed; trying again")
                claimed = -1
            if claimed >= CLAIM_BATCH:
                await asyncio.sleep(0)
                continue
            await wait_event(self._wake, 0.2 if claimed else 0.5)
            self._wake.clear()

    async def run_once(self) -> int:
        """Claim what is due now and start sending it. Returns how many were claimed.
        An urgent message just written is claimed on its own first (a small transaction
        that goes before other writers), and the urgent ones are claimed even when the
        limit in flight is reached."""
        urgent, self._urgent_waiting = self._urgent_waiting, False
        claimed = 0
        roomy = self.max_in_flight - self.in_flight >= min(CLAIM_MIN, self.max_in_flight)
        if urgent or not (roomy or self.in_flight == 0):
            claimed += self._start(
                await handlers.claim(
                    self.svc.unit_of_work(),
                    self.d,
                    self.clock(),
                    CLAIM_BATCH,
                    max_priority=0,
                    urgent_waiting=True,
                )
            )
        free = self.max_in_flight - self.in_flight
        if free >= min(CLAIM_MIN, self.max_in_flight) or self.in_flight == 0:
            claimed += self._start(
                await handlers.claim(
                    self.svc.unit_of_work(), self.d, self.clock(), min(free, CLAIM_BATCH)
                )
            )
        return claimed

    def _start(self, batch: list[Message]) -> int:
        for m in batch:
            self.in_flight += 1
            task = asyncio.create_task(self._send(m), name=f"send {m.message_id[:8]}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(batch)

    # --- sending -----------------------------------------------------------------------------
    async def _send(self, m: Message) -> None:
        route = m.current
        provider = self.providers.provider_of(route.url)
        breaker = self.gate.breaker(provider)
        try:
            if not breaker.allow():
                outcome = handlers.Outcome(
                    m, False, error=f"{provider}: circuit open", circuit_open=True
                )
            else:
                await self.gate.acquire(provider, PRIORITIES[m.priority])
                outcome = await self._call(m, provider, breaker)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours: the message is tried again later
            log.exception("sending %s failed", m.message_id)
            outcome = handlers.Outcome(m, False, error=f"internal error: {exc!r}")
        finally:
            self.in_flight -= 1
        label = "sent" if outcome.ok else ("circuit_open" if outcome.circuit_open else "failed")
        self.sent.labels(route.channel, label).inc()
        if outcome.ok:
            age = (self.clock() - m.created_at).total_seconds()
            self.request_to_provider.labels(PRIORITIES[m.priority]).observe(max(age, 0.0))
        self._outcomes.append(outcome)
        if len(self._outcomes) >= SETTLE_BATCH:
            self._settled.set()
        self.wake()  # a slot is free

    async def _call(self, m: Message, provider: str, breaker: Any) -> handlers.Outcome:
        route = m.current
        out = Outgoing(
            key=m.delivery_key or "",
            url=route.url,
            kind=route.channel,  # type: ignore[arg-type]
            to=route.to,
            title=m.title,
            body=m.sms if route.channel == "sms" else m.body,
            urgent=m.urgent,
        )
        t0 = time.perf_counter()
        try:
            accepted = await self.providers.send(out)
        except ProviderFailed as exc:
            self.latency.labels(provider).observe(time.perf_counter() - t0)
            if exc.retry:  # the provider's trouble, not this address's
                breaker.failure()
            else:  # it answered (this address is wrong): the provider itself is alive
                breaker.success()
            return handlers.Outcome(m, False, error=f"{provider}: {exc.reason}", retry=exc.retry)
        self.latency.labels(provider).observe(time.perf_counter() - t0)
        breaker.success()
        return handlers.Outcome(m, True, provider_ref=accepted.provider_ref)

    # --- outcomes ----------------------------------------------------------------------------
    async def _settle_loop(self) -> None:
        while True:
            await wait_event(self._settled, SETTLE_S)
            self._settled.clear()
            try:
                await self._flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recording outcomes failed; trying again")
                await asyncio.sleep(0.5)

    async def _flush(self) -> None:
        if not self._outcomes:
            return
        batch, self._outcomes = self._outcomes, []
        try:
            gave_up = await handlers.settle(
                batch, self.svc.unit_of_work(), self.clock(), self.retry_after
            )
        except BaseException:
            self._outcomes[:0] = batch  # not committed: the next round tries them again
            raise
        if any(not o.ok for o in batch):
            self.wake()  # a failed-over message may be due at once
        for m in gave_up:
            await self._dead_letter(m)

    async def _dead_letter(self, m: Message) -> None:
        """A message given up on: a dead letter whose replay sends it once more."""
        ev = NotificationRetryRequested(
            notification_id=m.message_id, requested_by="gridcare dead-letters notify --replay"
        )
        env = Envelope.wrap(ev, source="notify")
        await self.svc.dead_letters.record(
            consumer="notify-delivery",
            subject=ev.subject(),
            payload=env.to_bytes(),
            headers=env.headers(),
            reason=f"not delivered to {m.recipient_name or m.recipient_id} on any route "
            f"after {m.attempts} attempts: {m.last_error}",
            deliveries=m.attempts,
            event_id=m.message_id,
        )
