"""Each person's health status: the state machine's steps, each recorded in the history and
announced as a ``PersonStatusChanged`` (which says whether it holds the person at the gate).

``change_status`` is the one way a status changes; other handlers (check-ins, quarantine,
test results) call it inside their own open unit of work. ``set_status`` is the office's
command: its own transaction, by a known member of staff in one of their roles.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gridcare.contracts.screening import PersonStatusChanged
from gridcare.shared.envelope import stable_id
from gridcare.shared.errors import ApiError
from gridcare.shared.localtime import iso

from ..domain import quarantine, status
from ..domain.status import (
    STAFF_ROLES,
    HealthStatus,
    Role,
    StatusDecision,
    TransitionRefused,
)
from ..unit_of_work import ScreeningUnitOfWork


async def change_status(
    uow: ScreeningUnitOfWork,
    person_id: str,
    to: HealthStatus,
    *,
    by: str,
    role: Role,
    reason: str,
    now: datetime,
    until: datetime | None = None,
    source: str = "",
) -> StatusDecision:
    """Take the step ``current -> to`` for a person, inside the caller's open unit of work
    (it does not commit). The table (domain/status.py) decides; a refusal raises
    :class:`TransitionRefused`. A change to the status in force changes nothing and returns
    the decision in force. A decision older than the one in force (late) is refused
    (``out_of_order``). Each step is a history row and a ``PersonStatusChanged``."""
    to, role = HealthStatus(to), Role(role)
    household = await uow.places.household_of(person_id)
    if household is None:
        raise TransitionRefused(
            "unknown_person", f"{person_id} is not a known resident", "person_id", to=to, role=role
        )
    current = await uow.statuses.get(person_id)
    was = current.status if current else HealthStatus.NORMAL
    if current is not None and current.at > now:
        raise ApiError(
            "out_of_order",
            f"{person_id}: a decision of {current.at.isoformat()} is newer than this one "
            f"({now.isoformat()}); not applied",
        )
    if to == was:
        return current or StatusDecision(person_id, was, "", "", now)
    status.check(was, to, role, reason)
    decision = StatusDecision(
        person_id,
        to,
        by,
        reason,
        now,
        until,
        role=role.value,
        previous=was,
        source=source,
    )
    await uow.statuses.record(decision)
    uow.emit(
        PersonStatusChanged(
            person_id=person_id,
            status=to.value,
            holds_at_gate=decision.holds_at_gate,
            holds_at_home=decision.holds_at_home,
            status_label=status.LABELS[to],
            household_id=household,
            until=until,
            decided_at=now,
            previous_status=was.value,
            role=role.value,
            reason=reason,
            source=source,
        ),
        event_id=stable_id("PersonStatusChanged", person_id, now.isoformat(), was, to),
    )
    if was == HealthStatus.HOME_QUARANTINE:
        await _last_out_ends_home_quarantine(uow, household, person_id, to, by=by, now=now)
    return decision


async def _last_out_ends_home_quarantine(
    uow: ScreeningUnitOfWork,
    household: str,
    person_id: str,
    to: HealthStatus,
    *,
    by: str,
    now: datetime,
) -> None:
    """A member has left home quarantine (released one by one, say, or taken to a central
    site): with nobody of the household left in it, the household's quarantine ends too,
    so the office's list of quarantined households stays true."""
    hq = await uow.household_quarantines.active_of(household)
    if hq is None:
        return  # ended already (the household's own end releases its members after)
    for member in await uow.places.members_of(household):
        current = await uow.statuses.get(member)
        if current is not None and current.status == HealthStatus.HOME_QUARANTINE:
            return  # someone is still confined at home
    reason = f"nobody of the household left in home quarantine (the last, {person_id}: {to.value})"
    await uow.household_quarantines.save(
        quarantine.end_household(hq, household, by=by, reason=reason, now=now)
    )


