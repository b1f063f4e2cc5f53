"""Quarantine: households at home, and central quarantine sites with their rooms.

Plain rules, no I/O:

- A household's home quarantine: every member goes to home quarantine, except a member
  held more strictly already (confirmed, in hospital, central quarantine), who keeps it. It
  runs from its start to a planned end (the policy's follow-up days, in local days, unless
  the caller names one); starting it again while it is active extends it (never shortens).
- A central quarantine site (a requisitioned hotel) has rooms; a room takes one person
  (a family room is entered as one room per bed, e.g. ``1201a``, ``1201b``). A site never
  takes more people than it has free rooms: an intake or a transfer is all or nothing,
  refused naming how many fit. Rooms are given in their natural order (``2`` before
  ``10``). The store keeps the same rule as a unique (site, room) over current occupants,
  so two intakes at once cannot fill one room twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from gridcare.shared.errors import ApiError
from gridcare.shared.localtime import local

from .status import HealthStatus

#: The days a household's quarantine runs when the caller names no end and the community's
#: policy names none (ScreeningPolicy.follow_up_days when it is there).
DEFAULT_DAYS = 14

#: Statuses held more strictly than home quarantine: a member in one keeps it.
STRICTER = frozenset(
    {HealthStatus.CONFIRMED, HealthStatus.IN_HOSPITAL, HealthStatus.CENTRAL_QUARANTINE}
)

#: Where a person may go when they leave a central site.
DISCHARGE_TO = frozenset(
    {
        HealthStatus.RELEASED,
        HealthStatus.HOME_QUARANTINE,
        HealthStatus.NORMAL,
        HealthStatus.IN_HOSPITAL,
    }
)

#: The most people one intake or transfer moves (70 close contacts in a night fits well).
MAX_BATCH = 500

ACTIVE, ENDED = "active", "ended"


class QuarantineRefused(ApiError):
    """A quarantine request the rules refuse (its code says which rule)."""


# --- a household at home -------------------------------------------------------------------
@dataclass(frozen=True)
class HouseholdQuarantine:
    household_id: str
    started_at: datetime
    until: datetime
    started_by: str
    reason: str
    status: str = ACTIVE  # active | ended
    ended_at: datetime | None = None
    ended_by: str | None = None
    end_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


def keeps_own_status(current: HealthStatus | None) -> bool:
    """Whether a member already in ``current`` keeps it when the household is quarantined."""
    return current in STRICTER


def planned_end(start: datetime, zone: str | None, days: int = DEFAULT_DAYS) -> datetime:
    """``days`` local days after ``start``, at the same local time (a change of the clocks
    in between does not move it), in UTC."""
    if days < 1:
        raise ValueError("a quarantine lasts at least one day")
    start_local = local(start, zone)
    naive = start_local.replace(tzinfo=None) + timedelta(days=days)
    return naive.replace(tzinfo=start_local.tzinfo).astimezone(UTC)


def start_household(
    current: HouseholdQuarantine | None,
    household_id: str,
    *,
    by: str,
    reason: str,
    now: datetime,
    until: datetime,
) -> HouseholdQuarantine:
    """The household's quarantine once started at ``now`` until ``until``: a new one, or
    the active one extended to the later end (a new exposure extends, never shortens)."""
    if until <= now:
        raise QuarantineRefused("until_in_past", "the planned end must be after now", "until")
    if current is not None and current.active:
        return replace(current, until=max(current.until, until))
    return HouseholdQuarantine(household_id, now, until, by, reason)


def end_household(
    current: HouseholdQuarantine | None,
    household_id: str,
    *,
    by: str,
    reason: str,
    now: datetime,
) -> HouseholdQuarantine:
    if current is None or not current.active:
        raise QuarantineRefused(
            "not_quarantined", f"{household_id} is not in home quarantine", "household_id"
        )
    if not reason.strip():
        raise QuarantineRefused("reason_required", "ending a quarantine needs a reason", "reason")
    return replace(current, status=ENDED, ended_at=now, ended_by=by, end_reason=reason)


# --- central sites ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Site:
    site_id: str
    name: str
    address: str
    community_id: str
    added_at: datetime
    added_by: str


@dataclass(frozen=True)
class Occupant:
    """A person in a room of a site now."""

    person_id: str
    site_id: str
    room_id: str
    since: datetime
    intake_id: str | None = None


@dataclass(frozen=True)
class Intake:
    """A batch taken in at once; a repeat of the same ``intake_id`` changes nothing."""

    intake_id: str
    site_id: str
    people: tuple[str, ...]
    by: str
    reason: str
    at: datetime


def room_order(room_id: str) -> tuple:
    """Natural order: ``2`` before ``10``, ``1201a`` before ``1201b``."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", room_id)
        if part
    )


def new_rooms(existing: list[str], adding: list[str]) -> list[str]:
    """The rooms to add (in natural order); a room the site has is refused by name."""
    if not adding:
        raise QuarantineRefused("no_rooms", "name at least one room", "rooms")
    twice = sorted({r for r in adding if adding.count(r) > 1})
    if twice:
        raise QuarantineRefused("duplicate_rooms", f"named twice: {', '.join(twice)}", "rooms")
    there = sorted(set(adding) & set(existing), key=room_order)
    if there:
        raise QuarantineRefused(
            "room_exists", f"the site has these rooms already: {', '.join(there)}", "rooms"
        )
    return sorted(adding, key=room_order)


def check_batch(people: list[str]) -> None:
    if not people:
        raise QuarantineRefused("no_people", "name at least one person", "people")
    if len(people) > MAX_BATCH:
        raise QuarantineRefused(
            "too_many_people", f"{len(people)} people; at most {MAX_BATCH} at once", "people"
        )
    twice = sorted({p for p in people if people.count(p) > 1})
    if twice:
        raise QuarantineRefused("duplicate_people", f"named twice: {', '.join(twice)}", "people")


def assign_rooms(
    site_id: str, rooms: list[str], occupied: set[str], people: list[str]
) -> dict[str, str]:
    """Each person's room, all or nothing: the free rooms in natural order, one each; fewer
    free rooms than people refuses the whole batch, naming how many fit."""
    check_batch(people)
    free = sorted((r for r in rooms if r not in occupied), key=room_order)
    if len(people) > len(free):
        raise QuarantineRefused(
            "site_full",
            f"site {site_id} has {len(free)} free room{'s' * (len(free) != 1)} of "
            f"{len(rooms)}; {len(people)} people do not fit (only {len(free)} would)",
            "people",
        )
    return dict(zip(people, free, strict=False))


def same_intake(kept: Intake, site_id: str, people: list[str]) -> bool:
    """Whether a request repeats ``kept`` (the same site and people) or reuses its id."""
    return kept.site_id == site_id and sorted(kept.people) == sorted(people)


class RoomTaken(Exception):
    """The store refused an occupant: the room (or the person) was taken meanwhile by
    another transaction. The whole step is tried again on what is committed now."""
