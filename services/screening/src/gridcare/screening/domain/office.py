"""The office's queries, their rules (no I/O): what the daily counts count, who is overdue
for a check-in, and how one resident's timeline is put in order.

- **Counts** (四类人员 and the rest): each resident of a compound is counted once, under
  their health status in force (none recorded: ``normal``); the four categories are
  ``confirmed``, ``suspected``, ``fever_unexcluded`` and ``close_contact``. "Recovered
  today" and "released today" count the people who took that step on the community's
  local day.
- **Overdue for a check-in** follows the check-ins part's rules (``checkin_reminder_at``
  of the community's policy): a resident with no check-in today is overdue once today's
  reminder time has passed; before it, only if they missed a day already. Their missed
  days are the local days since their last check-in (today included once the reminder
  time has passed).
- **A timeline** is every entry about a person in the order it happened (ties: the kind's
  order below, then what the entry says), each time on the community's clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from gridcare.shared.errors import ApiError
from gridcare.shared.localtime import iso

from .status import HealthStatus

#: 四类人员: the four categories the office reports every day.
FOUR_CATEGORIES = (
    HealthStatus.CONFIRMED,
    HealthStatus.SUSPECTED,
    HealthStatus.FEVER_UNEXCLUDED,
    HealthStatus.CLOSE_CONTACT,
)
#: Counted as they stand (status in force), after the four categories.
ALSO_COUNTED = (
    HealthStatus.SYMPTOMATIC_FOLLOW_UP,
    HealthStatus.HOME_QUARANTINE,
    HealthStatus.CENTRAL_QUARANTINE,
    HealthStatus.IN_HOSPITAL,
)
#: Steps counted when taken on the day ("recovered today", "released today").
STEPS_OF_THE_DAY = (HealthStatus.RECOVERED, HealthStatus.RELEASED)
COUNT_KEYS = (
    "residents",
    *(s.value for s in FOUR_CATEGORIES),
    "four_categories",
    *(s.value for s in ALSO_COUNTED),
    *(f"{s.value}_today" for s in STEPS_OF_THE_DAY),
)


def count_rows(
    compound_ids: Iterable[str],
    by_status: Iterable[tuple[str, str, int]],
    steps: Iterable[tuple[str, str, int]],
) -> dict[str, dict[str, int]]:
    """Per compound: ``residents`` (all), one count per status counted, their sum
    ``four_categories``, and the day's steps (``recovered_today``, ``released_today``).
    ``by_status``: (compound, status in force, residents); ``steps``: (compound, status
    stepped to that day, people). Compounds with nobody counted get zeros."""
    rows = {c: dict.fromkeys(COUNT_KEYS, 0) for c in compound_ids}
    for compound, status, n in by_status:
        row = rows.setdefault(compound, dict.fromkeys(COUNT_KEYS, 0))
        row["residents"] += n
        if status in row:
            row[status] += n
        if status in FOUR_CATEGORIES:
            row["four_categories"] += n
    for compound, status, n in steps:
        row = rows.setdefault(compound, dict.fromkeys(COUNT_KEYS, 0))
        key = f"{status}_today"
        if key in row:
            row[key] += n
    return rows


def totals(rows: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out = dict.fromkeys(COUNT_KEYS, 0)
    for row in rows:
        for k in COUNT_KEYS:
            out[k] += row[k]
    return out


def day_problem(day: date, today: date) -> str | None:
    """Why counts cannot be given for ``day`` (None: they can)."""
    if day > today:
        return f"{day} is after today ({today}) on the community's clock"
    return None


# --- overdue for a check-in ---------------------------------------------------------------
def checkin_cutoff(today: date, clock: time, reminder_time: time, min_days: int = 1) -> date:
    """A resident is overdue if their last check-in is on or before this day (or they
    never checked in): ``min_days`` missed days, today counting once its reminder time has
    passed."""
    counted_today = clock >= reminder_time
    return today - timedelta(days=min_days if counted_today else min_days + 1)


def missed_days(
    today: date, clock: time, reminder_time: time, last_checkin: date | None
) -> int | None:
    """Local days missed since the last check-in (None: never checked in)."""
    if last_checkin is None:
        return None
    gone = (today - last_checkin).days
    return gone if clock >= reminder_time else gone - 1


# --- a resident's timeline ----------------------------------------------------------------
#: The order of kinds at the same instant (a test result before the status it caused, a
#: status before the household's quarantine it is part of).
KINDS = (
    "checkin",
    "door_visit",
    "questionnaire",
    "test_result",
    "status",
    "follow_up",
    "follow_up_released",
    "household_quarantine",
    "household_quarantine_ended",
    "site_stay",
    "site_stay_ended",
    "contact_proposal",
    "passage",
)


@dataclass(frozen=True)
class Entry:
    at: datetime  # UTC
    kind: str
    summary: str  # one line a person reads
    detail: dict[str, Any] = field(default_factory=dict)

    def body(self, zone: str | None) -> dict[str, Any]:
        return {"at": iso(self.at, zone), "kind": self.kind, "summary": self.summary,
                **self.detail}  # fmt: skip


def in_order(entries: Iterable[Entry], since: datetime | None = None) -> list[Entry]:
    """The entries at or after ``since``, oldest first."""
    kept = [e for e in entries if since is None or e.at >= since]
    return sorted(kept, key=lambda e: (e.at, KINDS.index(e.kind), e.summary))


class UnknownPlace(ApiError):
    """A community, compound or grid the office named that screening does not know."""
