"""The streams notify consumes (durable consumers under the reliable policy): the requests
of every service, one consumer per priority (an urgent request is never queued behind a
broadcast being expanded), the replays of messages given up on, and reference data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from faststream import Context, Depends

from gridcare.contracts import notify, refdata
from gridcare.contracts.notify import NotificationRequested, NotificationRetryRequested
from gridcare.shared.consumers import ConsumerRouter, message_uow
from gridcare.shared.envelope import Envelope
from gridcare.shared.settings import Settings

from .. import handlers
from ..unit_of_work import NotifyUnitOfWork

DELIVERY = "notify_delivery"  # the FastStream context key of handlers.Delivery
WAKE = "notify_wake"  # ... and of the sender's wake-up
CLOCK = "notify_clock"  # ... and of what "now" is (tests move it)


def router(settings: Settings, on_channel: Callable[[refdata.Channel], None]) -> ConsumerRouter:
    """``on_channel``: a provider's row kept (its rate cap applies at once)."""
    r = ConsumerRouter(settings)

    async def reference(entity: Any, uow: NotifyUnitOfWork) -> None:
        await handlers.reference_data_changed(entity, uow)
        if isinstance(entity, refdata.Channel):
            on_channel(entity)

    r.projection(
        refdata.ALL,
        durable="notify-refdata-2",  # (2: its tables grew; a new one replays them all)
        stream=refdata.STREAM,
        types=refdata.TYPES,
        handle=reference,
        description="Who is reached how: people, roles, chat groups, providers, policies.",
    )

    for priority, durable, workers in (
        ("urgent", "notify-requests-urgent", 8),
        ("normal", "notify-requests", 8),
        ("bulk", "notify-requests-bulk", 2),
    ):

        @r.consumer(
            notify.NOTIFICATION_REQUESTED.format(priority=priority),
            durable=durable,
            stream=notify.REQUESTS,
            workers=workers,
            description=f"{priority.capitalize()} requests for a message to reach people.",
        )
        async def requested(
            env: Envelope[NotificationRequested],
            uow: NotifyUnitOfWork = Depends(message_uow),
            delivery: handlers.Delivery = Context(DELIVERY),
            wake: Callable[[bool], None] = Context(WAKE),
            clock: Callable[[], datetime] = Context(CLOCK),
        ) -> None:
            await handlers.request(env.data, uow, delivery, clock())
            wake(env.data.priority == "urgent")

    @r.consumer(
        notify.NOTIFICATION_RETRY,
        durable="notify-retries",
        stream=notify.REQUESTS,
        description="A message given up on, sent once more (a dead letter replayed).",
    )
    async def retried(
        env: Envelope[NotificationRetryRequested],
        uow: NotifyUnitOfWork = Depends(message_uow),
        delivery: handlers.Delivery = Context(DELIVERY),
        wake: Callable[[bool], None] = Context(WAKE),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> Any:
        await handlers.retry(env.data.notification_id, uow, delivery, clock())
        wake(False)

    return r
