"""Daily check-ins (the resident edge §4.1), door-to-door visits, and the reminder pass.

- ``check_in``: one transaction: the resident (where they live, their community's clock
  and policy, their status: one query), the reply kept for the check-in's id (a repeat
  gets it again and changes nothing), the check-in in force for the day replaced, the
  follow-up fed (handlers/followup.py). Committed before the reply goes out.
- ``record_visit``: a grid worker's visit to a household: each member at home gets that
  day's check-in (``reported_by`` the worker); once per ``visit_id``.
- ``remind``: the periodic pass (``svc.every``): in each community, after its
  ``checkin_reminder_at``, every resident without a check-in today is reminded once
  (``checkin.reminder`` through notify; the reminder row and the request in one
  transaction; a batch read at a time, set-based, outside the writer, then written a
  slice at a time: ``_remind_batch``); a resident reminded and not checked in on
  each of the last ``missed_days_for_visit`` days gets one ``DoorVisitRequested`` and their
  grid worker a ``checkin.missed`` alert, once per run of missed days.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime
from typing import Any, TypeVar

from gridcare.contracts.edge import CheckinRequest
from gridcare.contracts.notify import NotificationRequested, ToPerson, ToRole
from gridcare.contracts.refdata import Household, Resident
from gridcare.contracts.screening import DoorVisitRequested
from gridcare.shared.aio import FOREGROUND
from gridcare.shared.envelope import stable_id
from gridcare.shared.errors import ApiError
from gridcare.shared.localtime import iso, local, local_day

from ..domain import checkins as ci
from ..unit_of_work import ScreeningUnitOfWork
from . import followup

T = TypeVar("T")
R = TypeVar("R")

#: reminders built and written in one transaction of the pass (see ``_remind_batch``)
WRITE_SLICE = 250
#: items of the pass built between two turns of the loop
PACE = 50


class CheckinRefused(ApiError):
    """A check-in that cannot be taken (``invalid_checkin``, ``unknown_person``)."""


async def check_in(req: CheckinRequest, uow: ScreeningUnitOfWork, now: datetime) -> dict:
    """A resident's daily check-in (§4.1): the reply ``{checkin_id, status, follow_up,
    message}``, committed before it is returned."""
    async with uow:
        loaded = await uow.checkins.for_checkin(req.person_id, req.checkin_id, req.day)
        writes: list[tuple[ci.Checkin, ci.Reply, bool]] = []
        reply = await _take(uow, req, loaded, now, writes)
        if writes:  # else a repeat: the same reply, nothing changed
            await uow.checkins.put_many(writes)
            await uow.commit()
    return reply


async def check_in_many(
    reqs: list[CheckinRequest], uow: ScreeningUnitOfWork, now: datetime
) -> list[dict]:
    """Check-ins that arrived together, in one transaction (the edge's group commit: one
    commit and one fsync for all, instead of one each), set-based: what they need read by
    four queries for the lot (``Checkins.for_checkins``), the check-ins and their replies
    written by one ``executemany`` a statement (``put_many``). Each is taken as
    ``check_in`` takes it, in order: a person or ``checkin_id`` met again in the batch is
    read afresh after the earlier ones are written (the same day replaced, a repeat, a
    status changed by a fever). A refusal (``ApiError``, raised from what was read, before
    anything is written) is that check-in's reply; anything else raises and nothing of the
    batch is kept (the caller takes them one by one)."""
    replies: list[dict] = []
    async with uow:
        loaded = await uow.checkins.for_checkins([(r.person_id, r.checkin_id, r.day) for r in reqs])
        people: set[str] = set()
        ids: set[str] = set()
        writes: list[tuple[ci.Checkin, ci.Reply, bool]] = []
        for req in reqs:
            if req.person_id in people or req.checkin_id in ids:  # met again: read afresh
                await uow.checkins.put_many(writes)
                writes = []
                got = await uow.checkins.for_checkin(req.person_id, req.checkin_id, req.day)
            else:
                got = loaded[(req.person_id, req.checkin_id, req.day)]
            people.add(req.person_id)
            ids.add(req.checkin_id)
            try:
                replies.append(await _take(uow, req, got, now, writes))
            except ApiError as exc:
                replies.append(exc.reply())
        await uow.checkins.put_many(writes)
        await uow.commit()
    return replies


async def _take(
    uow: ScreeningUnitOfWork,
    req: CheckinRequest,
    loaded: tuple[ci.Resident | None, ci.Reply | None, ci.Checkin | None, Any],
    now: datetime,
    writes: list[tuple[ci.Checkin, ci.Reply, bool]],
) -> dict:
    """One check-in inside an open unit of work, from what ``for_checkin`` read: its reply;
    the check-in and its reply are added to ``writes`` (the caller writes them), the
    follow-up fed at once. Refusals are raised before anything is written."""
    who, prior, in_force, follow = loaded
    if prior is not None:
        if prior.person_id != req.person_id:
            raise CheckinRefused(
                "invalid_checkin",
                f"checkin_id {req.checkin_id} is another resident's check-in",
                "checkin_id",
            )
        return prior.body()  # a repeat: the same reply, nothing changed
    if who is None:
        raise CheckinRefused(
            "unknown_person", f"{req.person_id} is not a known resident", "person_id"
        )
    problem = ci.day_problem(req.day, local_day(now, who.zone))
    if problem:
        raise CheckinRefused("invalid_checkin", problem, "day")
    checkin = ci.Checkin(
        checkin_id=req.checkin_id,
        person_id=req.person_id,
        day=req.day,
        temperature_c=req.temperature_c,
        symptoms=tuple(req.symptoms),
        note=req.note,
        reported_by=req.reported_by,
        source="resident",
        submitted_at=req.submitted_at,
        recorded_at=now,
    )
    reply = await _record(uow, who, checkin, now, (in_force, follow), writes)
    return reply.body()


async def _record(
    uow: ScreeningUnitOfWork,
    who: ci.Resident,
    checkin: ci.Checkin,
    now: datetime,
    loaded: tuple[ci.Checkin | None, Any] | None = None,
    writes: list[tuple[ci.Checkin, ci.Reply, bool]] | None = None,
) -> ci.Reply:
    """Keep the check-in and feed the follow-up; ``loaded``: the check-in in force that day
    and the open follow-up, if the caller has read them already; ``writes``: where to add
    the check-in for the caller to write (in bulk) instead of writing it now."""
    if loaded is None:
        in_force = await uow.checkins.in_force(checkin.person_id, checkin.day)
        follow = followup.LOAD
    else:
        in_force, follow = loaded
    checkin = ci.accept(checkin, who.policy)
    reply = ci.reply_for(checkin, in_force)
    if writes is None:
        await uow.checkins.put(checkin, reply, replacing=in_force is not None)
    else:
        writes.append((checkin, reply, in_force is not None))
    await followup.after_checkin(uow, who, checkin, now, follow)
    return reply


# --- door-to-door visits ------------------------------------------------------------------
async def record_visit(visit: ci.Visit, uow: ScreeningUnitOfWork, now: datetime) -> dict:
    """A grid worker's visit to a household: each member's result; those at home get that
    day's check-in (feeding their follow-up). The same ``visit_id`` again changes nothing
    and gets the same answer."""
    async with uow:
        done = await uow.checkins.visit(visit.visit_id)
        if done is None:
            members = {m.person_id for m in await _household(uow, visit.household_id)}
            strangers = [m.person_id for m in visit.members if m.person_id not in members]
            if strangers:
                raise ApiError(
                    "unknown_person",
                    f"not residents of {visit.household_id}: {', '.join(strangers)}",
                    "members",
                )
            first = await uow.checkins.resident(visit.members[0].person_id)
            zone = first.zone if first else None
            visit = ci.Visit(
                visit.visit_id,
                visit.household_id,
                visit.worker_id,
                visit.visited_at,
                local_day(visit.visited_at, zone),
                visit.members,
                now,
            )
            problem = ci.day_problem(visit.day, local_day(now, zone))
            if problem:
                raise ApiError("invalid_visit", problem, "visited_at")
            results = []
            by_person = {m.person_id: m for m in visit.members}
            for checkin in ci.checkins_of_visit(visit, now):
                who = await uow.checkins.resident(checkin.person_id)
                assert who is not None  # a member of the household, checked above
                reply = await _record(uow, who, checkin, now)
                results.append((checkin.person_id, reply))
            rows = [
                {
                    "person_id": m.person_id,
                    "not_at_home": m.not_at_home,
                    "temperature_c": m.temperature_c,
                    "symptoms": list(m.symptoms),
                    "checkin_id": None
                    if m.not_at_home
                    else ci.visit_checkin_id(visit.visit_id, m.person_id),
                    "follow_up": next((r.follow_up for p, r in results if p == m.person_id), False),
                }
                for m in by_person.values()
            ]
            await uow.checkins.add_visit(visit, rows)
            await uow.commit()
            done = {
                "visit_id": visit.visit_id,
                "household_id": visit.household_id,
                "worker_id": visit.worker_id,
                "visited_at": visit.visited_at,
                "day": visit.day,
                "members": rows,
            }
        who = await uow.checkins.resident(done["members"][0]["person_id"])
        zone = who.zone if who else None
    return {
        "visit_id": done["visit_id"],
        "household_id": done["household_id"],
        "worker_id": done["worker_id"],
        "visited_at": iso(done["visited_at"], zone),
        "day": done["day"].isoformat(),
        "members": done["members"],
    }


async def _household(uow: ScreeningUnitOfWork, household_id: str) -> list[ci.ReminderTarget]:
    if await uow.places.refdata.get(Household.TYPE, household_id) is None:
        raise ApiError(
            "unknown_household", f"{household_id} is not a known household", "household_id"
        )
    rows = await uow.places.refdata.find(Resident.TYPE, household_id=household_id)
    return [ci.ReminderTarget(r["resident_id"], r.get("name") or "", household_id) for r in rows]


# --- reminders and missed days ------------------------------------------------------------
def reminder_id(person_id: str, day: date) -> str:
    """One per person and local day (notify's idempotency key, the outbox's event id): a
    hash, cheap enough for 100,000 a pass."""
    key = f"gridcare:checkin-reminder|{person_id}|{day.isoformat()}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def visit_request_id(person_id: str, last_checkin_day: date | None) -> str:
    """One per person and run of missed days: the run is named by the last check-in before
    it (or none), so a restart or the next day's pass finds it asked for already."""
    last = last_checkin_day.isoformat() if last_checkin_day else "-"
    return stable_id("door-visit", person_id, last)


