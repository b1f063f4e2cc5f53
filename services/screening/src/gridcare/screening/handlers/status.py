"""Each person's health status: recorded decisions, each a ``PersonStatusChanged``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gridcare.contracts.screening import PersonStatusChanged
from gridcare.shared.envelope import stable_id, utcnow
from gridcare.shared.errors import ApiError
from gridcare.shared.localtime import iso

from ..domain import status
from ..domain.status import HealthStatus, StatusDecision
from ..unit_of_work import ScreeningUnitOfWork


async def set_status(
    person_id: str,
    new_status: HealthStatus,
    set_by: str,
    reason: str,
    until: datetime | None,
    uow: ScreeningUnitOfWork,
) -> StatusDecision:
    """Record a decision about a person; every change is a ``PersonStatusChanged`` saying
    whether it holds them at the gate."""
    async with uow:
        household = await uow.places.household_of(person_id)
        if household is None:
            raise ApiError("unknown_person", f"{person_id} is not a known resident", "person_id")
        decision = StatusDecision(person_id, new_status, set_by, reason, utcnow(), until)
        try:
            decision = status.decide(await uow.statuses.get(person_id), decision)
        except status.OutOfOrder as exc:
            raise ApiError("out_of_order", str(exc)) from None
        await uow.statuses.record(decision)
        uow.emit(
            PersonStatusChanged(
                person_id=person_id,
                status=decision.status.value,
                holds_at_gate=decision.holds_at_gate,
                status_label=status.LABELS[decision.status],
                household_id=household,
                until=until,
                decided_at=decision.at,
            ),
            event_id=stable_id("PersonStatusChanged", person_id, decision.at.isoformat()),
        )
        await uow.commit()
    return decision


# --- queries ------------------------------------------------------------------------------
def _decision(d: StatusDecision, zone: str | None) -> dict[str, Any]:
    return {
        "status": d.status.value,
        "holds_at_gate": d.holds_at_gate,
        "set_by": d.set_by,
        "reason": d.reason,
        "at": iso(d.at, zone),
        "until": iso(d.until, zone),
    }


async def status_of(person_id: str, uow: ScreeningUnitOfWork) -> dict[str, Any]:
    async with uow:
        if await uow.places.household_of(person_id) is None:
            raise ApiError("unknown_person", f"{person_id} is not a known resident", "person_id")
        zone = await uow.places.zone_of_person(person_id)
        current = await uow.statuses.get(person_id)
        history = await uow.statuses.history(person_id)
    now = current or StatusDecision(person_id, HealthStatus.NORMAL, "", "", utcnow())
    return {
        "person_id": person_id,
        "status": now.status.value,
        "holds_at_gate": now.holds_at_gate,
        "history": [_decision(d, zone) for d in history],
    }


def statuses() -> list[dict[str, Any]]:
    return [
        {"status": s.value, "holds_at_gate": status.holds_at_gate(s), **status.LABELS[s]}
        for s in HealthStatus
    ]
