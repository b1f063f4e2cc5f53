"""A person's health status as an explicit state machine: the statuses, which of them hold a
person at the gate, and which step from one to another who may take.

Screening decides; the gates enforce ``holds_at_gate`` as carried on ``PersonStatusChanged``
and need not know this list (a status added here needs no change at the gate); likewise a
household's door alerts for the members ``holds_at_home`` confines at home.

The machine follows the community's practice (MISSION.md): the four categories (四类人员:
confirmed, suspected, fever not excluded, close contact) are found and sent to hospital or
quarantine; people with symptoms outside them are followed up for 14 days; quarantine is at
home or at a central site; a confirmed case goes to hospital and comes back recovered; a
person comes out of quarantine (or, recovered, out of their health monitoring) released.

Who may take a step (:class:`Role`):

- ``grid_worker``       checks every household daily: reports symptoms or a fever, puts a
                        returnee or a close contact into home quarantine;
- ``community_doctor``  the clinical judgements: suspects, excludes a fever or a suspicion,
                        ends a follow-up, sends to hospital, discharges, releases;
- ``secretary``         the administrative moves: close-contact lists from the CDC, central
                        quarantine and its step down to home, transfers, releases;
- ``lab``               a test result: positive makes anyone (not yet a case) confirmed, a
                        first positive (e.g. a pooled sample) suspected;
- ``screening``         the service's own rules: a check-in or a gate reading with symptoms
                        or a fever, a household's quarantine, a 14-day period come to its end.

A step "back" (towards normal, recovered or released, or to a milder category) needs a
reason; every step is refused, with what is allowed instead, if it is not in the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gridcare.shared.errors import ApiError


class HealthStatus(StrEnum):
    NORMAL = "normal"
    SYMPTOMATIC_FOLLOW_UP = "symptomatic_follow_up"
    FEVER_UNEXCLUDED = "fever_unexcluded"
    SUSPECTED = "suspected"
    CONFIRMED = "confirmed"
    CLOSE_CONTACT = "close_contact"
    HOME_QUARANTINE = "home_quarantine"
    CENTRAL_QUARANTINE = "central_quarantine"
    IN_HOSPITAL = "in_hospital"
    RECOVERED = "recovered"
    RELEASED = "released"


class Role(StrEnum):
    """Who takes a step: three kinds of staff, a lab's result, or screening's own rules."""

    GRID_WORKER = "grid_worker"
    COMMUNITY_DOCTOR = "community_doctor"
    SECRETARY = "secretary"
    LAB = "lab"
    SCREENING = "screening"


#: The roles a member of staff holds (``Staff.roles``, a grid's worker): the office's roles.
STAFF_ROLES = frozenset({Role.GRID_WORKER, Role.COMMUNITY_DOCTOR, Role.SECRETARY})

#: The four categories, quarantine and hospital keep a person from leaving the compound.
#: Symptoms alone are followed up (14 days) without holding anyone.
HOLDS_AT_GATE = frozenset(
    {
        HealthStatus.FEVER_UNEXCLUDED,
        HealthStatus.SUSPECTED,
        HealthStatus.CONFIRMED,
        HealthStatus.CLOSE_CONTACT,
        HealthStatus.HOME_QUARANTINE,
        HealthStatus.CENTRAL_QUARANTINE,
        HealthStatus.IN_HOSPITAL,
    }
)

#: The held statuses that confine a person at home, where their household's door sensor
#: alerts the grid worker when it opens (``PersonStatusChanged.holds_at_home``): home
#: quarantine, and the four categories, who stay at home until they are taken elsewhere (a
#: fever not yet excluded or a suspicion awaiting the doctor, a close contact awaiting their
#: quarantine, a confirmed case awaiting transfer to hospital). A person at a central
#: quarantine site or in hospital is held at the gate but is not at home: their household's
#: door alerts only for someone else confined there.
HOLDS_AT_HOME = HOLDS_AT_GATE - {HealthStatus.CENTRAL_QUARANTINE, HealthStatus.IN_HOSPITAL}

#: What each status reads as, for the people who get alerts about it.
LABELS: dict[HealthStatus, dict[str, str]] = {
    HealthStatus.NORMAL: {"zh": "正常", "en": "normal"},
    HealthStatus.SYMPTOMATIC_FOLLOW_UP: {"zh": "有症状随访", "en": "followed up for symptoms"},
    HealthStatus.FEVER_UNEXCLUDED: {"zh": "发热未排除", "en": "fever not yet excluded"},
    HealthStatus.SUSPECTED: {"zh": "疑似", "en": "suspected case"},
    HealthStatus.CONFIRMED: {"zh": "确诊", "en": "confirmed case"},
    HealthStatus.CLOSE_CONTACT: {"zh": "密切接触者", "en": "close contact"},
    HealthStatus.HOME_QUARANTINE: {"zh": "居家隔离", "en": "home quarantine"},
    HealthStatus.CENTRAL_QUARANTINE: {"zh": "集中隔离", "en": "central quarantine"},
    HealthStatus.IN_HOSPITAL: {"zh": "住院", "en": "in hospital"},
    HealthStatus.RECOVERED: {"zh": "已康复", "en": "recovered"},
    HealthStatus.RELEASED: {"zh": "已解除", "en": "released"},
}


def holds_at_gate(status: HealthStatus) -> bool:
    return status in HOLDS_AT_GATE


def holds_at_home(status: HealthStatus) -> bool:
    return status in HOLDS_AT_HOME


# --- the table of transitions -------------------------------------------------------------
@dataclass(frozen=True)
class Transition:
    """One allowed step: from, to, the roles that may take it, whether it is a step back
    (and so needs a reason), and what it means in the community's practice."""

    from_: HealthStatus
    to: HealthStatus
    roles: frozenset[Role]
    back: bool
    means: str