async def remind(uow_factory: Any, now: datetime, batch: int = 2000) -> dict[str, int]:
    """The periodic pass: reminders, then door visits for missed days, in each community
    whose local time is past its ``checkin_reminder_at``. ``uow_factory()`` gives a fresh
    unit of work per batch (each batch is its own transaction, so check-ins are not held
    up by a pass over 100,000 residents). Returns the counts."""
    async with (uow := uow_factory()):
        communities = await uow.checkins.communities()
    reminded = visits = 0
    for community_id, zone, policy in communities:
        clock = local(now, zone)
        if clock.time() < policy.reminder_time:
            continue
        today = clock.date()
        after = ""  # each batch starts where the last one ended (keyset, by resident id)
        while True:
            n, after = await _remind_batch(uow_factory(), community_id, today, now, batch, after)
            reminded += n
            if n < batch:
                break
        after = ""
        while True:
            n, after = await _visit_batch(
                uow_factory(), community_id, today, policy, now, batch, after
            )
            visits += n
            if n < batch:
                break
    return {"reminded": reminded, "visits_requested": visits}


async def _remind_batch(
    uow: ScreeningUnitOfWork,
    community_id: str,
    today: date,
    now: datetime,
    batch: int,
    after: str,
) -> tuple[int, str]:
    """One batch: read outside the writer (``uow.reading``), then written a slice at a time
    (``_in_slices``), each slice's reminder rows and requests one short transaction.
    Check-ins coming in meanwhile wait for one slice's write, not for the batch, and the
    loop takes them between slices. Someone who checks in while their slice is built is
    reminded all the same, as if they had checked in just after it."""
    async with uow.reading():
        targets = await uow.checkins.to_remind(community_id, today, batch, after)
    if not targets:
        return 0, after
    day = today.isoformat()

    def remind(t: ci.ReminderTarget) -> str:
        rid = reminder_id(t.person_id, today)
        # built without validation: every value is known good (100,000 a pass)
        uow.emit(
            NotificationRequested.model_construct(
                request_id=rid,
                recipient=ToPerson.model_construct(kind="person", person_id=t.person_id),
                template="checkin.reminder",
                params={"name": t.name, "day": day, "by_time": "23:59"},
                priority="bulk",
                needs_ack=False,
                alert_kind=None,
                places={},
                digest=False,
                expires_at=None,
                requested_by="screening",
            ),
            event_id=rid,
        )
        return t.person_id

    async def write(people: list[str]) -> None:
        await uow.checkins.reminded(people, today, now)

    await _in_slices(uow, targets, remind, write)
    return len(targets), targets[-1].person_id