async def staff_role(uow: ScreeningUnitOfWork, person_id: str, by: str, role: Role | None) -> Role:
    """The role ``by`` acts in on ``person_id`` from the office: a member of staff (or a
    grid's worker) of the person's community, holding ``role`` (or, omitted, their one
    role the machine knows). ``lab`` takes the lab's name as ``by``; ``screening`` (the
    service's own rules) is never taken from the office."""
    if role == Role.LAB:
        return role
    if role == Role.SCREENING:
        raise TransitionRefused(
            "role_not_allowed",
            "screening is the service's own rules, not a role the office acts in "
            f"(one of {', '.join(sorted(r.value for r in STAFF_ROLES | {Role.LAB}))})",
            "role",
            role=role,
        )
    member = await uow.places.staff(by)
    if member is None:
        raise ApiError("unknown_staff", f"{by} is not a known member of staff", "by")
    community = await uow.places.community_of_person(person_id)
    if community is not None and member["community_id"] != community:
        raise ApiError(
            "unknown_staff",
            f"{by} is staff of {member['community_id']}, not of {person_id}'s community "
            f"{community}",
            "by",
        )
    held = sorted(r for r in STAFF_ROLES if r.value in member["roles"])
    if role is None:
        if len(held) != 1:
            raise ApiError(
                "role_required",
                f"{by} holds {', '.join(held) or 'no role the health registry knows'}: "
                "say which role this decision is made in",
                "role",
            )
        return held[0]
    if role not in held:
        raise TransitionRefused(
            "role_not_allowed",
            f"{by} is not a {role} (holds {', '.join(held) or 'none of the machine roles'})",
            "role",
            role=role,
        )
    return role


async def set_status(
    uow: ScreeningUnitOfWork,
    person_id: str,
    to: HealthStatus,
    *,
    by: str,
    reason: str,
    now: datetime,
    role: Role | None = None,
    until: datetime | None = None,
    source: str = "",
) -> StatusDecision:
    """The office's command (``status.set``): ``by``, a member of staff in ``role``, takes
    the step for ``person_id`` in a transaction of its own."""
    async with uow:
        if await uow.places.household_of(person_id) is None:
            raise TransitionRefused(
                "unknown_person", f"{person_id} is not a known resident", "person_id"
            )
        acting = await staff_role(uow, person_id, by, role)
        decision = await change_status(
            uow,
            person_id,
            to,
            by=by,
            role=acting,
            reason=reason,
            now=now,
            until=until,
            source=source or "office",
        )
        await uow.commit()
    return decision


# --- queries ------------------------------------------------------------------------------
def _decision(d: StatusDecision, zone: str | None) -> dict[str, Any]:
    return {
        "from": d.previous.value if d.previous else None,
        "to": d.status.value,
        "status": d.status.value,
        "holds_at_gate": d.holds_at_gate,
        "by": d.set_by,
        "set_by": d.set_by,
        "role": d.role,
        "reason": d.reason,
        "source": d.source,
        "at": iso(d.at, zone),
        "until": iso(d.until, zone),
    }


async def status_of(person_id: str, uow: ScreeningUnitOfWork) -> dict[str, Any]:
    """A person's status in force and every step that led there, on the local clock."""
    async with uow:
        if await uow.places.household_of(person_id) is None:
            raise ApiError("unknown_person", f"{person_id} is not a known resident", "person_id")
        zone = await uow.places.zone_of_person(person_id)
        current = await uow.statuses.get(person_id)
        history = await uow.statuses.history(person_id)
    now = current.status if current else HealthStatus.NORMAL
    return {
        "person_id": person_id,
        "status": now.value,
        "holds_at_gate": status.holds_at_gate(now),
        "until": iso(current.until, zone) if current else None,
        "history": [_decision(d, zone) for d in history],
    }


def statuses() -> list[dict[str, Any]]:
    return [
        {
            "status": s.value,
            "holds_at_gate": status.holds_at_gate(s),
            "holds_at_home": status.holds_at_home(s),
            **status.LABELS[s],
        }
        for s in HealthStatus
    ]


def transitions() -> dict[str, Any]:
    """The machine as data: the statuses and every allowed step (``status.transitions``)."""
    return {
        "statuses": statuses(),
        "roles": [r.value for r in Role],
        "transitions": status.as_data(),
    }
