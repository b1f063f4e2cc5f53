"""Follow-up: the days a person is watched (14 by default, the community's
``follow_up_days``) after symptoms, a fever, or entering one of the followed statuses.

A period starts on a local day and is planned to end ``follow_up_days`` later; a new
exposure (a new symptomatic check-in or visit, a new change into a followed status) extends
it from that day. One follow-up day record per person and local day (the key: a redelivered
event never makes two). A period is released on the policy's rule: its planned end reached,
no symptoms nor fever in the last ``release_symptom_free_days`` days and, where the policy
says so, a negative test taken since the last day with symptoms (or since the start).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from gridcare.shared.envelope import stable_id

from .policy import ScreeningPolicy
from .status import HealthStatus

#: A change into one of these (PersonStatusChanged) opens or extends a follow-up: the four
#: categories, quarantine at home, and symptoms.
FOLLOWED = frozenset(
    {
        HealthStatus.SYMPTOMATIC_FOLLOW_UP,
        HealthStatus.FEVER_UNEXCLUDED,
        HealthStatus.SUSPECTED,
        HealthStatus.CONFIRMED,
        HealthStatus.CLOSE_CONTACT,
        HealthStatus.HOME_QUARANTINE,
    }
)

#: A check-in with symptoms moves a person in one of these to symptomatic follow-up; a
#: person in any other status is held more strictly already and keeps it.
MILDER = frozenset({HealthStatus.NORMAL, HealthStatus.RECOVERED, HealthStatus.RELEASED})


@dataclass(frozen=True)
class FollowUp:
    follow_up_id: str
    person_id: str
    reason: str
    started_on: date
    ends_on: date
    status: str  # open | released
    opened_at: datetime
    last_symptom_day: date | None = None
    last_test_at: datetime | None = None
    last_test_negative: bool | None = None
    released_at: datetime | None = None
    release_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True)
class FollowUpDay:
    person_id: str
    day: date
    follow_up_id: str
    source: str  # checkin | visit
    source_ref: str
    temperature_c: float | None
    symptoms: tuple[str, ...]
    recorded_at: datetime


def exposed(
    current: FollowUp | None,
    *,
    person_id: str,
    day: date,
    reason: str,
    symptomatic: bool,
    policy: ScreeningPolicy,
    now: datetime,
) -> tuple[FollowUp, bool]:
    """The person's follow-up after an exposure on ``day`` (opened, or the open one
    extended to ``day + follow_up_days``); the flag says whether anything changed."""
    ends = day + timedelta(days=policy.follow_up_days)
    if current is not None and current.is_open:
        last = current.last_symptom_day
        if symptomatic and (last is None or day > last):
            last = day
        new = replace(current, ends_on=max(current.ends_on, ends), last_symptom_day=last)
        return new, new != current
    opened = FollowUp(
        follow_up_id=stable_id("follow-up", person_id, day.isoformat(), reason),
        person_id=person_id,
        reason=reason,
        started_on=day,
        ends_on=ends,
        status="open",
        opened_at=now,
        last_symptom_day=day if symptomatic else None,
    )
    return opened, True


def tested(current: FollowUp, *, negative: bool, at: datetime) -> FollowUp:
    """A test result (the newest counts)."""
    if current.last_test_at is not None and current.last_test_at > at:
        return current
    return replace(current, last_test_at=at, last_test_negative=negative)


def release_check(
    f: FollowUp, *, today: date, test_day: date | None, policy: ScreeningPolicy
) -> str | None:
    """Why ``f`` may be released today (None: not yet). ``test_day`` is the local day of
    its newest test."""
    if not f.is_open or today < f.ends_on:
        return None
    if (
        f.last_symptom_day is not None
        and (today - f.last_symptom_day).days < policy.release_symptom_free_days
    ):
        return None
    if policy.release_needs_negative_test:
        since = f.last_symptom_day or f.started_on
        if not f.last_test_negative or test_day is None or test_day < since:
            return None
        return (
            f"follow-up over ({f.started_on} to {f.ends_on}): no symptoms in the last "
            f"{policy.release_symptom_free_days} days and a negative test on {test_day}"
        )
    return (
        f"follow-up over ({f.started_on} to {f.ends_on}): no symptoms in the last "
        f"{policy.release_symptom_free_days} days"
    )


def released(f: FollowUp, *, reason: str, now: datetime) -> FollowUp:
    return replace(f, status="released", released_at=now, release_reason=reason)
