"""Who screening holds, and what a door opening means.

Screening decides whether a status holds a person at the gate (``holds_at_gate`` on its
``PersonStatusChanged``) and whether it confines them at home (``holds_at_home``); the
checkpoint keeps the newest decision per person and does not interpret statuses. A household
with a member confined at home is under quarantine: its door sensor alerts the grid worker;
any other door opening is only recorded (a member held at a central quarantine site or in
hospital is not at home: their door alerts only for someone else confined there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from gridcare.contracts.checkpoint import QuarantineBreachAttempted
from gridcare.contracts.edge import DoorOpened

from .badinput import describe


@dataclass(frozen=True)
class Hold:
    """Screening's decision in force for a person (held or not)."""

    person_id: str
    status: str
    holds_at_gate: bool
    household_id: str | None
    decided_at: datetime
    label: dict[str, str] = field(default_factory=dict)
    until: datetime | None = None
    # confined at home (their household's door alerts); None (an older producer): as
    # holds_at_gate
    holds_at_home: bool | None = None

    def __post_init__(self) -> None:
        if self.holds_at_home is None:
            object.__setattr__(self, "holds_at_home", self.holds_at_gate)


def newer(current_at: datetime | None, at: datetime) -> bool:
    """The newest decision wins: one arriving late (older than what is in force) is not."""
    return current_at is None or at > current_at


class BadDoorEvent(Exception):
    pass


def parse_door(raw: bytes, subject_household: str) -> DoorOpened:
    """A door sensor's event (the edge contract §3) on its own household's subject; else
    :class:`BadDoorEvent` naming every bad field."""
    try:
        ev = DoorOpened.model_validate_json(raw)
    except ValidationError as exc:
        raise BadDoorEvent(f"invalid message: {describe(exc)}") from None
    if ev.household_id != subject_household:
        raise BadDoorEvent(
            f"household_id {ev.household_id!r} does not match the subject's {subject_household!r}"
        )
    return ev


def same_door_event(household_id: str, opened_at: datetime, ev: DoorOpened) -> bool:
    """Whether ``ev`` says what the recorded event with its ``event_id`` said (a device's
    repeat), or reuses the id for something else."""
    return household_id == ev.household_id and opened_at == ev.opened_at


def door_opened(
    event_id: str,
    household_id: str,
    opened_at: datetime,
    compound_id: str,
    holders: list[Hold],
) -> QuarantineBreachAttempted | None:
    """A breach if someone of the household is confined at home (``holders``: only those,
    :meth:`GateState.holders_of`); nothing otherwise."""
    if not holders:
        return None
    first = holders[0]
    return QuarantineBreachAttempted(
        via="door",
        compound_id=compound_id,
        person_id=None,
        household_id=household_id,
        status=first.status,
        status_label=first.label,
        ref=f"door:{event_id}",
        at=opened_at,
    )
