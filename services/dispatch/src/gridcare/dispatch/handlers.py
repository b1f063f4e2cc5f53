"""Dispatch's service layer: one function per event it takes, one per query.

Every alert becomes one task through :func:`create_task`: the responsible grid worker is
looked up (person → household → building → grid), the domain makes the task, and the task
and its ``TaskCreated`` are committed together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gridcare.contracts.checkpoint import PermitOverdue, QuarantineBreachAttempted
from gridcare.contracts.dispatch import TaskClosed, TaskCreated
from gridcare.contracts.notify import NotificationRequested, ToRole
from gridcare.contracts.screening import CaseOpened, DoorVisitRequested, PersonStatusChanged
from gridcare.shared import projection
from gridcare.shared.envelope import stable_id, utcnow
from gridcare.shared.errors import Permanent
from gridcare.shared.localtime import iso

from .domain import holds, summaries, tasks
from .domain.tasks import Kind, Responsible
from .unit_of_work import DispatchUnitOfWork


async def reference_data_changed(entity: Any, uow: DispatchUnitOfWork) -> None:
    """Keep dispatch's copy of a row of reference data (the kinds it needs)."""
    await projection.keep(entity, uow)


async def create_task(
    kind: Kind,
    source_ref: str,
    uow: DispatchUnitOfWork,
    *,
    person_id: str | None,
    household_id: str | None,
    summary: Callable[[Responsible], dict[str, str]],
    params: dict[str, Any],
    case_id: str | None = None,
    gate_id: str | None = None,
) -> None:
    """One task per fact (``source_ref``): the fact reported again changes nothing. The
    grid worker is told through notify (``NotificationRequested``: the task's template
    and its ``params``; a fever or a breach must be acknowledged, or it escalates), unless
    the kind is one another service tells them about (``tasks.TOLD``).

    A person or household not (yet) in the reference data raises ``LookupError``: retried,
    since the data may still be arriving, then dead-lettered for the office to look at."""
    async with uow:
        await open_task(
            kind,
            source_ref,
            uow,
            person_id=person_id,
            household_id=household_id,
            summary=summary,
            params=params,
            case_id=case_id,
            gate_id=gate_id,
        )
        await uow.commit()


async def open_task(
    kind: Kind,
    source_ref: str,
    uow: DispatchUnitOfWork,
    *,
    person_id: str | None,
    household_id: str | None,
    summary: Callable[[Responsible], dict[str, str]],
    params: dict[str, Any],
    case_id: str | None = None,
    gate_id: str | None = None,
) -> tasks.Task | None:
    """:func:`create_task` inside an open unit of work (no commit); None: it exists."""
    if await uow.tasks.exists(tasks.task_id(kind, source_ref)):
        return None  # handled: the fact reported again makes no second task
    if person_id:
        household_id = await uow.places.household_of(person_id)
        if household_id is None:
            raise LookupError(f"no grid worker known for person {person_id}")
    if not household_id:
        raise Permanent("neither a person nor a household to find a grid worker for")
    who = await uow.places.responsible_for(household_id)
    if who is None:
        raise LookupError(f"no grid worker known for household {household_id}")
    try:
        task = tasks.new_task(
            kind, source_ref, who, person_id=person_id, now=utcnow(), case_id=case_id
        )
    except tasks.NoWorker as exc:
        raise Permanent(str(exc)) from None
    await uow.tasks.add(task)
    uow.emit(
        TaskCreated(
            task_id=task.task_id,
            kind=task.kind,
            person_id=person_id or "",
            household_id=task.household_id,
            assignee_id=task.assignee_id,
            assignee_role="grid_worker",
            grid_id=task.grid_id,
            due_by=task.due_by,
            summary=summary(who),
            case_id=case_id,
            urgent=task.urgent,
        ),
        event_id=stable_id("TaskCreated", task.task_id),
    )
    if kind not in tasks.TOLD:
        return task
    alert = tasks.ALERT_KIND.get(kind)
    asked = {**params, "hours": tasks.hours_of(kind)}
    if "household_id" in params:  # as dispatch found it (a breach at a gate may not say)
        asked["household_id"] = task.household_id
    places = {"grid_id": task.grid_id}
    if who.community_id:
        places["community_id"] = who.community_id
    if gate_id:
        places["gate_id"] = gate_id
    uow.emit(
        NotificationRequested(
            request_id=stable_id("task", task.task_id),
            recipient=ToRole(role="grid_worker", place_id=task.grid_id),
            template=f"task.{kind}",
            params=asked,
            priority="urgent" if task.urgent else "normal",
            needs_ack=alert is not None,
            alert_kind=alert,
            places=places,
            requested_by="dispatch",
        ),
        event_id=stable_id("NotificationRequested", task.task_id),
    )
    return task


