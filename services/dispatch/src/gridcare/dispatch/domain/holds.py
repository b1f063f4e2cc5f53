"""What screening's decisions about a person mean for the grid: dispatch keeps each
person's latest decision (a ``Hold``) and reads the tasks from it.

- A household's first member put in home quarantine while the household has no open
  quarantine-support task opens one (door sensor, supplies, rubbish for a sealed home);
  it is done when nobody of the household is held at home any more.
- A person becoming confirmed is one transfer task (to a designated hospital) per
  decision; it is done when they are taken in hospital, cancelled by any other later
  decision.

Decisions may arrive late, twice or out of order: only a decision newer (``decided_at``)
than the one kept counts; an older or the same one changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

HOME_QUARANTINE = "home_quarantine"
CONFIRMED = "confirmed"
IN_HOSPITAL = "in_hospital"


@dataclass(frozen=True)
class Hold:
    """A person's latest decision as dispatch knows it."""

    person_id: str
    household_id: str
    status: str
    at_home: bool  # confined at home (``holds_at_home``; None from older producers: at gate)
    decided_at: datetime


def at_home(holds_at_gate: bool, holds_at_home: bool | None) -> bool:
    return holds_at_gate if holds_at_home is None else holds_at_home


def is_newer(known: Hold | None, decided_at: datetime) -> bool:
    """Whether a decision replaces the one kept (a redelivery or a late one does not)."""
    return known is None or decided_at > known.decided_at


@dataclass(frozen=True)
class Steps:
    """What one newer decision asks of dispatch."""

    open_support: bool  # a quarantine-support task for the household, unless one is open
    open_transfer: bool  # a transfer task for this decision
    close_transfers: str | None  # the person's open transfers: "done" | "cancelled" | None
    households_to_check: tuple[str, ...]  # whose support task may end now


def steps(known: Hold | None, new: Hold) -> Steps:
    """The tasks a newer decision opens and which may end (the caller checks the
    household's other members before ending a support task)."""
    close: str | None = None
    if new.status != CONFIRMED:
        close = "done" if new.status == IN_HOSPITAL else "cancelled"
    check: tuple[str, ...] = ()
    if not new.at_home:
        check = (new.household_id,)
    if known is not None and known.household_id and known.household_id != new.household_id:
        check += (known.household_id,)  # moved out: the old household may be empty of holds
    return Steps(
        open_support=new.status == HOME_QUARANTINE and bool(new.household_id),
        open_transfer=new.status == CONFIRMED,
        close_transfers=close,
        households_to_check=tuple(h for h in check if h),
    )