async def _visit_batch(
    uow: ScreeningUnitOfWork,
    community_id: str,
    today: date,
    policy: Any,
    now: datetime,
    batch: int,
    after: str,
) -> tuple[int, str]:
    """Like ``_remind_batch``: the runs of missed days read outside the writer, then
    written a slice at a time."""
    k = policy.missed_days_for_visit
    async with uow.reading():
        runs = await uow.checkins.missed_runs(community_id, today, k, batch, after)
    if not runs:
        return 0, after

    def ask(run: ci.MissedRun) -> dict[str, Any]:
        rid = visit_request_id(run.person_id, run.last_checkin_day)
        uow.emit(
            DoorVisitRequested(
                request_id=rid,
                person_id=run.person_id,
                household_id=run.household_id,
                grid_id=run.grid_id,
                missed_days=k,
                day=today,
                last_checkin_day=run.last_checkin_day,
                requested_at=now,
            ),
            event_id=rid,
        )
        if run.grid_id:
            uow.emit(
                NotificationRequested(
                    request_id=f"{rid}-worker",
                    recipient=ToRole(role="grid_worker", place_id=run.grid_id),
                    template="checkin.missed",
                    params={
                        "person_id": run.person_id,
                        "name": run.name,
                        "household_id": run.household_id,
                        "days": k,
                    },
                    priority="normal",
                    needs_ack=True,
                    alert_kind="missed_checkin",
                    places={"grid_id": run.grid_id, "community_id": community_id},
                    requested_by="screening",
                ),
                event_id=f"{rid}-worker",
            )
        return {
            "request_id": rid,
            "person_id": run.person_id,
            "day": today,
            "missed_days": k,
            "last_checkin_day": run.last_checkin_day,
            "requested_at": now,
        }

    async def write(rows: list[dict[str, Any]]) -> None:
        await uow.checkins.visits_requested(rows)  # the slice's repository, not the read's

    await _in_slices(uow, runs, ask, write)
    return len(runs), runs[-1].person_id


