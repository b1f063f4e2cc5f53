"""The one place that wires notify together."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from faststream import FastStream

from gridcare.contracts import STREAMS
from gridcare.contracts.notify import (
    ALERT_ACKNOWLEDGED,
    ALERT_UNACKNOWLEDGED,
    NOTIFICATION_DELIVERED,
    NOTIFICATION_FAILED,
    NOTIFICATION_REQUESTED,
    AlertAcknowledged,
    AlertUnacknowledged,
    NotificationDelivered,
    NotificationFailed,
    NotificationRequested,
)
from gridcare.contracts.refdata import Channel
from gridcare.shared.consumers import backoff
from gridcare.shared.envelope import utcnow
from gridcare.shared.service import Service

from . import handlers
from .adapters import tables
from .adapters.providers import Providers
from .config import NotifySettings
from .domain.flow import Gate
from .domain.links import Links
from .domain.templates import Templates
from .entrypoints import acks, api, events
from .entrypoints.http import Endpoints
from .entrypoints.sender import Sender
from .unit_of_work import SqlUnitOfWork

NAME = "notify"
HTTP_PORT = 9104


def build(
    settings: NotifySettings | None = None,
    providers: Any = None,
    clock: Callable[[], datetime] = utcnow,
) -> Service:
    """Notify, wired. ``providers`` and ``clock`` (what "now" is for messages, retries and
    escalation) are for tests: an outage of minutes is tested without waiting for it."""
    settings = settings or NotifySettings()
    svc = Service(
        NAME,
        metadata=tables.metadata,
        migrations=tables.MIGRATIONS,
        streams=STREAMS,
        unit_of_work=SqlUnitOfWork,
        http_port=HTTP_PORT,
        settings=settings,
        description="The delivery platform: every service asks for a message "
        "(NotificationRequested); notify renders it in each recipient's language and "
        "delivers it once, with rate limits, failover, acknowledgement and escalation.",
    )
    s = settings

    def retry_after(attempt: int) -> float:
        return backoff(
            s.model_copy(
                update={
                    "retry_base_delay_s": s.notify_retry_base_s,
                    "retry_max_delay_s": s.notify_retry_max_s,
                }
            ),
            attempt,
        )

    public = s.notify_public_url or f"http://{s.http_host}:{svc.http_port}"
    delivery = handlers.Delivery(
        templates=Templates(),
        give_up_s=s.notify_give_up_s,
        links=Links(lambda: _link_secret(s), public),
    )
    console = s.notify_console_file or (s.var_dir / "log" / "notifications.log")
    providers = providers or Providers(timeout_s=s.notify_provider_timeout_s, console_file=console)
    # rates and circuits on the monotonic clock, or on the test's clock when it moves time
    ticks = time.monotonic if clock is utcnow else (lambda: clock().timestamp())
    gate = Gate(ticks, failures_to_open=s.notify_breaker_failures, open_s=s.notify_breaker_open_s)
    sender = Sender(
        svc,
        delivery,
        providers,
        gate,
        max_in_flight=s.notify_max_in_flight,
        retry_after=retry_after,
        clock=clock,
    )
    endpoints = Endpoints(svc, delivery, retry_after, sender.wake, clock)
    m = svc.metrics
    depth = m.gauge("queue_depth", "Messages waiting to be sent, by priority", ["priority"])
    unacked = m.gauge("alerts_unacknowledged", "Alerts nobody has acknowledged yet")
    escalations = m.counter("escalations_total", "Alerts moved to the next role of their chain")
    circuit = m.gauge(
        "circuit_state", "Each provider's circuit: 0 closed, 1 half open, 2 open", ["provider"]
    )

    svc.provide(events.DELIVERY, delivery)
    svc.provide(events.WAKE, sender.wake)
    svc.provide(events.CLOCK, clock)

    def cap(channel: Channel) -> None:
        gate.configure(providers.provider_of(channel.url), channel.rate_per_s)

    svc.include(events.router(svc.settings, on_channel=cap))
    svc.include(acks.router())
    svc.include(api.router(NAME))
    svc.http_route("/receipts", endpoints.receipt)
    svc.http_route("/ack/", endpoints.ack)
    for event, subject in (
        (NotificationDelivered, NOTIFICATION_DELIVERED),
        (NotificationFailed, NOTIFICATION_FAILED),
        (AlertAcknowledged, ALERT_ACKNOWLEDGED),
        (AlertUnacknowledged, ALERT_UNACKNOWLEDGED),
        (NotificationRequested, NOTIFICATION_REQUESTED),  # a broadcast, to itself
    ):
        svc.publishes(event, subject)

    async def limits() -> None:
        """The providers' rate caps (channels.csv), applied to the gate at start (a row
        that arrives later applies itself: ``cap``)."""
        async with svc.unit_of_work() as uow:
            rows = await uow.places.refdata.find(Channel.TYPE)
        for row in rows:
            gate.configure(providers.provider_of(row["url"]), row["rate_per_s"])

    async def escalate() -> None:
        moved = await handlers.escalate_due(svc.unit_of_work(), delivery, clock())
        if moved:
            escalations.inc(moved)
            sender.wake()

    async def gauges() -> None:
        async with svc.unit_of_work() as uow:
            waiting = await uow.messages.depth()
            open_alerts = await uow.alerts.open_count()
        for rank, name in enumerate(("urgent", "normal", "bulk")):
            depth.labels(name).set(waiting.get(rank, 0))
        unacked.set(open_alerts)
        for provider in gate.providers():
            state = gate.breaker(provider).state
            circuit.labels(provider).set({"closed": 0, "half_open": 1, "open": 2}[state])

    @svc.on_start
    async def check_templates() -> None:
        """Every template file compiles and has its blocks: a broken one stops the start."""
        delivery.templates.check()

    svc.on_ready(limits)
    svc.on_ready(sender.start)
    svc.every(s.notify_escalation_check_s, escalate)
    svc.every(5.0, gauges)
    svc.on_stop(sender.stop)
    svc.on_closed(providers.aclose)
    svc.components.update(
        sender=sender,
        gate=gate,
        providers=providers,
        delivery=delivery,
        retry_after=retry_after,
        escalate=escalate,
        clock=clock,
    )
    return svc


def _link_secret(s: NotifySettings) -> bytes:
    """The secret that signs acknowledgement links: the setting, else one made once and
    kept beside the stores (every notify of a deployment must share it: set it there)."""
    if s.notify_link_secret:
        return s.notify_link_secret.encode()
    path = Path(s.var_dir) / "notify-link.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def asyncapi() -> FastStream:
    """The service as ``faststream docs gen --factory`` reads it (nothing is started)."""
    return build(NotifySettings.for_documents()).app
