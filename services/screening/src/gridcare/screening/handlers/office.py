"""The office's queries (``api.screening.office.*``, ``gridcare counts|overdue|timeline``):
read-only, over the other parts' tables through the unit of work, set-based.

- ``counts``: today's (or a past local day's) four categories per compound (四类人员) and
  the rest: one GROUP BY per community for the statuses, one for the day's steps.
- ``overdue``: who has not checked in (the check-ins part's reminder time and missed
  days) or not been tested in a running campaign (the campaigns part's untested), each
  with their grid's worker.
- ``timeline``: one resident's check-ins, door visits, questionnaires (severity only),
  test results, status steps, follow-up periods, quarantine, site stays, close-contact
  proposals, and their gate passages from the checkpoint's register (asked outside the
  transaction; when it does not answer, ``passages_unavailable`` says so).
The rules are ``domain/office.py``; docs/screening.md, "For the office".
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from gridcare.contracts.refdata import Building, Compound, Grid
from gridcare.shared.errors import ApiError
from gridcare.shared.localtime import iso, local, local_day, reads, zone

from ..adapters.register import Register, RegisterUnavailable
from ..domain import campaigns as camp
from ..domain import office as o
from ..domain.status import HealthStatus
from ..unit_of_work import ScreeningUnitOfWork

#: Since when a timeline without ``since`` asks the register (it answers its newest 1000).
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def day_bounds(day: date, zone_name: str | None) -> tuple[datetime, datetime]:
    """The local day as [start, end) in UTC (a day of 23 or 25 hours when the clocks
    change)."""
    tz = zone(zone_name)
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


async def _communities(
    uow: ScreeningUnitOfWork,
    community_id: str | None = None,
    compound_id: str | None = None,
    grid_id: str | None = None,
) -> list[tuple[str, str | None, Any]]:
    """(community, zone, policy) of those asked for: all, or the one of the community,
    compound or grid named (each must be known)."""
    refdata = uow.places.refdata
    wanted = {community_id} if community_id else None
    if compound_id is not None:
        row = await refdata.get(Compound.TYPE, compound_id)
        if row is None:
            raise o.UnknownPlace("unknown_compound", f"no compound {compound_id}", "compound_id")
        wanted = (wanted or {row["community_id"]}) & {row["community_id"]}
    if grid_id is not None:
        row = await refdata.get(Grid.TYPE, grid_id)
        if row is None:
            raise o.UnknownPlace("unknown_grid", f"no grid {grid_id}", "grid_id")
        wanted = (wanted or {row["community_id"]}) & {row["community_id"]}
    found = await uow.checkins.communities()
    if community_id is not None and community_id not in {c for c, _, _ in found}:
        raise o.UnknownPlace("unknown_community", f"no community {community_id}", "community_id")
    return [c for c in found if wanted is None or c[0] in wanted]


# --- counts ---------------------------------------------------------------------------------
async def counts(
    uow: ScreeningUnitOfWork,
    now: datetime,
    *,
    community_id: str | None = None,
    day: date | None = None,
) -> dict[str, Any]:
    """Per compound: residents, the four categories and their sum, symptomatic follow-up,
    home and central quarantine, in hospital (status in force: now for today, at the end
    of the day for a past one), and who was recovered or released that day; and totals."""
    rows: list[dict[str, Any]] = []
    async with uow:
        for cid, zone_name, _ in await _communities(uow, community_id):
            today = local_day(now, zone_name)
            the_day = day or today
            problem = o.day_problem(the_day, today)
            if problem:
                raise ApiError("invalid_day", problem, "day")
            start, end = day_bounds(the_day, zone_name)
            past = the_day < today
            by_status = await uow.office.status_counts(cid, end if past else None)
            steps = await uow.office.step_counts(
                cid, start, end, [s.value for s in o.STEPS_OF_THE_DAY]
            )
            compounds = [
                r["compound_id"]
                for r in await uow.places.refdata.find(Compound.TYPE, community_id=cid)
            ]
            table = o.count_rows(compounds, by_status, steps)
            as_of = iso(end if past else now, zone_name)
            rows.extend(
                {
                    "community_id": cid,
                    "compound_id": c,
                    "day": the_day.isoformat(),
                    "as_of": as_of,
                    **table[c],
                }
                for c in sorted(table)
            )
    return {"compounds": rows, "totals": o.totals(rows)}


# --- overdue --------------------------------------------------------------------------------
async def overdue(
    uow: ScreeningUnitOfWork,
    now: datetime,
    *,
    kind: str,
    community_id: str | None = None,
    compound_id: str | None = None,
    grid_id: str | None = None,
    min_days: int = 1,
    limit: int = 1000,
) -> dict[str, Any]:
    """Who is overdue for a check-in (``kind`` checkin) or a test (``test``), by compound,
    grid and person, with their grid's worker."""
    async with uow:
        communities = await _communities(uow, community_id, compound_id, grid_id)
        if kind == "checkin":
            return await _overdue_checkins(
                uow, now, communities, compound_id, grid_id, min_days, limit
            )
        return await _overdue_tests(uow, now, communities, compound_id, grid_id, limit)


