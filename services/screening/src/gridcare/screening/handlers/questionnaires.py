"""Questionnaires (the edge contract §4.3): a resident's PHQ-9 or GAD-7, scored, kept, and,
for a score of 10 or more or any answer above 0 on PHQ-9 item 9, a call-back asked of the
community's doctor through notify.

- :func:`read_request`: a request's bytes, checked against the contract and the
  instrument's rules; every bad field named at once (``invalid_questionnaire``).
- :func:`submit`: the submission kept (answers, score, severity, follow-up, when it was
  made and received) and the call-back requested, in one transaction, before the reply.
  ``submission_id`` is the key (per person): a repeat gets the kept reply and changes
  nothing.
- :func:`newest`: the office's list.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from gridcare.contracts.edge import QuestionnaireRequest
from gridcare.contracts.notify import NotificationRequested, ToRole
from gridcare.shared.envelope import stable_id
from gridcare.shared.errors import ApiError, bad_fields, error
from gridcare.shared.localtime import iso

from ..domain import questionnaires as qn
from ..domain.questionnaires import AlreadySubmitted, FollowUp, Submission
from ..unit_of_work import ScreeningUnitOfWork
from .contacts import policy_of

log = logging.getLogger(__name__)

#: notify's template of the call-back request (``docs/templates.md``).
CALL_BACK_TEMPLATE = "task.mental_health_call_back"
#: the alert kind of an urgent call-back: its escalation chain is the community policy's
#: ``escalations.mental_health_urgent``, else notify's default chain (docs/screening.md).
URGENT_ALERT_KIND = "mental_health_urgent"
#: who is asked to call, in order: the first role someone in the community holds.
CALLERS = ("community_doctor", "secretary")


class InvalidQuestionnaire(Exception):
    """A request that breaks the contract: ``detail`` names every bad field."""

    def __init__(self, detail: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{d['field']}: {d['error']}" for d in detail))
        self.detail = detail

    def reply(self) -> dict[str, Any]:
        return error("invalid_questionnaire", self.detail)


def read_request(body: bytes, person_id: str, now: datetime) -> QuestionnaireRequest:
    """The request in ``body`` for the subject's ``person_id``, or
    :class:`InvalidQuestionnaire` naming each bad field: not a JSON object, the contract's
    fields, the instrument and its answers (their count, each one 0-3), a ``person_id``
    other than the subject's, a ``submitted_at`` in the future."""
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidQuestionnaire([{"field": "(body)", "error": "not UTF-8 JSON"}]) from None
    if not isinstance(raw, dict):
        raise InvalidQuestionnaire([{"field": "(body)", "error": "must be a JSON object"}])
    detail: list[dict[str, str]] = []
    req = None
    try:
        req = QuestionnaireRequest.model_validate(raw)
    except ValidationError as exc:
        detail = [  # instrument and answers: the rules' own words, below
            d for d in bad_fields(exc) if d["field"].split(".")[0] not in ("instrument", "answers")
        ]
    detail += [
        {"field": f, "error": e} for f, e in qn.problems(raw.get("instrument"), raw.get("answers"))
    ]
    body_person = raw.get("person_id")
    if isinstance(body_person, str) and body_person != person_id:
        detail.append(
            {"field": "person_id", "error": f"must equal the subject's person ({person_id})"}
        )
    if req is not None and qn.submitted_too_late(req.submitted_at, now):
        detail.append(
            {
                "field": "submitted_at",
                "error": f"in the future (more than {qn.MAX_FUTURE.seconds // 60} minutes "
                "ahead of the service's clock)",
            }
        )
    if detail or req is None:
        raise InvalidQuestionnaire(detail or [{"field": "(body)", "error": "invalid"}])
    return req


async def submit(
    req: QuestionnaireRequest, uow: ScreeningUnitOfWork, now: datetime
) -> dict[str, Any]:
    """Score and keep a resident's answers and ask for a call-back if they need one, in
    one transaction; the reply ``{submission_id, score, severity, follow_up, message}``.
    A repeat of a kept submission gets its reply again and changes nothing. Raises
    ``ApiError("unknown_person")`` for someone who is not a resident."""
    try:
        return await _submit(req, uow, now)
    except AlreadySubmitted:  # the same submission committed meanwhile (another instance)
        async with uow:
            kept = await uow.questionnaires.get(req.person_id, req.submission_id)
        if kept is None:
            raise
        return qn.reply(kept)


