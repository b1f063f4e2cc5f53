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

Kind = Literal[
    "fever_follow_up",
    "quarantine_breach",
    "overdue_return",
    "door_visit",
    "quarantine_support",
    "transfer",
]

#: How soon the grid worker must act, per kind of task.
WITHIN: dict[str, timedelta] = {
    "fever_follow_up": timedelta(hours=2),  # contact and visit a resident with a fever
    "quarantine_breach": timedelta(minutes=15),  # someone held is trying to get out
    "overdue_return": timedelta(hours=1),  # a resident is not back from an outing permit
    "door_visit": timedelta(hours=12),  # a resident not heard from: call at the door today
    # a household sealed at home: door sensor, supplies and rubbish arranged the same day
    "quarantine_support": timedelta(hours=6),
    "transfer": timedelta(hours=2),  # a confirmed case to a designated hospital
}
URGENT = frozenset({"quarantine_breach", "transfer"})

#: The kinds whose grid worker dispatch tells through notify. A door visit is not one:
#: screening's own alert about the missed days (``checkin.missed``,
#: ``task.follow_up_missed``) is the worker's message, so one missed-check-in event never
#: makes two; dispatch's task is the office's record of the visit and its lifecycle.
TOLD = frozenset(
    {"fever_follow_up", "quarantine_breach", "overdue_return", "quarantine_support", "transfer"}
)


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
    status: str  # open | done | cancelled
    due_by: datetime
    created_at: datetime
    closed_at: datetime | None = None


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


def visit_ref(request_id: str) -> str:
    """Screening's door-visit request (stable per person and run of missed days)."""
    return f"visit:{request_id}"


def support_ref(household_id: str, decided_at: datetime) -> str:
    """A household's home quarantine, from the decision that opened it: a later quarantine
    of the same household (after the first ended) is a new task."""
    return f"quarantine:{household_id}:{decided_at.astimezone(UTC).isoformat()}"


def transfer_ref(person_id: str, decided_at: datetime) -> str:
    """One transfer per confirmed decision about a person."""
    return f"transfer:{person_id}:{decided_at.astimezone(UTC).isoformat()}"


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
ALERT_KIND: dict[str, str] = {
    "fever_follow_up": "fever",
    "quarantine_breach": "quarantine_breach",
    "transfer": "transfer",  # a confirmed case waiting at home: someone must take it on
}


def hours_of(kind: str) -> float:
    """The deadline in hours, as a number (a template's parameter)."""
    return WITHIN[kind].total_seconds() / 3600


def hours(kind: str) -> str:
    """The deadline as the worker reads it: ``2``, ``0.25``."""
    return f"{WITHIN[kind].total_seconds() / 3600:g}"
