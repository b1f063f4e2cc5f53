"""A missed follow-up day: the rules, no I/O.

A person under follow-up (an open period, domain/followup.py) is expected to be heard from
every local day of it: a check-in, or a grid worker's visit finding them at home. A day of
the period with neither is *missed*, and it escalates after one day (the ordinary rule for
everyone else waits ``missed_days_for_visit`` days): on the community's first reminder pass
after the day has ended (after its ``checkin_reminder_at`` the next morning), the person's
grid worker gets an alert to acknowledge (``task.follow_up_missed``) and a door visit is
asked for (``DoorVisitRequested``).

Which days count: from the day after the period began (the day it began may have been
nearly over: a close contact named at 23:00) up to its planned end (``ends_on``), while the
period is open, no further back than ``LOOKBACK_DAYS`` (a pass that did not run for a day
still finds the day before). Each missed day is recorded as that day's follow-up record
(source ``missed``) in the transaction of its alert, so each (person, day) escalates once:
a second pass, a restart or another instance finds it recorded. The days one pass finds for
one person are one request (named by the newest of them): one alert, one door visit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from gridcare.shared.envelope import stable_id

from .followup import FollowUpDay

#: A pass looks this many local days back (yesterday, and the days before it when a pass
#: did not run).
LOOKBACK_DAYS = 3
#: The follow-up day record of a missed day.
SOURCE = "missed"
#: notify's template and alert kind (its escalation chain: the community's
#: ``escalations.follow_up_missed``, else notify's default one).
TEMPLATE = "task.follow_up_missed"
ALERT_KIND = "follow_up_missed"


@dataclass(frozen=True)
class MissedDay:
    """A local day of an open follow-up with no check-in and no record (one query's row)."""

    person_id: str
    name: str
    household_id: str
    grid_id: str | None
    follow_up_id: str
    started_on: date
    ends_on: date
    day: date
    last_checkin_day: date | None  # the last check-in before ``day`` (None: never)


@dataclass(frozen=True)
class Escalation:
    """One person's missed days found by one pass: one alert, one door visit."""

    request_id: str
    days: tuple[MissedDay, ...]  # oldest first

    @property
    def first(self) -> MissedDay:
        return self.days[0]

    @property
    def newest(self) -> MissedDay:
        return self.days[-1]


def days_to_check(today: date) -> list[date]:
    """The local days a pass on ``today`` looks at, oldest first (never today: it is not
    over)."""
    return [today - timedelta(days=i) for i in range(LOOKBACK_DAYS, 0, -1)]


def watched(day: date, *, started_on: date, ends_on: date, today: date) -> bool:
    """Whether ``day`` of a period (open) is one its person must be heard from and can be
    called missed on ``today`` (the store's query applies the same rule)."""
    return started_on < day <= ends_on and today - timedelta(days=LOOKBACK_DAYS) <= day < today


def request_id(person_id: str, day: date) -> str:
    """Stable per person and (newest) missed day: notify's idempotency key, the outbox's
    event id and the door-visit request's id."""
    return stable_id("follow-up-missed", person_id, day.isoformat())


def escalations(found: Iterable[MissedDay]) -> list[Escalation]:
    """The rows of one pass, one escalation per person (in the order of their ids)."""
    by_person: dict[str, list[MissedDay]] = {}
    for m in found:
        by_person.setdefault(m.person_id, []).append(m)
    out = []
    for person_id in sorted(by_person):
        days = tuple(sorted(by_person[person_id], key=lambda m: m.day))
        out.append(Escalation(request_id(person_id, days[-1].day), days))
    return out


def record(m: MissedDay, request: str, now: datetime) -> FollowUpDay:
    """The day's follow-up record: missed (no temperature, no symptoms), naming its
    request. A check-in for that day sent later replaces it (the alert has gone)."""
    return FollowUpDay(
        person_id=m.person_id,
        day=m.day,
        follow_up_id=m.follow_up_id,
        source=SOURCE,
        source_ref=request,
        temperature_c=None,
        symptoms=(),
        recorded_at=now,
    )


def alert_params(e: Escalation) -> dict:
    """``task.follow_up_missed``'s parameters: who, which days, the period."""
    m = e.newest
    return {
        "person_id": m.person_id,
        "name": m.name or None,
        "household_id": m.household_id,
        "days": [d.day.isoformat() for d in e.days],
        "started_on": m.started_on.isoformat(),
        "ends_on": m.ends_on.isoformat(),
        "last_checkin_day": m.last_checkin_day.isoformat() if m.last_checkin_day else None,
    }
