"""Notify: how any service asks for a message to reach people, and what notify announces.

A service never knows how a message is delivered. It publishes a
:class:`NotificationRequested` (through its outbox) saying *who* (a person, a role of a
place, a place's chat group, or every resident of a place), *what* (a template of notify's
and its parameters), how urgent, whether a person must acknowledge it, and an idempotency
key; notify owns the templates, the routing, the recipients' preferences and the delivery
(``docs/notify.md``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from gridcare.shared.envelope import Event
from gridcare.shared.schema import Token
from gridcare.shared.streams import StreamSpec

#: Requests matter until notify has taken them: a full stream refuses new ones.
REQUESTS = StreamSpec(
    "NOTIFY_REQUESTS", ("notify.requested.>",), "Messages services ask notify to deliver"
)
#: What notify announces (outcomes, acknowledgements): its store keeps all of it.
STREAM = StreamSpec(
    "NOTIFY",
    ("notify.delivery.>", "notify.alert.>"),
    "Message delivery outcomes and alert acknowledgements (announcements)",
    refuse_when_full=False,
)

NOTIFICATION_REQUESTED = "notify.requested.{priority}"
NOTIFICATION_RETRY = "notify.requested.retry"
NOTIFICATION_DELIVERED = "notify.delivery.succeeded.{channel}"
NOTIFICATION_FAILED = "notify.delivery.failed.{channel}"
ALERT_ACKNOWLEDGED = "notify.alert.acknowledged.{kind}"
ALERT_UNACKNOWLEDGED = "notify.alert.unacknowledged.{kind}"

Priority = Literal["urgent", "normal", "bulk"]
#: A template's id: dotted words (``task.fever_follow_up``), a folder of notify's templates.
TemplateId = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$", max_length=64)
]
Place = Literal["community", "compound", "building", "grid"]
Role = Literal["grid_worker", "secretary", "community_doctor", "duty_staff"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToPerson(_Spec):
    """One person: a resident, a grid worker, a member of staff, a volunteer."""

    kind: Literal["person"] = "person"
    person_id: Token


class ToRole(_Spec):
    """Whoever holds a role at a place: the grid worker of a grid, the secretary or the
    community doctor of a community, the duty staff of a gate."""

    kind: Literal["role"] = "role"
    role: Role
    place_id: Token  # a grid, a community, or a gate (duty_staff)


class ToGroup(_Spec):
    """The chat group of a community, compound, building or grid."""

    kind: Literal["group"] = "group"
    place: Place
    place_id: Token


class ToResidents(_Spec):
    """Every resident of a place (a broadcast)."""

    kind: Literal["residents"] = "residents"
    place: Place
    place_id: Token


Recipient = Annotated[ToPerson | ToRole | ToGroup | ToResidents, Field(discriminator="kind")]


class NotificationRequested(Event):
    """A message to deliver. ``request_id`` is the producer's idempotency key for the
    logical message: the same request again (a retry, a redelivery) changes nothing."""

    TYPE = "notify.NotificationRequested"
    request_id: Token
    recipient: Recipient
    template: TemplateId  # one of notify's templates (docs/templates.md)
    params: dict[str, Any] = Field(default_factory=dict)
    priority: Priority = "normal"
    # a person must acknowledge it (staff.<person_id>.ack or the link in it); not
    # acknowledged in time, it escalates along the chain of its ``alert_kind``
    needs_ack: bool = False
    alert_kind: Token | None = None  # fever, quarantine_breach, emergency, missed_checkin, ...
    # where the alert is, for the later steps of its chain (grid_id, community_id, gate_id)
    places: dict[str, Token] = Field(default_factory=dict)
    digest: bool = False  # may wait for the recipient's next digest (never when urgent)
    expires_at: AwareDatetime | None = None  # not delivered by then: not delivered at all
    requested_by: str = ""  # the service or person asking

    def subject(self) -> str:
        return NOTIFICATION_REQUESTED.format(priority=self.priority)


class NotificationRetryRequested(Event):
    """Send a message given up on once more (the replay of notify's dead letter): it goes
    back in line from its first route, with a new give-up horizon."""

    TYPE = "notify.NotificationRetryRequested"
    notification_id: str
    requested_by: str = ""

    def subject(self) -> str:
        return NOTIFICATION_RETRY


class NotificationDelivered(Event):
    """A provider accepted a message for one recipient (``notification_id``: the message,
    one per request and recipient)."""

    TYPE = "notify.NotificationDelivered"
    notification_id: str
    recipient_id: str
    channel: str  # chat | sms | email
    cause_type: str  # the request's template
    delivered_at: datetime
    request_id: str | None = None

    def subject(self) -> str:
        return NOTIFICATION_DELIVERED.format(channel=self.channel)


class NotificationFailed(Event):
    """A message could not be delivered on any of the recipient's channels within the
    give-up horizon: a dead letter of notify's, replayable."""

    TYPE = "notify.NotificationFailed"
    notification_id: str
    request_id: str
    recipient_id: str
    channel: str  # the last one tried
    reason: str
    failed_at: datetime

    def subject(self) -> str:
        return NOTIFICATION_FAILED.format(channel=self.channel)


class AlertAcknowledged(Event):
    TYPE = "notify.AlertAcknowledged"
    alert_id: str
    kind: str
    request_id: str
    acknowledged_by: str
    acknowledged_at: datetime
    via: Literal["nats", "link"]

    def subject(self) -> str:
        return ALERT_ACKNOWLEDGED.format(kind=self.kind)


class AlertUnacknowledged(Event):
    """Nobody acknowledged an alert through its whole chain (and its repeats)."""

    TYPE = "notify.AlertUnacknowledged"
    alert_id: str
    kind: str
    request_id: str
    tried: list[str]  # the people it went to, in order
    raised_at: datetime
    given_up_at: datetime

    def subject(self) -> str:
        return ALERT_UNACKNOWLEDGED.format(kind=self.kind)