async def close_task(task: tasks.Task, status: str, reason: str, uow: DispatchUnitOfWork) -> None:
    """End an open task (inside an open unit of work) and announce it."""
    now = utcnow()
    await uow.tasks.close(task.task_id, status, now)
    uow.emit(
        TaskClosed(
            task_id=task.task_id,
            kind=task.kind,
            person_id=task.person_id or "",
            household_id=task.household_id,
            status=status,
            reason=reason,
            closed_at=now,
        ),
        event_id=stable_id("TaskClosed", task.task_id),
    )


async def case_opened(ev: CaseOpened, uow: DispatchUnitOfWork) -> None:
    """A new fever case: the grid worker follows it up."""
    await create_task(
        "fever_follow_up",
        tasks.case_ref(ev.case_id),
        uow,
        person_id=ev.person_id,
        household_id=None,
        case_id=ev.case_id,
        gate_id=ev.gate_id,
        summary=lambda who: summaries.fever(
            ev.person_id, ev.gate_id, ev.temperature_c, ev.observed_at, who.time_zone
        ),
        params={
            "person_id": ev.person_id,
            "gate_id": ev.gate_id,
            "temperature_c": ev.temperature_c,
            "observed_at": _when(ev.observed_at),
        },
    )


async def quarantine_breach(ev: QuarantineBreachAttempted, uow: DispatchUnitOfWork) -> None:
    """Someone screening holds tried to leave (gate), or a held household's door opened:
    an urgent task for their grid worker."""
    await create_task(
        "quarantine_breach",
        tasks.breach_ref(ev.via, ev.gate_id, ev.household_id, ev.ref),
        uow,
        person_id=ev.person_id if ev.via == "gate" else None,
        household_id=ev.household_id,
        gate_id=ev.gate_id,
        summary=lambda who: summaries.breach(
            ev.via,
            ev.person_id,
            who.household_id,
            ev.gate_id,
            ev.status,
            ev.status_label,
            ev.at,
            who.time_zone,
        ),
        params={
            "via": ev.via,
            "person_id": ev.person_id,
            "household_id": ev.household_id,
            "gate_id": ev.gate_id,
            "status": ev.status,
            "status_label": dict(ev.status_label),
            "at": _when(ev.at),
        },
    )


async def permit_overdue(ev: PermitOverdue, uow: DispatchUnitOfWork) -> None:
    """A resident is not back by their permit's return time: a task for their grid worker."""
    await create_task(
        "overdue_return",
        tasks.overdue_ref(ev.permit_id, ev.exited_at),
        uow,
        person_id=ev.holder_id,
        household_id=ev.household_id,
        summary=lambda who: summaries.overdue(
            ev.holder_id, ev.household_id, ev.permit_id, ev.exited_at, ev.return_by, who.time_zone
        ),
        params={
            "holder_id": ev.holder_id,
            "household_id": ev.household_id,
            "permit_id": ev.permit_id,
            "exited_at": _when(ev.exited_at),
            "return_by": _when(ev.return_by),
        },
    )


async def door_visit_requested(ev: DoorVisitRequested, uow: DispatchUnitOfWork) -> None:
    """A resident not heard from (missed check-ins or a missed follow-up day): a door
    visit for their grid worker, one per request. No message of dispatch's own: the
    worker was alerted by screening with the same event (``checkin.missed`` or
    ``task.follow_up_missed``); the task is the office's record of the visit."""
    await create_task(
        "door_visit",
        tasks.visit_ref(ev.request_id),
        uow,
        person_id=ev.person_id,
        household_id=ev.household_id,
        summary=lambda who: summaries.door_visit(
            ev.person_id, who.household_id, ev.missed_days, ev.last_checkin_day
        ),
        params={},
    )


