"""The staff edge (the edge contract §5.1): ``staff.<person_id>.ack``, core NATS
request/reply. ``{"alert_id"}`` → ``{"alert_id", "status": "acknowledged",
"acknowledged_at"}``, or ``{"error": {"code": "unknown_alert" | "not_yours" |
"invalid_ack", "detail": [{"field", "error"}]}}``. Never a silent timeout."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from faststream import Context
from faststream.nats import NatsRouter
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from gridcare.contracts.edge import STAFF_ACK_ALL, AckRequest
from gridcare.shared.consumers import RUNTIME
from gridcare.shared.errors import bad_fields, error

from .. import handlers
from .events import CLOCK, DELIVERY, WAKE

log = logging.getLogger(__name__)


def router() -> NatsRouter:
    r = NatsRouter()

    @r.subscriber(
        STAFF_ACK_ALL,
        queue="gridcare-notify-acks",
        title="notify:staff.*.ack",
        description="A member of staff acknowledges an alert (edge contract §5.1).",
    )
    async def ack(
        body: AckRequest | Any,
        msg: NatsMessage,
        rt: Any = Context(RUNTIME),
        delivery: handlers.Delivery = Context(DELIVERY),
        wake: Callable[[], None] = Context(WAKE),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict[str, Any]:
        parts = msg.raw_message.subject.split(".")
        person = parts[1] if len(parts) == 3 else ""
        try:
            req = AckRequest.model_validate_json(msg.raw_message.data)
        except ValidationError as exc:
            return error("invalid_ack", bad_fields(exc))
        try:
            done = await handlers.acknowledge(
                req.alert_id, person, "nats", rt.unit_of_work(), delivery, clock()
            )
        except handlers.AckRefused as exc:
            return error(exc.code, [{"field": "alert_id", "error": str(exc)}])
        except Exception:
            log.exception("acknowledging an alert failed")
            return error("unavailable", [{"field": "", "error": "internal error; retry"}])
        wake()
        return done

    return r
