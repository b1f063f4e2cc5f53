"""Notify's API (``api.notify.<op>``): messages and their history, broadcasts, receipts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from faststream import Context, Depends
from pydantic import Field

from gridcare.contracts.notify import Place, Priority, TemplateId
from gridcare.shared.api import ApiError, ApiRouter, Request, unit_of_work
from gridcare.shared.schema import Token

from .. import handlers
from ..unit_of_work import NotifyUnitOfWork
from .events import CLOCK, DELIVERY


class ListMessages(Request):
    limit: int = Field(20, ge=1, le=1000)
    recipient_id: str | None = Field(None, max_length=128)


class ShowMessage(Request):
    notification_id: str = Field(min_length=1, max_length=64)


class StartBroadcast(Request):
    place: Place
    place_id: Token
    template: TemplateId
    params: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = "normal"
    by: str = Field(min_length=1, max_length=200)


class BroadcastId(Request):
    broadcast_id: Token


class PostReceipt(Request):
    key: str | None = Field(None, max_length=64)
    provider_ref: str | None = Field(None, max_length=200)
    status: Literal["delivered", "failed"]
    error: str | None = Field(None, max_length=1000)


def router(service: str) -> ApiRouter:
    api = ApiRouter(service)

    @api.op("deliveries", description="The newest messages, with their state and attempts.")
    async def deliveries(req: ListMessages, uow: NotifyUnitOfWork = Depends(unit_of_work)) -> dict:
        return {"deliveries": await handlers.newest_messages(req.limit, req.recipient_id, uow)}

    @api.op("message", description="One message: its text, routes and whole history.")
    async def message(req: ShowMessage, uow: NotifyUnitOfWork = Depends(unit_of_work)) -> dict:
        return await handlers.message_detail(req.notification_id, uow)

    @api.op("broadcast.start", description="A notice to every resident of a place.")
    async def start(
        req: StartBroadcast,
        uow: NotifyUnitOfWork = Depends(unit_of_work),
        delivery: handlers.Delivery = Context(DELIVERY),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await handlers.start_broadcast(
            req.place,
            req.place_id,
            req.template,
            req.params,
            req.priority,
            req.by,
            uow,
            delivery,
            clock(),
        )

    @api.op("broadcast.status", description="How far a broadcast is: written, sent, failed.")
    async def status(req: BroadcastId, uow: NotifyUnitOfWork = Depends(unit_of_work)) -> dict:
        return await handlers.broadcast_status(req.broadcast_id, uow)

    @api.op("broadcast.cancel", description="Stop a broadcast: who has not had it, won't.")
    async def cancel(
        req: BroadcastId,
        uow: NotifyUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await handlers.cancel_broadcast(req.broadcast_id, uow, clock())

    @api.op("receipt", description="A delivery receipt (as POST /receipts takes it).")
    async def receipt(
        req: PostReceipt,
        uow: NotifyUnitOfWork = Depends(unit_of_work),
        rt: Any = Context("gridcare"),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        try:
            return await handlers.receipt(
                uow,
                clock(),
                rt.components["retry_after"],
                status=req.status,
                key=req.key,
                provider_ref=req.provider_ref,
                detail=req.error,
            )
        except handlers.UnknownMessage as exc:
            raise ApiError("unknown_message", str(exc), "key") from None

    return api
