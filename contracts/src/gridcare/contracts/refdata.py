"""Reference data and community policies: what the office publishes (``gridcare import``,
``gridcare policy apply``), compacted per entity on ``refdata.<kind>.<id>``.

Every service keeps its own copy of the kinds it needs (a projection). A policy field left
out (``None``) means "the default of the service that applies it": the checkpoint's gate
defaults are in ``gridcare.checkpoint.domain.policy``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, ClassVar, Literal, Self, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from gridcare.shared.envelope import Event
from gridcare.shared.schema import (
    Email,
    Language,
    OptionalText,
    Phone,
    TagList,
    TimeZone,
    Token,
)
from gridcare.shared.streams import StreamSpec

ENTITY = "refdata.{kind}.{entity_id}"
ALL = "refdata.>"
STREAM = StreamSpec("REFDATA", (ALL,), "Reference data, last message per entity", compacted=True)


#: What a member of a community's staff does (``Staff.roles``).
STAFF_ROLES = ("secretary", "community_doctor", "duty_staff", "grid_worker", "volunteer_lead")
#: How a person may be reached, named in their order of preference (``channels``).
CHANNELS = ("chat", "sms", "email")
#: The places a chat group belongs to (``ChatGroup.place``).
Place = Literal["community", "compound", "building", "grid"]
PLACES: tuple[str, ...] = get_args(Place)
#: What a channel provider's URL may contain, filled in per recipient (``Channel.url``).
URL_PLACEHOLDERS = ("phone", "email", "name")


def _each_one_of(allowed: tuple[str, ...], what: str) -> Callable[[list[str]], list[str]]:
    def check(values: list[str]) -> list[str]:
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise ValueError(
                f"unknown {what} {', '.join(map(repr, unknown))} (one of {', '.join(allowed)})"
            )
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise ValueError(f"{what} {', '.join(map(repr, twice))} given more than once")
        return values

    return check


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def _url(v: str) -> str:
    """An Apprise URL (``dingtalk://…``, ``mailtos://…``) or an http(s) one, if given."""
    if v and not _URL.fullmatch(v):
        raise ValueError("not a URL (an Apprise URL such as wecombot://… or http(s)://…)")
    return v


def _given(v: str) -> str:
    if not v:
        raise ValueError("required: the URL of the bot or provider")
    return v


def _placeholders(v: str) -> str:
    names = re.findall(r"\{([^{}]*)\}", v)
    unknown = [n for n in names if n not in URL_PLACEHOLDERS]
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)} "
            f"(only {', '.join('{' + n + '}' for n in URL_PLACEHOLDERS)})"
        )
    if re.search(r"[{}]", re.sub(r"\{[^{}]*\}", "", v)):
        raise ValueError("a { or } that opens or closes no placeholder")
    return v


#: A person's channels, in order of preference: each of ``CHANNELS``, once.
ChannelList = Annotated[TagList, AfterValidator(_each_one_of(CHANNELS, "channel"))]
#: A member of staff's roles: each of ``STAFF_ROLES``.
RoleList = Annotated[TagList, AfterValidator(_each_one_of(STAFF_ROLES, "role"))]
#: A bot or provider URL: Apprise or http(s); empty means "none".
Url = Annotated[OptionalText, AfterValidator(_url)]


def _reachable(channels: list[str], phone: str | None, email: str | None, who: str) -> None:
    """A channel named without the address it needs is a mistake in the sheet."""
    if "sms" in channels and not phone:
        raise ValueError(f"channels names sms but {who} has no phone")
    if "email" in channels and not email:
        raise ValueError(f"channels names email but {who} has no email")


class ControlLevel(StrEnum):
    SEALED = "sealed"
    CONTROLLED = "controlled"
    PRECAUTION = "precaution"


class RefEntity(Event):
    """A row of reference data; published compacted on ``refdata.<kind>.<id>``."""

    KIND: ClassVar[str] = ""
    ID_FIELD: ClassVar[str] = ""

    @property
    def entity_id(self) -> str:
        return getattr(self, self.ID_FIELD)

    def subject(self) -> str:
        return ENTITY.format(kind=self.KIND, entity_id=self.entity_id)


