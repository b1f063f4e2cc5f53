"""Screening's repositories in memory: the same behaviour as ``sql.py``, for handler tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..domain.cases import Case, Observation
from ..domain.status import StatusDecision


class Cases:
    def __init__(self) -> None:
        self.rows: dict[str, Case] = {}

    async def open_case_of(self, person_id: str, kind: str) -> Case | None:
        for case in self.rows.values():
            if case.person_id == person_id and case.kind == kind and case.is_open:
                return dataclasses.replace(case, observations=list(case.observations))
        return None

    async def add(self, case: Case) -> None:
        if case.case_id in self.rows:
            raise KeyError(f"case {case.case_id} exists")  # the SQL key would refuse it too
        self.rows[case.case_id] = dataclasses.replace(case, observations=[])

    async def observe(self, case: Case, observation: Observation) -> bool:
        kept = self.rows[case.case_id].observations
        if any(o.source_ref == observation.source_ref for o in kept):
            return False
        kept.append(observation)
        return True

    async def newest(self, limit: int, person_id: str | None = None) -> list[Case]:
        cases = [c for c in self.rows.values() if person_id in (None, c.person_id)]
        return sorted(cases, key=lambda c: c.opened_at, reverse=True)[:limit]


class Statuses:
    def __init__(self) -> None:
        self.current: dict[str, StatusDecision] = {}
        self.log: list[StatusDecision] = []

    async def get(self, person_id: str) -> StatusDecision | None:
        return self.current.get(person_id)

    async def record(self, decision: StatusDecision) -> None:
        self.current[decision.person_id] = decision
        self.log.append(decision)

    async def history(self, person_id: str) -> list[Any]:
        return sorted((d for d in self.log if d.person_id == person_id), key=lambda d: d.at)
