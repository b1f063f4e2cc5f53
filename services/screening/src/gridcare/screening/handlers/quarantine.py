"""Quarantine: a household's home quarantine, and central quarantine sites.

Two kinds of function, like ``status.py``:

- steps other handlers call inside their own open unit of work (they do not commit):
  ``quarantine_household``, ``end_household_quarantine``, ``take_in``;
- the office's commands, each its own transaction, the actor checked against the staff
  list (``status.staff_role``): ``start_household``, ``end_household``, ``add_site``,
  ``add_rooms``, ``intake``, ``transfer``, ``discharge``; and the queries ``households``,
  ``occupancy``.

Every status change goes through ``status.change_status`` (the machine decides; each is a
``PersonStatusChanged`` carrying the person's household, which is what the checkpoint's
door alert needs: a household is quarantined while any member is held).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gridcare.contracts.refdata import CommunityPolicy
from gridcare.shared.errors import ApiError
from gridcare.shared.localtime import iso

from ..domain import quarantine as q
from ..domain import status as machine
from ..domain.policy import ScreeningPolicy
from ..domain.quarantine import (
    HouseholdQuarantine,
    Intake,
    Occupant,
    QuarantineRefused,
    RoomTaken,
    Site,
)
from ..domain.status import HealthStatus, Role, StatusDecision
from ..unit_of_work import ScreeningUnitOfWork
from .status import change_status, staff_role

#: Tries of a step whose rooms were taken by a transaction committed meanwhile.
ROOM_TRIES = 5


# --- a household at home: steps inside an open unit of work ---------------------------------
async def _members(uow: ScreeningUnitOfWork, household_id: str) -> list[str]:
    members = await uow.places.members_of(household_id)
    if not members:
        raise QuarantineRefused(
            "unknown_household", f"{household_id} is not a known household", "household_id"
        )
    return members


async def _follow_up_days(uow: ScreeningUnitOfWork, household_id: str) -> int:
    """The household's community's ``follow_up_days`` (ScreeningPolicy; 14 by default)."""
    home = await uow.places.home_of(household_id)
    refdata = uow.places.refdata
    if not home or not home["community_id"] or CommunityPolicy.TYPE not in refdata.tables:
        return q.DEFAULT_DAYS
    policy = ScreeningPolicy.of(await refdata.get(CommunityPolicy.TYPE, home["community_id"]))
    return policy.follow_up_days


async def _check_steps(
    uow: ScreeningUnitOfWork,
    people: list[str],
    to: HealthStatus,
    *,
    role: Role,
    reason: str,
    now: datetime,
    keep: frozenset[HealthStatus] = frozenset(),
) -> None:
    """Refuse before anything is written if the machine would refuse one person's step (so
    a caller that catches the error is left with nothing half done): the step from each
    one's status in force (unless it is ``to`` already or one of ``keep``), a decision
    newer than ``now``. ``change_status`` then decides each step as always."""
    for person in people:
        current = await uow.statuses.get(person)
        was = current.status if current else HealthStatus.NORMAL
        if was == to or was in keep:
            continue
        if current is not None and current.at > now:
            raise ApiError(
                "out_of_order",
                f"{person}: a decision of {current.at.isoformat()} is newer than this one "
                f"({now.isoformat()}); not applied",
                "people",
            )
        machine.check(was, to, role, reason)


async def quarantine_household(
    uow: ScreeningUnitOfWork,
    household_id: str,
    *,
    by: str,
    role: Role,
    reason: str,
    now: datetime,
    until: datetime | None = None,
    source: str = "",
) -> list[StatusDecision]:
    """Every member of the household to home quarantine (through ``change_status``), except
    a member held more strictly already (confirmed, in hospital, central quarantine), who
    keeps it; the household's quarantine recorded from ``now`` to ``until`` (default: the
    community policy's ``follow_up_days``, 14, in local days). Already active: extended to
    the later end. Inside the caller's open unit of work; returns each member's decision in
    force."""
    await uow.household_quarantines.lock(household_id)  # a second start waits, then extends
    members = await _members(uow, household_id)
    if until is None:
        zone = await uow.places.zone_of_household(household_id)
        until = q.planned_end(now, zone, await _follow_up_days(uow, household_id))
    await _check_steps(
        uow, members, HealthStatus.HOME_QUARANTINE, role=role, reason=reason, now=now,
        keep=q.STRICTER,
    )  # fmt: skip
    hq = q.start_household(
        await uow.household_quarantines.active_of(household_id),
        household_id,
        by=by,
        reason=reason,
        now=now,
        until=until,
    )
    await uow.household_quarantines.save(hq)
    decisions = []
    for person in members:
        current = await uow.statuses.get(person)
        if current is not None and q.keeps_own_status(current.status):
            decisions.append(current)
            continue
        decisions.append(
            await change_status(
                uow,
                person,
                HealthStatus.HOME_QUARANTINE,
                by=by,
                role=role,
                reason=reason,
                now=now,
                until=hq.until,
                source=source or f"household_quarantine:{household_id}",
            )
        )
    return decisions


async def end_household_quarantine(
    uow: ScreeningUnitOfWork,
    household_id: str,
    *,
    by: str,
    role: Role,
    reason: str,
    now: datetime,
    source: str = "",
) -> list[StatusDecision]:
    """End the household's quarantine: every member in home quarantine is released (through
    ``change_status``, with the reason); a member held otherwise (confirmed, in hospital, at
    a central site) keeps it. With nobody held, the checkpoint's door alert stops. Inside
    the caller's open unit of work; returns each member's decision in force."""
    await uow.household_quarantines.lock(household_id)
    members = await _members(uow, household_id)
    hq = q.end_household(
        await uow.household_quarantines.active_of(household_id),
        household_id,
        by=by,
        reason=reason,
        now=now,
    )
    at_home = frozenset(HealthStatus) - {HealthStatus.HOME_QUARANTINE}
    await _check_steps(
        uow, members, HealthStatus.RELEASED, role=role, reason=reason, now=now, keep=at_home
    )
    await uow.household_quarantines.save(hq)
    decisions = []
    for person in members:
        current = await uow.statuses.get(person)
        if current is None or current.status != HealthStatus.HOME_QUARANTINE:
            decisions.append(current or StatusDecision(person, HealthStatus.NORMAL, "", "", now))
            continue
        decisions.append(
            await change_status(
                uow,
                person,
                HealthStatus.RELEASED,
                by=by,
                role=role,
                reason=reason,
                now=now,
                source=source or f"household_quarantine_end:{household_id}",
            )
        )
    return decisions


# --- a household at home: the office's commands ----------------------------------------------
def _member_rows(decisions: list[StatusDecision], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "person_id": d.person_id,
            "status": d.status.value,
            "holds_at_gate": d.holds_at_gate,
            "changed": d.at == now and d.previous != d.status,
        }
        for d in decisions
    ]


def _household_row(hq: HouseholdQuarantine, zone: str | None) -> dict[str, Any]:
    return {
        "household_id": hq.household_id,
        "status": hq.status,
        "started_at": iso(hq.started_at, zone),
        "until": iso(hq.until, zone),
        "started_by": hq.started_by,
        "reason": hq.reason,
        "ended_at": iso(hq.ended_at, zone),
        "ended_by": hq.ended_by,
        "end_reason": hq.end_reason,
    }


async def start_household(
    uow: ScreeningUnitOfWork,
    household_id: str,
    *,
    by: str,
    role: Role | None,
    reason: str,
    now: datetime,
    until: datetime | None = None,
) -> dict[str, Any]:
    """The office's ``quarantine.household.start``: its own transaction, by a member of
    staff of the household's community in ``role``."""
    async with uow:
        members = await _members(uow, household_id)
        acting = await staff_role(uow, members[0], by, role)
        decisions = await quarantine_household(
            uow, household_id, by=by, role=acting, reason=reason, now=now, until=until,
            source="office",
        )  # fmt: skip
        hq = await uow.household_quarantines.active_of(household_id)
        zone = await uow.places.zone_of_household(household_id)
        await uow.commit()
    assert hq is not None
    return {**_household_row(hq, zone), "members": _member_rows(decisions, now)}


