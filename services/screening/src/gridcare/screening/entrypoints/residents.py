"""The resident edge for check-ins (the edge contract §4.1): ``resident.<person_id>.checkin``,
core NATS request/reply in a queue group (any instance answers). The reply is sent once the
check-in is committed: ``{"checkin_id", "status": "recorded" | "replaced", "follow_up",
"message": {"zh", "en"}}``, or ``{"error": {"code": "invalid_checkin" | "unknown_person",
"detail": [{"field", "error"}, ...]}}`` naming every bad field. Never a silent timeout: an
unexpected failure is ``unavailable`` (retry with the same ``checkin_id``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from faststream import Context
from faststream.nats import NatsRouter
from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from gridcare.contracts.edge import RESIDENT_CHECKIN_ALL, CheckinRequest
from gridcare.shared.consumers import RUNTIME
from gridcare.shared.errors import ApiError, error

from ..handlers import checkins
from . import CLOCK

log = logging.getLogger(__name__)

QUEUE = "gridcare-screening-checkins"


def problems(data: bytes, person: str) -> tuple[CheckinRequest | None, list[dict[str, str]]]:
    """The request, or every bad field of it (the subject's person included)."""
    found: list[dict[str, str]] = []
    req = None
    try:
        req = CheckinRequest.model_validate_json(data)
    except ValidationError as exc:
        found = [
            {"field": ".".join(map(str, e["loc"])) or "(body)", "error": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
    try:
        given = json.loads(data).get("person_id")
    except (ValueError, AttributeError):
        given = None
    if isinstance(given, str) and given != person:
        found.append({"field": "person_id", "error": f"must be the subject's person ({person!r})"})
    return (None if found else req), found


def router() -> NatsRouter:
    r = NatsRouter()

    @r.subscriber(
        RESIDENT_CHECKIN_ALL,
        queue=QUEUE,
        title="screening:resident.*.checkin",
        description="A resident's daily health check-in (edge contract §4.1).",
    )
    async def checkin(
        body: Any,
        msg: NatsMessage,
        rt: Any = Context(RUNTIME),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict[str, Any]:
        parts = msg.raw_message.subject.split(".")
        person = parts[1] if len(parts) == 3 else ""
        req, bad = problems(msg.raw_message.data, person)
        if req is None:
            return error("invalid_checkin", bad)
        try:
            return await checkins.check_in(req, rt.unit_of_work(), clock())
        except ApiError as exc:
            return exc.reply()
        except Exception:
            log.exception("a check-in failed")
            return error("unavailable", [{"field": "", "error": "internal error; retry"}])

    return r
