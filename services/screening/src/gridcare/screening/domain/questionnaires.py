"""Questionnaires: PHQ-9 (depression) and GAD-7 (anxiety), scored by their published rules
(the edge contract §4.3), and what the resident is told and who is asked to call them.

- **PHQ-9**: 9 answers of 0-3 (not at all, several days, more than half the days, nearly
  every day), total 0-27: 0-4 minimal, 5-9 mild, 10-14 moderate, 15-19 moderately severe,
  20-27 severe (Kroenke, Spitzer & Williams 2001).
- **GAD-7**: 7 answers of 0-3, total 0-21: 0-4 minimal, 5-9 mild, 10-14 moderate, 15-21
  severe (Spitzer et al. 2006).
- **Follow-up**: a total of 10 or more is a call-back (the instruments' usual cut-off);
  any answer above 0 on PHQ-9 item 9 (thoughts of being better off dead or of hurting
  oneself) is an urgent call-back, whatever the total.

Plain rules: no I/O. A submission's answers are checked here (:func:`problems`) so a bad
one is refused naming every bad field at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Instrument(StrEnum):
    PHQ9 = "phq9"
    GAD7 = "gad7"


class Severity(StrEnum):
    MINIMAL = "minimal"
    MILD = "mild"
    MODERATE = "moderate"
    MODERATELY_SEVERE = "moderately_severe"
    SEVERE = "severe"


class FollowUp(StrEnum):
    NONE = "none"
    CALL_BACK = "call_back"
    URGENT_CALL_BACK = "urgent_call_back"


#: How many answers each instrument has; each answer is 0, 1, 2 or 3.
ITEMS = {Instrument.PHQ9: 9, Instrument.GAD7: 7}
ANSWER_MIN, ANSWER_MAX = 0, 3
#: Beyond this many answers a list is not a questionnaire: only its length is reported.
MAX_ANSWERS = 27

#: The lowest total of each severity band, in order (the published cut-offs).
BANDS: dict[Instrument, tuple[tuple[int, Severity], ...]] = {
    Instrument.PHQ9: (
        (0, Severity.MINIMAL),
        (5, Severity.MILD),
        (10, Severity.MODERATE),
        (15, Severity.MODERATELY_SEVERE),
        (20, Severity.SEVERE),
    ),
    Instrument.GAD7: (
        (0, Severity.MINIMAL),
        (5, Severity.MILD),
        (10, Severity.MODERATE),
        (15, Severity.SEVERE),
    ),
}

#: A total at or above this asks for a call-back.
CALL_BACK_AT = 10
#: PHQ-9's item 9 (0-based index 8): any answer above 0 asks for an urgent call-back.
PHQ9_ITEM_9 = 8
#: A submission may say it was made at most this far ahead of the service's clock (skew).
MAX_FUTURE = timedelta(minutes=5)


class AlreadySubmitted(Exception):
    """The (person, submission id) is kept already: a repeat, answered from what is kept."""


@dataclass(frozen=True)
class Result:
    score: int
    severity: Severity
    follow_up: FollowUp


@dataclass(frozen=True)
class Submission:
    """One answered questionnaire, as kept (``submission_id`` is the resident's app's
    idempotency key, per person)."""

    submission_id: str
    person_id: str
    instrument: Instrument
    answers: tuple[int, ...]
    score: int
    severity: Severity
    follow_up: FollowUp
    submitted_at: datetime
    received_at: datetime
    reported_by: str | None = None
    message: dict[str, str] | None = None  # the reply's, as first sent (None: the default)


def problems(instrument: Any, answers: Any) -> list[tuple[str, str]]:
    """Every (field, what is wrong) of an instrument and its answers as they arrived (any
    JSON value); [] when they can be scored. Answers are named ``answers.<index>`` (from
    0), as the other validation errors name items of a list."""
    found: list[tuple[str, str]] = []
    known = instrument in ITEMS
    if not known:
        found.append(("instrument", f"must be one of {', '.join(map(str, ITEMS))}"))
    if not isinstance(answers, list):
        found.append(("answers", "must be a list of answers, each 0, 1, 2 or 3"))
        return found
    if known and len(answers) != ITEMS[Instrument(instrument)]:
        n = ITEMS[Instrument(instrument)]
        found.append(("answers", f"{instrument} has {n} answers, {len(answers)} given"))
    elif not known and not 1 <= len(answers) <= max(ITEMS.values()):
        found.append(("answers", f"{len(answers)} answers; an instrument has 7 or 9"))
    if len(answers) > MAX_ANSWERS:
        return found  # not a questionnaire: the count says it, item by item would not help
    for i, v in enumerate(answers):
        if type(v) is int and not isinstance(v, bool):
            if not ANSWER_MIN <= v <= ANSWER_MAX:
                found.append((f"answers.{i}", f"must be 0, 1, 2 or 3 (item {i + 1}), not {v}"))
        else:
            kind = "null" if v is None else type(v).__name__
            found.append((f"answers.{i}", f"must be a whole number 0-3 (item {i + 1}), not {kind}"))
    return found


def severity(instrument: Instrument, total: int) -> Severity:
    band = BANDS[instrument][0][1]
    for lowest, sev in BANDS[instrument]:
        if total >= lowest:
            band = sev
    return band


def score(instrument: Instrument | str, answers: Sequence[int]) -> Result:
    """The total, its severity band and the follow-up. Raises ``ValueError`` naming the
    problems if the answers do not fit the instrument (check with :func:`problems`)."""
    found = problems(str(instrument), list(answers))
    if found:
        raise ValueError("; ".join(f"{f}: {e}" for f, e in found))
    instrument = Instrument(instrument)
    total = sum(answers)
    if instrument is Instrument.PHQ9 and answers[PHQ9_ITEM_9] > 0:
        follow = FollowUp.URGENT_CALL_BACK
    elif total >= CALL_BACK_AT:
        follow = FollowUp.CALL_BACK
    else:
        follow = FollowUp.NONE
    return Result(total, severity(instrument, total), follow)


def submitted_too_late(submitted_at: datetime, now: datetime) -> bool:
    """A ``submitted_at`` further ahead of the service's clock than a clock's skew."""
    return submitted_at > now + MAX_FUTURE


# --- what the resident reads -------------------------------------------------------------
#: The numbers a reply names when the community's policy sets none (China's: emergency
#: medical service, the national psychological support hotline).
EMERGENCY_NUMBER, CRISIS_HOTLINE = "120", "12356"

URGENT_MESSAGE = {
    "zh": "感谢您如实作答。请保持电话畅通，社区工作人员将尽快与您联系。"
    "如有紧急情况请拨打 {emergency} 或心理援助热线 {hotline}.",
    "en": "Thank you for answering honestly. Please keep your phone on: community staff "
    "will contact you as soon as possible. In an emergency, call {emergency} or the "
    "psychological support hotline {hotline}.",
}
CALL_BACK_MESSAGE = {
    "zh": "感谢您完成问卷。这段时间您承受了不少压力，社区医生将在近期给您打电话，"
    "了解您的情况并看看能帮上什么忙，请留意来电。如有紧急情况请拨打 {emergency} 或心理援助热线 "
    "{hotline}。",
    "en": "Thank you for completing the questionnaire. You seem to be carrying a lot at the "
    "moment: a community doctor will call you soon to hear how you are and see how we can "
    "help, so please look out for the call. In an emergency, call {emergency} or the "
    "psychological support hotline {hotline}.",
}
MILD_MESSAGE = {
    "zh": "感谢您完成问卷。特殊时期有些情绪起伏很常见：保持规律作息、适当活动，"
    "多和家人朋友联系。如果想找人聊聊，随时可以联系社区工作人员，也欢迎过几天再填一次。",
    "en": "Thank you for completing the questionnaire. Ups and downs are common at a time "
    "like this: keep a routine, move about a little and stay in touch with family and "
    "friends. If you would like to talk to someone, community staff are here for you; you "
    "are welcome to take the questionnaire again in a few days.",
}
MINIMAL_MESSAGE = {
    "zh": "感谢您完成问卷。如果您的感受有变化，欢迎随时再填一次，或联系社区工作人员。",
    "en": "Thank you for completing the questionnaire. If how you feel changes, you are "
    "welcome to take it again at any time or to talk to community staff.",
}


def message(
    result: Result, emergency: str = EMERGENCY_NUMBER, hotline: str = CRISIS_HOTLINE
) -> dict[str, str]:
    """What the resident's screen shows: kind words and what happens next, never the
    severity label alone; for a call-back, that someone will call them and where to turn
    meanwhile (the community's emergency number and crisis hotline)."""
    if result.follow_up is FollowUp.URGENT_CALL_BACK:
        texts = URGENT_MESSAGE
    elif result.follow_up is FollowUp.CALL_BACK:
        texts = CALL_BACK_MESSAGE
    elif result.severity is Severity.MINIMAL:
        texts = MINIMAL_MESSAGE
    else:
        texts = MILD_MESSAGE
    return {lang: t.format(emergency=emergency, hotline=hotline) for lang, t in texts.items()}


def reply(s: Submission) -> dict[str, Any]:
    """The reply to a submission: the same for a repeat of it (its message as first sent,
    even if the community's numbers changed since)."""
    return {
        "submission_id": s.submission_id,
        "score": s.score,
        "severity": s.severity.value,
        "follow_up": s.follow_up.value,
        "message": dict(s.message)
        if s.message
        else message(Result(s.score, s.severity, s.follow_up)),
    }
