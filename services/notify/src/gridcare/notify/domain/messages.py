"""A message: one request's text for one recipient, and its life until it is delivered.

Keys. ``message_id`` is one per (logical message, recipient): the request's idempotency
key and the recipient's id, so the same request three times is one message. Each route
(channel) it is tried on has its own ``delivery_key`` (message and channel), which holds
through retries, restarts and redeliveries and is the provider's idempotency key.

States::

    queued ──claim──▶ sending ──accepted──▶ sent ──receipt──▶ delivered
      ▲  │                │                   └──receipt──▶ failed
      │  │                └──failed──▶ queued (later, or on the next route)
      │  ├──▶ held (waits for the recipient's digest) ──▶ sending
      │  ├──▶ expired (not sent by its expiry)   ├──▶ cancelled (a broadcast stopped)
      │  └──▶ failed (every route, past the give-up horizon: a dead letter)
      └── replayed (a dead letter replayed)
    sent / delivered ──acknowledged──▶ acknowledged (an alert taken)

The attempt is recorded (``sending``, attempts + 1) before a provider is called and its
outcome after. A crash in between leaves the message ``sending``: at the next start it is
queued again and sent again with the same delivery key (the window that is left; a
provider that honours the key drops the repeat).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

from gridcare.shared.envelope import stable_id

from .recipients import Route

PRIORITIES = ("urgent", "normal", "bulk")
RANK = {p: i for i, p in enumerate(PRIORITIES)}
#: Failures on one route before the next one is tried (a route the provider refuses for
#: good, or whose circuit is open, is left at once).
FAILOVER_AFTER = 2
#: States in which a message waits to be sent.
WAITING = ("queued", "held")
DONE = ("sent", "delivered", "acknowledged", "failed", "expired", "cancelled")


def message_id(request_id: str, recipient_id: str) -> str:
    return stable_id("message", request_id, recipient_id)


def delivery_key(message_id: str, channel: str) -> str:
    return stable_id("delivery", message_id, channel)


@dataclass(frozen=True)
class Message:
    message_id: str
    seq: int
    request_id: str
    recipient_id: str
    recipient_name: str
    community_id: str | None
    time_zone: str | None
    template: str
    language: str
    title: str
    body: str
    sms: str
    priority: int
    alert_id: str | None
    digest: bool
    routes: tuple[Route, ...]
    route: int
    status: str
    attempts: int
    route_failures: int
    next_attempt_at: datetime
    created_at: datetime
    give_up_at: datetime
    expires_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    acknowledged_at: datetime | None = None
    delivery_key: str | None = None
    provider_ref: str | None = None
    sent_channel: str | None = None
    last_error: str | None = None

    @property
    def urgent(self) -> bool:
        return self.priority == RANK["urgent"]

    @property
    def pressing(self) -> bool:
        """Urgent, or an alert someone must acknowledge (its escalation is counting): never
        held by quiet hours or the hourly cap."""
        return self.urgent or self.alert_id is not None

    @property
    def current(self) -> Route:
        return self.routes[self.route]

    def claimed(self, now: datetime) -> Message:
        """The attempt, recorded before the provider is called."""
        return dataclasses.replace(
            self,
            status="sending",
            attempts=self.attempts + 1,
            delivery_key=delivery_key(self.message_id, self.current.channel),
        )

    def accepted(self, now: datetime, provider_ref: str | None) -> Message:
        return dataclasses.replace(
            self,
            status="sent",
            sent_at=now,
            provider_ref=provider_ref,
            sent_channel=self.current.channel,
            last_error=None,
        )

    def failed_attempt(
        self, now: datetime, error: str, *, retry: bool, circuit_open: bool, delay_s: float
    ) -> Message:
        """After a failed attempt: the next route at once (the provider refused this one
        for good, its circuit is open, or it failed ``FAILOVER_AFTER`` times), else this
        route again after ``delay_s``; past the give-up horizon, failed."""
        failures = self.route_failures + 1
        if now >= self.give_up_at:
            return dataclasses.replace(
                self, status="failed", route_failures=failures, last_error=error[:1000]
            )
        leave = (not retry) or circuit_open or failures >= FAILOVER_AFTER
        if leave and self.route + 1 < len(self.routes):
            return dataclasses.replace(
                self,
                status="queued",
                route=self.route + 1,
                route_failures=0,
                next_attempt_at=now,
                last_error=error[:1000],
            )
        # the last route (or staying on this one): from the first route again, later
        route = 0 if leave else self.route
        return dataclasses.replace(
            self,
            status="queued",
            route=route,
            route_failures=0 if leave else failures,
            next_attempt_at=now + timedelta(seconds=delay_s),
            last_error=error[:1000],
        )

    def wait_until(self, t: datetime, status: str = "queued") -> Message:
        return dataclasses.replace(self, status=status, next_attempt_at=t)

    def ended(self, status: str, error: str | None = None) -> Message:
        return dataclasses.replace(self, status=status, last_error=error or self.last_error)

    def requeued(self, now: datetime, give_up_at: datetime) -> Message:
        """Back in line from its first route (a replayed dead letter, a restart)."""
        return dataclasses.replace(
            self,
            status="queued",
            route=0,
            route_failures=0,
            next_attempt_at=now,
            give_up_at=give_up_at,
        )
