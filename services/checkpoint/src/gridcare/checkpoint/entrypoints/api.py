"""The checkpoint's API (``api.checkpoint.<op>``): the office's and duty staff's commands
and queries, and the register for other services (screening's contact tracing)."""

from __future__ import annotations

from typing import Literal

from faststream import Context, Depends
from pydantic import Field, model_validator

from gridcare.contracts.refdata import ControlLevel
from gridcare.shared.api import ApiRouter, Request, unit_of_work
from gridcare.shared.schema import Timestamp, Token

from .. import handlers
from ..domain.state import GateState
from ..unit_of_work import CheckpointUnitOfWork
from . import STATE


class IssuePermit(Request):
    holder_id: Token
    kind: Literal["outing", "emergency", "medical"] = "outing"
    valid_from: Timestamp | None = None  # default: now
    valid_until: Timestamp
    uses: int = Field(1, ge=1, le=100)
    return_within_h: float | None = Field(None, gt=0, le=240)
    issued_by: str = Field(min_length=1, max_length=200)


class Override(Request):
    gate_id: Token
    scan_id: Token
    staff_id: Token
    reason: str = Field(min_length=3, max_length=1000)


class WhoIsOut(Request):
    compound_id: Token


class Trace(Request):
    """Around one scan (``gate_id`` + ``scan_id``) or a time at a gate or a compound."""

    gate_id: Token | None = None
    scan_id: Token | None = None
    compound_id: Token | None = None
    at: Timestamp | None = None
    minutes: float = Field(15, gt=0, le=24 * 60)
    whole_compound: bool = False  # every gate of the scan's compound, not just its gate
    limit: int = Field(1000, ge=1, le=2000)  # passages per page (a reply must fit NATS)
    after: str | None = Field(None, max_length=100)  # the "next" of the page before

    @model_validator(mode="after")
    def _one_anchor(self) -> Trace:
        if not (
            (self.gate_id and self.scan_id) or (self.at and (self.gate_id or self.compound_id))
        ):
            raise ValueError("give gate_id and scan_id, or at with gate_id or compound_id")
        return self


class Passages(Request):
    limit: int = Field(20, ge=1, le=1000)
    gate_id: Token | None = None
    person_id: Token | None = None


class SetLevel(Request):
    compound_id: Token
    level: ControlLevel
    set_by: str = Field(min_length=1, max_length=200)
    reason: str = Field("", max_length=1000)


class ShowLevels(Request):
    compound_id: Token | None = None


class ShowPolicy(Request):
    community_id: Token


def router(service: str) -> ApiRouter:
    api = ApiRouter(service)

    @api.op("permit.issue", description="Issue an outing/emergency/medical permit (quota).")
    async def issue_permit(
        req: IssuePermit,
        uow: CheckpointUnitOfWork = Depends(unit_of_work),
        state: GateState = Context(STATE),
    ) -> dict:
        return await handlers.issue_permit(
            req.holder_id,
            req.kind,
            req.valid_from,
            req.valid_until,
            req.uses,
            req.return_within_h,
            req.issued_by,
            uow,
            state,
        )

    @api.op("override", description="Duty staff let a denied person through (who and why).")
    async def override(
        req: Override,
        uow: CheckpointUnitOfWork = Depends(unit_of_work),
        state: GateState = Context(STATE),
    ) -> dict:
        return await handlers.override(
            req.gate_id, req.scan_id, req.staff_id, req.reason, uow, state
        )

    @api.op("out", description="Who of a compound is out right now.")
    async def who_is_out(req: WhoIsOut, state: GateState = Context(STATE)) -> dict:
        return handlers.who_is_out(req.compound_id, state)

    @api.op("trace", description="Who passed a gate or compound within ±N minutes.")
    async def trace(
        req: Trace,
        uow: CheckpointUnitOfWork = Depends(unit_of_work),
        state: GateState = Context(STATE),
    ) -> dict:
        return await handlers.trace(
            req.gate_id,
            req.scan_id,
            req.compound_id,
            req.at,
            req.minutes,
            req.whole_compound,
            uow,
            state,
            limit=req.limit,
            after=req.after,
        )

    @api.op("passages", description="The newest entries of the entry/exit register.")
    async def passages(
        req: Passages,
        uow: CheckpointUnitOfWork = Depends(unit_of_work),
        state: GateState = Context(STATE),
    ) -> dict:
        rows = await handlers.newest_passages(req.limit, req.gate_id, req.person_id, uow, state)
        return {"passages": rows}

    @api.op("level.set", description="Set a compound's control level (the office).")
    async def set_level(
        req: SetLevel,
        uow: CheckpointUnitOfWork = Depends(unit_of_work),
        state: GateState = Context(STATE),
    ) -> dict:
        return await handlers.office_sets_level(
            req.compound_id, req.level, req.set_by, req.reason, uow, state
        )

    @api.op("level.show", description="The level in force at each compound.")
    async def show_levels(
        req: ShowLevels,
        uow: CheckpointUnitOfWork = Depends(unit_of_work),
        state: GateState = Context(STATE),
    ) -> dict:
        return {"compounds": await handlers.levels(req.compound_id, uow, state)}

    @api.op("policy.show", description="A community's gate policy in force (with defaults).")
    async def show_policy(req: ShowPolicy, state: GateState = Context(STATE)) -> dict:
        return handlers.policy_of(req.community_id, state)

    return api
