"""Screening's service layer: one function per command or event.

Each loads through the unit of work, calls the domain, commits (events to the outbox, the
message to the inbox, in the same transaction). Queries read straight from the
repositories.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gridcare.contracts.checkpoint import FeverDetected
from gridcare.contracts.screening import CaseOpened, PersonStatusChanged
from gridcare.shared import projection
from gridcare.shared.envelope import stable_id, utcnow
from gridcare.shared.errors import ApiError
from gridcare.shared.localtime import iso

from .domain import cases, status
from .domain.status import HealthStatus, StatusDecision
from .unit_of_work import ScreeningUnitOfWork


async def reference_data_changed(entity: Any, uow: ScreeningUnitOfWork) -> None:
    """Keep screening's copy of a row of reference data (the kinds it needs)."""
    await projection.keep(entity, uow)


async def fever_detected(ev: FeverDetected, uow: ScreeningUnitOfWork) -> None:
    """A fever at a gate opens the person's fever case, or is added to the open one."""
    async with uow:
        case, reading, new = cases.fever_at_gate(
            await uow.cases.open_case_of(ev.person_id, "fever"),
            person_id=ev.person_id,
            gate_id=ev.gate_id,
            scan_id=ev.scan_id,
            temperature_c=ev.temperature_c,
            scanned_at=ev.scanned_at,
            now=utcnow(),
        )
        if new:
            await uow.cases.add(case)
            uow.emit(
                CaseOpened(
                    case_id=case.case_id,
                    kind="fever",
                    person_id=case.person_id,
                    opened_at=case.opened_at,
                    reason=case.reason,
                    source_ref=case.source_ref,
                    temperature_c=ev.temperature_c,
                    gate_id=ev.gate_id,
                    observed_at=ev.scanned_at,
                )
            )
        await uow.cases.observe(case, reading)
        await uow.commit()


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
async def newest_cases(
    limit: int, person_id: str | None, uow: ScreeningUnitOfWork
) -> list[dict[str, Any]]:
    async with uow:
        found = await uow.cases.newest(limit, person_id)
        zones = {p: await uow.places.zone_of_person(p) for p in {c.person_id for c in found}}
    return [
        {
            "case_id": c.case_id,
            "person_id": c.person_id,
            "kind": c.kind,
            "status": c.status,
            "opened_at": iso(c.opened_at, zones[c.person_id]),
            "reason": c.reason,
            "source_ref": c.source_ref,
        }
        for c in found
    ]


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
