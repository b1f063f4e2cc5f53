"""Field tasks: each alert becomes one task for the responsible grid worker.

A task is identified by the fact it reports (a case, a scan at a gate, a door event, a
permit's outing), not by the message that carried it, so a re-emitted alert or a
redelivered message never makes a second task. Every deadline is here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from gridcare.shared.envelope import stable_id

Kind = Literal["fever_follow_up", "quarantine_breach", "overdue_return"]

#: How soon the grid worker must act, per kind of task.
WITHIN: dict[str, timedelta] = {
    "fever_follow_up": timedelta(hours=2),  # contact and visit a resident with a fever
    "quarantine_breach": timedelta(minutes=15),  # someone held is trying to get out
    "overdue_return": timedelta(hours=1),  # a resident is not back from an outing permit
}
URGENT = frozenset({"quarantine_breach"})


class NoWorker(Exception):
    """The grid has no worker: no retry can fix it (the office must name one)."""


@dataclass(frozen=True)
class Responsible:
    """Who answers for a person or household: their grid's worker."""

    grid_id: str
    worker_id: str
    household_id: str
    time_zone: str | None  # the community's
    community_id: str | None = None


@dataclass(frozen=True)
class Task:
    task_id: str
    kind: Kind
    source_ref: str
    person_id: str | None
    household_id: str
    case_id: str | None
    grid_id: str
    assignee_id: str
    urgent: bool
    status: str
    due_by: datetime
    created_at: datetime


def task_id(kind: str, source_ref: str) -> str:
    return stable_id(kind, source_ref)


def case_ref(case_id: str) -> str:
    return f"case:{case_id}"


def breach_ref(via: str, gate_id: str | None, household_id: str | None, ref: str) -> str:
    """Which scan (at which gate) or which door event (of which household): scan ids are
    unique per gate and door event ids per sensor, hence the qualifier."""
    return f"{via}:{(gate_id if via == 'gate' else household_id) or '?'}:{ref}"


def overdue_ref(permit_id: str, exited_at: datetime) -> str:
    """A permit with several uses can be overdue once per outing, hence the exit time."""
    return f"permit:{permit_id}:{exited_at.astimezone(UTC).isoformat()}"


def new_task(
    kind: Kind,
    source_ref: str,
    who: Responsible,
    *,
    person_id: str | None,
    now: datetime,
    case_id: str | None = None,
) -> Task:
    if not who.worker_id:
        raise NoWorker(f"grid {who.grid_id} has no worker")
    return Task(
        task_id=task_id(kind, source_ref),
        kind=kind,
        source_ref=source_ref,
        person_id=person_id,
        household_id=who.household_id,
        case_id=case_id,
        grid_id=who.grid_id,
        assignee_id=who.worker_id,
        urgent=kind in URGENT,
        status="open",
        due_by=now + WITHIN[kind],
        created_at=now,
    )


#: The task kinds a person must acknowledge (their alert's kind: its escalation chain).
ALERT_KIND: dict[str, str] = {"fever_follow_up": "fever", "quarantine_breach": "quarantine_breach"}


def hours_of(kind: str) -> float:
    """The deadline in hours, as a number (a template's parameter)."""
    return WITHIN[kind].total_seconds() / 3600


def hours(kind: str) -> str:
    """The deadline as the worker reads it: ``2``, ``0.25``."""
    return f"{WITHIN[kind].total_seconds() / 3600:g}"
