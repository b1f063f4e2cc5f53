"""Screening entry points: fever at a gate opens (or feeds) a fever case."""

from __future__ import annotations

import sqlalchemy as sa

from gridcare.shared import subjects
from gridcare.shared.consumer import HandlerContext
from gridcare.shared.envelope import stable_id, utcnow
from gridcare.shared.events import CaseOpened, FeverDetected, Resident
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings

from . import tables as T

NAME = "screening"


def build(settings: Settings | None = None) -> Service:
    svc = Service(NAME, T.metadata, T.MIGRATIONS, settings)
    svc.project(Resident, T.residents)
    svc.handles(
        FeverDetected,
        durable="screening-fever",
        subject=subjects.FEVER_DETECTED.format(gate_id="*"),
        stream=subjects.CHECKPOINT,
    )(on_fever)
    return svc


async def on_fever(ctx: HandlerContext, ev: FeverDetected) -> None:
    """One open fever case per person; a further fever reading is added to it."""
    s = ctx.session
    source = f"scan:{ev.gate_id}:{ev.scan_id}"
    case_id = await s.scalar(
        sa.select(T.cases.c.case_id).where(
            T.cases.c.person_id == ev.person_id,
            T.cases.c.kind == "fever",
            T.cases.c.status == "open",
        )
    )
    if case_id is None:
        case_id = stable_id("fever-case", ev.gate_id, ev.scan_id)
        reason = f"temperature {ev.temperature_c:.1f} °C at gate {ev.gate_id}"
        await s.execute(
            sa.insert(T.cases).values(
                case_id=case_id,
                person_id=ev.person_id,
                kind="fever",
                status="open",
                opened_at=utcnow(),
                reason=reason,
                source_ref=source,
            )
        )
        await ctx.emit(
            CaseOpened(
                case_id=case_id,
                kind="fever",
                person_id=ev.person_id,
                opened_at=utcnow(),
                reason=reason,
                source_ref=source,
                temperature_c=ev.temperature_c,
                gate_id=ev.gate_id,
            )
        )
    await s.execute(
        sa.insert(T.observations).values(
            case_id=case_id,
            observed_at=ev.scanned_at,
            kind="temperature_c",
            value=ev.temperature_c,
            source_ref=source,
        )
    )
