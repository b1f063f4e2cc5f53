"""What the checkpoint publishes: gate alerts, permits, overrides, levels, gate health."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from gridcare.shared.envelope import Event
from gridcare.shared.streams import StreamSpec

from .refdata import ControlLevel

#: Alerts and gate health: each matters until it is consumed, so a full stream refuses
#: new ones (the outbox retries them) instead of discarding the oldest.
STREAM = StreamSpec(
    "CHECKPOINT",
    (
        "checkpoint.fever.>",
        "checkpoint.quarantine.>",
        "checkpoint.permit.overdue.>",
        "checkpoint.gate.>",
    ),
    "Gate alerts and gate health",
)
#: Announcements nobody must act on (permits issued, overrides, levels set): their own
#: stream and size limit, the oldest discarded when full, so they never take an alert's room.
NOTICES = StreamSpec(
    "CHECKPOINT_NOTICES",
    ("checkpoint.permit.issued.>", "checkpoint.override.>", "checkpoint.level.>"),
    "Checkpoint announcements: permits issued, overrides, levels set",
    refuse_when_full=False,
)

FEVER_DETECTED = "checkpoint.fever.detected.{gate_id}"
QUARANTINE_BREACH = "checkpoint.quarantine.breach.{compound_id}"
PERMIT_ISSUED = "checkpoint.permit.issued.{compound_id}"
PERMIT_OVERDUE = "checkpoint.permit.overdue.{compound_id}"
OVERRIDE_RECORDED = "checkpoint.override.recorded.{gate_id}"
LEVEL_SET = "checkpoint.level.set.{compound_id}"
GATE_OFFLINE = "checkpoint.gate.offline.{gate_id}"
GATE_ONLINE = "checkpoint.gate.online.{gate_id}"
GATE_BAD_INPUT = "checkpoint.gate.badinput.{gate_id}"
# a gate's news for its duty staff (offline, online, bad input), in the order it happened
GATE_STATUS_ALL = "checkpoint.gate.>"


class FeverDetected(Event):
    """A scan at or above the fever threshold (the scan was denied)."""

    TYPE = "checkpoint.FeverDetected"
    scan_id: str
    gate_id: str
    compound_id: str
    person_id: str
    is_resident: bool
    temperature_c: float
    scanned_at: AwareDatetime

    def subject(self) -> str:
        return FEVER_DETECTED.format(gate_id=self.gate_id)


class QuarantineBreachAttempted(Event):
    """A person screening holds tried to leave, or a quarantined household's door opened."""

    TYPE = "checkpoint.QuarantineBreachAttempted"
    via: Literal["gate", "door"]
    compound_id: str
    person_id: str | None  # gate: the person; door: unknown
    household_id: str | None
    status: str  # the screening status that holds them
    status_label: dict[str, str] = Field(default_factory=dict)  # screening's words for it
    gate_id: str | None = None
    ref: str  # the scan or door event id
    at: AwareDatetime

    def subject(self) -> str:
        return QUARANTINE_BREACH.format(compound_id=self.compound_id)


class PermitIssued(Event):
    TYPE = "checkpoint.PermitIssued"
    permit_id: str
    kind: Literal["outing", "emergency", "medical"]
    holder_id: str
    household_id: str
    compound_id: str
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    uses: int
    return_within_h: float | None
    issued_by: str

    def subject(self) -> str:
        return PERMIT_ISSUED.format(compound_id=self.compound_id)


class PermitOverdue(Event):
    """A resident went out on a permit and is not back by its return time."""

    TYPE = "checkpoint.PermitOverdue"
    permit_id: str
    holder_id: str
    household_id: str
    compound_id: str
    exited_at: AwareDatetime
    return_by: AwareDatetime

    def subject(self) -> str:
        return PERMIT_OVERDUE.format(compound_id=self.compound_id)


class OverrideRecorded(Event):
    """Duty staff let a denied person through, with who and why."""

    TYPE = "checkpoint.OverrideRecorded"
    gate_id: str
    scan_id: str
    person_id: str
    staff_id: str
    reason: str
    original_verdict: str
    at: AwareDatetime

    def subject(self) -> str:
        return OVERRIDE_RECORDED.format(gate_id=self.gate_id)


class ControlLevelSet(Event):
    """A compound's control level now in force at its gates (set by the office, or by
    screening's ``CompoundLevelChanged``)."""

    TYPE = "checkpoint.ControlLevelSet"
    compound_id: str
    level: ControlLevel
    set_by: str
    reason: str
    set_at: AwareDatetime

    def subject(self) -> str:
        return LEVEL_SET.format(compound_id=self.compound_id)


class GateWentOffline(Event):
    TYPE = "checkpoint.GateWentOffline"
    gate_id: str
    compound_id: str
    last_seen_at: AwareDatetime | None
    silent_s: float

    def subject(self) -> str:
        return GATE_OFFLINE.format(gate_id=self.gate_id)


class GateCameOnline(Event):
    TYPE = "checkpoint.GateCameOnline"
    gate_id: str
    compound_id: str
    at: AwareDatetime

    def subject(self) -> str:
        return GATE_ONLINE.format(gate_id=self.gate_id)


class GateSendingBadInput(Event):
    """A gate sends more bad messages than are kept as dead letters (``recorded_per_minute``
    of them; the rest are only counted): its duty staff should check the device. At most
    one per gate per alert interval while it goes on."""

    TYPE = "checkpoint.GateSendingBadInput"
    gate_id: str
    compound_id: str
    kind: str  # what it sends that is bad: "heartbeat"
    reason: str  # why the latest one was refused (field names and errors, not its values)
    recorded_per_minute: int
    at: AwareDatetime  # when the checkpoint saw it start (its clock)

    def subject(self) -> str:
        return GATE_BAD_INPUT.format(gate_id=self.gate_id)
