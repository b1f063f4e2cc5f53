"""Notify's service layer: one function per event it takes, one per query.

Every message goes out through :func:`deliver`, which never calls a provider inside a
transaction: the delivery row is committed (pending), the provider is called, and the
outcome is committed with ``NotificationDelivered`` and the inbox record.
"""

from __future__ import annotations

from typing import Any

from gridcare.contracts.checkpoint import GateCameOnline, GateSendingBadInput, GateWentOffline
from gridcare.contracts.dispatch import TaskCreated
from gridcare.contracts.notify import NotificationDelivered
from gridcare.shared import projection
from gridcare.shared.envelope import utcnow
from gridcare.shared.errors import Permanent
from gridcare.shared.localtime import iso

from .adapters.chat import Chat, DeliveryFailed
from .domain import messages
from .domain.deliveries import Delivery, notification_id
from .unit_of_work import NotifyUnitOfWork


async def reference_data_changed(entity: Any, uow: NotifyUnitOfWork) -> None:
    """Keep notify's copy of a row of reference data (the kinds it needs)."""
    await projection.keep(entity, uow)


async def deliver(
    uow: NotifyUnitOfWork,
    chat: Chat,
    draft: Delivery,
    *,
    chat_url: str,
    title: str,
    urgent: bool,
) -> None:
    """Send ``draft`` once: intent committed, provider called, outcome committed.

    A provider failure is recorded on the delivery and raised: the message is redelivered
    with a growing delay and the same delivery is attempted again, then dead-lettered."""
    async with uow:
        known = await uow.deliveries.get(draft.notification_id)
        if known is not None and known.sent:
            await uow.commit()  # sent already (for an earlier copy of this message)
            return
        delivery = draft if known is None else known.attempt()
        await uow.deliveries.save(delivery)
        await uow.commit(handled=False)
    try:
        await chat.send(chat_url, delivery.notification_id, title, delivery.body, urgent=urgent)
    except DeliveryFailed as exc:
        async with uow:
            await uow.deliveries.save(delivery.failed(str(exc)))
            await uow.commit(handled=False)
        raise
    async with uow:
        done = delivery.delivered(utcnow())
        await uow.deliveries.save(done)
        uow.emit(
            NotificationDelivered(
                notification_id=done.notification_id,
                recipient_id=done.recipient_id,
                channel=done.channel,
                cause_type=done.cause_type,
                delivered_at=done.delivered_at,
            )
        )
        await uow.commit()


async def task_created(ev: TaskCreated, cause: str, uow: NotifyUnitOfWork, chat: Chat) -> None:
    """A task for a grid worker: a chat alert in their language, to their grid's group."""
    async with uow:
        grid = await uow.places.grid(ev.grid_id)
        zone = grid and await uow.places.zone_of_community(grid["community_id"])
    if grid is None or grid["worker_id"] != ev.assignee_id:
        raise LookupError(f"no chat channel known for {ev.assignee_id} of grid {ev.grid_id}")
    lang, title, body = messages.task(ev.summary, grid["worker_language"], ev.urgent)
    draft = Delivery(
        notification_id=notification_id("chat", ev.task_id, ev.assignee_id),
        recipient_id=ev.assignee_id,
        channel="chat",
        cause_event_id=cause,
        cause_type=TaskCreated.TYPE,
        language=lang,
        body=body,
        time_zone=zone,
        created_at=utcnow(),
    )
    await deliver(uow, chat, draft, chat_url=grid["chat_url"], title=title, urgent=ev.urgent)


async def gate_status_changed(
    ev: GateWentOffline | GateCameOnline | GateSendingBadInput,
    cause: str,
    uow: NotifyUnitOfWork,
    chat: Chat,
) -> None:
    """Tell the gate's duty staff, in their chat (the gate's ``duty_chat_url``): it went
    offline, came back, or is sending bad messages.

    A gate not (yet) in the reference data is retried, then dead-lettered. A gate without a
    ``duty_chat_url`` cannot be alerted: dead-lettered at once with that reason, for ops to
    add the column to gates.csv, re-import, and replay it."""
    async with uow:
        gate = await uow.places.gate(ev.gate_id)
        zone = await uow.places.zone_of_compound(ev.compound_id)
    if gate is None:
        raise LookupError(f"gate {ev.gate_id} is not in the reference data")
    if not gate["duty_chat_url"]:
        raise Permanent(f"gate {ev.gate_id} has no duty_chat_url")
    where = messages.gate_name(ev.gate_id, ev.compound_id, gate["name"])
    if isinstance(ev, GateWentOffline):
        title, body = messages.gate_offline(ev.gate_id, where, ev.last_seen_at, ev.silent_s, zone)
    elif isinstance(ev, GateSendingBadInput):
        title, body = messages.gate_bad_input(
            ev.gate_id, where, ev.kind, ev.reason, ev.recorded_per_minute, ev.at, zone
        )
    else:
        title, body = messages.gate_online(ev.gate_id, where, ev.at, zone)
    draft = Delivery(
        notification_id=notification_id("chat", "gate-duty", cause),
        recipient_id=f"duty:{ev.gate_id}",
        channel="chat",
        cause_event_id=cause,
        cause_type=ev.TYPE,
        language="zh+en",
        body=body,
        time_zone=zone,
        created_at=utcnow(),
    )
    urgent = isinstance(ev, GateWentOffline)
    await deliver(uow, chat, draft, chat_url=gate["duty_chat_url"], title=title, urgent=urgent)


# --- queries ------------------------------------------------------------------------------
async def newest_deliveries(limit: int, uow: NotifyUnitOfWork) -> list[dict[str, Any]]:
    async with uow:
        found = await uow.deliveries.newest(limit)
    return [
        {
            "notification_id": d.notification_id,
            "recipient_id": d.recipient_id,
            "channel": d.channel,
            "cause_type": d.cause_type,
            "language": d.language,
            "status": d.status,
            "attempts": d.attempts,
            "last_error": d.last_error,
            "created_at": iso(d.created_at, d.time_zone),
            "delivered_at": iso(d.delivered_at, d.time_zone),
            "body": d.body,
        }
        for d in found
    ]
