"""Nucleic-acid test campaigns (全员核酸): start one for a compound or a building, take its
results (through the API, or a lab's CSV file: every bad row named, nothing half
imported), follow who has not been tested, remind them and then ask their grid workers
to call at the door. A positive result confirms the person (``change_status``, as the lab)
and puts their household into home quarantine (``quarantine_household``), in the same
transaction as the result. The rules are ``domain/campaigns.py``; docs/screening.md.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from gridcare.contracts.notify import NotificationRequested, ToPerson, ToRole
from gridcare.contracts.refdata import Building, Community, Compound
from gridcare.shared.envelope import stable_id
from gridcare.shared.errors import ApiError, error
from gridcare.shared.localtime import iso, local

from ..domain import campaigns as camp
from ..domain.status import HealthStatus, Role, holds_at_gate
from ..unit_of_work import ScreeningUnitOfWork
from .followup import record_test_result
from .quarantine import quarantine_household
from .status import change_status

log = logging.getLogger(__name__)

#: The most faults one reply names (each line of a 20,000-line file wrong would not fit in
#: one NATS message); the last entry then says how many more there are.
MAX_FAULTS = 2000
#: Tries of a step whose rows another request wrote meanwhile (checked again, a sample is
#: "already", a reminder round not due: two imports of one file at once both succeed).
RECORD_TRIES = 3
#: An upload's parts not imported within this long are dropped (``housekeeping``).
UPLOAD_KEPT = timedelta(days=1)
DOOR_CALL_TEMPLATE = "task.test_campaign_door_call"
REMINDER_TEMPLATE = "notice.test_campaign"


class ResultsRefused(ApiError):
    """Some results cannot be taken: every fault named (``file:line: what`` for a CSV
    file, ``results.<i>: what`` through the API); nothing was written."""

    def __init__(self, faults: list[tuple[str, str, str]]) -> None:
        self.faults = faults
        super().__init__("results_refused", f"{len(faults)} faults; nothing was recorded")

    def reply(self) -> dict[str, Any]:
        detail = [
            {"field": f"{where}.{field}" if field and not _is_file(where) else where,
             "error": f"{where}: {what}"}
            for where, field, what in self.faults[:MAX_FAULTS]
        ]  # fmt: skip
        if len(self.faults) > MAX_FAULTS:
            more = len(self.faults) - MAX_FAULTS
            detail.append({"field": "", "error": f"... and {more} more faults"})
        return error(self.code, detail)


def _is_file(where: str) -> bool:
    return ":" in where


async def _campaign(uow: ScreeningUnitOfWork, campaign_id: str) -> camp.Campaign:
    c = await uow.campaigns.get(campaign_id)
    if c is None:
        raise ApiError("unknown_campaign", f"no campaign {campaign_id}", "campaign_id")
    return c


async def _zone(uow: ScreeningUnitOfWork, community_id: str) -> str | None:
    row = await uow.places.refdata.get(Community.TYPE, community_id)
    return row["time_zone"] if row else None


async def _community_of(uow: ScreeningUnitOfWork, place_kind: str, place_id: str) -> str:
    refdata = uow.places.refdata
    compound_id = place_id
    if place_kind == "building":
        b = await refdata.get(Building.TYPE, place_id)
        if b is None:
            raise ApiError("unknown_place", f"no building {place_id}", "place_id")
        compound_id = b["compound_id"]
    elif place_kind != "compound":
        raise ApiError("invalid_place", "a campaign is per compound or building", "place_kind")
    c = await refdata.get(Compound.TYPE, compound_id)
    if c is None:
        raise ApiError("unknown_place", f"no compound {compound_id}", "place_id")
    return c["community_id"]


def _view(c: camp.Campaign, zone: str | None) -> dict[str, Any]:
    return {
        "campaign_id": c.campaign_id,
        "community_id": c.community_id,
        "place_kind": c.place_kind,
        "place_id": c.place_id,
        "place_name": c.place_name,
        "site": c.site,
        "starts_at": iso(c.starts_at, zone),
        "ends_at": iso(c.ends_at, zone),
        "door_call_after_min": c.door_call_after_min,
        "created_by": c.created_by,
        "created_at": iso(c.created_at, zone),
    }


# --- commands -------------------------------------------------------------------------------
async def start_campaign(
    uow: ScreeningUnitOfWork,
    *,
    place_kind: str,
    place_id: str,
    starts_at: datetime,
    ends_at: datetime,
    site: str,
    by: str,
    now: datetime,
    campaign_id: str | None = None,
    place_name: str = "",
    door_call_after_min: int = 120,
) -> dict[str, Any]:
    """A campaign of a compound or building: every resident of it now is due, except
    those in hospital or central quarantine (tested there). Without an id it is
    ``<place>-<local start YYYYMMDD-HHMM>``; the same campaign started again (a retry)
    is answered as it is, another one under its id is refused."""
    async with uow:
        community_id = await _community_of(uow, place_kind, place_id)
        zone = await _zone(uow, community_id)
        campaign_id = campaign_id or f"{place_id}-{local(starts_at, zone):%Y%m%d-%H%M}"
        try:
            c = camp.new_campaign(
                campaign_id=campaign_id,
                community_id=community_id,
                place_kind=place_kind,
                place_id=place_id,
                place_name=place_name,
                site=site,
                starts_at=starts_at,
                ends_at=ends_at,
                door_call_after_min=door_call_after_min,
                created_by=by,
                now=now,
            )
        except camp.CampaignError as exc:
            raise ApiError(exc.code, exc.detail, exc.field) from None
        existing = await uow.campaigns.get(campaign_id)
        if existing is not None:
            same = (existing.place_kind, existing.place_id, existing.starts_at) == (
                c.place_kind,
                c.place_id,
                c.starts_at,
            )
            if not same:
                raise ApiError(
                    "campaign_exists",
                    f"campaign {campaign_id} exists for {existing.place_kind} "
                    f"{existing.place_id} from {iso(existing.starts_at, zone)}",
                    "campaign_id",
                )
            c, new = existing, False
        else:
            members = camp.members_at_start(
                c, await uow.campaigns.residents_of(place_kind, place_id)
            )
            await uow.campaigns.add(c)
            await uow.campaigns.add_members(members)
            await uow.commit()
            new = True
        members_now = await uow.campaigns.members(c.campaign_id)
        results = await uow.campaigns.results_by_person(c.campaign_id)
    return {
        **_view(c, zone),
        "new": new,
        "counts": camp.counts(members_now.values(), results),
    }


async def record_results(
    uow: ScreeningUnitOfWork,
    campaign_id: str,
    rows: list[camp.ResultRow],
    *,
    now: datetime,
) -> dict[str, Any]:
    """Results given through the API: checked together, recorded together or not at all."""

    async def attempt() -> dict[str, Any]:
        async with uow:
            c = await _campaign(uow, campaign_id)
            zone = await _zone(uow, c.community_id)
            summary = await _record(uow, c, rows, [], now=now, zone=zone)
            await uow.commit()
        return summary

    return await _tries(attempt)


async def _tries(attempt: Any) -> dict[str, Any]:
    """``attempt`` again while another request records the same samples meanwhile."""
    for n in range(1, RECORD_TRIES + 1):
        try:
            return await attempt()
        except camp.RecordedMeanwhile:
            if n == RECORD_TRIES:
                raise ApiError(
                    "busy", "other requests keep writing the same rows meanwhile; send it again"
                ) from None
            log.info("campaign results recorded meanwhile by another request; checking again")
    raise AssertionError("unreachable")


async def upload_part(
    uow: ScreeningUnitOfWork, upload_id: str, part: int, text: str, *, now: datetime
) -> dict[str, Any]:
    """One part of a large CSV file (the office tool splits it at line ends); kept until
    ``import_csv`` takes the whole (or for a day). Sending a part again replaces it."""
    async with uow:
        await uow.campaigns.add_part(upload_id, part, text, now)
        await uow.commit()
    return {"upload_id": upload_id, "part": part, "chars": len(text)}


async def import_csv(
    uow: ScreeningUnitOfWork,
    campaign_id: str,
    file_name: str,
    *,
    now: datetime,
    text: str | None = None,
    upload_id: str | None = None,
    parts: int | None = None,
) -> dict[str, Any]:
    """A lab's CSV file (``text``, or the parts uploaded under ``upload_id``, joined in
    order): every fault of every line named as ``file:line: what``; any fault and nothing
    is written. One transaction: the results, the people who joined late, the status
    changes and quarantines of positives, their events."""

    async def attempt() -> dict[str, Any]:
        async with uow:
            return await _import(uow, campaign_id, file_name, now, text, upload_id, parts)

    return await _tries(attempt)


async def _import(
    uow: ScreeningUnitOfWork,
    campaign_id: str,
    file_name: str,
    now: datetime,
    text: str | None,
    upload_id: str | None,
    parts: int | None,
) -> dict[str, Any]:
    """The import inside the caller's open unit of work (it commits)."""
    c = await _campaign(uow, campaign_id)
    zone = await _zone(uow, c.community_id)
    if upload_id is not None:
        got = await uow.campaigns.parts(upload_id)
        if not got:
            raise ApiError("unknown_upload", f"nothing uploaded as {upload_id}", "upload_id")
        numbers = [p for p, _ in got]
        if parts is not None and numbers != list(range(1, parts + 1)):
            missing = sorted(set(range(1, parts + 1)) - set(numbers))
            raise ApiError(
                "incomplete_upload",
                f"upload {upload_id} has parts {numbers}; missing {missing}",
                "parts",
            )
        text = "".join(t for _, t in got)
        await uow.campaigns.drop_upload(upload_id)
    if text is None:
        raise ApiError("invalid_request", "give the CSV text or an upload_id", "csv")
    parsed = camp.parse_csv(text, file_name, zone)
    faults = [(where, "", what) for where, what in parsed.errors]
    summary = await _record(uow, c, parsed.rows, faults, now=now, zone=zone)
    await uow.commit()
    return {"file": file_name, **summary}