async def _in_slices(
    uow: ScreeningUnitOfWork,
    items: list[T],
    build: Callable[[T], R],
    write: Callable[[list[R]], Awaitable[None]],
) -> None:
    """``WRITE_SLICE`` of ``items`` at a time: each built (``build`` emits its events and
    returns what ``write`` stores; ``write`` takes the repositories from ``uow`` when it
    runs, each block makes new ones), then written and committed in one blocking transaction
    (on SQLite on the loop's thread: no thread hop a statement); the loop takes what
    waits between slices."""
    uow.blocking = True
    for start in range(0, len(items), WRITE_SLICE):
        built = [build(item) async for item in _paced(items[start : start + WRITE_SLICE])]
        async with uow:
            await write(built)
            await uow.commit()
        await FOREGROUND.make_way()  # check-ins waiting go first


async def _paced(items: list[T]) -> AsyncIterator[T]:
    """``items``, making way for check-ins (``FOREGROUND``) every ``PACE`` of them: the
    pass takes what the loop has spare, and a check-in's reply never waits behind more
    than ``PACE`` reminders being built."""
    for i, item in enumerate(items, 1):
        yield item
        if i % PACE == 0:
            await FOREGROUND.make_way()


# --- queries ------------------------------------------------------------------------------
async def checkins_of(person_id: str, uow: ScreeningUnitOfWork, limit: int = 60) -> dict:
    async with uow:
        who = await uow.checkins.resident(person_id)
        if who is None:
            raise ApiError("unknown_person", f"{person_id} is not a known resident", "person_id")
        found = await uow.checkins.of_person(person_id, limit)
    return {
        "person_id": person_id,
        "checkins": [
            {
                "day": c.day.isoformat(),
                "checkin_id": c.checkin_id,
                "temperature_c": c.temperature_c,
                "symptoms": list(c.symptoms),
                "note": c.note,
                "reported_by": c.reported_by,
                "source": c.source,
                "submitted_at": iso(c.submitted_at, who.zone),
                "follow_up": c.follow_up,
            }
            for c in found
        ],
    }
