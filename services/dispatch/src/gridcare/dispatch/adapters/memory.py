"""Dispatch's repositories in memory: the same behaviour as ``sql.py``, for handler tests."""

from __future__ import annotations

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