async def _record(
    uow: ScreeningUnitOfWork,
    c: camp.Campaign,
    rows: list[camp.ResultRow],
    faults: list[tuple[str, str, str]],
    *,
    now: datetime,
    zone: str | None,
) -> dict[str, Any]:
    """Check every row, then write them all (set-based) and act on the positives."""
    members = await uow.campaigns.members(c.campaign_id)
    outsiders = {r.person_id for r in rows} - members.keys()
    residents_now: dict[str, camp.Resident] = {}
    known: set[str] = set()
    if outsiders:
        found = await uow.campaigns.residents_of(c.place_kind, c.place_id, outsiders)
        residents_now = {r.person_id: r for r in found}
        known = await uow.campaigns.known(outsiders)
    checked = camp.check_rows(
        c,
        rows,
        members=members,
        residents_now=residents_now,
        known=known,
        recorded=await uow.campaigns.recorded({r.sample_id for r in rows}),
        now=now,
        zone_name=zone,
    )
    faults = sorted([*faults, *checked.errors], key=_fault_order)
    if faults:
        raise ResultsRefused(faults)
    await uow.campaigns.add_members([camp.late_member(c, r) for r in checked.late])
    await uow.campaigns.add_results(
        [
            camp.TestResult(
                r.sample_id, c.campaign_id, r.person_id, r.result, r.tested_at, r.lab, now
            )
            for r in checked.new
        ]
    )
    positives, not_changed = [], []
    done: set[str] = set()
    for r in checked.new:
        if r.result != camp.Result.POSITIVE or r.person_id in done:
            continue
        done.add(r.person_id)
        outcome = await _positive(uow, c, r, now)
        (not_changed if "refused" in outcome else positives).append(outcome)
    await _follow_ups(uow, checked.new, now)
    return {
        "campaign_id": c.campaign_id,
        "recorded": len(checked.new),
        "already": len(checked.already),
        "joined_late": [m.person_id for m in checked.late],
        "positives": positives,
        "not_changed": not_changed,
    }


