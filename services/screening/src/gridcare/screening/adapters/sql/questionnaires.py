"""Questionnaires (PHQ-9, GAD-7): submissions and their follow-up."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.shared.localtime import as_utc

from ...domain.questionnaires import (
    AlreadySubmitted,
    FollowUp,
    Instrument,
    Severity,
    Submission,
)
from .. import tables as T


def _submission(row) -> Submission:
    return Submission(
        submission_id=row.submission_id,
        person_id=row.person_id,
        instrument=Instrument(row.instrument),
        answers=tuple(row.answers),
        score=row.score,
        severity=Severity(row.severity),
        follow_up=FollowUp(row.follow_up),
        submitted_at=as_utc(row.submitted_at),
        received_at=as_utc(row.received_at),
        reported_by=row.reported_by,
        message=dict(row.message) if row.message else None,
    )


class Questionnaires:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, person_id: str, submission_id: str) -> Submission | None:
        q = T.questionnaire_submissions.c
        row = (
            await self.session.execute(
                sa.select(T.questionnaire_submissions).where(
                    q.person_id == person_id, q.submission_id == submission_id
                )
            )
        ).first()
        return None if row is None else _submission(row)

    async def add(self, submission: Submission) -> None:
        values = {
            "person_id": submission.person_id,
            "submission_id": submission.submission_id,
            "instrument": submission.instrument.value,
            "answers": list(submission.answers),
            "score": submission.score,
            "severity": submission.severity.value,
            "follow_up": submission.follow_up.value,
            "submitted_at": submission.submitted_at,
            "received_at": submission.received_at,
            "reported_by": submission.reported_by,
            "message": submission.message or {},
        }
        try:
            await self.session.execute(sa.insert(T.questionnaire_submissions).values(values))
        except IntegrityError as exc:  # the same submission, committed meanwhile
            raise AlreadySubmitted(str(exc.orig)) from exc

    async def newest(
        self, limit: int, person_id: str | None = None, follow_up: str | None = None
    ) -> list[Submission]:
        q = T.questionnaire_submissions.c
        query = (
            sa.select(T.questionnaire_submissions)
            .order_by(q.received_at.desc(), q.person_id, q.submission_id)
            .limit(limit)
        )
        if person_id is not None:
            query = query.where(q.person_id == person_id)
        if follow_up is not None:
            query = query.where(q.follow_up == follow_up)
        return [_submission(r) for r in await self.session.execute(query)]