async def _overdue_checkins(
    uow: ScreeningUnitOfWork,
    now: datetime,
    communities: list[tuple[str, str | None, Any]],
    compound_id: str | None,
    grid_id: str | None,
    min_days: int,
    limit: int,
) -> dict[str, Any]:
    people: list[dict[str, Any]] = []
    seen: list[dict[str, Any]] = []
    for cid, zone_name, policy in communities:
        clock = local(now, zone_name)
        today = clock.date()
        reminder = policy.reminder_time
        cutoff = o.checkin_cutoff(today, clock.time(), reminder, min_days)
        seen.append(
            {
                "community_id": cid,
                "day": today.isoformat(),
                "reminder_at": policy.checkin_reminder_at,
                "reminder_passed": clock.time() >= reminder,
            }
        )
        found = await uow.office.not_checked_in(
            cid,
            today,
            cutoff,
            compound_id=compound_id,
            grid_id=grid_id,
            limit=limit - len(people),
        )
        for row in found:
            last = row["last_checkin_day"]
            people.append(
                {
                    **row,
                    "community_id": cid,
                    "status": row["status"] or HealthStatus.NORMAL.value,
                    "last_checkin_day": last.isoformat() if last else None,
                    "missed_days": o.missed_days(today, clock.time(), reminder, last),
                }
            )
        if len(people) >= limit:
            break
    return {
        "kind": "checkin",
        "communities": seen,
        "count": len(people),
        "truncated": len(people) >= limit,
        "people": people,
    }


async def _overdue_tests(
    uow: ScreeningUnitOfWork,
    now: datetime,
    communities: list[tuple[str, str | None, Any]],
    compound_id: str | None,
    grid_id: str | None,
    limit: int,
) -> dict[str, Any]:
    zones = {cid: zone_name for cid, zone_name, _ in communities}
    refdata = uow.places.refdata
    buildings: dict[str, dict | None] = {}
    grids: dict[str, dict | None] = {}
    people: list[dict[str, Any]] = []
    running = []
    for c in await uow.campaigns.newest(1000, open_at=now):
        if c.community_id not in zones:
            continue
        members = await uow.campaigns.members(c.campaign_id)
        results = await uow.campaigns.results_by_person(c.campaign_id)
        todo = camp.untested(members.values(), results)
        here = {
            r.person_id: r
            for r in await uow.campaigns.residents_of(
                c.place_kind, c.place_id, {m.person_id for m in todo}
            )
        }
        listed = 0
        for m in todo:
            if m.building_id not in buildings:
                buildings[m.building_id] = await refdata.get(Building.TYPE, m.building_id)
            b = buildings[m.building_id] or {}
            now_at = here.get(m.person_id)
            grid = now_at.grid_id if now_at else b.get("grid_id")
            compound = b.get("compound_id")
            if compound_id not in (None, compound) or grid_id not in (None, grid):
                continue
            if grid and grid not in grids:
                grids[grid] = await refdata.get(Grid.TYPE, grid)
            worker = (grids.get(grid) or {}).get("worker_id") if grid else None
            listed += 1
            if len(people) < limit:
                people.append(
                    {
                        "person_id": m.person_id,
                        "household_id": m.household_id,
                        "building_id": m.building_id,
                        "compound_id": compound,
                        "community_id": c.community_id,
                        "grid_id": grid,
                        "grid_worker": worker,
                        "status": (now_at.status if now_at else None) or "normal",
                        "moved_away": now_at is None,
                        "campaign_id": c.campaign_id,
                        "outcome": camp.outcome(results.get(m.person_id, ())),
                    }
                )
        zone_name = zones[c.community_id]
        running.append(
            {
                "campaign_id": c.campaign_id,
                "place_kind": c.place_kind,
                "place_id": c.place_id,
                "ends_at": iso(c.ends_at, zone_name),
                "untested": listed,
            }
        )
    return {
        "kind": "test",
        "campaigns": running,
        "count": len(people),
        "truncated": sum(c["untested"] for c in running) > len(people),
        "people": people,
    }


