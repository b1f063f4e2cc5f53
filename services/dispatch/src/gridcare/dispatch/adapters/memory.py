"""Dispatch's repositories in memory: the same behaviour as ``sql.py``, for handler tests."""

from __future__ import annotations

import dataclasses

from ..domain.holds import Hold
from ..domain.tasks import Task


class Tasks:
    def __init__(self) -> None:
        self.rows: dict[str, Task] = {}

    async def exists(self, task_id: str) -> bool:
        return task_id in self.rows

    async def add(self, task: Task) -> None:
        if task.task_id in self.rows:
            raise KeyError(f"task {task.task_id} exists")  # the SQL key would refuse it too
        self.rows[task.task_id] = task

    async def newest(self, limit: int, assignee_id: str | None = None) -> list[Task]:
        found = [t for t in self.rows.values() if assignee_id in (None, t.assignee_id)]
        return sorted(found, key=lambda t: t.created_at, reverse=True)[:limit]

    async def open_of(
        self, kind: str, *, household_id: str | None = None, person_id: str | None = None
    ) -> list[Task]:
        found = [
            t
            for t in self.rows.values()
            if t.kind == kind
            and t.status == "open"
            and household_id in (None, t.household_id)
            and person_id in (None, t.person_id)
        ]
        return sorted(found, key=lambda t: t.created_at)

    async def close(self, task_id: str, status: str, at) -> None:
        t = self.rows.get(task_id)
        if t is not None and t.status == "open":
            self.rows[task_id] = dataclasses.replace(t, status=status, closed_at=at)


class Holds:
    def __init__(self) -> None:
        self.rows: dict[str, Hold] = {}
        self.locked: list[str] = []  # one handler at a time in memory: only recorded

    async def lock_household(self, household_id: str) -> None:
        self.locked.append(household_id)

    async def get(self, person_id: str) -> Hold | None:
        return self.rows.get(person_id)

    async def put(self, hold: Hold) -> None:
        self.rows[hold.person_id] = hold

    async def anyone_at_home(self, household_id: str) -> bool:
        return any(h.household_id == household_id and h.at_home for h in self.rows.values())
