"""Cases: a fever at a gate opens the person's fever case (or feeds the open one)."""

from __future__ import annotations

from typing import Any

from gridcare.contracts.checkpoint import FeverDetected
from gridcare.contracts.screening import CaseOpened
from gridcare.shared.envelope import utcnow
from gridcare.shared.localtime import iso

from ..domain import cases
from ..unit_of_work import ScreeningUnitOfWork


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
