"""Notify entry points: a task for a grid worker becomes a chat alert in their language;
a gate going offline (or coming back) becomes an alert in its duty staff's chat."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from gridcare.shared import subjects
from gridcare.shared.consumer import HandlerContext, Permanent
from gridcare.shared.envelope import stable_id, utcnow
from gridcare.shared.events import (
    Gate,
    GateCameOnline,
    GateWentOffline,
    Grid,
    NotificationDelivered,
    TaskCreated,
)
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings

from . import tables as T
from .channels import send_chat

NAME = "notify"

TITLES = {"zh": "新任务", "en": "New task"}
URGENT_TITLES = {"zh": "【紧急】新任务", "en": "URGENT: new task"}

# checkpoint.gate.offline.<gate_id> and checkpoint.gate.online.<gate_id> on one consumer, so
# a gate's alerts are taken in the order they were published (a retried one can still come
# after the next: each message says when it happened).
GATE_STATUS = "checkpoint.gate.>"


def build(settings: Settings | None = None) -> Service:
    svc = Service(NAME, T.metadata, T.MIGRATIONS, settings)
    svc.project(Grid, T.grids)
    svc.project(Gate, T.gates)
    svc.handles(
        TaskCreated,
        durable="notify-tasks",
        subject=subjects.TASK_CREATED.format(kind="*"),
        stream=subjects.DISPATCH,
    )(on_task_created)
    for model in (GateWentOffline, GateCameOnline):
        svc.handles(model, durable="notify-gates", subject=GATE_STATUS, stream=subjects.CHECKPOINT)(
            on_gate_status
        )
    return svc


def pick(texts: dict[str, str], language: str) -> tuple[str, str]:
    """The text in ``language``, else its base language, else Chinese, else English."""
    for lang in (language, language.split("-")[0], "zh", "en"):
        if lang in texts:
            return lang, texts[lang]
    lang = next(iter(texts))
    return lang, texts[lang]


async def on_task_created(ctx: HandlerContext, ev: TaskCreated) -> None:
    s = ctx.session
    notification_id = stable_id("chat", ev.task_id, ev.assignee_id)
    if await s.scalar(
        sa.select(sa.literal(1)).where(T.deliveries.c.notification_id == notification_id)
    ):
        return
    grid = (await s.execute(sa.select(T.grids).where(T.grids.c.grid_id == ev.grid_id))).first()
    if grid is None or grid.worker_id != ev.assignee_id:
        raise LookupError(f"no chat channel known for {ev.assignee_id} of grid {ev.grid_id}")
    lang, body = pick(ev.summary, grid.worker_language)
    title = pick(URGENT_TITLES if ev.urgent else TITLES, lang)[1]
    await send_chat(grid.chat_url, notification_id, title, body, urgent=ev.urgent)
    await record_delivery(ctx, notification_id, ev.assignee_id, lang, body)


async def record_delivery(
    ctx: HandlerContext, notification_id: str, recipient_id: str, language: str, body: str
) -> None:
    """The delivery row (the guard against sending twice) and its event, in this
    transaction."""
    now = utcnow()
    await ctx.session.execute(
        sa.insert(T.deliveries).values(
            notification_id=notification_id,
            recipient_id=recipient_id,
            channel="chat",
            cause_event_id=ctx.envelope.event_id,
            cause_type=ctx.envelope.type,
            language=language,
            body=body,
            delivered_at=now,
        )
    )
    await ctx.emit(
        NotificationDelivered(
            notification_id=notification_id,
            recipient_id=recipient_id,
            channel="chat",
            cause_type=ctx.envelope.type,
            delivered_at=now,
        )
    )


def when(t: datetime) -> str:
    """A time as staff read it, in the offset it was reported with."""
    offset = t.strftime("%z")  # +0800
    zone = f"UTC{offset[:3]}:{offset[3:]}" if offset not in ("", "+0000") else "UTC"
    return f"{t:%Y-%m-%d %H:%M:%S} {zone}"


def gate_status_text(gate, ev: GateWentOffline | GateCameOnline) -> tuple[str, str]:
    """(title, body) for a gate's duty staff: Chinese and English in one message, because
    a gate (unlike a grid worker) has no language of its own."""
    where = f"{gate.name} ({ev.gate_id}, {ev.compound_id})" if gate.name else ev.gate_id
    if isinstance(ev, GateWentOffline):
        seen = when(ev.last_seen_at) if ev.last_seen_at else None
        zh_seen = f"最后一次心跳 {seen}" if seen else "启动以来未收到心跳"
        en_seen = f"last heartbeat {seen}" if seen else "no heartbeat since start"
        silent = f"{ev.silent_s:.0f}"
        title = f"【紧急】门岗离线 / URGENT: gate offline — {ev.gate_id}"
        body = (
            f"门岗 {where} 已离线：{zh_seen}，已 {silent} 秒无响应。"
            "请立即到岗检查设备，恢复前请人工值守登记。\n"
            f"Gate {where} is offline: {en_seen}, silent for {silent} s. "
            "Check the device now and staff the gate by hand until it is back."
        )
    else:
        at = when(ev.at)
        title = f"门岗恢复在线 / Gate back online — {ev.gate_id}"
        body = (
            f"门岗 {where} 已于 {at} 恢复在线，可恢复自动测温核验。\n"
            f"Gate {where} came back online at {at}; automatic screening has resumed."
        )
    return title, body


async def on_gate_status(ctx: HandlerContext, ev: GateWentOffline | GateCameOnline) -> None:
    """Tell the gate's duty staff, in their chat (the gate's ``duty_chat_url``).

    A gate without a ``duty_chat_url`` cannot be alerted: the event is dead-lettered at once
    (``Permanent``) with the reason "gate <id> has no duty_chat_url", for ops to see with
    ``gridcare dead-letters notify``; add the column to gates.csv, re-import, and replay it.
    (Notify does not know buildings, so it cannot fall back to the compound's grid chats.)
    A gate not (yet) in the reference data is retried, then dead-lettered.
    """
    s = ctx.session
    notification_id = stable_id("chat", "gate-duty", ctx.envelope.event_id)
    if await s.scalar(
        sa.select(sa.literal(1)).where(T.deliveries.c.notification_id == notification_id)
    ):
        return
    gate = (await s.execute(sa.select(T.gates).where(T.gates.c.gate_id == ev.gate_id))).first()
    if gate is None:
        raise LookupError(f"gate {ev.gate_id} is not in the reference data")
    if not gate.duty_chat_url:
        raise Permanent(f"gate {ev.gate_id} has no duty_chat_url")
    title, body = gate_status_text(gate, ev)
    offline = isinstance(ev, GateWentOffline)
    await send_chat(gate.duty_chat_url, notification_id, title, body, urgent=offline)
    await record_delivery(ctx, notification_id, f"duty:{ev.gate_id}", "zh+en", body)