class Community(RefEntity):
    TYPE = "refdata.CommunityUpserted"
    KIND = "community"
    ID_FIELD = "community_id"
    community_id: Token
    name: OptionalText
    time_zone: TimeZone  # IANA, e.g. Asia/Shanghai: what people read, and "a day"


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
    worker_email: Email | None = None
    worker_channels: ChannelList = Field(default_factory=list)  # in order of preference

    @model_validator(mode="after")
    def _worker_reachable(self) -> Self:
        _reachable(self.worker_channels, self.worker_phone, self.worker_email, "the worker")
        return self


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
    email: Email | None = None
    channels: ChannelList = Field(default_factory=list)  # in order of preference

    @model_validator(mode="after")
    def _person_reachable(self) -> Self:
        _reachable(self.channels, self.phone, self.email, "the resident")
        return self


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
    email: Email | None = None
    channels: ChannelList = Field(default_factory=list)  # in order of preference

    @model_validator(mode="after")
    def _person_reachable(self) -> Self:
        _reachable(self.channels, self.phone, self.email, "the volunteer")
        return self


class Staff(RefEntity):
    """A member of a community's staff and how to reach them (``staff.csv``)."""

    TYPE = "refdata.StaffUpserted"
    KIND = "staff"
    ID_FIELD = "staff_id"
    staff_id: Token
    community_id: Token
    name: OptionalText
    phone: Phone | None = None
    email: Email | None = None
    language: Language = "zh"
    roles: RoleList = Field(min_length=1)  # each of STAFF_ROLES
    gates: TagList = Field(default_factory=list)  # the gates where they do duty
    channels: ChannelList = Field(default_factory=list)  # in order of preference
    chat_url: Url = ""  # their own chat bot (an Apprise URL or http(s))

    @model_validator(mode="after")
    def _staff_reachable(self) -> Self:
        _reachable(self.channels, self.phone, self.email, "the person")
        return self


class ChatGroup(RefEntity):
    """A chat group of a place, reached through its bot (``chat_groups.csv``)."""

    TYPE = "refdata.ChatGroupUpserted"
    KIND = "chat_group"
    ID_FIELD = "group_id"
    group_id: Token
    community_id: Token
    place: Place
    place_id: Token  # the community, compound, building or grid it belongs to
    name: OptionalText
    url: Annotated[Url, AfterValidator(_given)]  # the group's bot (Apprise URL or http(s))

    @model_validator(mode="after")
    def _community_place(self) -> Self:
        if self.place == "community" and self.place_id != self.community_id:
            raise ValueError(
                f"place_id of a community's group is its community_id ({self.community_id!r})"
            )
        return self


class Channel(RefEntity):
    """A community's provider for one kind of channel (``channels.csv``). ``url`` may hold
    ``{phone}``, ``{email}`` and ``{name}``, filled in for each recipient."""

    TYPE = "refdata.ChannelUpserted"
    KIND = "channel"
    ID_FIELD = "channel_id"
    channel_id: Token
    community_id: Token
    kind: Literal["sms", "email"]
    url: Annotated[Url, AfterValidator(_given), AfterValidator(_placeholders)]
    rate_per_s: float | None = Field(None, gt=0)  # the provider's cap, requests per second
    max_segments: int | None = Field(None, ge=1)  # SMS: the longest message, in segments

    @model_validator(mode="after")
    def _sms_only(self) -> Self:
        if self.max_segments is not None and self.kind != "sms":
            raise ValueError("max_segments is for sms channels")
        return self


