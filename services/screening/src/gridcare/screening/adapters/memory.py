"""Screening's repositories in memory: the same behaviour as ``sql/``, for handler tests."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from typing import Any

from ..domain import campaigns as camp
from ..domain import checkins as ci
from ..domain import followup as fu
from ..domain import missed as ms
from ..domain.cases import Case, Observation
from ..domain.compounds import CompoundState
from ..domain.contacts import Proposal
from ..domain.policy import ScreeningPolicy
from ..domain.quarantine import HouseholdQuarantine, Intake, Occupant, RoomTaken, Site
from ..domain.questionnaires import AlreadySubmitted, Submission
from ..domain.status import StatusDecision


class Cases:
    def __init__(self) -> None:
        self.rows: dict[str, Case] = {}

    async def open_case_of(self, person_id: str, kind: str) -> Case | None:
        for case in self.rows.values():
            if case.person_id == person_id and case.kind == kind and case.is_open:
                return dataclasses.replace(case, observations=list(case.observations))
        return None

    async def add(self, case: Case) -> None:
        if case.case_id in self.rows:
            raise KeyError(f"case {case.case_id} exists")  # the SQL key would refuse it too
        self.rows[case.case_id] = dataclasses.replace(case, observations=[])

    async def observe(self, case: Case, observation: Observation) -> bool:
        kept = self.rows[case.case_id].observations
        if any(o.source_ref == observation.source_ref for o in kept):
            return False
        kept.append(observation)
        return True

    async def newest(self, limit: int, person_id: str | None = None) -> list[Case]:
        cases = [c for c in self.rows.values() if person_id in (None, c.person_id)]
        return sorted(cases, key=lambda c: c.opened_at, reverse=True)[:limit]


class Questionnaires:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Submission] = {}

    async def get(self, person_id: str, submission_id: str) -> Submission | None:
        return self.rows.get((person_id, submission_id))

    async def add(self, submission: Submission) -> None:
        key = (submission.person_id, submission.submission_id)
        if key in self.rows:
            raise AlreadySubmitted(f"{key} is kept already")  # the SQL key refuses it too
        self.rows[key] = submission

    async def newest(
        self, limit: int, person_id: str | None = None, follow_up: str | None = None
    ) -> list[Submission]:
        found = [
            s
            for s in self.rows.values()
            if person_id in (None, s.person_id) and follow_up in (None, s.follow_up.value)
        ]
        return sorted(found, key=lambda s: s.received_at, reverse=True)[:limit]


class Statuses:
    def __init__(self) -> None:
        self.current: dict[str, StatusDecision] = {}
        self.log: list[StatusDecision] = []

    async def get(self, person_id: str) -> StatusDecision | None:
        return self.current.get(person_id)

    async def record(self, decision: StatusDecision) -> None:
        self.current[decision.person_id] = decision
        self.log.append(decision)

    async def history(self, person_id: str) -> list[Any]:
        return sorted((d for d in self.log if d.person_id == person_id), key=lambda d: d.at)


# --- quarantine -----------------------------------------------------------------------------
class HouseholdQuarantines:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, datetime], HouseholdQuarantine] = {}

    async def lock(self, household_id: str) -> None:
        return None  # one unit of work at a time

    async def active_of(self, household_id: str) -> HouseholdQuarantine | None:
        for (household, _), hq in self.rows.items():
            if household == household_id and hq.active:
                return hq
        return None

    async def save(self, hq: HouseholdQuarantine) -> None:
        self.rows[(hq.household_id, hq.started_at)] = hq

    async def active(self) -> list[HouseholdQuarantine]:
        return sorted(
            (hq for hq in self.rows.values() if hq.active),
            key=lambda hq: (hq.until, hq.household_id),
        )


class Sites:
    """The same rules as the store's: one person a room (``RoomTaken`` otherwise)."""

    def __init__(self) -> None:
        self.sites: dict[str, Site] = {}
        self.rooms_of: dict[str, list[str]] = {}
        self.occupied: dict[str, Occupant] = {}  # person -> where
        self.stays: list[dict[str, Any]] = []
        self.intakes: dict[str, Intake] = {}

    async def get(self, site_id: str) -> Site | None:
        return self.sites.get(site_id)

    async def add(self, site: Site) -> None:
        if site.site_id in self.sites:
            raise KeyError(f"site {site.site_id} exists")  # the SQL key would refuse it too
        self.sites[site.site_id] = site
        self.rooms_of[site.site_id] = []

    async def all(self) -> list[Site]:
        return [self.sites[k] for k in sorted(self.sites)]

    async def rooms(self, site_id: str) -> list[str]:
        return list(self.rooms_of.get(site_id, []))

    async def add_rooms(self, site_id: str, room_ids: list[str]) -> None:
        kept = self.rooms_of.setdefault(site_id, [])
        if set(kept) & set(room_ids):
            raise KeyError(f"{site_id}: a room exists")
        kept.extend(room_ids)

    async def occupants(self, site_id: str | None = None) -> list[Occupant]:
        found = [o for o in self.occupied.values() if site_id in (None, o.site_id)]
        return sorted(found, key=lambda o: (o.site_id, o.room_id))

    async def occupant(self, person_id: str) -> Occupant | None:
        return self.occupied.get(person_id)

    async def occupy(self, occupants: list[Occupant]) -> None:
        taken = {(o.site_id, o.room_id) for o in self.occupied.values()}
        for o in occupants:
            if o.room_id not in self.rooms_of.get(o.site_id, []):
                raise KeyError(f"{o.site_id} has no room {o.room_id}")  # the foreign key
            if (o.site_id, o.room_id) in taken or o.person_id in self.occupied:
                raise RoomTaken(f"{o.site_id}/{o.room_id} or {o.person_id}")
            taken.add((o.site_id, o.room_id))
        for o in occupants:
            self.occupied[o.person_id] = o
            self.stays.append(
                {
                    "person_id": o.person_id,
                    "site_id": o.site_id,
                    "room_id": o.room_id,
                    "started_at": o.since,
                    "ended_at": None,
                    "end_reason": None,
                    "intake_id": o.intake_id,
                }
            )

    async def vacate(self, person_ids: list[str], at: datetime, reason: str) -> None:
        for person in person_ids:
            self.occupied.pop(person, None)
        for stay in self.stays:
            if stay["person_id"] in person_ids and stay["ended_at"] is None:
                stay.update(ended_at=at, end_reason=reason)

    async def intake(self, intake_id: str) -> Intake | None:
        return self.intakes.get(intake_id)

    async def add_intake(self, intake: Intake) -> None:
        if intake.intake_id in self.intakes:
            raise RoomTaken(f"intake {intake.intake_id} exists")
        self.intakes[intake.intake_id] = intake

    async def stays_of(self, intake_id: str) -> list[Occupant]:
        return [
            Occupant(s["person_id"], s["site_id"], s["room_id"], s["started_at"], s["intake_id"])
            for s in self.stays
            if s["intake_id"] == intake_id
        ]


