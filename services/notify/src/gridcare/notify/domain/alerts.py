"""An alert that needs a person (a fever at the gate, a quarantine breach, an emergency
request, a missed check-in escalated), and its chain.

The alert goes to the first role of its kind's chain (``policy.Chain``); not acknowledged
within that step's wait, it goes to the next role (the grid worker, then the secretary,
then the duty staff: 5, 15, 30 minutes by default), round the chain again ``repeats``
times, and is then given up on (``AlertUnacknowledged``). An acknowledgement by anyone it
went to stops the chain at once; the others are told who took it. Only a recipient may
acknowledge (the edge contract §5.1: ``not_yours``).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .policy import Chain


class NotYours(Exception):
    """Only a person the alert went to may acknowledge it."""


def new_alert_id(request_id: str) -> str:
    """A short id people can read and type (``[K3XQ7M2A]`` in the text), stable for the
    request: 8 characters of base32."""
    digest = hashlib.sha256(f"alert|{request_id}".encode()).digest()
    return base64.b32encode(digest)[:8].decode()


@dataclass(frozen=True)
class Alert:
    alert_id: str
    request_id: str
    kind: str
    template: str
    params: dict[str, Any]
    places: dict[str, str]
    community_id: str | None
    step: int
    round: int
    status: str  # open | acknowledged | unacknowledged
    due_at: datetime | None
    raised_at: datetime
    acknowledged_by: str | None = None
    acknowledged_name: str | None = None
    acknowledged_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.status == "open"


def raise_alert(
    request_id: str,
    kind: str,
    template: str,
    params: dict[str, Any],
    places: dict[str, str],
    community_id: str | None,
    chain: Chain,
    now: datetime,
) -> Alert:
    return Alert(
        alert_id=new_alert_id(request_id),
        request_id=request_id,
        kind=kind,
        template=template,
        params=params,
        places=places,
        community_id=community_id,
        step=0,
        round=0,
        status="open",
        due_at=now + timedelta(minutes=chain.steps[0][1]),
        raised_at=now,
    )


def escalate(alert: Alert, chain: Chain, now: datetime) -> tuple[Alert, str | None]:
    """The wait of the alert's step is over: (the alert at its next step, the role to tell
    now), or (the alert given up on, None) after the last step of the last round."""
    step, rnd = alert.step + 1, alert.round
    if step >= len(chain.steps):
        step, rnd = 0, rnd + 1
    if rnd > chain.repeats:
        return dataclasses.replace(alert, status="unacknowledged", due_at=None), None
    role, wait = chain.steps[step]
    moved = dataclasses.replace(alert, step=step, round=rnd, due_at=now + timedelta(minutes=wait))
    return moved, role


def acknowledge(
    alert: Alert, person_id: str, name: str, recipients: set[str], now: datetime
) -> tuple[Alert, bool]:
    """(the alert, whether this acknowledgement is the one that took it). Raises
    :class:`NotYours` for someone it did not go to; a second acknowledgement (by the same
    person or another) changes nothing: the alert says who took it and when."""
    if person_id not in recipients:
        raise NotYours(f"{person_id} did not receive alert {alert.alert_id}")
    if alert.status == "acknowledged":
        return alert, False
    taken = dataclasses.replace(
        alert,
        status="acknowledged",
        due_at=None,
        acknowledged_by=person_id,
        acknowledged_name=name,
        acknowledged_at=now,
    )
    return taken, True
