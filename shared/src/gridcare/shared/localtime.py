"""Local time: stores keep UTC; people read the community's own clock.

Every community has an IANA time zone in its reference data (``communities.csv``). What a
person reads (an alert, an SMS, the office tool's tables) is in that zone, and "a day"
(permit quotas, check-ins, digests) is the community's local day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from zoneinfo import ZoneInfo

#: Used until a community's own zone is known (the sample community's, too).
DEFAULT_ZONE = "Asia/Shanghai"


@cache
def zone(name: str | None) -> ZoneInfo:
    return ZoneInfo(name or DEFAULT_ZONE)


def local(t: datetime, zone_name: str | None) -> datetime:
    """``t`` on the community's clock (a naive ``t`` is UTC, as SQLite returns it)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(zone(zone_name))


def local_day(t: datetime, zone_name: str | None) -> date:
    """The community's calendar day that ``t`` falls on."""
    return local(t, zone_name).date()


def reads(t: datetime | None, zone_name: str | None, seconds: bool = False) -> str:
    """``t`` as a person reads it: ``2026-03-12 07:31`` on the community's clock."""
    if t is None:
        return ""
    return f"{local(t, zone_name):%Y-%m-%d %H:%M{':%S' if seconds else ''}}"


def iso(t: datetime | None, zone_name: str | None) -> str | None:
    """``t`` as RFC 3339 with the community's offset (for replies people and tools read)."""
    return None if t is None else local(t, zone_name).isoformat()


def as_utc(t: datetime | None) -> datetime | None:
    """A datetime read back from a store, as aware UTC (SQLite returns naive UTC)."""
    if t is not None and t.tzinfo is None:
        return t.replace(tzinfo=UTC)
    return t