S = HealthStatus
NORMAL, FOLLOW_UP, FEVER = S.NORMAL, S.SYMPTOMATIC_FOLLOW_UP, S.FEVER_UNEXCLUDED
SUSPECTED, CONFIRMED, CONTACT = S.SUSPECTED, S.CONFIRMED, S.CLOSE_CONTACT
HOME, CENTRAL, HOSPITAL = S.HOME_QUARANTINE, S.CENTRAL_QUARANTINE, S.IN_HOSPITAL
RECOVERED, RELEASED = S.RECOVERED, S.RELEASED
GW, DOC, SEC, LAB, RULES = (
    Role.GRID_WORKER,
    Role.COMMUNITY_DOCTOR,
    Role.SECRETARY,
    Role.LAB,
    Role.SCREENING,
)
FORWARD, BACK = False, True


def _steps(
    froms: Iterable[HealthStatus], to: HealthStatus, roles: Iterable[Role], back: bool, means: str
) -> list[Transition]:
    return [Transition(f, to, frozenset(roles), back, means) for f in froms]


#: Every allowed step, grouped by where it goes. A pair not listed here is refused.
TRANSITIONS: tuple[Transition, ...] = tuple(
    # followed up for symptoms, without being held
    _steps([NORMAL, RECOVERED, RELEASED], FOLLOW_UP, [GW, DOC, RULES], FORWARD,
           "symptoms at a visit or a check-in: followed up 14 days")
    + _steps([FEVER, SUSPECTED], FOLLOW_UP, [DOC], BACK,
             "fever or suspicion excluded, symptoms still followed up")
    # fever not excluded
    + _steps([NORMAL, FOLLOW_UP, RECOVERED, RELEASED], FEVER, [GW, DOC, RULES], FORWARD,
             "a fever measured (door visit, check-in, gate): held until a doctor excludes it")
    # suspected
    + _steps([NORMAL, FOLLOW_UP, FEVER, CONTACT, HOME, CENTRAL], SUSPECTED, [DOC, LAB], FORWARD,
             "a doctor suspects a case (a close contact or quarantined person with symptoms), "
             "or a first positive test")
    # confirmed: a lab result, for anyone not already a case
    + _steps([NORMAL, FOLLOW_UP, FEVER, SUSPECTED, CONTACT, HOME, CENTRAL, RECOVERED, RELEASED],
             CONFIRMED, [LAB], FORWARD, "a positive test confirms a case (again: re-positive)")
    # close contact
    + _steps([NORMAL, FOLLOW_UP, RECOVERED, RELEASED], CONTACT, [GW, DOC, SEC, RULES], FORWARD,
             "named a close contact (the CDC's list, tracing by the grid worker or doctor, "
             "screening's rules)")
    # home quarantine
    + _steps([NORMAL, FOLLOW_UP, CONTACT, RECOVERED, RELEASED], HOME, [GW, DOC, SEC, RULES],
             FORWARD, "14 days at home: a returnee, a close contact, a household with a case")
    + _steps([FEVER, SUSPECTED], HOME, [DOC, SEC, RULES], BACK,
             "fever or suspicion excluded but quarantined at home (e.g. with their household)")
    + _steps([CENTRAL], HOME, [DOC, SEC], BACK, "central quarantine stepped down to home")
    # central quarantine
    + _steps([NORMAL, FOLLOW_UP, CONTACT, HOME, RECOVERED, RELEASED], CENTRAL, [DOC, SEC],
             FORWARD, "taken to a central quarantine site")
    # hospital
    + _steps([FEVER, SUSPECTED, CONFIRMED, HOME, CENTRAL], HOSPITAL, [DOC, SEC], FORWARD,
             "admitted to hospital (a fever clinic, a suspected or confirmed case, from "
             "quarantine)")
    + _steps([HOSPITAL], HOME, [DOC, SEC], BACK,
             "discharged into quarantine at home (not a case, or isolation after discharge)")
    # recovered
    + _steps([CONFIRMED, HOSPITAL], RECOVERED, [DOC], BACK,
             "discharged recovered: 14 days of health monitoring follow")
    # released: only from quarantine, or recovered
    + _steps([HOME, CENTRAL], RELEASED, [DOC, SEC, RULES], BACK,
             "quarantine over (its 14 days and a negative test)")
    + _steps([RECOVERED], RELEASED, [DOC, SEC, RULES], BACK,
             "health monitoring after discharge over")
    # normal
    + _steps([FOLLOW_UP], NORMAL, [DOC, RULES], BACK, "14 days of follow-up without a fever")
    + _steps([FEVER, SUSPECTED], NORMAL, [DOC], BACK, "fever or suspicion excluded by a doctor")
    + _steps([CONTACT], NORMAL, [DOC, SEC], BACK, "not a close contact after all")
    + _steps([RELEASED], NORMAL, [DOC, SEC, RULES], BACK, "back to ordinary life")
)  # fmt: skip

