"""Follow-up: periods and one record per person and local day, made from events.

Fed by three things, each in the transaction of what caused it:

- a check-in or a door visit with a fever or symptoms (``after_checkin``, called by
  handlers/checkins.py in its own unit of work): opens or extends the period; every
  check-in of a person in an open period is that day's record;
- ``PersonStatusChanged`` into a followed status (``status_changed``, the durable consumer
  ``screening-followup`` on screening's own SCREENING stream): whoever decided it (a doctor,
  the quarantine of a household, a lab, a check-in) the period opens or is extended;
- a test result (``record_test_result``, called by the campaigns' handlers inside their
  unit of work): the newest one counts for the release rule.

A period is released by the policy's rule (domain/followup.py) when the tick finds it due
(``release_due``) or a test result makes it so; a person in symptomatic follow-up then
goes back to normal (screening's own step). Other statuses are the staff's to end.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from gridcare.contracts.screening import PersonStatusChanged
from gridcare.shared.errors import ApiError
from gridcare.shared.localtime import iso, local_day

from ..domain import checkins as ci
from ..domain import followup as fu
from ..domain.status import HealthStatus, Role
from ..unit_of_work import ScreeningUnitOfWork
from .status import change_status

log = logging.getLogger(__name__)

#: A change into one of these says the person has symptoms (or a fever) that day.
SYMPTOMATIC = frozenset({HealthStatus.SYMPTOMATIC_FOLLOW_UP, HealthStatus.FEVER_UNEXCLUDED})
#: A change to one of these by a member of staff ends the open period (e.g. a doctor ends a
#: follow-up); screening's own step back comes from releasing it.
ENDS = frozenset({HealthStatus.NORMAL, HealthStatus.RELEASED})


#: ``after_checkin``'s ``current`` when the caller has not read the open follow-up.
LOAD: Any = object()


async def after_checkin(
    uow: ScreeningUnitOfWork,
    who: ci.Resident,
    checkin: ci.Checkin,
    now: datetime,
    current: fu.FollowUp | None = LOAD,
) -> fu.FollowUp | None:
    """Inside the check-in's open unit of work: a fever or symptoms open (or extend) the
    person's follow-up and move a person in a milder status to symptomatic follow-up; the
    check-in of a person followed up is their record of the day. ``current``: the open
    follow-up, if the caller has read it. Returns the period."""
    if current is LOAD:
        current = await uow.follow_ups.open_of(checkin.person_id)
    if checkin.follow_up:
        what = "fever" if ci.has_fever(checkin.temperature_c, who.policy) else "symptoms"
        current, changed = fu.exposed(
            current,
            person_id=checkin.person_id,
            day=checkin.day,
            reason=f"{what} at a {'door visit' if checkin.source == 'visit' else 'check-in'}",
            symptomatic=True,
            policy=who.policy,
            now=now,
        )
        if changed:
            await uow.follow_ups.save(current)
        status = HealthStatus(who.status) if who.status else HealthStatus.NORMAL
        if status in fu.MILDER:
            await change_status(
                uow,
                checkin.person_id,
                HealthStatus.SYMPTOMATIC_FOLLOW_UP,
                by=checkin.reported_by or "screening",
                role=Role.SCREENING,
                reason=_reads(checkin),
                now=now,
                source=f"checkin:{checkin.checkin_id}",
            )
    if current is None or not current.is_open:
        return None
    await uow.follow_ups.put_day(
        fu.FollowUpDay(
            person_id=checkin.person_id,
            day=checkin.day,
            follow_up_id=current.follow_up_id,
            source="visit" if checkin.source == "visit" else "checkin",
            source_ref=checkin.checkin_id,
            temperature_c=checkin.temperature_c,
            symptoms=tuple(checkin.symptoms),
            recorded_at=now,
        )
    )
    return current


def _reads(checkin: ci.Checkin) -> str:
    parts = []
    if checkin.temperature_c is not None:
        parts.append(f"{checkin.temperature_c:.1f} °C")
    if checkin.symptoms:
        parts.append(", ".join(checkin.symptoms))
    where = "door visit" if checkin.source == "visit" else "check-in"
    return f"{where} of {checkin.day}: {'; '.join(parts) or 'unwell'}"


async def status_changed(ev: PersonStatusChanged, uow: ScreeningUnitOfWork) -> None:
    """A decision about a person (screening's own stream): into a followed status the
    period opens or is extended from that local day; a member of staff's step to normal or
    released ends it."""
    try:
        to = HealthStatus(ev.status)
    except ValueError:
        return  # a status this version does not know: nothing to follow
    async with uow:
        who = await uow.checkins.resident(ev.person_id)
        if who is None:
            await uow.commit()  # not a resident of ours: nothing to follow, handled
            return
        day = local_day(ev.decided_at, who.zone)
        current = await uow.follow_ups.open_of(ev.person_id)
        if to in fu.FOLLOWED:
            f, changed = fu.exposed(
                current,
                person_id=ev.person_id,
                day=day,
                reason=f"status {to.value}" + (f": {ev.reason}" if ev.reason else ""),
                symptomatic=to in SYMPTOMATIC,
                policy=who.policy,
                now=ev.decided_at,
            )
            if changed:
                await uow.follow_ups.save(f)
        elif to in ENDS and current is not None and ev.role != Role.SCREENING.value:
            reason = f"status {to.value} by {ev.role or 'staff'}" + (
                f": {ev.reason}" if ev.reason else ""
            )
            await uow.follow_ups.save(fu.released(current, reason=reason, now=ev.decided_at))
        await uow.commit()


async def record_test_result(
    uow: ScreeningUnitOfWork,
    person_id: str,
    *,
    negative: bool,
    at: datetime,
    now: datetime | None = None,
) -> fu.FollowUp | None:
    """A test result of a person (for the campaigns' handlers), inside their open unit of
    work (it does not commit). The newest result counts for the release rule; a negative
    one may release a period that is due (``now``: when to check, default ``at``). Returns
    the person's period (None: not followed up)."""
    current = await uow.follow_ups.open_of(person_id)
    if current is None:
        return None
    updated = fu.tested(current, negative=negative, at=at)
    if updated != current:
        await uow.follow_ups.save(updated)
    who = await uow.checkins.resident(person_id)
    if who is not None:
        return await _release_if_due(uow, who, updated, now or at)
    return updated


async def _release_if_due(
    uow: ScreeningUnitOfWork, who: ci.Resident, f: fu.FollowUp, now: datetime
) -> fu.FollowUp:
    today = local_day(now, who.zone)
    test_day = local_day(f.last_test_at, who.zone) if f.last_test_at else None
    reason = fu.release_check(f, today=today, test_day=test_day, policy=who.policy)
    if reason is None:
        return f
    done = fu.released(f, reason=reason, now=now)
    await uow.follow_ups.save(done)
    if who.status == HealthStatus.SYMPTOMATIC_FOLLOW_UP.value:
        await change_status(
            uow,
            who.person_id,
            HealthStatus.NORMAL,
            by="screening",
            role=Role.SCREENING,
            reason=reason,
            now=now,
            source=f"follow-up:{f.follow_up_id}",
        )
    return done


async def release_due(uow: ScreeningUnitOfWork, now: datetime, limit: int = 500) -> int:
    """The periods whose planned end has come (on their community's clock): each released
    if the policy's rule allows it, one transaction. Returns how many were released."""
    released = 0
    async with uow:
        # the latest local day anywhere is at most the UTC day after
        candidates = await uow.follow_ups.open_ending_by((now + timedelta(days=1)).date(), limit)
        for f in candidates:
            who = await uow.checkins.resident(f.person_id)
            if who is None:
                continue
            try:
                done = await _release_if_due(uow, who, f, now)
            except ApiError:  # the machine refuses the step back: staff decide
                log.warning("follow-up %s of %s not released", f.follow_up_id, f.person_id)
                continue
            released += done.status == "released"
        await uow.commit()
    return released


# --- queries ------------------------------------------------------------------------------
def _period(f: fu.FollowUp, zone: str | None) -> dict[str, Any]:
    return {
        "follow_up_id": f.follow_up_id,
        "reason": f.reason,
        "started_on": f.started_on.isoformat(),
        "ends_on": f.ends_on.isoformat(),
        "status": f.status,
        "last_symptom_day": f.last_symptom_day.isoformat() if f.last_symptom_day else None,
        "last_test_at": iso(f.last_test_at, zone),
        "last_test_negative": f.last_test_negative,
        "released_at": iso(f.released_at, zone),
        "release_reason": f.release_reason,
    }


async def follow_up_of(person_id: str, uow: ScreeningUnitOfWork) -> dict[str, Any]:
    """A person's follow-up periods and their days (check-ins and visits)."""
    async with uow:
        who = await uow.checkins.resident(person_id)
        if who is None:
            raise ApiError("unknown_person", f"{person_id} is not a known resident", "person_id")
        periods = await uow.follow_ups.of_person(person_id)
        days = await uow.follow_ups.days_of(person_id)
    return {
        "person_id": person_id,
        "periods": [_period(f, who.zone) for f in periods],
        "days": [
            {
                "day": d.day.isoformat(),
                "follow_up_id": d.follow_up_id,
                "source": d.source,
                "source_ref": d.source_ref,
                "temperature_c": d.temperature_c,
                "symptoms": list(d.symptoms),
            }
            for d in days
        ],
    }
