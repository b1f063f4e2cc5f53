"""Dispatch entry points: a new fever case becomes a follow-up task for the grid worker."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from gridcare.shared import subjects
from gridcare.shared.consumer import HandlerContext, Permanent
from gridcare.shared.envelope import stable_id, utcnow
from gridcare.shared.events import Building, CaseOpened, Grid, Household, Resident, TaskCreated
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings

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
