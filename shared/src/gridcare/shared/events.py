"""The internal events services exchange: their schemas are all that services share.

Names follow ``<Entity><PastTense>``. Each event knows its ``TYPE`` (in the envelope) and
its subject (``subjects.py``). Adding a field is compatible; removing or retyping one
needs a new ``schema_version``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from . import subjects
from .envelope import Event

# Identifiers on the edge and in reference data: CONTRACT.md's token rule.
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


def _phone(v: str) -> str:
    digits = re.sub(r"[\s()-]", "", v)
    if not re.fullmatch(r"\+?[0-9]{5,20}", digits):
        raise ValueError("not a phone number (digits, optional leading +, 5-20 digits)")
    return digits


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


# An edge timestamp (CONTRACT.md): RFC 3339 text with an offset; not a Unix time. Held in
# UTC from here on (stores compare times; SQLite keeps no offsets).
Timestamp = Annotated[
    AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(lambda t: t.astimezone(UTC))
]
Phone = Annotated[str, AfterValidator(_phone)]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
TagList = Annotated[list[Token], BeforeValidator(_split_list)]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class ControlLevel(StrEnum):
    SEALED = "sealed"
    CONTROLLED = "controlled"
    PRECAUTION = "precaution"


# --- reference data ------------------------------------------------------------------------
class RefEntity(Event):
    """A row of reference data; published compacted on ``refdata.<kind>.<id>``."""

    KIND: ClassVar[str] = ""
    ID_FIELD: ClassVar[str] = ""

    @property
    def entity_id(self) -> str:
        return getattr(self, self.ID_FIELD)

    def subject(self) -> str:
        return subjects.REFDATA_ENTITY.format(kind=self.KIND, entity_id=self.entity_id)


class Compound(RefEntity):
    TYPE = "refdata.CompoundUpserted"
    KIND = "compound"
    ID_FIELD = "compound_id"
    compound_id: Token
    community_id: Token
    name: OptionalText
    control_level: ControlLevel = ControlLevel.PRECAUTION


class Grid(RefEntity):
    TYPE = "refdata.GridUpserted"
    KIND = "grid"
    ID_FIELD = "grid_id"
    grid_id: Token
    community_id: Token
    name: OptionalText
    worker_id: Token
    worker_name: OptionalText
    worker_phone: Phone
    worker_language: Language = "zh"
    chat_url: OptionalText = ""  # the grid chat group's webhook (apprise URL or http(s))


class Building(RefEntity):
    TYPE = "refdata.BuildingUpserted"
    KIND = "building"
    ID_FIELD = "building_id"
    building_id: Token
    compound_id: Token
    grid_id: Token
    name: OptionalText


class Household(RefEntity):
    TYPE = "refdata.HouseholdUpserted"
    KIND = "household"
    ID_FIELD = "household_id"
    household_id: Token
    building_id: Token
    unit: OptionalText


class Resident(RefEntity):
    TYPE = "refdata.ResidentUpserted"
    KIND = "resident"
    ID_FIELD = "resident_id"
    resident_id: Token
    household_id: Token
    name: OptionalText
    phone: Phone | None = None
    language: Language = "zh"
    vulnerabilities: TagList = Field(default_factory=list)


class Gate(RefEntity):
    TYPE = "refdata.GateUpserted"
    KIND = "gate"
    ID_FIELD = "gate_id"
    gate_id: Token
    compound_id: Token
    name: OptionalText
    duty_chat_url: OptionalText = ""  # the duty staff's chat (gate offline alerts)


class Volunteer(RefEntity):
    TYPE = "refdata.VolunteerUpserted"
    KIND = "volunteer"
    ID_FIELD = "volunteer_id"
    volunteer_id: Token
    community_id: Token
    name: OptionalText
    phone: Phone
    language: Language = "zh"
    skills: TagList = Field(default_factory=list)
    chat_url: OptionalText = ""


class LevelRules(BaseModel):
    """What a control level means in one community (CONTRACT.md's defaults below)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    exit: Literal["free", "permit", "emergency_only"]
    visitors: Literal["allowed", "deny"]  # allowed: registered, risk-area rule applies
    fever_c: float | None = Field(None, ge=35, le=42)  # overrides the community's


DEFAULT_LEVELS = {
    ControlLevel.SEALED: LevelRules(exit="emergency_only", visitors="deny"),
    ControlLevel.CONTROLLED: LevelRules(exit="permit", visitors="deny"),
    ControlLevel.PRECAUTION: LevelRules(exit="free", visitors="allowed"),
}


class CommunityPolicy(RefEntity):
    """One community's gate policy; ops change it with ``gridcare policy apply FILE``."""

    TYPE = "refdata.CommunityPolicySet"
    KIND = "policy"
    ID_FIELD = "community_id"
    community_id: Token
    fever_c: float = Field(37.3, ge=35, le=42)
    min_valid_c: float = Field(30.0, ge=20, le=35)
    max_valid_c: float = Field(45.0, ge=40, le=50)
    visitor_test_validity_h: float = Field(48.0, gt=0)
    risk_regions: list[str] = Field(default_factory=list)
    levels: dict[ControlLevel, LevelRules] = Field(default_factory=lambda: dict(DEFAULT_LEVELS))
    permit_quota: int = Field(1, ge=0)  # outing permits per household ...
    permit_quota_days: float = Field(3.0, gt=0)  # ... per this many days
    heartbeat_interval_s: float = Field(30.0, gt=0)

    def rules(self, level: ControlLevel) -> LevelRules:
        return self.levels.get(level) or DEFAULT_LEVELS[level]


class ControlLevelSet(RefEntity):
    """Ops set a compound's control level (``gridcare level set``)."""

    TYPE = "refdata.ControlLevelSet"
    KIND = "control"
    ID_FIELD = "compound_id"
    compound_id: Token
    level: ControlLevel
    set_by: OptionalText
    reason: OptionalText = ""
    set_at: AwareDatetime


REF_ENTITIES: tuple[type[RefEntity], ...] = (
    Compound,
    Grid,
    Building,
    Household,
    Resident,
    Gate,
    Volunteer,
)


# --- checkpoint ----------------------------------------------------------------------------
class PassageRecorded(Event):
    """A gate scan got a verdict and is in the entry/exit register."""

    TYPE = "checkpoint.PassageRecorded"
    scan_id: str
    gate_id: str
    compound_id: str
    person_id: str
    direction: Literal["in", "out"]
    verdict: Literal["allow", "deny", "refer"]
    reasons: list[str]
    temperature_c: float | None
    scanned_at: AwareDatetime
    decided_at: AwareDatetime

    def subject(self) -> str:
        return subjects.PASSAGE_RECORDED.format(gate_id=self.gate_id)


class PassagesRecorded(Event):
    """The passages of one register commit (the gate path writes in batches, and so
    announces them in batches: one stream message per commit, not per scan)."""

    TYPE = "checkpoint.PassagesRecorded"
    passages: list[PassageRecorded]

    def subject(self) -> str:
        return subjects.PASSAGES_RECORDED


class FeverDetected(Event):
    TYPE = "checkpoint.FeverDetected"
    scan_id: str
    gate_id: str
    compound_id: str
    person_id: str
    is_resident: bool
    temperature_c: float
    scanned_at: AwareDatetime

    def subject(self) -> str:
        return subjects.FEVER_DETECTED.format(gate_id=self.gate_id)


class QuarantineBreachAttempted(Event):
    """A person screening holds tried to leave, or a quarantined household's door opened."""

    TYPE = "checkpoint.QuarantineBreachAttempted"
    via: Literal["gate", "door"]
    compound_id: str
    person_id: str | None  # gate: the person; door: unknown
    household_id: str | None
    status: str  # the screening status that holds them
    gate_id: str | None = None
    ref: str  # the scan or door event id
    at: AwareDatetime

    def subject(self) -> str:
        return subjects.QUARANTINE_BREACH.format(compound_id=self.compound_id)


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
        return subjects.PERMIT_ISSUED.format(compound_id=self.compound_id)


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
        return subjects.PERMIT_OVERDUE.format(compound_id=self.compound_id)


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
        return subjects.OVERRIDE_RECORDED.format(gate_id=self.gate_id)


class GateWentOffline(Event):
    TYPE = "checkpoint.GateWentOffline"
    gate_id: str
    compound_id: str
    last_seen_at: AwareDatetime | None
    silent_s: float

    def subject(self) -> str:
        return subjects.GATE_OFFLINE.format(gate_id=self.gate_id)


class GateCameOnline(Event):
    TYPE = "checkpoint.GateCameOnline"
    gate_id: str
    compound_id: str
    at: AwareDatetime

    def subject(self) -> str:
        return subjects.GATE_ONLINE.format(gate_id=self.gate_id)


# --- screening -----------------------------------------------------------------------------
# Who screening holds, and why. Any status but "clear" keeps the person from leaving.
HOLDING_STATUSES = (
    "home_quarantine",
    "central_quarantine",
    "confirmed",
    "suspected",
    "fever_unexcluded",
    "close_contact",
)


class PersonStatusChanged(Event):
    """Screening's latest decision about a person (the gate enforces it)."""

    TYPE = "screening.PersonStatusChanged"
    person_id: str
    status: Literal[
        "clear",
        "home_quarantine",
        "central_quarantine",
        "confirmed",
        "suspected",
        "fever_unexcluded",
        "close_contact",
    ]
    household_id: str | None = None
    until: AwareDatetime | None = None
    decided_at: AwareDatetime

    def subject(self) -> str:
        return subjects.PERSON_STATUS_CHANGED.format(person_id=self.person_id)


class CompoundLevelChanged(Event):
    """Screening raised or lowered a compound's control level (e.g. a confirmed case)."""

    TYPE = "screening.CompoundLevelChanged"
    compound_id: str
    level: ControlLevel
    reason: str
    decided_at: AwareDatetime

    def subject(self) -> str:
        return subjects.COMPOUND_LEVEL_CHANGED.format(compound_id=self.compound_id)


class CaseOpened(Event):
    TYPE = "screening.CaseOpened"
    case_id: str
    kind: Literal["fever"]
    person_id: str
    opened_at: datetime
    reason: str  # for people reading logs; use the structured fields for messages
    source_ref: str  # e.g. the scan id that caused it
    temperature_c: float | None = None
    gate_id: str | None = None

    def subject(self) -> str:
        return subjects.CASE_OPENED.format(kind=self.kind)


# --- dispatch ------------------------------------------------------------------------------
class TaskCreated(Event):
    TYPE = "dispatch.TaskCreated"
    task_id: str
    kind: Literal["fever_follow_up", "quarantine_breach", "overdue_return"]
    person_id: str
    assignee_id: str
    assignee_role: Literal["grid_worker", "volunteer"]
    grid_id: str
    due_by: datetime
    summary: dict[str, str]  # language -> text
    case_id: str | None = None
    urgent: bool = False

    def subject(self) -> str:
        return subjects.TASK_CREATED.format(kind=self.kind)


# --- notify --------------------------------------------------------------------------------
class NotificationDelivered(Event):
    TYPE = "notify.NotificationDelivered"
    notification_id: str
    recipient_id: str
    channel: Literal["chat", "sms"]
    cause_type: str
    delivered_at: datetime

    def subject(self) -> str:
        return subjects.NOTIFICATION_DELIVERED.format(channel=self.channel)


# --- operations ----------------------------------------------------------------------------
class MessageDeadLettered(Event):
    """A consumer gave up on a message; it is kept (with the reason) for replay."""

    TYPE = "ops.MessageDeadLettered"
    service: str
    consumer: str
    original_subject: str
    event_id: str | None
    reason: str
    deliveries: int
    payload_b64: str
    headers: dict[str, str]

    def subject(self) -> str:
        return subjects.DEAD_LETTERED.format(service=self.service)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        *REF_ENTITIES,
        CommunityPolicy,
        ControlLevelSet,
        PassageRecorded,
        PassagesRecorded,
        FeverDetected,
        QuarantineBreachAttempted,
        PermitIssued,
        PermitOverdue,
        OverrideRecorded,
        GateWentOffline,
        GateCameOnline,
        PersonStatusChanged,
        CompoundLevelChanged,
        CaseOpened,
        TaskCreated,
        NotificationDelivered,
        MessageDeadLettered,
    )
}
