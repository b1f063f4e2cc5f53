"""Daily check-ins (接龙打卡) and door-to-door visits: the rules, no I/O.

One check-in per resident per local day: a later one for the same day replaces the one in
force (in the order they arrive). Its id is its idempotency key: the same id again gets the
reply the first one got and changes nothing. A grid worker's door visit gives each member
found at home that day's check-in (``reported_by`` the worker, source ``visit``). A check-in
with a fever (at or above the community's ``fever_c``) or any symptom is followed up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from .policy import ScreeningPolicy

SYMPTOMS = (
    "fever",
    "cough",
    "sore_throat",
    "fatigue",
    "breathless",
    "diarrhoea",
    "loss_of_smell",
    "loss_of_taste",
    "muscle_pain",
    "other",
)

#: A check-in may be for today or up to this many local days back (never a future day).
MAX_DAYS_BACK = 7


@dataclass(frozen=True)
class Checkin:
    checkin_id: str
    person_id: str
    day: date  # the community's local day it is for
    temperature_c: float | None
    symptoms: tuple[str, ...]
    note: str
    reported_by: str | None
    source: Literal["resident", "visit"]
    submitted_at: datetime
    recorded_at: datetime
    follow_up: bool = False


@dataclass(frozen=True)
class Reply:
    """What the resident is told (§4.1); kept per check-in id for a repeat."""

    checkin_id: str
    person_id: str
    day: date
    status: Literal["recorded", "replaced"]
    follow_up: bool
    received_at: datetime

    def body(self) -> dict:
        return {
            "checkin_id": self.checkin_id,
            "status": self.status,
            "follow_up": self.follow_up,
            "message": message(self.status, self.follow_up),
        }


def has_fever(temperature_c: float | None, policy: ScreeningPolicy) -> bool:
    return temperature_c is not None and temperature_c >= policy.fever_c


def needs_follow_up(
    temperature_c: float | None, symptoms: tuple[str, ...] | list[str], policy: ScreeningPolicy
) -> bool:
    """A fever or any symptom is followed up."""
    return bool(symptoms) or has_fever(temperature_c, policy)


def day_problem(day: date, today: date) -> str | None:
    """Why ``day`` cannot be checked in for on the community's ``today`` (None: it can)."""
    if day > today:
        return f"{day} is after today ({today}) on the community's clock"
    if day < today - timedelta(days=MAX_DAYS_BACK):
        return f"{day} is more than {MAX_DAYS_BACK} days ago (today is {today})"
    return None


def accept(checkin: Checkin, policy: ScreeningPolicy) -> Checkin:
    """The check-in as kept, with whether it is followed up."""
    follow = needs_follow_up(checkin.temperature_c, checkin.symptoms, policy)
    return Checkin(**{**checkin.__dict__, "follow_up": follow})


def reply_for(checkin: Checkin, in_force: Checkin | None) -> Reply:
    return Reply(
        checkin_id=checkin.checkin_id,
        person_id=checkin.person_id,
        day=checkin.day,
        status="recorded" if in_force is None else "replaced",
        follow_up=checkin.follow_up,
        received_at=checkin.recorded_at,
    )


def message(status: str, follow_up: bool) -> dict[str, str]:
    """The words on the resident's screen."""
    if follow_up:
        return {
            "zh": "已收到您的健康打卡。您报告了发热或不适症状，网格员和社区医生会联系您，"
            "请留在家中、做好防护。",
            "en": "Your health check-in is recorded. You reported a fever or symptoms: your "
            "grid worker and the community doctor will contact you; please stay at home.",
        }
    if status == "replaced":
        return {
            "zh": "已更新您今天的健康打卡，谢谢。",
            "en": "Today's health check-in is updated. Thank you.",
        }
    return {"zh": "健康打卡成功，谢谢。", "en": "Your health check-in is recorded. Thank you."}


# --- door-to-door visits ------------------------------------------------------------------
@dataclass(frozen=True)
class MemberResult:
    person_id: str
    temperature_c: float | None = None
    symptoms: tuple[str, ...] = ()
    not_at_home: bool = False


@dataclass(frozen=True)
class Visit:
    visit_id: str
    household_id: str
    worker_id: str
    visited_at: datetime
    day: date
    members: tuple[MemberResult, ...] = field(default_factory=tuple)
    recorded_at: datetime | None = None


def visit_checkin_id(visit_id: str, person_id: str) -> str:
    return f"visit:{visit_id}:{person_id}"


def checkins_of_visit(visit: Visit, now: datetime) -> list[Checkin]:
    """Each member found at home: that day's check-in, reported by the worker."""
    return [
        Checkin(
            checkin_id=visit_checkin_id(visit.visit_id, m.person_id),
            person_id=m.person_id,
            day=visit.day,
            temperature_c=m.temperature_c,
            symptoms=tuple(m.symptoms),
            note=f"door visit {visit.visit_id}",
            reported_by=visit.worker_id,
            source="visit",
            submitted_at=visit.visited_at,
            recorded_at=now,
        )
        for m in visit.members
        if not m.not_at_home
    ]


# --- what a check-in needs to know about the resident -------------------------------------
@dataclass(frozen=True)
class Resident:
    """A resident as the check-in rules see them: where they live, their community's clock
    and policy, their health status in force (None: never set, i.e. normal). Read in one
    query on the store."""

    person_id: str
    household_id: str
    name: str
    grid_id: str | None
    community_id: str | None
    zone: str | None
    policy: ScreeningPolicy
    status: str | None = None


@dataclass(frozen=True)
class ReminderTarget:
    person_id: str
    name: str
    household_id: str


@dataclass(frozen=True)
class MissedRun:
    """A resident who missed the last ``missed_days`` days (reminded, no check-in)."""

    person_id: str
    name: str
    household_id: str
    grid_id: str | None
    last_checkin_day: date | None
