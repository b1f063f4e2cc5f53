"""The checkpoint's request/reply API for the office, duty staff and other services.

Core NATS on ``api.checkpoint.<op>`` (never captured by a stream). Every request is JSON;
every reply is JSON, either the result or ``{"error": {"code", "detail"}}``.

- ``permit.issue``  the office issues an outing / emergency / medical permit
- ``override``      duty staff let a denied person through, with who and why
- ``out``           who of a compound is out right now
- ``trace``         who passed a gate, or any gate of a compound, within ±N minutes
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gridcare.shared import outbox, subjects
from gridcare.shared.envelope import Envelope, new_id, utcnow
from gridcare.shared.events import OverrideRecorded, PermitIssued, Timestamp, Token
from gridcare.shared.service import Service
from gridcare.shared.store import as_utc

from . import tables as T
from .domain import PermitView
from .state import GateState

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


class IssuePermit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    holder_id: Token
    kind: Literal["outing", "emergency", "medical"] = "outing"
    valid_from: Timestamp | None = None  # default: now
    valid_until: Timestamp
    uses: int = Field(1, ge=1, le=100)
    return_within_h: float | None = Field(None, gt=0, le=240)
    issued_by: str = Field(min_length=1, max_length=200)


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gate_id: Token
    scan_id: Token
    staff_id: Token
    reason: str = Field(min_length=3, max_length=1000)


class WhoIsOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    compound_id: Token


class Trace(BaseModel):
    """Around one scan (``gate_id`` + ``scan_id``) or a time at a gate or a compound."""

    model_config = ConfigDict(extra="forbid")
    gate_id: Token | None = None
    scan_id: Token | None = None
    compound_id: Token | None = None
    at: Timestamp | None = None
    minutes: float = Field(15, gt=0, le=24 * 60)
    whole_compound: bool = False  # every gate of the scan's compound, not just its gate

    @model_validator(mode="after")
    def _one_anchor(self) -> Trace:
        if not (
            (self.gate_id and self.scan_id) or (self.at and (self.gate_id or self.compound_id))
        ):
            raise ValueError("give gate_id and scan_id, or at with gate_id or compound_id")
        return self


class Api:
    def __init__(self, svc: Service, state: GateState) -> None:
        self.svc = svc
        self.state = state
        self.ops: dict[str, tuple[type[BaseModel], Callable[[Any], Awaitable[Any]]]] = {
            "permit.issue": (IssuePermit, self.issue_permit),
            "override": (Override, self.override),
            "out": (WhoIsOut, self.who_is_out),
            "trace": (Trace, self.trace),
        }
        self._subs: list = []

    async def start(self) -> None:
        for op in self.ops:
            subject = subjects.CHECKPOINT_API.format(op=op)
            self._subs.append(
                await self.svc.nc.subscribe(
                    subject, queue="gridcare-checkpoint-api", cb=self._on_msg
                )
            )
        await self.svc.nc.flush()

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()

    async def _on_msg(self, msg) -> None:
        op = msg.subject.removeprefix("api.checkpoint.")
        reply = await self.call(op, msg.data)
        if msg.reply:
            await msg.respond(json.dumps(reply, ensure_ascii=False, default=str).encode())

    async def call(self, op: str, body: bytes) -> dict[str, Any]:
        model, fn = self.ops[op]
        try:
            req = model.model_validate_json(body)
            return {"result": await fn(req)}
        except ValidationError as exc:
            return {
                "error": {
                    "code": "invalid_request",
                    "detail": [
                        {
                            "field": ".".join(str(p) for p in e["loc"]) or "(body)",
                            "error": e["msg"].removeprefix("Value error, "),
                        }
                        for e in exc.errors(include_url=False)
                    ],
                }
            }
        except ApiError as exc:
            return {"error": {"code": exc.code, "detail": [{"field": "", "error": exc.detail}]}}
        except Exception:
            log.exception("api %s failed", op)
            return {
                "error": {
                    "code": "unavailable",
                    "detail": [{"field": "", "error": "internal error; retry"}],
                }
            }

    # --- permits ---------------------------------------------------------------------------
    async def issue_permit(self, req: IssuePermit) -> dict[str, Any]:
        st = self.state
        household = st.resident_household.get(req.holder_id)
        compound = st.home_compound(req.holder_id)
        if household is None or compound is None:
            raise ApiError("unknown_person", f"{req.holder_id} is not a known resident")
        now = utcnow()
        valid_from = req.valid_from or now
        if req.valid_until <= valid_from:
            raise ApiError("invalid_request", "valid_until must be after valid_from")
        p = T.permits.c
        async with self.svc.store.transaction() as s:
            if req.kind == "outing":  # the community's quota, e.g. 1 per household per 3 days
                cp = st.community_policy_of(compound)
                quota, days = (cp.permit_quota, cp.permit_quota_days) if cp else (1, 3.0)
                since = valid_from - timedelta(days=days)
                issued = await s.scalar(
                    sa.select(sa.func.count())
                    .select_from(T.permits)
                    .where(p.household_id == household, p.kind == "outing", p.valid_from > since)
                )
                if issued >= quota:
                    raise ApiError(
                        "quota_exceeded",
                        f"household {household} already has "
                        f"{issued} outing permit(s) in {days:g} days (quota "
                        f"{quota})",
                    )
            permit_id = new_id()
            await s.execute(
                sa.insert(T.permits).values(
                    permit_id=permit_id,
                    kind=req.kind,
                    holder_id=req.holder_id,
                    household_id=household,
                    compound_id=compound,
                    valid_from=valid_from,
                    valid_until=req.valid_until,
                    uses_left=req.uses,
                    return_within_h=req.return_within_h,
                    issued_by=req.issued_by,
                    issued_at=now,
                    state="issued",
                )
            )
            ev = PermitIssued(
                permit_id=permit_id,
                kind=req.kind,
                holder_id=req.holder_id,
                household_id=household,
                compound_id=compound,
                valid_from=valid_from,
                valid_until=req.valid_until,
                uses=req.uses,
                return_within_h=req.return_within_h,
                issued_by=req.issued_by,
            )
            await outbox.add(
                s, self.svc.store, Envelope.wrap(ev, source="checkpoint"), ev.subject()
            )
        st.put_permit(
            req.holder_id,
            PermitView(
                permit_id=permit_id,
                kind=req.kind,
                valid_from=valid_from,
                valid_until=req.valid_until,
                uses_left=req.uses,
                state="issued",
                return_within_h=req.return_within_h,
            ),
        )
        self.svc.relay.wake()
        return ev.model_dump(mode="json")

    # --- overrides -------------------------------------------------------------------------
    async def override(self, req: Override) -> dict[str, Any]:
        pc = T.passages.c
        async with self.svc.store.transaction() as s:
            passage = (
                await s.execute(
                    sa.select(T.passages).where(
                        pc.gate_id == req.gate_id, pc.scan_id == req.scan_id
                    )
                )
            ).first()
            if passage is None:
                raise ApiError("not_found", f"no scan {req.scan_id} at gate {req.gate_id}")
            if passage.verdict == "allow":
                raise ApiError("not_denied", "that scan was allowed; nothing to override")
            exists = await s.scalar(
                sa.select(sa.literal(1)).where(
                    T.overrides.c.gate_id == req.gate_id, T.overrides.c.scan_id == req.scan_id
                )
            )
            if exists:
                raise ApiError("already_overridden", "that scan was overridden already")
            now = utcnow()
            await s.execute(
                sa.insert(T.overrides).values(
                    gate_id=req.gate_id,
                    scan_id=req.scan_id,
                    person_id=passage.person_id,
                    staff_id=req.staff_id,
                    reason=req.reason,
                    at=now,
                )
            )
            ev = OverrideRecorded(
                gate_id=req.gate_id,
                scan_id=req.scan_id,
                person_id=passage.person_id,
                staff_id=req.staff_id,
                reason=req.reason,
                original_verdict=passage.verdict,
                at=now,
            )
            await outbox.add(
                s, self.svc.store, Envelope.wrap(ev, source="checkpoint"), ev.subject()
            )
        self.state.passed(
            passage.compound_id,
            passage.person_id,
            passage.gate_id,
            passage.direction,
            passage.scanned_at,
        )
        self.svc.relay.wake()
        return ev.model_dump(mode="json")

    # --- queries ---------------------------------------------------------------------------
    async def who_is_out(self, req: WhoIsOut) -> dict[str, Any]:
        """Residents of the compound whose last passage through its gates was an exit that
        was let through (allowed, or overridden by duty staff): from memory
        (``GateState.last_passed``), which the register keeps current."""
        out = self.state.out_of(req.compound_id)
        return {
            "compound_id": req.compound_id,
            "count": len(out),
            "out": [
                {"person_id": person, "gate_id": gate, "since": at.isoformat()}
                for person, gate, at in out
            ],
        }

    async def trace(self, req: Trace) -> dict[str, Any]:
        pc = T.passages.c
        gate, compound, at = req.gate_id, req.compound_id, req.at
        async with self.svc.store.sessions() as s:
            if req.scan_id:
                anchor = (
                    await s.execute(
                        sa.select(pc.scanned_at, pc.compound_id).where(
                            pc.gate_id == req.gate_id, pc.scan_id == req.scan_id
                        )
                    )
                ).first()
                if anchor is None:
                    raise ApiError("not_found", f"no scan {req.scan_id} at gate {gate}")
                at = as_utc(anchor.scanned_at)
                if req.whole_compound:
                    gate, compound = None, anchor.compound_id
            window = timedelta(minutes=req.minutes)
            q = sa.select(
                pc.person_id, pc.gate_id, pc.direction, pc.verdict, pc.scanned_at, pc.scan_id
            ).where(pc.scanned_at.between(at - window, at + window))
            q = q.where(pc.gate_id == gate) if gate else q.where(pc.compound_id == compound)
            rows = (await s.execute(q.order_by(pc.scanned_at))).all()
        return {
            "from": (at - window).isoformat(),
            "to": (at + window).isoformat(),
            "passages": [
                {
                    "person_id": r.person_id,
                    "gate_id": r.gate_id,
                    "scan_id": r.scan_id,
                    "direction": r.direction,
                    "verdict": r.verdict,
                    "scanned_at": as_utc(r.scanned_at).isoformat(),
                }
                for r in rows
            ],
        }