def _fault_order(f: tuple[str, str, str]) -> tuple[int, str]:
    where = f[0]
    tail = where.rsplit(":", 1)[-1] if _is_file(where) else where.rsplit(".", 1)[-1]
    return (int(tail) if tail.isdigit() else 0, where)


async def _positive(
    uow: ScreeningUnitOfWork, c: camp.Campaign, r: camp.ResultRow, now: datetime
) -> dict[str, Any]:
    """A positive sample: the person confirmed (as the lab) and their household into home
    quarantine (screening's rule), in the caller's transaction. A step the status machine
    refuses (someone in hospital already) is reported, and the result is still recorded."""
    reason = f"positive sample {r.sample_id}"
    source = f"campaign:{c.campaign_id}"
    out: dict[str, Any] = {"person_id": r.person_id, "sample_id": r.sample_id}
    try:
        d = await change_status(
            uow,
            r.person_id,
            HealthStatus.CONFIRMED,
            by=r.lab,
            role=Role.LAB,
            reason=reason,
            now=now,
            source=source,
        )
        out["status"] = d.status.value
    except ApiError as exc:  # TransitionRefused, out_of_order, QuarantineRefused
        out["refused"] = f"{exc.code}: {exc.detail}"
        return out
    household = await uow.places.household_of(r.person_id)
    out["household_id"] = household
    if household is not None:
        try:
            await quarantine_household(
                uow,
                household,
                by="screening",
                role=Role.SCREENING,
                reason=f"{reason} of {r.person_id} in the household",
                now=now,
                source=source,
            )
            out["household_quarantined"] = True
        except ApiError as exc:  # TransitionRefused, out_of_order, QuarantineRefused
            out["household_quarantined"] = False
            out["household_refused"] = f"{exc.code}: {exc.detail}"
    return out