# --- close contacts and compounds -----------------------------------------------------------
class ContactProposals:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Proposal] = {}

    async def get(self, case_person_id: str, candidate_id: str) -> Proposal | None:
        return self.rows.get((case_person_id, candidate_id))

    async def save(self, p: Proposal) -> None:
        self.rows[(p.case_person_id, p.candidate_id)] = p

    async def find(
        self,
        *,
        grid_id: str | None = None,
        case_person_id: str | None = None,
        status: str | None = None,
        limit: int = 1000,
    ) -> list[Proposal]:
        found = [
            p
            for p in self.rows.values()
            if grid_id in (None, p.grid_id)
            and case_person_id in (None, p.case_person_id)
            and status in (None, p.status.value)
        ]
        found.sort(key=lambda p: (p.proposed_at, p.case_person_id, p.candidate_id))
        return found[:limit]


class CompoundLevels:
    def __init__(self) -> None:
        self.rows: dict[str, CompoundState] = {}

    async def get(self, compound_id: str) -> CompoundState | None:
        return self.rows.get(compound_id)

    async def save(self, state: CompoundState) -> None:
        self.rows[state.compound_id] = state

    async def all(self) -> list[CompoundState]:
        return [self.rows[k] for k in sorted(self.rows)]


# --- test campaigns -----------------------------------------------------------------------
class Campaigns:
    """In memory; the residents of a place come from the same reference data and statuses
    the fake unit of work keeps (as the SQL twin joins them)."""

    def __init__(self, refdata: Any, statuses: Any, follow_ups: Any = None) -> None:
        self.refdata, self.statuses = refdata, statuses
        self.follow_ups = follow_ups  # () -> the follow-ups repository (made after this one)
        self.campaigns: dict[str, camp.Campaign] = {}
        self.people: dict[tuple[str, str], camp.Member] = {}
        self.results: dict[str, camp.TestResult] = {}
        self.round_rows: dict[tuple[str, int], tuple[datetime, int]] = {}
        self.uploads: dict[tuple[str, int], tuple[str, datetime]] = {}

    async def add(self, campaign: camp.Campaign) -> None:
        if campaign.campaign_id in self.campaigns:
            raise KeyError(f"campaign {campaign.campaign_id} exists")
        self.campaigns[campaign.campaign_id] = campaign

    async def get(self, campaign_id: str) -> camp.Campaign | None:
        return self.campaigns.get(campaign_id)

    async def newest(self, limit: int, open_at: datetime | None = None) -> list[camp.Campaign]:
        found = [
            c
            for c in self.campaigns.values()
            if open_at is None or (c.starts_at <= open_at < c.ends_at)
        ]
        found.sort(key=lambda c: c.campaign_id)
        found.sort(key=lambda c: c.starts_at, reverse=True)
        return found[:limit]

    async def residents_of(
        self, place_kind: str, place_id: str, person_ids: set[str] | None = None
    ) -> list[camp.Resident]:
        rows = self.refdata.rows
        buildings = rows["refdata.BuildingUpserted"]
        households = rows["refdata.HouseholdUpserted"]
        out = []
        for rid, r in sorted(rows["refdata.ResidentUpserted"].items()):
            if person_ids is not None and rid not in person_ids:
                continue
            h = households.get(r["household_id"])
            b = h and buildings.get(h["building_id"])
            if not b:
                continue
            if (place_kind == "compound" and b["compound_id"] != place_id) or (
                place_kind == "building" and b["building_id"] != place_id
            ):
                continue
            decision = await self.statuses.get(rid)
            status = decision.status.value if decision else None
            out.append(
                camp.Resident(rid, r["household_id"], b["building_id"], status, b.get("grid_id"))
            )
        return out

    async def known(self, person_ids: set[str]) -> set[str]:
        return person_ids & set(self.refdata.rows["refdata.ResidentUpserted"])

    async def add_members(self, members: list[camp.Member]) -> None:
        for m in members:
            key = (m.campaign_id, m.person_id)
            if key in self.people:  # the SQL key refuses it too
                raise camp.RecordedMeanwhile(f"{key} joined meanwhile")
            self.people[key] = m

    async def members(self, campaign_id: str) -> dict[str, camp.Member]:
        return {p: m for (c, p), m in self.people.items() if c == campaign_id}

    async def results_by_person(self, campaign_id: str) -> dict[str, list[camp.Result]]:
        out: dict[str, list[camp.Result]] = {}
        for r in self.results.values():
            if r.campaign_id == campaign_id:
                out.setdefault(r.person_id, []).append(r.result)
        return out

    async def results_of(self, campaign_id: str, person_id: str) -> list[camp.TestResult]:
        found = [
            r
            for r in self.results.values()
            if r.campaign_id == campaign_id and r.person_id == person_id
        ]
        return sorted(found, key=lambda r: (r.tested_at, r.sample_id))

    async def recorded(self, sample_ids: set[str]) -> dict[str, camp.TestResult]:
        return {s: self.results[s] for s in sample_ids if s in self.results}

    async def add_results(self, results: list[camp.TestResult]) -> None:
        for r in results:
            if r.sample_id in self.results:
                raise camp.RecordedMeanwhile(f"sample {r.sample_id} recorded meanwhile")
            self.results[r.sample_id] = r

    async def rounds(self, campaign_id: str) -> dict[int, datetime]:
        return {n: at for (c, n), (at, _) in self.round_rows.items() if c == campaign_id}

    async def add_round(self, campaign_id: str, round_: int, at: datetime, people: int) -> None:
        if (campaign_id, round_) in self.round_rows:  # the SQL key refuses it too
            raise camp.RecordedMeanwhile(f"round {round_} of {campaign_id} done meanwhile")
        self.round_rows[(campaign_id, round_)] = (at, people)

    async def add_part(self, upload_id: str, part: int, text: str, at: datetime) -> None:
        self.uploads[(upload_id, part)] = (text, at)

    async def parts(self, upload_id: str) -> list[tuple[int, str]]:
        return sorted((p, t) for (u, p), (t, _) in self.uploads.items() if u == upload_id)

    async def drop_upload(self, upload_id: str) -> None:
        for key in [k for k in self.uploads if k[0] == upload_id]:
            del self.uploads[key]

    async def drop_uploads_before(self, t: datetime) -> int:
        old = [k for k, (_, at) in self.uploads.items() if at < t]
        for key in old:
            del self.uploads[key]
        return len(old)

    async def followed(self, person_ids: set[str]) -> set[str]:
        rows = self.follow_ups().rows.values() if self.follow_ups else ()
        return {f.person_id for f in rows if f.is_open and f.person_id in person_ids}


