"""The edge: what gate devices, door sensors, residents' apps and staff speak (fixed).

``docs/edge-contract.md`` is the whole contract. Requests (scans, check-ins, help requests,
acknowledgements) are core NATS request/reply and never captured by a stream; door events
are plain publishes that :data:`STREAM` keeps while the checkpoint is down. The scan
request's schema is the checkpoint's (``gridcare.checkpoint.domain.scan``): its checks need
the checkpoint's own context (the subject's gate, the community's valid temperatures).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gridcare.shared.envelope import Event
from gridcare.shared.schema import Timestamp, Token
from gridcare.shared.streams import StreamSpec

GATE_SCAN = "gate.{gate_id}.scan"  # request/reply (§1)
GATE_SCAN_ALL = "gate.*.scan"
GATE_HEARTBEAT = "gate.{gate_id}.heartbeat"  # publish (§2)
GATE_HEARTBEAT_ALL = "gate.*.heartbeat"
DOOR_OPENED = "door.{household_id}.opened"  # publish (§3), kept by STREAM
DOOR_OPENED_ALL = "door.*.opened"
RESIDENT_QUESTIONNAIRE = "resident.{person_id}.questionnaire"  # request/reply (§4.3)
RESIDENT_QUESTIONNAIRE_ALL = "resident.*.questionnaire"
STAFF_ACK = "staff.{person_id}.ack"  # request/reply (§5.1)
STAFF_ACK_ALL = "staff.*.ack"
RESIDENT_CHECKIN = "resident.{person_id}.checkin"  # request/reply (§4.1)
RESIDENT_CHECKIN_ALL = "resident.*.checkin"

STREAM = StreamSpec("EDGE", (DOOR_OPENED_ALL,), "Door sensor events from devices")


class Heartbeat(BaseModel):
    """§2: a gate says it is alive, every 30 s (the community's ``heartbeat_interval_s``)."""

    model_config = ConfigDict(extra="ignore")
    gate_id: Token
    sent_at: Timestamp
    firmware: str = Field("", max_length=100)


class DoorOpened(Event):
    """§3: a door sensor's event, as the device publishes it (no envelope)."""

    TYPE = "edge.DoorOpened"
    event_id: Token
    household_id: Token
    opened_at: Timestamp

    def subject(self) -> str:
        return DOOR_OPENED.format(household_id=self.household_id)


class QuestionnaireRequest(BaseModel):
    """§4.3: a resident's answers to PHQ-9 (9 answers) or GAD-7 (7 answers), each 0-3
    (``resident.<person_id>.questionnaire``). ``submission_id`` is the idempotency key.
    Screening's rules (``domain/questionnaires.py``) check the instrument and its answers,
    so a bad request names each bad one at once."""

    model_config = ConfigDict(extra="ignore")
    submission_id: Token
    person_id: Token
    instrument: str = Field(pattern=r"^(phq9|gad7)$", description="phq9 | gad7")
    answers: list[int] = Field(
        min_length=7, max_length=9, description="each 0-3: 9 for phq9, 7 for gad7"
    )
    submitted_at: Timestamp
    reported_by: Token | None = None  # a grid worker answering with the resident


class AckRequest(BaseModel):
    """§5.1: a member of staff acknowledges an alert (``staff.<person_id>.ack``)."""

    model_config = ConfigDict(extra="ignore")
    alert_id: Token


#: §4.1: the symptoms a check-in may name (``[]``: none).
Symptom = Literal[
    "fever",
    "cough",
    "sore_throat",
    "fatigue",
    "breathless",
    "diarrhoea",
    "loss_of_smell",
    "loss_of_taste",
    "muscle_pain",
    "other",
]


class CheckinRequest(BaseModel):
    """§4.1: a resident's daily health check-in (``resident.<person_id>.checkin``), sent by
    them or by a grid worker for them (``reported_by``). ``checkin_id`` is the idempotency
    key; ``day`` the community's local day it is for."""

    model_config = ConfigDict(extra="ignore")
    checkin_id: Token
    person_id: Token
    day: date = Field(strict=True)  # YYYY-MM-DD
    temperature_c: float | None = Field(None, ge=34.0, le=43.0)  # None: not measured
    symptoms: list[Symptom] = Field(default_factory=list, max_length=10)
    note: str = Field("", max_length=500)
    reported_by: Token | None = None
    submitted_at: Timestamp
