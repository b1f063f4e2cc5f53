"""A compound's control level as screening decides it, and when it is epidemic-free.

A new confirmed case in a compound raises its level to the policy's ``seal_on_confirmed``
(``sealed`` unless the policy says otherwise; none: the level is left as it is) when that
is stricter than the level in force, and restarts the count of days without a new case.
``epidemic_free_days`` (14) after the last new case with no other, the compound is
epidemic-free (无疫小区) and its level is relaxed to the policy's
``epidemic_free_level`` (``precaution``) if it is stricter. The office may set a level at
any time, with a reason. Each change of level is a ``CompoundLevelChanged``: the gates
enforce it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

from gridcare.contracts.refdata import ControlLevel

#: Strictness: a higher number holds people more.
STRICTNESS = {ControlLevel.PRECAUTION: 0, ControlLevel.CONTROLLED: 1, ControlLevel.SEALED: 2}


def stricter(a: ControlLevel, b: ControlLevel) -> bool:
    return STRICTNESS[a] > STRICTNESS[b]


@dataclass(frozen=True)
class CompoundState:
    compound_id: str
    level: ControlLevel
    set_by: str
    reason: str
    set_at: datetime
    last_case_at: datetime | None = None
    last_case_person_id: str | None = None
    epidemic_free_since: datetime | None = None

    def days_without_case(self, now: datetime) -> int | None:
        """Whole days since the last new case (None: no case)."""
        if self.last_case_at is None:
            return None
        return max(0, (now - self.last_case_at) // timedelta(days=1))


def initial(compound_id: str, level: ControlLevel | None, at: datetime) -> CompoundState:
    """A compound screening has not decided about yet: the level of compounds.csv."""
    return CompoundState(compound_id, level or ControlLevel.PRECAUTION, "compounds.csv", "", at)


def confirmed_case(
    state: CompoundState,
    person_id: str,
    at: datetime,
    seal_level: ControlLevel | None,
) -> tuple[CompoundState, bool]:
    """A new confirmed case in the compound; (the new state, whether the level changed).
    A case no newer than the last one known (arriving late, or the same one announced
    again) changes nothing: the count of days goes on from the newest case."""
    if state.last_case_at is not None and at <= state.last_case_at:
        return state, False
    state = dataclasses.replace(
        state, last_case_at=at, last_case_person_id=person_id, epidemic_free_since=None
    )
    if seal_level is None or not stricter(seal_level, state.level):
        return state, False
    return dataclasses.replace(
        state,
        level=seal_level,
        set_by="screening",
        reason=f"confirmed case {person_id}",
        set_at=at,
    ), True


def epidemic_free_at(state: CompoundState, free_days: int) -> datetime | None:
    """When the compound becomes epidemic-free if no new case comes (None: no case)."""
    if state.last_case_at is None:
        return None
    return state.last_case_at + timedelta(days=free_days)


def check_epidemic_free(
    state: CompoundState, now: datetime, free_days: int, relax_to: ControlLevel
) -> tuple[CompoundState, bool, bool]:
    """The tick: (the new state, whether it became epidemic-free now, whether the level
    changed). Relaxed only if the level in force is stricter than ``relax_to``."""
    due = epidemic_free_at(state, free_days)
    if state.epidemic_free_since is not None or due is None or now < due:
        return state, False, False
    state = dataclasses.replace(state, epidemic_free_since=due)
    if not stricter(state.level, relax_to):
        return state, True, False
    return (
        dataclasses.replace(
            state,
            level=relax_to,
            set_by="screening",
            reason=f"epidemic-free (无疫小区): {free_days} days without a new case",
            set_at=now,
        ),
        True,
        True,
    )


def office_sets(
    state: CompoundState, level: ControlLevel, by: str, reason: str, now: datetime
) -> tuple[CompoundState, bool]:
    """The office sets the level; (the new state, whether it changed)."""
    changed = level is not state.level
    return dataclasses.replace(state, level=level, set_by=by, reason=reason, set_at=now), changed
