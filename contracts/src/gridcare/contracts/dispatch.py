"""What dispatch publishes: field tasks for grid workers (later volunteers)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from gridcare.shared.envelope import Event
from gridcare.shared.streams import StreamSpec

STREAM = StreamSpec("DISPATCH", ("dispatch.>",), "Help requests and field tasks")

TASK_CREATED = "dispatch.task.created.{kind}"
TASK_CLOSED = "dispatch.task.closed.{kind}"

TaskKind = Literal[
    "fever_follow_up",
    "quarantine_breach",
    "overdue_return",
    "door_visit",  # screening's DoorVisitRequested (missed check-ins or follow-up days)
    "quarantine_support",  # a household in home quarantine: door sensor, supplies, rubbish
    "transfer",  # a confirmed case to a designated hospital
]


class TaskCreated(Event):
    TYPE = "dispatch.TaskCreated"
    task_id: str
    kind: TaskKind
    person_id: str  # "" for a task about a household (a quarantined door opened)
    household_id: str | None = None
    assignee_id: str
    assignee_role: Literal["grid_worker", "volunteer"]
    grid_id: str
    due_by: datetime
    summary: dict[str, str]  # language -> text, in the community's local time
    case_id: str | None = None
    urgent: bool = False

    def subject(self) -> str:
        return TASK_CREATED.format(kind=self.kind)


class TaskClosed(Event):
    """A task ended by what screening decided later: a household's quarantine support when
    nobody of it is held at home any more, a transfer when the person is in hospital
    (done) or decided otherwise (cancelled)."""

    TYPE = "dispatch.TaskClosed"
    task_id: str
    kind: TaskKind
    person_id: str  # "" for a task about a household
    household_id: str | None = None
    status: Literal["done", "cancelled"]
    reason: str  # the status that ended it, e.g. in_hospital, normal
    closed_at: datetime

    def subject(self) -> str:
        return TASK_CLOSED.format(kind=self.kind)