async def _follow_ups(uow: ScreeningUnitOfWork, rows: list[camp.ResultRow], now: datetime) -> None:
    """A followed-up person's newest usable result goes to their follow-up (the release
    rule wants a negative test): looked up for all at once, told one by one."""
    newest: dict[str, camp.ResultRow] = {}
    for r in rows:
        if r.result != camp.Result.INVALID and (
            r.person_id not in newest or r.tested_at > newest[r.person_id].tested_at
        ):
            newest[r.person_id] = r
    if not newest:
        return
    for person_id in sorted(await uow.campaigns.followed(set(newest))):
        r = newest[person_id]
        await record_test_result(
            uow, person_id, negative=r.result == camp.Result.NEGATIVE, at=r.tested_at, now=now
        )


# --- reminders ------------------------------------------------------------------------------
async def remind(uow: ScreeningUnitOfWork, campaign_id: str, *, now: datetime) -> dict[str, Any]:
    """The reminder round due now: round 1 reminds each untested resident (a notice to
    each, ``notice.test_campaign``; not those held at home by their status, who are sampled
    at the door); round 2, ``door_call_after_min`` after round 1, asks each grid worker to
    call at the doors of the households still untested (one request a grid, listing them).
    Each request's id is stable per campaign, person (or grid) and round; a round done
    meanwhile by another transaction (the periodic pass, another instance) is not done
    twice: checked again, it is not due."""

    async def attempt() -> dict[str, Any]:
        async with uow:
            c = await _campaign(uow, campaign_id)
            rounds = await uow.campaigns.rounds(campaign_id)
            n, why = camp.next_round(c, rounds, now)
            if n is None:
                return {"campaign_id": campaign_id, "round": None, "note": why, "requests": 0}
            zone = await _zone(uow, c.community_id)
            members = await uow.campaigns.members(campaign_id)
            todo = camp.untested(
                members.values(), await uow.campaigns.results_by_person(c.campaign_id)
            )
            here = await uow.campaigns.residents_of(
                c.place_kind, c.place_id, {m.person_id for m in todo}
            )
            if n == 1:
                out = _reminders(c, [r for r in here if not (r.status and _held(r.status))])
            else:
                out = _door_calls(c, here, zone)
            for event in out["events"]:
                uow.emit(event, event_id=stable_id("NotificationRequested", event.request_id))
            await uow.campaigns.add_round(campaign_id, n, now, out["people"])
            await uow.commit()
        return {
            "campaign_id": campaign_id,
            "round": n,
            "people": out["people"],
            "requests": len(out["events"]),
            **({"grids": out["grids"]} if n == 2 else {}),
        }

    return await _tries(attempt)


def _held(status: str) -> bool:
    try:
        return holds_at_gate(HealthStatus(status))
    except ValueError:
        return False


def _reminders(c: camp.Campaign, people: list[camp.Resident]) -> dict[str, Any]:
    params = {"place_name": c.place_name, "at": c.starts_at.isoformat(), "location": c.site}
    events = [
        NotificationRequested(
            request_id=stable_id("test-campaign", c.campaign_id, r.person_id, "1"),
            recipient=ToPerson(person_id=r.person_id),
            template=REMINDER_TEMPLATE,
            params=params,
            priority="normal",
            expires_at=c.ends_at,
            requested_by="screening",
        )
        for r in people
    ]
    return {"events": events, "people": len(people)}