# --- a resident's timeline --------------------------------------------------------------------
def _temperature(t: float | None) -> str:
    return f"{t:.1f} °C" if t is not None else "no temperature"


def _symptoms(symptoms: Any) -> str:
    return ", ".join(symptoms) if symptoms else "no symptoms"


async def timeline(
    uow: ScreeningUnitOfWork,
    register: Register,
    person_id: str,
    *,
    since: datetime | None = None,
) -> dict[str, Any]:
    """Everything about one resident, oldest first, on their community's clock."""
    entries: list[o.Entry] = []
    async with uow:
        who = await uow.checkins.resident(person_id)
        if who is None:
            raise ApiError("unknown_person", f"{person_id} is not a known resident", "person_id")
        zone_name = who.zone
        for c in await uow.checkins.of_person(person_id, limit=10_000):
            if c.source == "visit":
                continue  # shown as the door visit it came from
            entries.append(
                o.Entry(
                    c.submitted_at,
                    "checkin",
                    f"check-in: {_temperature(c.temperature_c)}, {_symptoms(c.symptoms)}"
                    + (" (followed up)" if c.follow_up else ""),
                    {
                        "day": c.day.isoformat(),
                        "checkin_id": c.checkin_id,
                        "temperature_c": c.temperature_c,
                        "symptoms": list(c.symptoms),
                        "follow_up": c.follow_up,
                    },
                )
            )
        for v in await uow.office.visits_to(who.household_id):
            mine = next((m for m in v["members"] if m["person_id"] == person_id), None)
            if mine is None:
                continue
            found = (
                "not at home"
                if mine.get("not_at_home")
                else f"{_temperature(mine.get('temperature_c'))}, {_symptoms(mine.get('symptoms'))}"
            )
            entries.append(
                o.Entry(
                    v["visited_at"],
                    "door_visit",
                    f"door visit by {v['worker_id']}: {found}",
                    {
                        "visit_id": v["visit_id"],
                        "worker_id": v["worker_id"],
                        "not_at_home": bool(mine.get("not_at_home")),
                        "temperature_c": mine.get("temperature_c"),
                        "symptoms": list(mine.get("symptoms") or ()),
                    },
                )
            )
        for s in await uow.questionnaires.newest(10_000, person_id=person_id):
            call = {"call_back": " (call-back)", "urgent_call_back": " (urgent call-back)"}
            entries.append(
                o.Entry(
                    s.submitted_at,
                    "questionnaire",
                    f"{s.instrument.value.upper()}: {s.severity.value.replace('_', ' ')}"
                    + call.get(s.follow_up.value, ""),
                    {
                        "submission_id": s.submission_id,
                        "instrument": s.instrument.value,
                        "severity": s.severity.value,
                        "follow_up": s.follow_up.value,
                    },
                )
            )
        for r in await uow.office.test_results_of(person_id):
            entries.append(
                o.Entry(
                    r.tested_at,
                    "test_result",
                    f"test {r.result.value} (sample {r.sample_id}, {r.lab})",
                    {
                        "sample_id": r.sample_id,
                        "result": r.result.value,
                        "lab": r.lab,
                        "campaign_id": r.campaign_id,
                    },
                )
            )
        for d in await uow.statuses.history(person_id):
            came_from = d.previous.value if d.previous else "normal"
            by = f"{d.set_by} ({d.role})" if d.role else d.set_by
            entries.append(
                o.Entry(
                    d.at,
                    "status",
                    f"status {came_from} → {d.status.value} by {by}: {d.reason}",
                    {
                        "from": d.previous.value if d.previous else None,
                        "to": d.status.value,
                        "by": d.set_by,
                        "role": d.role,
                        "reason": d.reason,
                        "source": d.source,
                        "until": iso(d.until, zone_name),
                        "holds_at_gate": d.holds_at_gate,
                    },
                )
            )
        for f in await uow.follow_ups.of_person(person_id):
            entries.append(
                o.Entry(
                    f.opened_at,
                    "follow_up",
                    f"followed up {f.started_on} to {f.ends_on}: {f.reason}",
                    {
                        "follow_up_id": f.follow_up_id,
                        "started_on": f.started_on.isoformat(),
                        "ends_on": f.ends_on.isoformat(),
                        "status": f.status,
                        "reason": f.reason,
                    },
                )
            )
            if f.released_at is not None:
                entries.append(
                    o.Entry(
                        f.released_at,
                        "follow_up_released",
                        f"follow-up released: {f.release_reason}",
                        {"follow_up_id": f.follow_up_id, "reason": f.release_reason},
                    )
                )
        for hq in await uow.office.household_quarantines_of(who.household_id):
            entries.append(
                o.Entry(
                    hq.started_at,
                    "household_quarantine",
                    f"household {hq.household_id} in home quarantine until "
                    f"{reads(hq.until, zone_name)} ({hq.started_by}: {hq.reason})",
                    {
                        "household_id": hq.household_id,
                        "until": iso(hq.until, zone_name),
                        "by": hq.started_by,
                        "reason": hq.reason,
                        "status": hq.status,
                    },
                )
            )
            if hq.ended_at is not None:
                entries.append(
                    o.Entry(
                        hq.ended_at,
                        "household_quarantine_ended",
                        f"household {hq.household_id}'s quarantine ended "
                        f"({hq.ended_by}: {hq.end_reason})",
                        {
                            "household_id": hq.household_id,
                            "by": hq.ended_by,
                            "reason": hq.end_reason,
                        },
                    )
                )
        for st in await uow.office.stays_of_person(person_id):
            where = {"site_id": st["site_id"], "room_id": st["room_id"]}
            entries.append(
                o.Entry(
                    st["started_at"],
                    "site_stay",
                    f"central quarantine at {st['site_id']}, room {st['room_id']}",
                    {
                        **where,
                        "intake_id": st.get("intake_id"),
                        "ended_at": iso(st["ended_at"], zone_name),
                    },
                )
            )
            if st["ended_at"] is not None:
                entries.append(
                    o.Entry(
                        st["ended_at"],
                        "site_stay_ended",
                        f"left {st['site_id']}, room {st['room_id']}: {st.get('end_reason')}",
                        {**where, "reason": st.get("end_reason")},
                    )
                )
        for p in await uow.office.proposals_about(person_id):
            decided = (
                f"; {p.status.value} by {p.decided_by}"
                + (f": {p.decision_reason}" if p.decision_reason else "")
                if p.decided_by
                else "; to decide"
            )
            if p.candidate_id == person_id:
                summary = f"proposed as a close contact of {p.case_person_id} ({p.reason}){decided}"
                role = "candidate"
            else:
                summary = f"{p.candidate_id} proposed as their close contact ({p.reason}){decided}"
                role = "case"
            entries.append(
                o.Entry(
                    p.proposed_at,
                    "contact_proposal",
                    summary,
                    {
                        "as": role,
                        "case_person_id": p.case_person_id,
                        "candidate_id": p.candidate_id,
                        "reason": p.reason,
                        "status": p.status.value,
                        "decided_by": p.decided_by,
                        "decided_at": iso(p.decided_at, zone_name),
                    },
                )
            )
        current = await uow.statuses.get(person_id)
    # the register is asked outside the transaction (another service, over NATS)
    unavailable: str | None = None
    try:
        for pa in await register.passages_of(person_id, since or EPOCH):
            how = f"{pa.direction or 'passed'}" + (f": {pa.verdict}" if pa.verdict else "")
            entries.append(
                o.Entry(
                    pa.scanned_at,
                    "passage",
                    f"gate {pa.gate_id} {how}"
                    + (f" ({', '.join(pa.reasons)})" if pa.reasons else ""),
                    {
                        "gate_id": pa.gate_id,
                        "scan_id": pa.scan_id,
                        "direction": pa.direction,
                        "verdict": pa.verdict,
                        "reasons": list(pa.reasons),
                    },
                )
            )
    except RegisterUnavailable as exc:
        unavailable = str(exc)
    status = current.status if current else HealthStatus.NORMAL
    return {
        "person_id": person_id,
        "name": who.name or None,
        "household_id": who.household_id,
        "grid_id": who.grid_id,
        "status": status.value,
        "since": iso(since, zone_name),
        "entries": [e.body(zone_name) for e in o.in_order(entries, since)],
        "passages_unavailable": unavailable is not None,
        **({"passages_error": unavailable} if unavailable else {}),
    }
