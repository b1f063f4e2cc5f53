"""A person's health status: screening's list, and which statuses hold a person at the gate.

Screening decides; the gates enforce ``holds_at_gate`` as carried on ``PersonStatusChanged``
and need not know this list (a status added here needs no change at the gate). The order of
the four categories, quarantine and the way out follows the community reports (MISSION.md).
Which transitions are allowed, and by whom, comes with the health registry; today any
status may be recorded, with who and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class HealthStatus(StrEnum):
    NORMAL = "normal"
    SYMPTOMATIC_FOLLOW_UP = "symptomatic_follow_up"
    FEVER_UNEXCLUDED = "fever_unexcluded"
    SUSPECTED = "suspected"
    CONFIRMED = "confirmed"
    CLOSE_CONTACT = "close_contact"
    HOME_QUARANTINE = "home_quarantine"
    CENTRAL_QUARANTINE = "central_quarantine"
    IN_HOSPITAL = "in_hospital"
    RECOVERED = "recovered"
    RELEASED = "released"


#: The four categories, quarantine and hospital keep a person from leaving the compound.
#: Symptoms alone are followed up (14 days) without holding anyone.
HOLDS_AT_GATE = frozenset(
    {
        HealthStatus.FEVER_UNEXCLUDED,
        HealthStatus.SUSPECTED,
        HealthStatus.CONFIRMED,
        HealthStatus.CLOSE_CONTACT,
        HealthStatus.HOME_QUARANTINE,
        HealthStatus.CENTRAL_QUARANTINE,
        HealthStatus.IN_HOSPITAL,
    }
)

#: What each status reads as, for the people who get alerts about it.
LABELS: dict[HealthStatus, dict[str, str]] = {
    HealthStatus.NORMAL: {"zh": "正常", "en": "normal"},
    HealthStatus.SYMPTOMATIC_FOLLOW_UP: {"zh": "有症状随访", "en": "followed up for symptoms"},
    HealthStatus.FEVER_UNEXCLUDED: {"zh": "发热未排除", "en": "fever not yet excluded"},
    HealthStatus.SUSPECTED: {"zh": "疑似", "en": "suspected case"},
    HealthStatus.CONFIRMED: {"zh": "确诊", "en": "confirmed case"},
    HealthStatus.CLOSE_CONTACT: {"zh": "密切接触者", "en": "close contact"},
    HealthStatus.HOME_QUARANTINE: {"zh": "居家隔离", "en": "home quarantine"},
    HealthStatus.CENTRAL_QUARANTINE: {"zh": "集中隔离", "en": "central quarantine"},
    HealthStatus.IN_HOSPITAL: {"zh": "住院", "en": "in hospital"},
    HealthStatus.RECOVERED: {"zh": "已康复", "en": "recovered"},
    HealthStatus.RELEASED: {"zh": "已解除", "en": "released"},
}


def holds_at_gate(status: HealthStatus) -> bool:
    return status in HOLDS_AT_GATE


@dataclass(frozen=True)
class StatusDecision:
    """One recorded decision about a person (the history keeps every one)."""

    person_id: str
    status: HealthStatus
    set_by: str
    reason: str
    at: datetime
    until: datetime | None = None

    @property
    def holds_at_gate(self) -> bool:
        return holds_at_gate(self.status)


class OutOfOrder(Exception):
    """A decision older than the one in force (it arrived late): not applied."""


def decide(current: StatusDecision | None, new: StatusDecision) -> StatusDecision:
    """The newest decision is in force; an older one arriving late changes nothing."""
    if current is not None and current.at > new.at:
        raise OutOfOrder(f"{new.person_id}: a decision of {current.at} is newer")
    return new
