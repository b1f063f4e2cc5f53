"""What notify publishes: delivery outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from gridcare.shared.envelope import Event
from gridcare.shared.streams import StreamSpec

STREAM = StreamSpec(
    "NOTIFY", ("notify.>",), "Message delivery outcomes (announcements)", refuse_when_full=False
)

NOTIFICATION_DELIVERED = "notify.delivery.succeeded.{channel}"


class NotificationDelivered(Event):
    TYPE = "notify.NotificationDelivered"
    notification_id: str
    recipient_id: str
    channel: Literal["chat", "sms"]
    cause_type: str
    delivered_at: datetime

    def subject(self) -> str:
        return NOTIFICATION_DELIVERED.format(channel=self.channel)
