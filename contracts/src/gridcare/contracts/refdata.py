"""Reference data and community policies: what the office publishes (``gridcare import``,
``gridcare policy apply``), compacted per entity on ``refdata.<kind>.<id>``.

Every service keeps its own copy of the kinds it needs (a projection). A policy field left
out (``None``) means "the default of the service that applies it": the checkpoint's gate
defaults are in ``gridcare.checkpoint.domain.policy``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from gridcare.shared.envelope import Event
from gridcare.shared.schema import (
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
    """What a control level means in one community."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    exit: Literal["free", "permit", "emergency_only"]
    visitors: Literal["allowed", "deny"]  # allowed: registered, risk-area rule applies
    fever_c: float | None = Field(None, ge=35, le=42)  # overrides the community's


class CommunityPolicy(RefEntity):
    """One community's gate policy (``gridcare policy apply FILE``). A field left out keeps
    the checkpoint's default; ``levels`` names only the levels it changes."""

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
)
#: Every type on the REFDATA stream, by its envelope type.
TYPES: dict[str, type[RefEntity]] = {m.TYPE: m for m in (*ENTITIES, CommunityPolicy)}
