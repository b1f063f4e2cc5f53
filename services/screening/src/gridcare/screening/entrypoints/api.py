"""Screening's API (``api.screening.<op>``): the office's queries and commands."""

from __future__ import annotations

from faststream import Depends
from pydantic import Field

from gridcare.shared.api import ApiRouter, Empty, Request, unit_of_work
from gridcare.shared.schema import Timestamp, Token

from ..domain.status import HealthStatus
from ..handlers import status
from ..unit_of_work import ScreeningUnitOfWork


class ListCases(Request):
    limit: int = Field(20, ge=1, le=1000)
    person_id: Token | None = None


class SetStatus(Request):
    person_id: Token
    status: HealthStatus
    set_by: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=3, max_length=1000)
    until: Timestamp | None = None


class ShowStatus(Request):
    person_id: Token


def router(service: str) -> ApiRouter:
    api = ApiRouter(service)

    @api.op("cases", description="The newest cases (of one person), times on the local clock.")
    async def cases(req: ListCases, uow: ScreeningUnitOfWork = Depends(unit_of_work)) -> dict:
        return {"cases": await cases.newest_cases(req.limit, req.person_id, uow)}

    @api.op("status.set", description="Record a person's health status (PersonStatusChanged).")
    async def set_status(req: SetStatus, uow: ScreeningUnitOfWork = Depends(unit_of_work)) -> dict:
        d = await status.set_status(
            req.person_id, req.status, req.set_by, req.reason, req.until, uow
        )
        return {
            "person_id": d.person_id,
            "status": d.status.value,
            "holds_at_gate": d.holds_at_gate,
        }

    @api.op("status.show", description="A person's health status and its history.")
    async def show_status(
        req: ShowStatus, uow: ScreeningUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        return await status.status_of(req.person_id, uow)

    @api.op("status.list", description="The statuses, and which hold a person at the gate.")
    async def list_statuses(req: Empty) -> dict:
        return {"statuses": status.statuses()}

    return api
