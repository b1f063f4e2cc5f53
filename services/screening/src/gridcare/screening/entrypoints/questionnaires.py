"""The resident edge's questionnaires (the edge contract §4.3):
``resident.<person_id>.questionnaire``, core NATS request/reply in a queue group.

``{"submission_id", "person_id", "instrument", "answers", "submitted_at"}`` →
``{"submission_id", "score", "severity", "follow_up", "message": {"zh", "en"}}``, kept
before the reply; or ``{"error": {"code": "invalid_questionnaire" | "unknown_person" |
"unavailable", "detail": [{"field", "error"}]}}``. Never a silent timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from faststream import Context
from faststream.nats import NatsRouter
from faststream.nats.annotations import NatsMessage

from gridcare.contracts.edge import RESIDENT_QUESTIONNAIRE_ALL
from gridcare.shared.consumers import RUNTIME
from gridcare.shared.errors import ApiError, error

from ..handlers import questionnaires
from . import CLOCK

log = logging.getLogger(__name__)

QUEUE = "gridcare-screening-questionnaires"


def router() -> NatsRouter:
    r = NatsRouter()

    @r.subscriber(
        RESIDENT_QUESTIONNAIRE_ALL,
        queue=QUEUE,
        title="screening:resident.*.questionnaire",
        description="A resident answers PHQ-9 or GAD-7 (edge contract §4.3): scored, kept, "
        "and a call-back asked of the community doctor when the answers call for one.",
    )
    async def questionnaire(
        body: Any,
        msg: NatsMessage,
        rt: Any = Context(RUNTIME),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict[str, Any]:
        parts = msg.raw_message.subject.split(".")
        person = parts[1] if len(parts) == 3 else ""
        now = clock()
        try:
            req = questionnaires.read_request(msg.raw_message.data, person, now)
            return await questionnaires.submit(req, rt.unit_of_work(), now)
        except questionnaires.InvalidQuestionnaire as exc:
            return exc.reply()
        except ApiError as exc:
            return exc.reply()
        except Exception:
            log.exception("a questionnaire could not be kept")
            return error("unavailable", [{"field": "", "error": "internal error; retry"}])

    return r
