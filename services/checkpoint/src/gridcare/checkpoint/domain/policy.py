"""A community's gate policy: every threshold the gate rules use, and their defaults.

The office publishes a community's policy (``CommunityPolicy``: the settings it changes);
whatever it leaves out is the default here. This is the one copy of each default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from gridcare.contracts.refdata import CommunityPolicy, ControlLevel, LevelRules

#: What each control level means unless a community's policy says otherwise.
DEFAULT_LEVELS: Mapping[ControlLevel, LevelRules] = MappingProxyType(
    {
        ControlLevel.SEALED: LevelRules(exit="emergency_only", visitors="deny"),
        ControlLevel.CONTROLLED: LevelRules(exit="permit", visitors="deny"),
        ControlLevel.PRECAUTION: LevelRules(exit="free", visitors="allowed"),
    }
)


@dataclass(frozen=True)
class Policy:
    """Thresholds and rules of one community. Every number is configuration."""

    fever_c: float = 37.3  # at or above: deny `fever`
    min_valid_c: float = 30.0  # a reading outside min..max is an invalid scan
    max_valid_c: float = 45.0
    visitor_test_validity_h: float = 48.0  # a risk-area visitor's negative test, this recent
    risk_regions: frozenset[str] = field(default_factory=frozenset)
    levels: Mapping[ControlLevel, LevelRules] = field(default_factory=lambda: DEFAULT_LEVELS)
    permit_quota: int = 1  # outing permits per household ...
    permit_quota_days: int = 3  # ... per this many local days (today and the days before)
    heartbeat_interval_s: float = 30.0  # a gate silent for MISSED intervals is offline

    @classmethod
    def of(cls, p: CommunityPolicy | None) -> Policy:
        """The community's policy: what it sets, and the defaults for the rest."""
        if p is None:
            return cls()
        given: dict[str, Any] = {
            f.name: getattr(p, f.name)
            for f in fields(cls)
            if f.name not in ("levels", "risk_regions") and getattr(p, f.name) is not None
        }
        if p.risk_regions is not None:
            given["risk_regions"] = frozenset(p.risk_regions)
        given["levels"] = MappingProxyType({**DEFAULT_LEVELS, **p.levels})
        return cls(**given)

    def rules(self, level: ControlLevel) -> LevelRules:
        return self.levels.get(level) or DEFAULT_LEVELS[level]

    def as_dict(self) -> dict[str, Any]:
        return {
            "fever_c": self.fever_c,
            "min_valid_c": self.min_valid_c,
            "max_valid_c": self.max_valid_c,
            "visitor_test_validity_h": self.visitor_test_validity_h,
            "risk_regions": sorted(self.risk_regions),
            "permit_quota": self.permit_quota,
            "permit_quota_days": self.permit_quota_days,
            "heartbeat_interval_s": self.heartbeat_interval_s,
            "levels": {lvl.value: self.rules(lvl).model_dump() for lvl in ControlLevel},
        }


def set_by(p: CommunityPolicy | None) -> list[str]:
    """The settings a community's own policy gives (the rest are defaults)."""
    if p is None:
        return []
    named = [k for k in Policy.__dataclass_fields__ if k != "levels" and getattr(p, k) is not None]
    return named + [f"levels.{lvl.value}" for lvl in p.levels]