#: The table by (from, to).
ALLOWED: dict[tuple[HealthStatus, HealthStatus], Transition] = {
    (t.from_, t.to): t for t in TRANSITIONS
}


def transitions_from(status: HealthStatus) -> list[Transition]:
    return [t for t in TRANSITIONS if t.from_ == status]


class TransitionRefused(ApiError):
    """A step the machine does not allow: ``transition_not_allowed`` (no such step),
    ``role_not_allowed`` (not by this role), ``reason_required`` (a step back without a
    reason), ``unknown_person``. The detail names from, to, the role and what is allowed."""

    def __init__(
        self,
        code: str,
        detail: str,
        field: str = "",
        *,
        from_: HealthStatus | None = None,
        to: HealthStatus | None = None,
        role: Role | None = None,
    ) -> None:
        super().__init__(code, detail, field)
        self.from_, self.to, self.role = from_, to, role


def _roles(roles: Iterable[Role]) -> str:
    return ", ".join(sorted(r.value for r in roles))


def check(current: HealthStatus, to: HealthStatus, role: Role, reason: str) -> Transition:
    """The step from ``current`` to ``to`` by ``role``, if the table allows it; else
    :class:`TransitionRefused` saying what is allowed instead."""
    step = ALLOWED.get((current, to))
    if step is None:
        ways = "; ".join(f"{t.to} (by {_roles(t.roles)})" for t in transitions_from(current))
        raise TransitionRefused(
            "transition_not_allowed",
            f"{current} -> {to} is not allowed (asked by {role}); from {current} a person "
            f"may go to: {ways or 'nothing'}",
            "status",
            from_=current,
            to=to,
            role=role,
        )
    if role not in step.roles:
        raise TransitionRefused(
            "role_not_allowed",
            f"{current} -> {to} may be made by {_roles(step.roles)}, not by {role}",
            "role",
            from_=current,
            to=to,
            role=role,
        )
    if step.back and not reason.strip():
        raise TransitionRefused(
            "reason_required",
            f"{current} -> {to} is a step back ({step.means}): it needs a reason",
            "reason",
            from_=current,
            to=to,
            role=role,
        )
    return step


def as_data() -> list[dict[str, object]]:
    """The machine as data (``status.transitions``, docs/screening.md)."""
    return [
        {
            "from": t.from_.value,
            "to": t.to.value,
            "roles": sorted(r.value for r in t.roles),
            "back": t.back,
            "reason_required": t.back,
            "means": t.means,
        }
        for t in TRANSITIONS
    ]


def as_markdown() -> str:
    """The table as docs/screening.md shows it: one row per group of steps with the same
    target, roles and meaning (a test checks the doc against this)."""
    groups: dict[tuple, list[HealthStatus]] = {}
    for t in TRANSITIONS:
        groups.setdefault((t.to, t.roles, t.back, t.means), []).append(t.from_)
    lines = [
        "| from | to | who may | back (reason required) | what it means |",
        "|---|---|---|---|---|",
    ]
    for (to, roles, back, means), froms in groups.items():
        lines.append(
            f"| {', '.join(f'`{f}`' for f in froms)} | `{to}` | {_roles(roles)} "
            f"| {'yes' if back else ''} | {means} |"
        )
    return "\n".join(lines)


# --- decisions ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusDecision:
    """One recorded decision about a person (the history keeps every one)."""

    person_id: str
    status: HealthStatus
    set_by: str
    reason: str
    at: datetime
    until: datetime | None = None
    role: str = ""  # a Role; "" for a decision recorded before the machine
    previous: HealthStatus | None = None  # the status it changed (None: none recorded)
    source: str = ""  # what caused it, e.g. a check-in's or a test's id

    @property
    def holds_at_gate(self) -> bool:
        return holds_at_gate(self.status)

    @property
    def holds_at_home(self) -> bool:
        return holds_at_home(self.status)


class OutOfOrder(Exception):
    """A decision older than the one in force (it arrived late): not applied."""


def decide(current: StatusDecision | None, new: StatusDecision) -> StatusDecision:
    """The newest decision is in force; an older one arriving late changes nothing."""
    if current is not None and current.at > new.at:
        raise OutOfOrder(f"{new.person_id}: a decision of {current.at} is newer")
    return new


if __name__ == "__main__":  # the table for docs/screening.md
    print(as_markdown())
