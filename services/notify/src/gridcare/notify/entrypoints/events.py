"""The streams notify consumes (durable consumers under the reliable policy)."""

from __future__ import annotations

from typing import Any

from faststream import Context, Depends

from gridcare.contracts import checkpoint, dispatch, refdata
from gridcare.contracts.checkpoint import GateCameOnline, GateSendingBadInput, GateWentOffline
from gridcare.contracts.dispatch import TaskCreated
from gridcare.shared.consumers import ConsumerRouter, message_uow
from gridcare.shared.envelope import Envelope
from gridcare.shared.settings import Settings

from .. import handlers
from ..adapters.chat import Chat
from ..unit_of_work import NotifyUnitOfWork

CHAT = "chat"  # the FastStream context key of the chat channel (bootstrap provides it)
GATE_EVENTS = {e.TYPE: e for e in (GateWentOffline, GateCameOnline, GateSendingBadInput)}


def router(settings: Settings) -> ConsumerRouter:
    r = ConsumerRouter(settings)

    r.projection(
        refdata.ALL,
        durable="notify-refdata",
        stream=refdata.STREAM,
        types=refdata.TYPES,
        handle=handlers.reference_data_changed,
        description="Grid and duty chats, and the community's clock.",
    )

    @r.consumer(
        dispatch.TASK_CREATED.format(kind="*"),
        durable="notify-tasks",
        stream=dispatch.STREAM,
        description="A task for a grid worker: a chat alert in their language.",
    )
    async def task_created(
        env: Envelope[TaskCreated],
        uow: NotifyUnitOfWork = Depends(message_uow),
        chat: Chat = Context(CHAT),
    ) -> None:
        await handlers.task_created(env.data, env.event_id, uow, chat)

    # Offline, online and bad input on one consumer, one at a time: a gate's alerts are
    # taken in the order they were published (each says when it happened).
    @r.consumer(
        checkpoint.GATE_STATUS_ALL,
        durable="notify-gates",
        stream=checkpoint.STREAM,
        workers=1,
        description="A gate went offline, came back, or sends bad messages: its duty staff's chat.",
    )
    async def gate_status(
        env: Envelope[dict[str, Any]],
        uow: NotifyUnitOfWork = Depends(message_uow),
        chat: Chat = Context(CHAT),
    ) -> None:
        kind = GATE_EVENTS.get(env.type)
        if kind is not None:
            await handlers.gate_status_changed(
                kind.model_validate(env.data), env.event_id, uow, chat
            )

    return r
