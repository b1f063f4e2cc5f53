"""Notify entry points: a task for a grid worker becomes a chat alert in their language."""

from __future__ import annotations

import sqlalchemy as sa

from gridcare.shared import subjects
from gridcare.shared.consumer import HandlerContext
from gridcare.shared.envelope import stable_id, utcnow
from gridcare.shared.events import Grid, NotificationDelivered, TaskCreated
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings

from . import tables as T
from .channels import send_chat

NAME = "notify"

TITLES = {"zh": "新任务", "en": "New task"}


def build(settings: Settings | None = None) -> Service:
    svc = Service(NAME, T.metadata, T.MIGRATIONS, settings)
    svc.project(Grid, T.grids)
    svc.handles(
        TaskCreated,
        durable="notify-tasks",
        subject=subjects.TASK_CREATED.format(kind="*"),
        stream=subjects.DISPATCH,
    )(on_task_created)
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
    title = pick(TITLES, lang)[1]
    await send_chat(grid.chat_url, notification_id, title, body)
    now = utcnow()
    await s.execute(
        sa.insert(T.deliveries).values(
            notification_id=notification_id,
            recipient_id=ev.assignee_id,
            channel="chat",
            cause_event_id=ctx.envelope.event_id,
            cause_type=ctx.envelope.type,
            language=lang,
            body=body,
            delivered_at=now,
        )
    )
    await ctx.emit(
        NotificationDelivered(
            notification_id=notification_id,
            recipient_id=ev.assignee_id,
            channel="chat",
            cause_type=ctx.envelope.type,
            delivered_at=now,
        )
    )
