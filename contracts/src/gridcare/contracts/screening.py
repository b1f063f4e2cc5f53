"""What screening publishes: its decisions about people and compounds, and its cases."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from gridcare.shared.envelope import Event
from gridcare.shared.schema import Token
from gridcare.shared.streams import StreamSpec

from .refdata import ControlLevel

STREAM = StreamSpec("SCREENING", ("screening.>",), "Health registry decisions")

PERSON_STATUS_CHANGED = "screening.person.status.{person_id}"
COMPOUND_LEVEL_CHANGED = "screening.compound.level.{compound_id}"
CASE_OPENED = "screening.case.opened.{kind}"
DOOR_VISIT_REQUESTED = "screening.visit.requested.{grid_id}"
DECISIONS_ALL = "screening.>"


class PersonStatusChanged(Event):
    """Screening's latest decision about a person. Whether it keeps them from leaving is
    screening's rule, carried here: the gates enforce ``holds_at_gate`` and need not know
    what the statuses mean (a status added later needs no change at the gate).
    ``holds_at_home`` says whether the person is confined at home, so that their household's
    door alerts: a person at a central quarantine site or in hospital is held at the gate
    but is not at home. None (an older producer) means as ``holds_at_gate``."""

    TYPE = "screening.PersonStatusChanged"
    person_id: str
    status: Token  # e.g. home_quarantine, confirmed, normal (screening's list)
    holds_at_gate: bool
    # confined at home: their household's door alerts (None: as holds_at_gate)
    holds_at_home: bool | None = None
    status_label: dict[str, str] = Field(default_factory=dict)  # language -> its words
    household_id: str | None = None
    until: AwareDatetime | None = None
    decided_at: AwareDatetime
    # the step taken (screening's state machine); absent from older producers
    previous_status: Token | None = None  # the status it changed
    role: Token | None = None  # grid_worker, community_doctor, secretary, lab, screening
    reason: str = ""
    source: str = ""  # what caused it, e.g. a check-in's or a test's id; "office"

    def subject(self) -> str:
        return PERSON_STATUS_CHANGED.format(person_id=self.person_id)


class CompoundLevelChanged(Event):
    """Screening raised or lowered a compound's control level (e.g. a confirmed case)."""

    TYPE = "screening.CompoundLevelChanged"
    compound_id: str
    level: ControlLevel
    reason: str
    decided_at: AwareDatetime

    def subject(self) -> str:
        return COMPOUND_LEVEL_CHANGED.format(compound_id=self.compound_id)


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
    observed_at: AwareDatetime | None = None  # when the reading that opened it was taken

    def subject(self) -> str:
        return CASE_OPENED.format(kind=self.kind)


class DoorVisitRequested(Event):
    """A resident missed ``missed_days`` local days of check-ins in a row (the community's
    ``missed_days_for_visit``): their grid worker should call at the door. One per run of
    missed days (a restart or a redelivery never makes two). Dispatch keeps it as a
    ``door_visit`` task without a message of its own: screening's alert is the worker's."""

    TYPE = "screening.DoorVisitRequested"
    request_id: str  # stable per person and run of missed days
    person_id: str
    household_id: str
    grid_id: str | None = None  # the worker's grid (None: the building names no grid)
    missed_days: int
    day: date  # the local day the request was made (the run's days are before it)
    last_checkin_day: date | None = None  # None: never checked in
    requested_at: AwareDatetime

    def subject(self) -> str:
        return DOOR_VISIT_REQUESTED.format(grid_id=self.grid_id or "none")