class LevelRules(BaseModel):
    """What a control level means in one community."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    exit: Literal["free", "permit", "emergency_only"]
    visitors: Literal["allowed", "deny"]  # allowed: registered, risk-area rule applies
    fever_c: float | None = Field(None, ge=35, le=42)  # overrides the community's


#: Who an escalation may go to, by role (``Escalation.chain``).
EscalationStep = Literal["grid_worker", "secretary", "community_doctor", "duty_staff"]


class Escalation(BaseModel):
    """Who an unacknowledged alert of one kind goes to next: ``chain[i]`` is alerted, and
    if nobody acknowledges within ``waits_min[i]`` minutes the next one is; after the last,
    the whole chain again ``repeats`` times, then it gives up (notify's rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    chain: list[EscalationStep] = Field(min_length=1)
    waits_min: list[Annotated[float, Field(gt=0)]]
    repeats: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _a_wait_per_step(self) -> Self:
        if len(self.waits_min) != len(self.chain):
            raise ValueError(
                f"waits_min has {len(self.waits_min)} wait(s) for {len(self.chain)} step(s) "
                "of chain: one wait per step"
            )
        return self


_HHMM = r"([01][0-9]|2[0-3]):[0-5][0-9]"


def _quiet_hours(v: str) -> str:
    m = re.fullmatch(rf"\s*({_HHMM})\s*-\s*({_HHMM})\s*", v)
    if not m:
        raise ValueError("quiet hours are HH:MM-HH:MM in local time, e.g. 22:00-07:00")
    start, end = m.group(1), m.group(3)
    if start == end:
        raise ValueError("quiet hours start and end at the same time")
    return f"{start}-{end}"


def _hhmm(v: str) -> str:
    if not re.fullmatch(_HHMM, v.strip()):
        raise ValueError("a local time of day, HH:MM (e.g. 10:00)")
    return v.strip()


class CommunityPolicy(RefEntity):
    """One community's policy (``gridcare policy apply FILE``): the gate settings, which
    the checkpoint applies, and the notification settings, which notify applies. A field
    left out keeps the default of the service that applies it; ``levels`` names only the
    levels it changes, ``escalations`` only the alert kinds it changes."""

    TYPE = "refdata.CommunityPolicySet"
    KIND = "policy"
    ID_FIELD = "community_id"
    model_config = ConfigDict(extra="ignore", frozen=True)
    community_id: Token
    fever_c: float | None = Field(None, ge=35, le=42)
    min_valid_c: float | None = Field(None, ge=20, le=35)
    max_valid_c: float | None = Field(None, ge=40, le=50)
    visitor_test_validity_h: float | None = Field(None, gt=0)
    risk_regions: list[str] | None = None
    levels: dict[ControlLevel, LevelRules] = Field(default_factory=dict)
    permit_quota: int | None = Field(None, ge=0)  # outing permits per household ...
    permit_quota_days: int | None = Field(None, ge=1)  # ... per this many local days
    heartbeat_interval_s: float | None = Field(None, gt=0)
    # notify's part
    quiet_hours: Annotated[str, AfterValidator(_quiet_hours)] | None = None  # local, may wrap
    hourly_cap: int | None = Field(None, ge=1)  # non-urgent messages per recipient per hour
    digest_minutes: int | None = Field(None, ge=1)  # low-priority notices bundled this long
    escalations: dict[Token, Escalation] = Field(default_factory=dict)  # by alert kind
    # screening's part (gridcare.screening.domain.policy has its defaults)
    checkin_reminder_at: Annotated[str, AfterValidator(_hhmm)] | None = None  # local HH:MM
    missed_days_for_visit: int | None = Field(None, ge=1)  # consecutive: a door visit
    follow_up_days: int | None = Field(None, ge=1)  # a follow-up lasts this many local days
    release_symptom_free_days: int | None = Field(None, ge=0)  # none in the last N days ...
    release_needs_negative_test: bool | None = None  # ... and a negative test since
    contact_window_minutes: float | None = Field(None, gt=0, le=24 * 60)  # at the same gate
    contact_lookback_days: int | None = Field(None, ge=1, le=30)  # the case's passages
    contacts_quarantine: bool | None = None  # a confirmed contact's household quarantined
    seal_on_confirmed: ControlLevel | Literal["none"] | None = None  # a case's compound
    epidemic_free_days: int | None = Field(None, ge=1)  # no new case: epidemic-free
    epidemic_free_level: ControlLevel | None = None  # the level it is relaxed to
    # what a resident's questionnaire reply names: the emergency number, a crisis hotline
    emergency_number: str | None = Field(None, pattern=r"^\+?[0-9][0-9 -]{1,19}$")
    crisis_hotline: str | None = Field(None, pattern=r"^\+?[0-9][0-9 -]{1,19}$")


#: The kinds of the office's spreadsheets, parents before children (the import's order).
ENTITIES: tuple[type[RefEntity], ...] = (
    Community,
    Compound,
    Grid,
    Building,
    Household,
    Resident,
    Gate,
    Volunteer,
    Staff,
    ChatGroup,
    Channel,
)
#: Every type on the REFDATA stream, by its envelope type.
TYPES: dict[str, type[RefEntity]] = {m.TYPE: m for m in (*ENTITIES, CommunityPolicy)}
