"""Notify's API (``api.notify.<op>``): the office's queries."""

from __future__ import annotations

from faststream import Depends
from pydantic import Field

from gridcare.shared.api import ApiRouter, Request, unit_of_work

from .. import handlers
from ..unit_of_work import NotifyUnitOfWork


class ListDeliveries(Request):
    limit: int = Field(20, ge=1, le=1000)


def router(service: str) -> ApiRouter:
    api = ApiRouter(service)

    @api.op("deliveries", description="The newest deliveries, sent or pending, with attempts.")
    async def deliveries(
        req: ListDeliveries, uow: NotifyUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        return {"deliveries": await handlers.newest_deliveries(req.limit, uow)}

    return api
