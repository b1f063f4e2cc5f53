"""What dispatch publishes: field tasks for grid workers (later volunteers)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from gridcare.shared.envelope import Event
from gridcare.shared.streams import StreamSpec

STREAM = StreamSpec("DISPATCH", ("dispatch.>",), "Help requests and field tasks")

TASK_CREATED = "dispatch.task.created.{kind}"


class TaskCreated(Event):
    TYPE = "dispatch.TaskCreated"
    task_id: str
    kind: Literal["fever_follow_up", "quarantine_breach", "overdue_return"]
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