# --- check-ins, door visits, reminders, follow-up -----------------------------------------
class Checkins:
    """In memory; where residents live, their community and status come from the same
    reference data and statuses the fake unit of work keeps (as the SQL twin joins them)."""

    def __init__(self, refdata: Any, statuses: Any) -> None:
        self.refdata, self.statuses = refdata, statuses
        self.rows: dict[tuple[str, date], ci.Checkin] = {}
        self.replies: dict[str, ci.Reply] = {}
        self.visits: dict[str, dict] = {}
        self.reminders: dict[tuple[str, date], datetime] = {}
        self.visit_requests: dict[str, dict] = {}
        self.follow_ups: Any = None  # the follow-ups repository (set by the unit of work)

    def _table(self, kind: str) -> dict[str, dict]:
        return self.refdata.rows[kind]

    def _community_of(self, resident: dict) -> tuple[dict | None, dict | None]:
        h = self._table("refdata.HouseholdUpserted").get(resident["household_id"])
        b = h and self._table("refdata.BuildingUpserted").get(h["building_id"])
        c = b and self._table("refdata.CompoundUpserted").get(b["compound_id"])
        return b or None, c or None

    def _policy(self, community_id: str | None) -> ScreeningPolicy:
        return ScreeningPolicy.of(self._table("refdata.CommunityPolicySet").get(community_id or ""))

    async def resident(self, person_id: str) -> ci.Resident | None:
        r = self._table("refdata.ResidentUpserted").get(person_id)
        if r is None:
            return None
        b, c = self._community_of(r)
        community = c["community_id"] if c else None
        cm = self._table("refdata.CommunityUpserted").get(community or "")
        decision = await self.statuses.get(person_id)
        return ci.Resident(
            person_id=person_id,
            household_id=r["household_id"],
            name=r.get("name") or "",
            grid_id=b.get("grid_id") if b else None,
            community_id=community,
            zone=cm["time_zone"] if cm else None,
            policy=self._policy(community),
            status=decision.status.value if decision else None,
        )

    async def reply_of(self, checkin_id: str) -> ci.Reply | None:
        return self.replies.get(checkin_id)

    async def for_checkin(
        self, person_id: str, checkin_id: str, day: date
    ) -> tuple[ci.Resident | None, ci.Reply | None, ci.Checkin | None, fu.FollowUp | None]:
        who = await self.resident(person_id)
        follow = await self.follow_ups.open_of(person_id) if self.follow_ups else None
        in_force = self.rows.get((person_id, day)) if who else None
        return who, self.replies.get(checkin_id), in_force, follow if who else None

    async def in_force(self, person_id: str, day: date) -> ci.Checkin | None:
        return self.rows.get((person_id, day))

    async def for_checkins(
        self, keys: list[tuple[str, str, date]]
    ) -> dict[tuple[str, str, date], tuple]:
        return {key: await self.for_checkin(*key) for key in keys}

    async def put_many(self, rows: list[tuple[ci.Checkin, ci.Reply, bool]]) -> None:
        for checkin, reply, replacing in rows:
            await self.put(checkin, reply, replacing)

    async def put(self, checkin: ci.Checkin, reply: ci.Reply, replacing: bool) -> None:
        key = (checkin.person_id, checkin.day)
        if (key in self.rows) != replacing or reply.checkin_id in self.replies:
            raise KeyError(f"{key} / {reply.checkin_id}")  # the SQL keys would refuse it
        self.rows[key] = checkin
        self.replies[reply.checkin_id] = reply

    async def of_person(self, person_id: str, limit: int = 60) -> list[ci.Checkin]:
        found = [c for (p, _), c in self.rows.items() if p == person_id]
        return sorted(found, key=lambda c: c.day, reverse=True)[:limit]

    async def visit(self, visit_id: str) -> dict | None:
        return self.visits.get(visit_id)

    async def add_visit(self, visit: ci.Visit, members: list[dict]) -> None:
        if visit.visit_id in self.visits:
            raise KeyError(f"visit {visit.visit_id} exists")
        self.visits[visit.visit_id] = {
            "visit_id": visit.visit_id,
            "household_id": visit.household_id,
            "worker_id": visit.worker_id,
            "visited_at": visit.visited_at,
            "day": visit.day,
            "members": members,
            "recorded_at": visit.recorded_at,
        }

    async def communities(self) -> list[tuple[str, str | None, ScreeningPolicy]]:
        rows = self._table("refdata.CommunityUpserted")
        return [(k, rows[k]["time_zone"], self._policy(k)) for k in sorted(rows)]

    def _residents_of(self, community_id: str) -> list[tuple[dict, dict | None]]:
        out = []
        for _, r in sorted(self._table("refdata.ResidentUpserted").items()):
            b, c = self._community_of(r)
            if c and c["community_id"] == community_id:
                out.append((r, b))
        return out

    async def to_remind(
        self, community_id: str, day: date, limit: int, after: str = ""
    ) -> list[ci.ReminderTarget]:
        return [
            ci.ReminderTarget(r["resident_id"], r.get("name") or "", r["household_id"])
            for r, _ in self._residents_of(community_id)
            if r["resident_id"] > after
            and (r["resident_id"], day) not in self.rows
            and (r["resident_id"], day) not in self.reminders
        ][:limit]

    async def reminded(self, person_ids: list[str], day: date, at: datetime) -> None:
        for p in person_ids:
            if (p, day) in self.reminders:
                raise KeyError(f"reminder {(p, day)} exists")
            self.reminders[(p, day)] = at

    async def missed_runs(
        self, community_id: str, day: date, days: int, limit: int, after: str = ""
    ) -> list[ci.MissedRun]:
        span = [day - timedelta(days=i) for i in range(1, days + 1)]
        out = []
        for r, b in self._residents_of(community_id):
            p = r["resident_id"]
            if p <= after:
                continue
            if not all((p, d) in self.reminders and (p, d) not in self.rows for d in span):
                continue
            last = max((d for (q, d) in self.rows if q == p and d < day), default=None)
            if any(
                v["person_id"] == p and (last is None or v["day"] > last)
                for v in self.visit_requests.values()
            ):
                continue
            grid = b.get("grid_id") if b else None
            out.append(ci.MissedRun(p, r.get("name") or "", r["household_id"], grid, last))
        return out[:limit]

    async def visits_requested(self, rows: list[dict]) -> None:
        for row in rows:
            if row["request_id"] in self.visit_requests:
                raise KeyError(f"visit request {row['request_id']} exists")
            self.visit_requests[row["request_id"]] = row

    async def missed_follow_up_days(
        self, community_id: str, days: list[date], limit: int
    ) -> list[ms.MissedDay]:
        if not days or self.follow_ups is None:
            return []
        today = max(days) + timedelta(days=1)
        out = []
        for r, b in self._residents_of(community_id):
            p = r["resident_id"]
            f = await self.follow_ups.open_of(p)
            if f is None:
                continue
            for d in sorted(days):
                if not ms.watched(d, started_on=f.started_on, ends_on=f.ends_on, today=today):
                    continue
                if (p, d) in self.rows or (p, d) in self.follow_ups.days:
                    continue
                last = max((k for (q, k) in self.rows if q == p and k < d), default=None)
                grid = b.get("grid_id") if b else None
                head = (p, r.get("name") or "", r["household_id"], grid, f.follow_up_id)
                out.append(ms.MissedDay(*head, f.started_on, f.ends_on, d, last))
        return out[:limit]


