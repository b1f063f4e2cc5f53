"""A delivery: one message to one recipient on one channel.

Its id holds through redelivery, retries and restarts, so a recipient gets a message once:
the row is committed (pending) before the provider is called, and its outcome after. The
one window left: the process dies after the provider accepted the message and before the
outcome is committed; the message is then redelivered and sent again with the same id,
which the provider gets as ``X-Gridcare-Notification-Id`` to drop the repeat.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from gridcare.shared.envelope import stable_id


@dataclass(frozen=True)
class Delivery:
    notification_id: str
    recipient_id: str
    channel: Literal["chat", "sms"]
    cause_event_id: str
    cause_type: str
    language: str
    body: str
    status: Literal["pending", "sent"] = "pending"
    attempts: int = 1
    last_error: str | None = None
    time_zone: str | None = None  # the recipient's community's (what its times read in)
    created_at: datetime | None = None
    delivered_at: datetime | None = None

    @property
    def sent(self) -> bool:
        return self.status == "sent"

    def attempt(self) -> Delivery:
        """Once more (a retry after a failure, or after a crash before the outcome)."""
        return dataclasses.replace(self, attempts=self.attempts + 1)

    def failed(self, error: str) -> Delivery:
        return dataclasses.replace(self, last_error=error[:1000])

    def delivered(self, at: datetime) -> Delivery:
        return dataclasses.replace(self, status="sent", delivered_at=at, last_error=None)


def notification_id(*fact: str) -> str:
    """One id per logical message and recipient: ``("chat", task_id, worker_id)``."""
    return stable_id(*fact)