async def _submit(
    req: QuestionnaireRequest, uow: ScreeningUnitOfWork, now: datetime
) -> dict[str, Any]:
    result = qn.score(req.instrument, req.answers)
    # an urgent call-back goes before ordinary writers waiting for the store
    uow.urgent = uow.urgent or result.follow_up is FollowUp.URGENT_CALL_BACK
    async with uow:
        kept = await uow.questionnaires.get(req.person_id, req.submission_id)
        if kept is not None:
            if (kept.instrument.value, list(kept.answers)) != (req.instrument, req.answers):
                log.warning(
                    "questionnaire %s of %s repeated with other answers: the kept reply",
                    req.submission_id,
                    req.person_id,
                )
            return qn.reply(kept)
        if await uow.places.household_of(req.person_id) is None:
            raise ApiError(
                "unknown_person", f"{req.person_id} is not a known resident", "person_id"
            )
        community = await uow.places.community_of_person(req.person_id)
        policy = await policy_of(uow, community)
        submission = Submission(
            submission_id=req.submission_id,
            person_id=req.person_id,
            instrument=qn.Instrument(req.instrument),
            answers=tuple(req.answers),
            score=result.score,
            severity=result.severity,
            follow_up=result.follow_up,
            submitted_at=req.submitted_at,
            received_at=now,
            reported_by=req.reported_by,
            message=qn.message(result, policy.emergency_number, policy.crisis_hotline),
        )
        await uow.questionnaires.add(submission)
        if submission.follow_up is not FollowUp.NONE:
            request = await _call_back(submission, community, uow)
            if request is not None:
                uow.emit(request, event_id=stable_id("CallBack", request.request_id))
        await uow.commit()
    return qn.reply(submission)


async def _call_back(
    s: Submission, community: str | None, uow: ScreeningUnitOfWork
) -> NotificationRequested | None:
    """The request to notify: the community's doctor (else its secretary, else the
    person's grid worker) is asked to call the resident; urgent and to be acknowledged
    for an urgent call-back. Only who to call, their phone and how urgent: never the
    answers or the score."""
    contact = await uow.places.contact_of(s.person_id) or {}
    grid = contact.get("grid_id")
    recipient = None
    for role in CALLERS:
        if community and await uow.places.role_held(role, community):
            recipient = ToRole(role=role, place_id=community)
            break
    if recipient is None and grid:
        recipient = ToRole(role="grid_worker", place_id=grid)
    if recipient is None:
        log.error(
            "questionnaire %s of %s needs a call-back but nobody is known to ask (its "
            "community has no community doctor or secretary, its building no grid)",
            s.submission_id,
            s.person_id,
        )
        return None
    urgent = s.follow_up is FollowUp.URGENT_CALL_BACK
    places = {k: v for k, v in (("community_id", community), ("grid_id", grid)) if v}
    return NotificationRequested(
        request_id="questionnaire-" + stable_id("questionnaire", s.person_id, s.submission_id),
        recipient=recipient,
        template=CALL_BACK_TEMPLATE,
        params={
            "person_id": s.person_id,
            "name": contact.get("name"),
            "phone": contact.get("phone"),
            "urgent": urgent,
            "at": s.received_at.isoformat(),
        },
        priority="urgent" if urgent else "normal",
        needs_ack=urgent,
        alert_kind=URGENT_ALERT_KIND if urgent else None,
        places=places,
        requested_by="screening",
    )


# --- queries ------------------------------------------------------------------------------
async def newest(
    uow: ScreeningUnitOfWork,
    *,
    limit: int = 50,
    person_id: str | None = None,
    follow_up: str | None = None,
) -> list[dict[str, Any]]:
    """The newest submissions (of one person, with one follow-up), times on the person's
    community's clock."""
    async with uow:
        found = await uow.questionnaires.newest(limit, person_id, follow_up)
        zones = {p: await uow.places.zone_of_person(p) for p in {s.person_id for s in found}}
    return [
        {
            "submission_id": s.submission_id,
            "person_id": s.person_id,
            "instrument": s.instrument.value,
            "answers": list(s.answers),
            "score": s.score,
            "severity": s.severity.value,
            "follow_up": s.follow_up.value,
            "submitted_at": iso(s.submitted_at, zones[s.person_id]),
            "received_at": iso(s.received_at, zones[s.person_id]),
            "reported_by": s.reported_by,
        }
        for s in found
    ]
