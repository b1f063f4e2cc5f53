"""A missed follow-up day escalates (issue 14: "a missed day escalates").

``escalate`` runs in the check-in tick (bootstrap.py), before the reminder pass: in each
community whose local time is past its ``checkin_reminder_at``, one query finds every
local day of an open follow-up with no check-in and no follow-up record (domain/missed.py
says which days count); each person's days are recorded as missed and escalated at once,
in one transaction a batch: an urgent alert to acknowledge to their grid worker
(``task.follow_up_missed``, alert kind ``follow_up_missed``; no grid: the community's
secretary) and a ``DoorVisitRequested``, kept in ``door_visit_requests`` too, so the
ordinary rule of ``missed_days_for_visit`` days (handlers/checkins.py) does not ask for the
same person's door again for the same run.

Urgent, because the person is watched (symptoms, a close contact, quarantine at home) and
nobody has heard from them for a whole day: they may be worse, or gone. An urgent request
is not held by the grid worker's hourly cap nor by quiet hours; the pass runs after the
morning's reminder time, so it does not wake anyone.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from gridcare.contracts.notify import NotificationRequested, ToRole
from gridcare.contracts.screening import DoorVisitRequested
from gridcare.shared.localtime import local

from ..domain import missed as ms
from ..unit_of_work import ScreeningUnitOfWork


async def escalate(uow_factory: Any, now: datetime, batch: int = 2000) -> int:
    """The pass: every community past its reminder time today, a batch (its own unit of
    work, ``uow_factory()``) at a time. Returns how many people were escalated."""
    async with (uow := uow_factory()):
        communities = await uow.checkins.communities()
    escalated = 0
    for community_id, zone, policy in communities:
        clock = local(now, zone)
        if clock.time() < policy.reminder_time:
            continue
        while True:
            rows, people = await _batch(uow_factory(), community_id, clock.date(), now, batch)
            escalated += people
            if rows < batch:
                break
    return escalated


async def _batch(
    uow: ScreeningUnitOfWork, community_id: str, today: date, now: datetime, batch: int
) -> tuple[int, int]:
    """One batch: ``(rows read, people escalated)``. A full batch leaves its last person
    to the next one, so one person's days are always one escalation."""
    async with uow:
        found = await uow.checkins.missed_follow_up_days(
            community_id, ms.days_to_check(today), batch
        )
        read = len(found)
        if not found:
            return 0, 0
        if read == batch and found[0].person_id != found[-1].person_id:
            found = [m for m in found if m.person_id != found[-1].person_id]
        done = ms.escalations(found)
        visits = []
        for e in done:
            for m in e.days:
                await uow.follow_ups.put_day(ms.record(m, e.request_id, now))
            m = e.newest
            visits.append(
                {
                    "request_id": e.request_id,
                    "person_id": m.person_id,
                    "day": today,
                    "missed_days": len(e.days),
                    "last_checkin_day": e.first.last_checkin_day,
                    "requested_at": now,
                }
            )
            uow.emit(
                DoorVisitRequested(
                    request_id=e.request_id,
                    person_id=m.person_id,
                    household_id=m.household_id,
                    grid_id=m.grid_id,
                    missed_days=len(e.days),
                    day=today,
                    last_checkin_day=e.first.last_checkin_day,
                    requested_at=now,
                ),
                event_id=e.request_id,
            )
            uow.emit(
                NotificationRequested(
                    request_id=f"{e.request_id}-worker",
                    recipient=ToRole(role="grid_worker", place_id=m.grid_id)
                    if m.grid_id
                    else ToRole(role="secretary", place_id=community_id),
                    template=ms.TEMPLATE,
                    params=ms.alert_params(e),
                    priority="urgent",
                    needs_ack=True,
                    alert_kind=ms.ALERT_KIND,
                    places={"community_id": community_id}
                    | ({"grid_id": m.grid_id} if m.grid_id else {}),
                    requested_by="screening",
                ),
                event_id=f"{e.request_id}-worker",
            )
        await uow.checkins.visits_requested(visits)
        await uow.commit()
    return read, len(done)
