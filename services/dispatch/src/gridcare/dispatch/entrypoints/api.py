"""Dispatch's API (``api.dispatch.<op>``): the office's queries."""

from __future__ import annotations

from faststream import Depends
from pydantic import Field

from gridcare.shared.api import ApiRouter, Request, unit_of_work
from gridcare.shared.schema import Token

from .. import handlers
from ..unit_of_work import DispatchUnitOfWork


class ListTasks(Request):
    limit: int = Field(20, ge=1, le=1000)
    assignee_id: Token | None = None


def router(service: str) -> ApiRouter:
    api = ApiRouter(service)

    @api.op("tasks", description="The newest field tasks (of one worker), on the local clock.")
    async def list_tasks(req: ListTasks, uow: DispatchUnitOfWork = Depends(unit_of_work)) -> dict:
        return {"tasks": await handlers.newest_tasks(req.limit, req.assignee_id, uow)}

    return api
