"""Screening's API (``api.screening.<op>``): the office's queries and commands."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from faststream import Context, Depends
from pydantic import AliasChoices, Field, model_validator

from gridcare.contracts.edge import Symptom
from gridcare.shared.api import ApiRouter, Empty, Request, unit_of_work
from gridcare.shared.schema import Timestamp, Token

from ..domain.checkins import MemberResult, Visit
from ..domain.status import HealthStatus, Role
from ..handlers import campaigns, status
from ..handlers import cases as case_handlers
from ..handlers import checkins as checkin_handlers
from ..handlers import compounds as compound_handlers
from ..handlers import contacts as contact_handlers
from ..handlers import followup as followup_handlers
from ..handlers import quarantine as quarantine_handlers
from ..handlers import questionnaires as questionnaire_handlers
from ..unit_of_work import ScreeningUnitOfWork
from . import CLOCK


class ListCases(Request):
    limit: int = Field(20, ge=1, le=1000)
    person_id: Token | None = None


class SetStatus(Request):
    """A step of the status machine by a member of staff (``by``, a staff or grid worker
    id; for ``lab``, the lab's name) in ``role`` (omitted: their one role)."""

    person_id: Token
    status: HealthStatus
    by: str = Field(min_length=1, max_length=200, validation_alias=AliasChoices("by", "set_by"))
    role: Role | None = None
    reason: str = Field(min_length=3, max_length=1000)
    until: Timestamp | None = None


class ShowStatus(Request):
    person_id: Token


# --- check-ins, door visits, follow-up ----------------------------------------------------
class VisitMember(Request):
    person_id: Token
    temperature_c: float | None = Field(None, ge=34.0, le=43.0)
    symptoms: list[Symptom] = Field(default_factory=list, max_length=10)
    not_at_home: bool = False


class RecordVisit(Request):
    """A grid worker's door-to-door visit to a household, each member's result (those at
    home: that day's check-in, reported by the worker). ``visit_id`` is its idempotency key."""

    visit_id: Token
    worker_id: Token
    household_id: Token
    visited_at: Timestamp
    members: list[VisitMember] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _each_member_once(self) -> RecordVisit:
        ids = [m.person_id for m in self.members]
        if len(set(ids)) != len(ids):
            raise ValueError("a member is named more than once")
        return self


class PersonRef(Request):
    person_id: Token


def router(service: str) -> ApiRouter:
    api = ApiRouter(service)

    @api.op("cases", description="The newest cases (of one person), times on the local clock.")
    async def cases(req: ListCases, uow: ScreeningUnitOfWork = Depends(unit_of_work)) -> dict:
        return {"cases": await case_handlers.newest_cases(req.limit, req.person_id, uow)}

    @api.op(
        "status.set",
        description="A step of the health status machine by a member of staff in a role "
        "(PersonStatusChanged); refused with what is allowed if the table does not allow it.",
    )
    async def set_status(
        req: SetStatus,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        d = await status.set_status(
            uow,
            req.person_id,
            req.status,
            by=req.by,
            role=req.role,
            reason=req.reason,
            now=clock(),
            until=req.until,
        )
        return {
            "person_id": d.person_id,
            "status": d.status.value,
            "previous_status": d.previous.value if d.previous else None,
            "role": d.role,
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

    @api.op(
        "status.transitions",
        description="The health status machine as data: every allowed step, who may take "
        "it, and which are steps back (a reason required).",
    )
    async def status_transitions(req: Empty) -> dict:
        return status.transitions()

    @api.op(
        "visits.record",
        description="A grid worker's door visit: each member's temperature and symptoms, or "
        "not at home; those at home get that day's check-in (idempotent by visit_id).",
    )
    async def visits_record(
        req: RecordVisit,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        visit = Visit(
            req.visit_id,
            req.household_id,
            req.worker_id,
            req.visited_at,
            req.visited_at.date(),  # the local day is the handler's to say
            tuple(
                MemberResult(m.person_id, m.temperature_c, tuple(m.symptoms), m.not_at_home)
                for m in req.members
            ),
        )
        return await checkin_handlers.record_visit(visit, uow, clock())

    @api.op("checkins.list", description="A resident's check-ins, newest day first.")
    async def checkins_list(
        req: PersonRef, uow: ScreeningUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        return await checkin_handlers.checkins_of(req.person_id, uow)

    @api.op("followup.show", description="A person's follow-up periods and their days.")
    async def followup_show(
        req: PersonRef, uow: ScreeningUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        return await followup_handlers.follow_up_of(req.person_id, uow)

    return api
