"""Bad input from devices: counted per device, recorded at a bounded rate, one alert.

A device that sends garbage (a firmware bug, a misconfigured gate) must not flood the dead
letters. Each device has a token bucket of ``per_minute`` records, refilled at that rate
(a burst of ``per_minute`` at once, then one every ``60 / per_minute`` s): a bad message
the bucket takes is recorded (a dead letter), one it cannot take is only counted. The first
message a device's bucket cannot take means it is flooding: its duty staff are alerted,
and again at most once per ``alert_every_s`` while it goes on.

A device is named by what the reference data knows (a gate's id, a household's id); any
other name is :data:`UNKNOWN`, one device for the bound and for the metrics' labels, so
messages on made-up subjects grow neither memory nor label values without bound. Nobody
is alerted about :data:`UNKNOWN` (there is no duty chat to tell).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Container
from dataclasses import dataclass

from pydantic import ValidationError

UNKNOWN = "unknown"


def device_of(name: str, known: Container[str]) -> str:
    """``name`` if the reference data knows it, else :data:`UNKNOWN`."""
    return name if name in known else UNKNOWN


def describe(exc: ValidationError) -> str:
    """Every bad field of a device's message on one line, without the values it sent
    (they are the device's, and may be anything)."""
    parts = []
    for e in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in e["loc"]) or "(body)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


@dataclass(frozen=True)
class Outcome:
    record: bool  # keep it (a dead letter); else only counted
    alert: bool  # the device has just started flooding (or still is, an alert period on)


RECORD = Outcome(record=True, alert=False)
COUNT = Outcome(record=False, alert=False)
COUNT_AND_ALERT = Outcome(record=False, alert=True)


@dataclass
class _Bucket:
    tokens: float
    at: float  # the clock when ``tokens`` was last brought up to date
    alerted_at: float | None = None


class BadInputBound:
    """Per device and kind of message (``"heartbeat"``, ``"door"``, ...): at most
    ``per_minute`` bad messages a minute recorded; one alert per ``alert_every_s`` while
    more come. ``clock`` is in seconds (monotonic: a wall clock that steps back must not
    refill or drain a bucket)."""

    def __init__(
        self,
        per_minute: int,
        alert_every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self.alert_every_s = alert_every_s
        self.clock = clock
        self._rate = per_minute / 60.0  # tokens a second
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def take(self, kind: str, device: str) -> Outcome:
        """One bad message of ``kind`` from ``device``: whether to record it, whether to
        alert now."""
        now = self.clock()
        b = self._buckets.get((kind, device))
        if b is None:
            b = self._buckets[kind, device] = _Bucket(tokens=float(self.per_minute), at=now)
        else:
            b.tokens = min(float(self.per_minute), b.tokens + max(0.0, now - b.at) * self._rate)
            b.at = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return RECORD
        if device == UNKNOWN:
            return COUNT
        if b.alerted_at is not None and now - b.alerted_at < self.alert_every_s:
            return COUNT
        b.alerted_at = now
        return COUNT_AND_ALERT