class FollowUps:
    def __init__(self) -> None:
        self.rows: dict[str, fu.FollowUp] = {}
        self.days: dict[tuple[str, date], fu.FollowUpDay] = {}

    async def open_of(self, person_id: str) -> fu.FollowUp | None:
        for f in self.rows.values():
            if f.person_id == person_id and f.is_open:
                return f
        return None

    async def save(self, f: fu.FollowUp) -> None:
        self.rows[f.follow_up_id] = f

    async def put_day(self, d: fu.FollowUpDay) -> bool:
        new = (d.person_id, d.day) not in self.days
        self.days[(d.person_id, d.day)] = d
        return new

    async def of_person(self, person_id: str) -> list[fu.FollowUp]:
        found = [f for f in self.rows.values() if f.person_id == person_id]
        return sorted(found, key=lambda f: f.started_on)

    async def days_of(self, person_id: str) -> list[fu.FollowUpDay]:
        return sorted((d for (p, _), d in self.days.items() if p == person_id), key=lambda d: d.day)

    async def open_ending_by(self, day: date, limit: int = 1000) -> list[fu.FollowUp]:
        found = [f for f in self.rows.values() if f.is_open and f.ends_on <= day]
        return sorted(found, key=lambda f: (f.ends_on, f.person_id))[:limit]


