"""Close contacts of a confirmed case: who is proposed, and a grid worker's decision.

When a person becomes confirmed, screening proposes as close-contact candidates the other
members of their household and everyone the checkpoint's register shows at the same gate
within ``contact_window_minutes`` of one of the case's passages in the last
``contact_lookback_days`` days (the community's policy). A candidate is a proposal, never
a decision: the grid worker of the candidate's grid confirms it (the candidate becomes a
close contact) or rejects it with a reason. One proposal per (case, candidate): the first
reason found is kept (the household before a gate, an earlier passage before a later one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gridcare.shared.errors import ApiError
from gridcare.shared.localtime import reads

from .status import HealthStatus

HOUSEHOLD = "household"
GATE = "gate"


class ProposalStatus(StrEnum):
    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


#: A person already held this way is a case (or in care) of their own: not proposed.
NOT_PROPOSED = frozenset({HealthStatus.CONFIRMED, HealthStatus.IN_HOSPITAL})


@dataclass(frozen=True)
class Passage:
    """A passage of the checkpoint's register (its ``passages`` and ``trace`` replies)."""

    gate_id: str
    scan_id: str
    person_id: str | None
    scanned_at: datetime
    direction: str | None = None  # in | out (a resident's timeline shows them)
    verdict: str | None = None  # allow | deny
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Candidate:
    person_id: str
    kind: str  # household | gate
    gate_id: str | None = None
    passed_at: datetime | None = None  # the case's passage the candidate was near

    def reason(self, zone: str | None) -> str:
        if self.kind == HOUSEHOLD:
            return HOUSEHOLD
        return f"gate {self.gate_id} at {reads(self.passed_at, zone)}"


@dataclass(frozen=True)
class Proposal:
    case_person_id: str
    candidate_id: str
    household_id: str
    grid_id: str | None
    kind: str
    reason: str
    gate_id: str | None
    passed_at: datetime | None
    proposed_at: datetime
    status: ProposalStatus = ProposalStatus.PROPOSED
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None


class ContactRefused(ApiError):
    """A decision about a proposal that cannot be made (already decided otherwise)."""


def lookback_start(confirmed_at: datetime, lookback_days: int) -> datetime:
    """The oldest passage of the case that counts."""
    return confirmed_at - timedelta(days=lookback_days)


def own_passages(
    passages: Iterable[Passage], confirmed_at: datetime, lookback_days: int
) -> list[Passage]:
    """The case's passages within the lookback, oldest first."""
    since = lookback_start(confirmed_at, lookback_days)
    return sorted(
        (p for p in passages if since <= p.scanned_at <= confirmed_at), key=lambda p: p.scanned_at
    )


def candidates(
    case_person_id: str,
    household_members: Iterable[str],
    near: Mapping[Passage, Iterable[Passage]],
    window_minutes: float,
) -> list[Candidate]:
    """The household's other members, then whoever passed the same gate within the window
    of one of the case's passages (``near``: each of the case's passages and the register's
    passages around it). Each person once, with the first reason found."""
    found: dict[str, Candidate] = {}
    for member in household_members:
        if member != case_person_id:
            found.setdefault(member, Candidate(member, HOUSEHOLD))
    window = timedelta(minutes=window_minutes)
    for own in sorted(near, key=lambda p: p.scanned_at):
        for other in sorted(near[own], key=lambda p: p.scanned_at):
            if (
                other.person_id
                and other.person_id != case_person_id
                and other.gate_id == own.gate_id
                and abs(other.scanned_at - own.scanned_at) <= window
            ):
                found.setdefault(
                    other.person_id,
                    Candidate(other.person_id, GATE, own.gate_id, own.scanned_at),
                )
    return list(found.values())


def decide(
    proposal: Proposal, to: ProposalStatus, *, by: str, reason: str, now: datetime
) -> tuple[Proposal, bool]:
    """A grid worker's decision; (the proposal as decided, whether it changed). The same
    decision again changes nothing; the other one after a decision is refused."""
    if to is ProposalStatus.PROPOSED:
        raise ValueError("a decision is confirmed or rejected")
    if proposal.status is to:
        return proposal, False
    if proposal.status is not ProposalStatus.PROPOSED:
        raise ContactRefused(
            "already_decided",
            f"{proposal.candidate_id} as a contact of {proposal.case_person_id} was "
            f"{proposal.status.value} by {proposal.decided_by}",
        )
    if to is ProposalStatus.REJECTED and len(reason.strip()) < 3:
        raise ContactRefused("reason_required", "a rejection needs a reason", "reason")
    decided = dataclasses.replace(
        proposal, status=to, decided_by=by, decided_at=now, decision_reason=reason.strip()
    )
    return decided, True
