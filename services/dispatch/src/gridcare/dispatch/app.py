"""Dispatch entry points: a new fever case becomes a follow-up task for the grid worker;
a quarantine breach (urgent) or an overdue return at the checkpoint becomes a task for the
grid worker responsible for that person or household."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from gridcare.shared import subjects
from gridcare.shared.consumer import HandlerContext, Permanent
from gridcare.shared.envelope import stable_id, utcnow
from gridcare.shared.events import (
    Building,
    CaseOpened,
    Grid,
    Household,
    PermitOverdue,
    QuarantineBreachAttempted,
    Resident,
    TaskCreated,
)
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings

from . import domain
from . import tables as T

NAME = "dispatch"
FOLLOW_UP_WITHIN = timedelta(hours=2)


def build(settings: Settings | None = None) -> Service:
    svc = Service(NAME, T.metadata, T.MIGRATIONS, settings)
    for model, table in (
        (Resident, T.residents),
        (Household, T.households),
        (Building, T.buildings),
        (Grid, T.grids),
    ):
        svc.project(model, table)
    svc.handles(
        CaseOpened,
        durable="dispatch-cases",
        subject=subjects.CASE_OPENED.format(kind="*"),
        stream=subjects.SCREENING,
    )(on_case_opened)
    # Two consumers with precise filters: the CHECKPOINT stream also carries a message per
    # gate scan (PassageRecorded), which dispatch has no business fetching.
    svc.handles(
        QuarantineBreachAttempted,
        durable="dispatch-breaches",
        subject=subjects.QUARANTINE_BREACH.format(compound_id="*"),
        stream=subjects.CHECKPOINT,
    )(on_quarantine_breach)
    svc.handles(
        PermitOverdue,
        durable="dispatch-overdue",
        subject=subjects.PERMIT_OVERDUE.format(compound_id="*"),
        stream=subjects.CHECKPOINT,
    )(on_permit_overdue)
    return svc


async def grid_of(s, person_id: str):
    """(grid_id, worker_id) responsible for a resident, or None."""
    return (
        await s.execute(
            sa.select(T.grids.c.grid_id, T.grids.c.worker_id)
            .select_from(
                T.residents.join(
                    T.households, T.households.c.household_id == T.residents.c.household_id
                )
                .join(T.buildings, T.buildings.c.building_id == T.households.c.building_id)
                .join(T.grids, T.grids.c.grid_id == T.buildings.c.grid_id)
            )
            .where(T.residents.c.resident_id == person_id)
        )
    ).first()


def fever_summary(ev: CaseOpened, hours: str) -> dict[str, str]:
    t = f"{ev.temperature_c:.1f}" if ev.temperature_c is not None else "?"
    gate = ev.gate_id or "?"
    return {
        "zh": f"发热随访：居民 {ev.person_id} 在 {gate} 门测得体温 {t}°C，"
        f"请在{hours}小时内联系并上门核查",
        "en": f"Fever follow-up: resident {ev.person_id} had {t} °C at gate {gate}; "
        f"contact and visit them within {hours} hours",
    }


async def on_case_opened(ctx: HandlerContext, ev: CaseOpened) -> None:
    s = ctx.session
    exists = await s.scalar(
        sa.select(sa.literal(1)).where(
            T.tasks.c.kind == "fever_follow_up", T.tasks.c.case_id == ev.case_id
        )
    )
    if exists:
        return
    grid = await grid_of(s, ev.person_id)
    if grid is None:
        # Not a resident we know, or reference data incomplete: retried with backoff (the
        # data may still be arriving), then dead-lettered for the office to look at.
        raise LookupError(f"no grid worker known for person {ev.person_id}")
    if not grid.worker_id:
        raise Permanent(f"grid {grid.grid_id} has no worker")
    now = utcnow()
    task_id = stable_id("fever_follow_up", ev.case_id)
    due_by = now + FOLLOW_UP_WITHIN
    hours = f"{FOLLOW_UP_WITHIN.total_seconds() / 3600:g}"
    await s.execute(
        sa.insert(T.tasks).values(
            task_id=task_id,
            kind="fever_follow_up",
            person_id=ev.person_id,
            case_id=ev.case_id,
            grid_id=grid.grid_id,
            assignee_id=grid.worker_id,
            status="open",
            due_by=due_by,
            created_at=now,
        )
    )
    await ctx.emit(
        TaskCreated(
            task_id=task_id,
            kind="fever_follow_up",
            person_id=ev.person_id,
            assignee_id=grid.worker_id,
            assignee_role="grid_worker",
            grid_id=grid.grid_id,
            due_by=due_by,
            case_id=ev.case_id,
            summary=fever_summary(ev, hours),
        )
    )


async def grid_of_household(s, household_id: str):
    """(grid_id, worker_id) responsible for a household, or None."""
    return (
        await s.execute(
            sa.select(T.grids.c.grid_id, T.grids.c.worker_id)
            .select_from(
                T.households.join(
                    T.buildings, T.buildings.c.building_id == T.households.c.building_id
                ).join(T.grids, T.grids.c.grid_id == T.buildings.c.grid_id)
            )
            .where(T.households.c.household_id == household_id)
        )
    ).first()


async def responsible(s, person_id: str | None, household_id: str | None):
    """(grid_id, worker_id, household_id) for a person (person → household → building →
    grid) or, without a person, for a household. Raises LookupError if unknown: the
    reference data may still be arriving, so the message is retried, then dead-lettered."""
    if person_id:
        hh = await s.scalar(
            sa.select(T.residents.c.household_id).where(T.residents.c.resident_id == person_id)
        )
        if hh is None:
            raise LookupError(f"no grid worker known for person {person_id}")
        household_id = hh
    if not household_id:
        raise Permanent("neither a person nor a household to find a grid worker for")
    grid = await grid_of_household(s, household_id)
    if grid is None:
        raise LookupError(f"no grid worker known for household {household_id}")
    if not grid.worker_id:
        raise Permanent(f"grid {grid.grid_id} has no worker")
    return grid.grid_id, grid.worker_id, household_id


async def create_alert_task(
    ctx: HandlerContext,
    *,
    kind: str,
    source_ref: str,
    person_id: str | None,
    household_id: str | None,
    urgent: bool,
    within: timedelta,
    summary: Callable[[str], dict[str, str]],
) -> None:
    """One task per source fact (``source_ref``): a repeat of the fact is a no-op."""
    s = ctx.session
    task_id = stable_id(kind, source_ref)
    if await s.scalar(sa.select(sa.literal(1)).where(T.tasks.c.task_id == task_id)):
        return
    grid_id, worker_id, household_id = await responsible(s, person_id, household_id)
    now = utcnow()
    due_by: datetime = now + within
    text = summary(household_id)
    await s.execute(
        sa.insert(T.tasks).values(
            task_id=task_id,
            kind=kind,
            person_id=person_id,
            household_id=household_id,
            case_id=None,
            source_ref=source_ref,
            urgent=urgent,
            grid_id=grid_id,
            assignee_id=worker_id,
            status="open",
            due_by=due_by,
            created_at=now,
        )
    )
    await ctx.emit(
        TaskCreated(
            task_id=task_id,
            kind=kind,
            # A door alert has no person, only a household (in the summary and our row);
            # TaskCreated has no household field yet, so the person is left empty.
            person_id=person_id or "",
            assignee_id=worker_id,
            assignee_role="grid_worker",
            grid_id=grid_id,
            due_by=due_by,
            summary=text,
            urgent=urgent,
        ),
        event_id=stable_id("TaskCreated", task_id),
    )


async def on_quarantine_breach(ctx: HandlerContext, ev: QuarantineBreachAttempted) -> None:
    """Someone screening holds tried to leave (gate), or a held household's door opened:
    an urgent task for their grid worker."""
    await create_alert_task(
        ctx,
        kind="quarantine_breach",
        source_ref=domain.breach_ref(ev),
        person_id=ev.person_id if ev.via == "gate" else None,
        household_id=ev.household_id,
        urgent=True,
        within=domain.BREACH_WITHIN,
        summary=lambda hh: domain.breach_summary(ev, hh),
    )


async def on_permit_overdue(ctx: HandlerContext, ev: PermitOverdue) -> None:
    """A resident is not back by their permit's return time: a task for their grid worker."""
    hours = f"{domain.OVERDUE_WITHIN.total_seconds() / 3600:g}"
    await create_alert_task(
        ctx,
        kind="overdue_return",
        source_ref=domain.overdue_ref(ev),
        person_id=ev.holder_id,
        household_id=ev.household_id,
        urgent=False,
        within=domain.OVERDUE_WITHIN,
        summary=lambda _hh: domain.overdue_summary(ev, hours),
    )