# --- the office's queries -----------------------------------------------------------------
class Office:
    """The office's reads, over the fake unit of work's other repositories (as the SQL
    twin reads their tables)."""

    def __init__(self, uow: Any) -> None:
        self.uow = uow

    def _people(self, community_id: str) -> list[tuple[dict, dict]]:
        return [(r, b) for r, b in self.uow.checkins._residents_of(community_id) if b]

    def _status_at(self, person_id: str, at: datetime | None) -> str:
        if at is None:
            d = self.uow.statuses.current.get(person_id)
            return d.status.value if d else "normal"
        steps = [d for d in self.uow.statuses.log if d.person_id == person_id and d.at < at]
        return steps[-1].status.value if steps else "normal"

    async def status_counts(
        self, community_id: str, at: datetime | None = None
    ) -> list[tuple[str, str, int]]:
        counted: dict[tuple[str, str], int] = {}
        for r, b in self._people(community_id):
            key = (b["compound_id"], self._status_at(r["resident_id"], at))
            counted[key] = counted.get(key, 0) + 1
        return [(c, s, n) for (c, s), n in counted.items()]

    async def step_counts(
        self, community_id: str, start: datetime, end: datetime, statuses: list[str]
    ) -> list[tuple[str, str, int]]:
        where = {r["resident_id"]: b["compound_id"] for r, b in self._people(community_id)}
        people: dict[tuple[str, str], set[str]] = {}
        for d in self.uow.statuses.log:
            if d.person_id in where and d.status.value in statuses and start <= d.at < end:
                people.setdefault((where[d.person_id], d.status.value), set()).add(d.person_id)
        return [(c, s, len(ps)) for (c, s), ps in people.items()]

    async def not_checked_in(
        self,
        community_id: str,
        today: date,
        cutoff: date,
        *,
        compound_id: str | None = None,
        grid_id: str | None = None,
        limit: int = 1000,
    ) -> list[dict]:
        checkins = self.uow.checkins
        grids = self.uow.refdata.rows["refdata.GridUpserted"]
        out = []
        for r, b in self._people(community_id):
            p = r["resident_id"]
            where = (b["compound_id"], b.get("grid_id"))
            if compound_id not in (None, where[0]) or grid_id not in (None, where[1]):
                continue
            last = max((d for (q, d) in checkins.rows if q == p and d <= today), default=None)
            if last is not None and last > cutoff:
                continue
            grid = grids.get(b.get("grid_id") or "")
            decision = self.uow.statuses.current.get(p)
            out.append(
                {
                    "person_id": p,
                    "name": r.get("name"),
                    "household_id": r["household_id"],
                    "building_id": b["building_id"],
                    "compound_id": b["compound_id"],
                    "grid_id": b.get("grid_id"),
                    "grid_worker": grid["worker_id"] if grid else None,
                    "status": decision.status.value if decision else None,
                    "last_checkin_day": last,
                    "reminded_today": (p, today) in checkins.reminders,
                    "door_visit_requested": any(
                        v["person_id"] == p and (last is None or v["day"] > last)
                        for v in checkins.visit_requests.values()
                    ),
                }
            )
        out.sort(key=lambda x: (x["compound_id"], x["grid_id"] or "", x["person_id"]))
        return out[:limit]

    async def test_results_of(self, person_id: str) -> list[camp.TestResult]:
        found = [r for r in self.uow.campaigns.results.values() if r.person_id == person_id]
        return sorted(found, key=lambda r: (r.tested_at, r.sample_id))

    async def household_quarantines_of(self, household_id: str) -> list[HouseholdQuarantine]:
        rows = self.uow.household_quarantines.rows.values()
        return sorted(
            (hq for hq in rows if hq.household_id == household_id), key=lambda hq: hq.started_at
        )

    async def stays_of_person(self, person_id: str) -> list[dict]:
        return [dict(s) for s in self.uow.sites.stays if s["person_id"] == person_id]

    async def visits_to(self, household_id: str) -> list[dict]:
        found = [v for v in self.uow.checkins.visits.values() if v["household_id"] == household_id]
        return sorted(found, key=lambda v: v["visited_at"])

    async def proposals_about(self, person_id: str) -> list[Proposal]:
        found = [
            p
            for p in self.uow.contacts.rows.values()
            if person_id in (p.candidate_id, p.case_person_id)
        ]
        return sorted(found, key=lambda p: (p.proposed_at, p.case_person_id, p.candidate_id))
