"""What a community's policy says about messages, with notify's defaults for what it
leaves out (``CommunityPolicy``: quiet_hours, hourly_cap, digest_minutes, escalations)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gridcare.shared.localtime import DEFAULT_ZONE

from .flow import quiet_hours_end

#: A chain: the roles to tell in turn, how long each has to acknowledge, and how many
#: times the whole chain is gone through again before the alert is given up on.
DEFAULT_CHAIN = (("grid_worker", 5.0), ("secretary", 15.0), ("duty_staff", 30.0))


@dataclass(frozen=True)
class Chain:
    steps: tuple[tuple[str, float], ...]  # (role, minutes to acknowledge)
    repeats: int = 0

    @classmethod
    def of(cls, spec: Mapping[str, Any]) -> Chain:
        return cls(
            tuple(zip(spec["chain"], (float(w) for w in spec["waits_min"]), strict=True)),
            int(spec.get("repeats", 0)),
        )


DEFAULT_CHAINS: dict[str, Chain] = {
    "fever": Chain(DEFAULT_CHAIN),
    "quarantine_breach": Chain(DEFAULT_CHAIN),
    "emergency": Chain((("grid_worker", 5.0), ("secretary", 10.0), ("duty_staff", 15.0)), 1),
    "missed_checkin": Chain((("grid_worker", 30.0), ("secretary", 60.0))),
    "gate_offline": Chain((("duty_staff", 10.0), ("secretary", 30.0))),
    # screening's: an urgent call-back (PHQ-9 item 9: thoughts of self-harm) goes to the
    # community's doctor; the grid worker can be at the door soonest; round again once
    "mental_health_urgent": Chain(
        (("community_doctor", 10.0), ("grid_worker", 15.0), ("secretary", 15.0)), 1
    ),
    # a person followed up (the four categories, symptoms) unheard of for a day
    "follow_up_missed": Chain(
        (("grid_worker", 30.0), ("community_doctor", 30.0), ("secretary", 60.0))
    ),
}


@dataclass(frozen=True)
class NotifyPolicy:
    quiet_hours: str | None = None  # "22:00-07:00", local: non-urgent messages wait
    hourly_cap: int = 10  # non-urgent messages per recipient per hour
    digest_minutes: int = 60  # low-priority notices to one recipient bundled per period
    chains: Mapping[str, Chain] = field(default_factory=lambda: DEFAULT_CHAINS)

    @classmethod
    def of(cls, row: Mapping[str, Any] | None) -> NotifyPolicy:
        """The policy a community's row sets (None: all defaults)."""
        if not row:
            return cls()
        chains = dict(DEFAULT_CHAINS)
        for kind, spec in (row.get("escalations") or {}).items():
            chains[kind] = Chain.of(spec)
        return cls(
            quiet_hours=row.get("quiet_hours"),
            hourly_cap=row.get("hourly_cap") or cls.hourly_cap,
            digest_minutes=row.get("digest_minutes") or cls.digest_minutes,
            chains=chains,
        )

    def chain(self, kind: str | None) -> Chain:
        return self.chains.get(kind or "", Chain(DEFAULT_CHAIN))


def quiet_until(now: datetime, zone: str | None, quiet: str | None) -> datetime | None:
    """When the community's quiet hours (``"22:00-07:00"``, local) that ``now`` falls in
    end, on ``now``'s clock; None outside them (or when there are none)."""
    end = quiet_hours_end(now.astimezone(ZoneInfo(zone or DEFAULT_ZONE)), quiet)
    return None if end is None else end.astimezone(now.tzinfo)