async def end_household(
    uow: ScreeningUnitOfWork,
    household_id: str,
    *,
    by: str,
    role: Role | None,
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    """The office's ``quarantine.household.end``."""
    async with uow:
        await uow.household_quarantines.lock(household_id)
        members = await _members(uow, household_id)
        acting = await staff_role(uow, members[0], by, role)
        current = await uow.household_quarantines.active_of(household_id)
        decisions = await end_household_quarantine(
            uow, household_id, by=by, role=acting, reason=reason, now=now, source="office"
        )
        zone = await uow.places.zone_of_household(household_id)
        await uow.commit()
    assert current is not None
    ended = q.end_household(current, household_id, by=by, reason=reason, now=now)
    return {**_household_row(ended, zone), "members": _member_rows(decisions, now)}


async def households(uow: ScreeningUnitOfWork, now: datetime) -> list[dict[str, Any]]:
    """The households in home quarantine and until when (local times), the soonest to end
    first; each member's status in force."""
    async with uow:
        rows = []
        for hq in await uow.household_quarantines.active():
            zone = await uow.places.zone_of_household(hq.household_id)
            members = []
            for person in await uow.places.members_of(hq.household_id):
                d = await uow.statuses.get(person)
                status = d.status if d else HealthStatus.NORMAL
                members.append({"person_id": person, "status": status.value})
            days_left = max(0.0, (hq.until - now).total_seconds() / 86400)
            rows.append(
                {**_household_row(hq, zone), "days_left": round(days_left, 1), "members": members}
            )
    return rows


# --- central sites -----------------------------------------------------------------------------
async def _site(uow: ScreeningUnitOfWork, site_id: str) -> Site:
    site = await uow.sites.get(site_id)
    if site is None:
        raise QuarantineRefused("unknown_site", f"{site_id} is not a known site", "site_id")
    return site


def _room_names(existing: list[str], count: int) -> list[str]:
    """``count`` rooms numbered on from the highest numbered room the site has."""
    numbered = [int(r) for r in existing if r.isdigit()]
    start = max(numbered, default=0) + 1
    return [str(n) for n in range(start, start + count)]


async def add_site(
    uow: ScreeningUnitOfWork,
    site_id: str,
    *,
    name: str,
    address: str,
    community_id: str,
    by: str,
    now: datetime,
    rooms: list[str] | None = None,
    room_count: int | None = None,
) -> dict[str, Any]:
    """A new central quarantine site of a known community, with its rooms (named, or a
    count numbered 1..n); more rooms later with ``add_rooms``."""
    async with uow:
        if await uow.places.zone_of_community(community_id) is None:
            raise QuarantineRefused(
                "unknown_community", f"{community_id} is not a known community", "community_id"
            )
        if await uow.sites.get(site_id) is not None:
            raise QuarantineRefused("site_exists", f"site {site_id} exists already", "site_id")
        await uow.sites.add(Site(site_id, name, address, community_id, now, by))
        names = rooms or (_room_names([], room_count) if room_count else [])
        if names:
            await uow.sites.add_rooms(site_id, q.new_rooms([], names))
        await uow.commit()
    return {"site_id": site_id, "rooms": len(names)}


async def add_rooms(
    uow: ScreeningUnitOfWork,
    site_id: str,
    *,
    rooms: list[str] | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    """More rooms for a site: named, or ``count`` numbered on from its highest number."""
    async with uow:
        await _site(uow, site_id)
        existing = await uow.sites.rooms(site_id)
        names = q.new_rooms(existing, rooms or _room_names(existing, count or 0))
        await uow.sites.add_rooms(site_id, names)
        await uow.commit()
    return {"site_id": site_id, "added": names, "rooms": len(existing) + len(names)}


async def _known_people(uow: ScreeningUnitOfWork, people: list[str]) -> None:
    unknown = [p for p in people if await uow.places.household_of(p) is None]
    if unknown:
        raise QuarantineRefused(
            "unknown_person", f"not known residents: {', '.join(unknown)}", "people"
        )


async def take_in(
    uow: ScreeningUnitOfWork,
    site_id: str,
    people: list[str],
    *,
    intake_id: str,
    by: str,
    role: Role,
    reason: str,
    now: datetime,
) -> list[Occupant]:
    """Take a batch into a site, all or nothing, inside the caller's open unit of work: each
    person a free room (natural order) and central quarantine (through ``change_status``);
    fewer free rooms than people refuses the batch naming how many fit. A repeat of
    ``intake_id`` (same site and people) changes nothing and returns the rooms it gave; the
    id reused for another batch is refused. :class:`RoomTaken` if a room was taken by a
    transaction committed meanwhile (the caller tries again)."""
    q.check_batch(people)
    kept = await uow.sites.intake(intake_id)
    if kept is not None:
        if not q.same_intake(kept, site_id, people):
            raise QuarantineRefused(
                "intake_id_reused",
                f"intake {intake_id} took {len(kept.people)} people into {kept.site_id}; "
                "this request differs (a new batch needs a new intake_id)",
                "intake_id",
            )
        return await uow.sites.stays_of(intake_id)
    await _site(uow, site_id)
    await _known_people(uow, people)
    there = [o for p in people if (o := await uow.sites.occupant(p)) is not None]
    if there:
        names = ", ".join(f"{o.person_id} ({o.site_id} room {o.room_id})" for o in there)
        raise QuarantineRefused("already_at_a_site", f"already at a site: {names}", "people")
    rooms = await uow.sites.rooms(site_id)
    occupied = {o.room_id for o in await uow.sites.occupants(site_id)}
    assignment = q.assign_rooms(site_id, rooms, occupied, people)
    await _check_steps(
        uow, people, HealthStatus.CENTRAL_QUARANTINE, role=role, reason=reason, now=now
    )
    await uow.sites.add_intake(Intake(intake_id, site_id, tuple(people), by, reason, now))
    occupants = [Occupant(p, site_id, room, now, intake_id) for p, room in assignment.items()]
    await uow.sites.occupy(occupants)
    for person in people:
        await change_status(
            uow,
            person,
            HealthStatus.CENTRAL_QUARANTINE,
            by=by,
            role=role,
            reason=reason,
            now=now,
            source=f"intake:{intake_id}",
        )
    return occupants


async def _staff_for(
    uow: ScreeningUnitOfWork, people: list[str], by: str, role: Role | None
) -> Role:
    """The role ``by`` acts in, checked against each person's community (once a
    community)."""
    acting, seen = role, set()
    for person in people:
        community = await uow.places.community_of_person(person)
        if community in seen:
            continue
        seen.add(community)
        acting = await staff_role(uow, person, by, acting)
    assert acting is not None
    return acting


async def _retrying(step) -> Any:
    """Run ``step`` (a whole transaction) again while a room it chose was taken by another
    committed meanwhile; it then sees the rooms as they are (and may find the site full)."""
    for _ in range(ROOM_TRIES - 1):
        try:
            return await step()
        except RoomTaken:
            continue
    try:
        return await step()
    except RoomTaken:
        raise ApiError("busy", "the site's rooms kept changing under this request; retry") from None


async def intake(
    uow: ScreeningUnitOfWork,
    site_id: str,
    people: list[str],
    *,
    intake_id: str,
    by: str,
    role: Role | None,
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    """The office's ``sites.intake``: ``take_in`` in a transaction of its own, by a member of
    staff of the people's community."""

    async def step() -> dict[str, Any]:
        async with uow:
            q.check_batch(people)
            await _known_people(uow, people)
            acting = await _staff_for(uow, people, by, role)
            placed = await take_in(
                uow, site_id, people, intake_id=intake_id, by=by, role=acting, reason=reason,
                now=now,
            )  # fmt: skip
            free = await _free(uow, site_id)
            await uow.commit()
        return {
            "intake_id": intake_id,
            "site_id": site_id,
            "assigned": [{"person_id": o.person_id, "room_id": o.room_id} for o in placed],
            "free": free,
        }

    return await _retrying(step)


async def _free(uow: ScreeningUnitOfWork, site_id: str) -> int:
    return len(await uow.sites.rooms(site_id)) - len(await uow.sites.occupants(site_id))


async def _occupants_at(
    uow: ScreeningUnitOfWork, site_id: str, people: list[str]
) -> list[Occupant]:
    q.check_batch(people)
    found = {p: await uow.sites.occupant(p) for p in people}
    elsewhere = [p for p, o in found.items() if o is None or o.site_id != site_id]
    if elsewhere:
        raise QuarantineRefused(
            "not_at_site", f"not at site {site_id}: {', '.join(elsewhere)}", "people"
        )
    return [o for o in found.values() if o is not None]


async def transfer(
    uow: ScreeningUnitOfWork,
    from_site: str,
    to_site: str,
    people: list[str],
    *,
    by: str,
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    """Move people from one site to another, all or nothing: each frees their room and takes
    a free one at the target (refused if the target has fewer free rooms, naming how many
    fit). Their status stays central quarantine."""
    if from_site == to_site:
        raise QuarantineRefused("same_site", "a transfer goes to another site", "to_site")
    if not reason.strip():
        raise QuarantineRefused("reason_required", "a transfer needs a reason", "reason")

    async def step() -> dict[str, Any]:
        async with uow:
            await _site(uow, from_site)
            await _site(uow, to_site)
            leaving = await _occupants_at(uow, from_site, people)
            rooms = await uow.sites.rooms(to_site)
            occupied = {o.room_id for o in await uow.sites.occupants(to_site)}
            assignment = q.assign_rooms(to_site, rooms, occupied, people)
            await uow.sites.vacate(people, now, f"transfer to {to_site} by {by}: {reason}")
            moved = [
                Occupant(p, to_site, room, now, o.intake_id)
                for (p, room), o in zip(assignment.items(), leaving, strict=True)
            ]
            await uow.sites.occupy(moved)
            free = {s: await _free(uow, s) for s in (from_site, to_site)}
            await uow.commit()
        return {
            "from_site": from_site,
            "to_site": to_site,
            "moved": [{"person_id": o.person_id, "room_id": o.room_id} for o in moved],
            "free": free,
        }

    return await _retrying(step)


async def discharge(
    uow: ScreeningUnitOfWork,
    site_id: str,
    people: list[str],
    *,
    to: HealthStatus,
    by: str,
    role: Role | None,
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    """People leave a site, all or nothing: their rooms are freed and each goes to ``to``
    (released, home quarantine, normal or in hospital, as the machine allows) with the
    reason."""
    to = HealthStatus(to)
    if to not in q.DISCHARGE_TO:
        allowed = ", ".join(sorted(s.value for s in q.DISCHARGE_TO))
        raise QuarantineRefused("bad_discharge", f"discharge to one of {allowed}, not {to}", "to")
    if not reason.strip():
        raise QuarantineRefused("reason_required", "a discharge needs a reason", "reason")
    async with uow:
        await _site(uow, site_id)
        await _occupants_at(uow, site_id, people)
        acting = await _staff_for(uow, people, by, role)
        await uow.sites.vacate(people, now, f"discharged to {to} by {by}: {reason}")
        decisions = [
            await change_status(
                uow, p, to, by=by, role=acting, reason=reason, now=now,
                source=f"discharge:{site_id}",
            )
            for p in people
        ]  # fmt: skip
        free = await _free(uow, site_id)
        await uow.commit()
    return {
        "site_id": site_id,
        "discharged": [{"person_id": d.person_id, "status": d.status.value} for d in decisions],
        "free": free,
    }


async def occupancy(uow: ScreeningUnitOfWork, site_id: str | None = None) -> list[dict[str, Any]]:
    """Per site: its rooms, how many are occupied and free, and who is in which room (since
    when, on the site's local clock)."""
    async with uow:
        sites = [await _site(uow, site_id)] if site_id else await uow.sites.all()
        rows = []
        for site in sites:
            zone = await uow.places.zone_of_community(site.community_id)
            rooms = await uow.sites.rooms(site.site_id)
            occupants = sorted(
                await uow.sites.occupants(site.site_id), key=lambda o: q.room_order(o.room_id)
            )
            rows.append(
                {
                    "site_id": site.site_id,
                    "name": site.name,
                    "address": site.address,
                    "community_id": site.community_id,
                    "rooms": len(rooms),
                    "occupied": len(occupants),
                    "free": len(rooms) - len(occupants),
                    "occupants": [
                        {
                            "room_id": o.room_id,
                            "person_id": o.person_id,
                            "since": iso(o.since, zone),
                            "intake_id": o.intake_id,
                        }
                        for o in occupants
                    ],
                }
            )
    return rows
