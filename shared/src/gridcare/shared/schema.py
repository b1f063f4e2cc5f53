"""The building blocks of every schema: identifiers, timestamps, phones, e-mail addresses,
languages, zones.

The edge contract (``docs/edge-contract.md``) fixes the first two: identifiers are tokens
of ``[A-Za-z0-9_-]{1,64}``; timestamps are RFC 3339 text with an offset.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints

# Identifiers on the edge and in reference data.
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


def _phone(v: str) -> str:
    digits = re.sub(r"[\s()-]", "", v)
    if not re.fullmatch(r"\+?[0-9]{5,20}", digits):
        raise ValueError("not a phone number (digits, optional leading +, 5-20 digits)")
    return digits


# An e-mail address as an office types it: one @, no spaces, a dotted domain. Deliverability
# is the mail provider's to judge; this only catches what cannot be an address.
_LABEL = r"[^\W_](?:(?:[^\W_]|-)*[^\W_])?"  # a domain label (letters of any script, digits, -)
_EMAIL = re.compile(rf"[^@\s<>(),;:\"\[\]\\]{{1,64}}@{_LABEL}(?:\.{_LABEL})+")


def _email(v: str) -> str:
    v = v.strip()
    if len(v) > 254 or not _EMAIL.fullmatch(v):
        raise ValueError("not an e-mail address (name@example.com)")
    local, domain = v.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def _split_list(v: object) -> object:
    if isinstance(v, str):
        return [p.strip() for p in re.split(r"[;|]", v) if p.strip()]
    return v


_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(v: object) -> object:
    if not isinstance(v, str) or not _RFC3339.fullmatch(v):
        raise ValueError(
            "must be an RFC 3339 timestamp with an offset, e.g. 2026-03-12T07:31:05+08:00"
        )
    return v


def _time_zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{v!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None
    return v


def _in_utc(t: datetime) -> datetime:
    """``t`` in UTC. A time at the very edge of the calendar with an offset that takes it
    past year 1 or 9999 (``9999-12-31T23:59:59-14:00``) cannot be held: a validation error
    naming the field, never an ``OverflowError`` that the caller would take for a fault."""
    try:
        return t.astimezone(UTC)
    except OverflowError:
        raise ValueError("outside the calendar once converted to UTC (years 1-9999)") from None


# An edge timestamp: RFC 3339 text with an offset; not a Unix time. Held in UTC from here
# on (stores compare times; SQLite keeps no offsets).
Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_in_utc)]
Phone = Annotated[str, AfterValidator(_phone)]
Email = Annotated[str, AfterValidator(_email)]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
TagList = Annotated[list[Token], BeforeValidator(_split_list)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]
