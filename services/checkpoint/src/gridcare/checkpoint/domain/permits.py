"""Outing permits: issued by the office within the household's quota, used by an exit,
closed by the return, overdue when the holder is not back in time.

    issued ──exit──▶ out ──return──▶ issued (uses left) | closed (none left)
                      └── past return_by: overdue (one alert per outing)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal

from gridcare.shared.localtime import local_day, zone

from .policy import Policy

Kind = Literal["outing", "emergency", "medical"]
#: The kinds that pass a sealed compound's gate, and do not count against the quota.
EMERGENCY_KINDS: tuple[Kind, ...] = ("emergency", "medical")


class PermitRefused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True)
class Permit:
    """A permit as the gate sees it at the moment of a scan."""

    permit_id: str
    kind: Kind
    valid_from: datetime
    valid_until: datetime
    uses_left: int
    state: Literal["issued", "out", "closed"]
    return_by: datetime | None = None
    return_within_h: float | None = None  # after an exit; None: by the end of validity

    def usable_at(self, t: datetime) -> bool:
        return (
            self.state == "issued"
            and self.uses_left > 0
            and self.valid_from <= t <= self.valid_until
        )

    def used_at(self, t: datetime) -> Permit:
        """An exit on it, received at ``t`` (our clock, not the device's: the holder is
        overdue by ours): one use gone, out until ``return_by``."""
        h = self.return_within_h
        return_by = t + timedelta(hours=h) if h else self.valid_until
        return dataclasses.replace(
            self, uses_left=self.uses_left - 1, state="out", return_by=return_by
        )

    def returned(self) -> Permit:
        """The holder is back: usable again if uses are left, else closed."""
        state = "issued" if self.uses_left > 0 else "closed"
        return dataclasses.replace(self, state=state, return_by=None)


def quota_window_start(valid_from: datetime, policy: Policy, zone_name: str | None) -> datetime:
    """The first instant of the quota's window: the local day of ``valid_from`` and the
    ``permit_quota_days - 1`` local days before it, from midnight on the community's clock."""
    first_day = local_day(valid_from, zone_name) - timedelta(days=policy.permit_quota_days - 1)
    return datetime.combine(first_day, time(0), tzinfo=zone(zone_name))


def check_issue(
    kind: Kind,
    valid_from: datetime,
    valid_until: datetime,
    outings_in_window: int,
    policy: Policy,
    household_id: str,
) -> None:
    """Refuse a permit that cannot be issued (raises :class:`PermitRefused`)."""
    if valid_until <= valid_from:
        raise PermitRefused("invalid_request", "valid_until must be after valid_from")
    if kind == "outing" and outings_in_window >= policy.permit_quota:
        raise PermitRefused(
            "quota_exceeded",
            f"household {household_id} already has {outings_in_window} outing permit(s) in "
            f"{policy.permit_quota_days} day(s) (quota {policy.permit_quota})",
        )


def is_overdue(state: str, return_by: datetime | None, now: datetime) -> bool:
    return state == "out" and return_by is not None and return_by < now