async def person_status_changed(ev: PersonStatusChanged, uow: DispatchUnitOfWork) -> None:
    """Screening's newest decision about a person: a household entering home quarantine
    gets a quarantine-support task, ended when nobody of it is held at home any more; a
    person confirmed gets a transfer task, ended when they are in hospital (or cancelled
    by another decision). An older or repeated decision changes nothing."""
    async with uow:
        household_id = ev.household_id or await uow.places.household_of(ev.person_id)
        if household_id:  # decisions about one household are taken one at a time
            await uow.holds.lock_household(household_id)
        known = await uow.holds.get(ev.person_id)
        if not holds.is_newer(known, ev.decided_at):
            await uow.commit()  # handled: late or repeated
            return
        at_home = holds.at_home(ev.holds_at_gate, ev.holds_at_home)
        if household_id is None:
            if ev.status in (holds.HOME_QUARANTINE, holds.CONFIRMED):
                raise LookupError(f"no household known for person {ev.person_id}")
            household_id = ""  # nothing to open; kept so that an older decision stays old
        new = holds.Hold(ev.person_id, household_id, ev.status, at_home, ev.decided_at)
        todo = holds.steps(known, new)
        await uow.holds.put(new)
        if todo.close_transfers:
            for task in await uow.tasks.open_of("transfer", person_id=ev.person_id):
                await close_task(task, todo.close_transfers, ev.status, uow)
        for h in todo.households_to_check:
            if not await uow.holds.anyone_at_home(h):
                for task in await uow.tasks.open_of("quarantine_support", household_id=h):
                    await close_task(task, "done", ev.status, uow)
        if todo.open_support and not await uow.tasks.open_of(
            "quarantine_support", household_id=household_id
        ):
            await open_task(
                "quarantine_support",
                tasks.support_ref(household_id, ev.decided_at),
                uow,
                person_id=None,
                household_id=household_id,
                summary=lambda who: summaries.quarantine_support(
                    household_id, ev.person_id, ev.decided_at, who.time_zone
                ),
                params={
                    "household_id": household_id,
                    "person_id": ev.person_id,
                    "since": _when(ev.decided_at),
                    "until": _when(ev.until),
                },
            )
        if todo.open_transfer:
            await open_task(
                "transfer",
                tasks.transfer_ref(ev.person_id, ev.decided_at),
                uow,
                person_id=ev.person_id,
                household_id=household_id,
                summary=lambda who: summaries.transfer(
                    ev.person_id, who.household_id, ev.decided_at, who.time_zone
                ),
                params={
                    "person_id": ev.person_id,
                    "household_id": household_id,
                    "at": _when(ev.decided_at),
                },
            )
        await uow.commit()


def _when(t: Any) -> str | None:
    return None if t is None else t.isoformat()


# --- queries ------------------------------------------------------------------------------
async def newest_tasks(
    limit: int, assignee_id: str | None, uow: DispatchUnitOfWork
) -> list[dict[str, Any]]:
    async with uow:
        found = await uow.tasks.newest(limit, assignee_id)
        zones = {}
        for t in found:
            if t.household_id not in zones:
                who = await uow.places.responsible_for(t.household_id)
                zones[t.household_id] = who.time_zone if who else None
    return [
        {
            "task_id": t.task_id,
            "kind": t.kind,
            "person_id": t.person_id,
            "household_id": t.household_id,
            "assignee_id": t.assignee_id,
            "grid_id": t.grid_id,
            "urgent": t.urgent,
            "status": t.status,
            "due_by": iso(t.due_by, zones[t.household_id]),
            "created_at": iso(t.created_at, zones[t.household_id]),
            "closed_at": iso(t.closed_at, zones[t.household_id]) if t.closed_at else None,
        }
        for t in found
    ]
