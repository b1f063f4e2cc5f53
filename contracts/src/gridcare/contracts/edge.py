"""The edge: what gate devices, door sensors, residents' apps and staff speak (fixed).

``docs/edge-contract.md`` is the whole contract. Requests (scans, check-ins, help requests,
acknowledgements) are core NATS request/reply and never captured by a stream; door events
are plain publishes that :data:`STREAM` keeps while the checkpoint is down. The scan
request's schema is the checkpoint's (``gridcare.checkpoint.domain.scan``): its checks need
the checkpoint's own context (the subject's gate, the community's valid temperatures).
"""

from __future__ import annotations

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
STAFF_ACK = "staff.{person_id}.ack"  # request/reply (§5.1)
STAFF_ACK_ALL = "staff.*.ack"

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


class AckRequest(BaseModel):
    """§5.1: a member of staff acknowledges an alert (``staff.<person_id>.ack``)."""

    model_config = ConfigDict(extra="ignore")
    alert_id: Token