def _door_calls(c: camp.Campaign, people: list[camp.Resident], zone: str | None) -> dict:
    """One request a grid (its worker), listing its households and their people; a
    building with no grid: the community's secretary."""
    by_grid: dict[str | None, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in people:
        by_grid[r.grid_id][r.household_id].append(r.person_id)
    events, grids = [], []
    for grid_id, households in sorted(by_grid.items(), key=lambda kv: kv[0] or ""):
        listed = [{"household_id": h, "people": sorted(ps)} for h, ps in sorted(households.items())]
        count = sum(len(h["people"]) for h in listed)
        recipient = (
            ToRole(role="grid_worker", place_id=grid_id)
            if grid_id
            else ToRole(role="secretary", place_id=c.community_id)
        )
        events.append(
            NotificationRequested(
                request_id=stable_id("test-campaign", c.campaign_id, grid_id or "-", "2"),
                recipient=recipient,
                template=DOOR_CALL_TEMPLATE,
                params={
                    "campaign_id": c.campaign_id,
                    "place_name": c.place_name,
                    "location": c.site,
                    "ends_at": c.ends_at.isoformat(),
                    "count": count,
                    "households": listed,
                },
                priority="normal",
                expires_at=c.ends_at,
                requested_by="screening",
                places={
                    "community_id": c.community_id,
                    **({"grid_id": grid_id} if grid_id else {}),
                },
            )
        )
        grids.append({"grid_id": grid_id, "households": len(listed), "people": count})
    return {"events": events, "people": len(people), "grids": grids}


async def door_calls_due(uow_factory: Any, *, now: datetime) -> list[dict[str, Any]]:
    """The periodic pass: every running campaign whose door call is due gets it (round 2;
    round 1 is the office's ``campaigns.remind``), each in its own transaction; uploads
    older than a day are dropped."""
    async with (uow := uow_factory()):
        running = await uow.campaigns.newest(1000, open_at=now)
        due = []
        for c in running:
            n, _ = camp.next_round(c, await uow.campaigns.rounds(c.campaign_id), now)
            if n == 2:
                due.append(c.campaign_id)
        dropped = await uow.campaigns.drop_uploads_before(now - UPLOAD_KEPT)
        if dropped:
            await uow.commit()
    return [await remind(uow_factory(), cid, now=now) for cid in due]


# --- queries --------------------------------------------------------------------------------
async def show(uow: ScreeningUnitOfWork, campaign_id: str) -> dict[str, Any]:
    """A campaign and its counts (``domain/campaigns.counts``), and its reminder rounds."""
    async with uow:
        c = await _campaign(uow, campaign_id)
        zone = await _zone(uow, c.community_id)
        members = await uow.campaigns.members(campaign_id)
        results = await uow.campaigns.results_by_person(campaign_id)
        rounds = await uow.campaigns.rounds(campaign_id)
    return {
        **_view(c, zone),
        "counts": camp.counts(members.values(), results),
        "rounds": {str(n): iso(at, zone) for n, at in sorted(rounds.items())},
    }


async def newest(uow: ScreeningUnitOfWork, limit: int) -> list[dict[str, Any]]:
    async with uow:
        found = await uow.campaigns.newest(limit)
        zones = {c.community_id: await _zone(uow, c.community_id) for c in found}
    return [_view(c, zones[c.community_id]) for c in found]


async def untested(
    uow: ScreeningUnitOfWork,
    campaign_id: str,
    *,
    building_id: str | None = None,
    limit: int = 2000,
) -> dict[str, Any]:
    """Who has not been tested yet (no sample, or only invalid ones: ``pending``), by
    building and household (of one building, if given): ``count`` of them all, the first
    ``limit`` listed (a whole compound at the start would not fit in one reply)."""
    async with uow:
        c = await _campaign(uow, campaign_id)
        members = await uow.campaigns.members(campaign_id)
        results = await uow.campaigns.results_by_person(campaign_id)
    buildings: dict[str, dict[str, list[dict[str, str]]]] = {}
    todo = [
        m for m in camp.untested(members.values(), results) if building_id in (None, m.building_id)
    ]
    for m in todo[:limit]:
        person = {"person_id": m.person_id, "outcome": camp.outcome(results.get(m.person_id, ()))}
        buildings.setdefault(m.building_id, {}).setdefault(m.household_id, []).append(person)
    return {
        "campaign_id": c.campaign_id,
        "count": len(todo),
        "listed": min(len(todo), limit),
        "buildings": [
            {
                "building_id": b,
                "households": [{"household_id": h, "people": ps} for h, ps in hs.items()],
            }
            for b, hs in buildings.items()
        ],
    }
