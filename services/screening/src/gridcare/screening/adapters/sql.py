"""Screening's repositories on its store."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from types import SimpleNamespace

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.contracts.refdata import (
    Building,
    Community,
    CommunityPolicy,
    Compound,
    ControlLevel,
    Grid,
    Household,
    Resident,
    Staff,
)
from gridcare.shared.localtime import as_utc
from gridcare.shared.store import upsert_row

from ..domain import campaigns as camp
from ..domain import checkins as ci
from ..domain import followup as fu
from ..domain import missed as ms
from ..domain.cases import Case, Observation
from ..domain.compounds import CompoundState
from ..domain.contacts import Proposal, ProposalStatus
from ..domain.policy import ScreeningPolicy
from ..domain.quarantine import HouseholdQuarantine, Intake, Occupant, RoomTaken, Site
from ..domain.questionnaires import (
    AlreadySubmitted,
    FollowUp,
    Instrument,
    Severity,
    Submission,
)
from ..domain.status import HealthStatus, StatusDecision
from . import tables as T

REFERENCE_TABLES = {
    Resident.TYPE: T.residents,
    Household.TYPE: T.households,
    Building.TYPE: T.buildings,
    Compound.TYPE: T.compounds,
    Community.TYPE: T.communities,
    CommunityPolicy.TYPE: T.policies,  # screening's part (check-ins, follow-up)
    Staff.TYPE: T.staff,  # who may decide a status, in which role
    Grid.TYPE: T.grids,  # a grid's worker decides as a grid_worker
}


def _case(row) -> Case:
    return Case(
        case_id=row.case_id,
        person_id=row.person_id,
        kind=row.kind,
        status=row.status,
        opened_at=as_utc(row.opened_at),
        reason=row.reason,
        source_ref=row.source_ref,
    )


class Cases:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_case_of(self, person_id: str, kind: str) -> Case | None:
        c = T.cases.c
        row = (
            await self.session.execute(
                sa.select(T.cases).where(
                    c.person_id == person_id, c.kind == kind, c.status == "open"
                )
            )
        ).first()
        return None if row is None else _case(row)

    async def add(self, case: Case) -> None:
        await self.session.execute(
            sa.insert(T.cases).values(
                case_id=case.case_id,
                person_id=case.person_id,
                kind=case.kind,
                status=case.status,
                opened_at=case.opened_at,
                reason=case.reason,
                source_ref=case.source_ref,
            )
        )

    async def observe(self, case: Case, observation: Observation) -> bool:
        o = T.observations.c
        seen = await self.session.scalar(
            sa.select(sa.literal(1)).where(
                o.case_id == case.case_id, o.source_ref == observation.source_ref
            )
        )
        if seen:
            return False
        await self.session.execute(
            sa.insert(T.observations).values(
                case_id=case.case_id,
                observed_at=observation.observed_at,
                kind=observation.kind,
                value=observation.value,
                source_ref=observation.source_ref,
            )
        )
        return True

    async def newest(self, limit: int, person_id: str | None = None) -> list[Case]:
        q = sa.select(T.cases).order_by(T.cases.c.opened_at.desc()).limit(limit)
        if person_id:
            q = q.where(T.cases.c.person_id == person_id)
        return [_case(r) for r in await self.session.execute(q)]


def _submission(row) -> Submission:
    return Submission(
        submission_id=row.submission_id,
        person_id=row.person_id,
        instrument=Instrument(row.instrument),
        answers=tuple(row.answers),
        score=row.score,
        severity=Severity(row.severity),
        follow_up=FollowUp(row.follow_up),
        submitted_at=as_utc(row.submitted_at),
        received_at=as_utc(row.received_at),
        reported_by=row.reported_by,
        message=dict(row.message) if row.message else None,
    )


class Questionnaires:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, person_id: str, submission_id: str) -> Submission | None:
        q = T.questionnaire_submissions.c
        row = (
            await self.session.execute(
                sa.select(T.questionnaire_submissions).where(
                    q.person_id == person_id, q.submission_id == submission_id
                )
            )
        ).first()
        return None if row is None else _submission(row)

    async def add(self, submission: Submission) -> None:
        values = {
            "person_id": submission.person_id,
            "submission_id": submission.submission_id,
            "instrument": submission.instrument.value,
            "answers": list(submission.answers),
            "score": submission.score,
            "severity": submission.severity.value,
            "follow_up": submission.follow_up.value,
            "submitted_at": submission.submitted_at,
            "received_at": submission.received_at,
            "reported_by": submission.reported_by,
            "message": submission.message or {},
        }
        try:
            await self.session.execute(sa.insert(T.questionnaire_submissions).values(values))
        except IntegrityError as exc:  # the same submission, committed meanwhile
            raise AlreadySubmitted(str(exc.orig)) from exc

    async def newest(
        self, limit: int, person_id: str | None = None, follow_up: str | None = None
    ) -> list[Submission]:
        q = T.questionnaire_submissions.c
        query = (
            sa.select(T.questionnaire_submissions)
            .order_by(q.received_at.desc(), q.person_id, q.submission_id)
            .limit(limit)
        )
        if person_id is not None:
            query = query.where(q.person_id == person_id)
        if follow_up is not None:
            query = query.where(q.follow_up == follow_up)
        return [_submission(r) for r in await self.session.execute(query)]


def _decision(row) -> StatusDecision:
    return StatusDecision(
        person_id=row.person_id,
        status=HealthStatus(row.status),
        set_by=row.set_by,
        reason=row.reason,
        at=as_utc(row.at),
        until=as_utc(row.until),
        role=row.role,
        previous=HealthStatus(row.previous_status) if row.previous_status else None,
        source=row.source,
    )


class Statuses:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, person_id: str) -> StatusDecision | None:
        row = (
            await self.session.execute(
                sa.select(T.person_status).where(T.person_status.c.person_id == person_id)
            )
        ).first()
        return None if row is None else _decision(row)

    async def record(self, decision: StatusDecision) -> None:
        values = {
            "person_id": decision.person_id,
            "status": decision.status.value,
            "set_by": decision.set_by,
            "reason": decision.reason,
            "at": decision.at,
            "until": decision.until,
            "role": decision.role,
            "previous_status": decision.previous.value if decision.previous else None,
            "source": decision.source,
        }
        await upsert_row(self.session, T.person_status, values)
        await self.session.execute(sa.insert(T.status_history).values(values))

    async def history(self, person_id: str) -> list[StatusDecision]:
        h = T.status_history.c
        q = sa.select(T.status_history).where(h.person_id == person_id).order_by(h.at, h.id)
        return [_decision(r) for r in await self.session.execute(q)]


# --- quarantine -----------------------------------------------------------------------------
def _household_quarantine(row) -> HouseholdQuarantine:
    return HouseholdQuarantine(
        household_id=row.household_id,
        started_at=as_utc(row.started_at),
        until=as_utc(row.until),
        started_by=row.started_by,
        reason=row.reason,
        status=row.status,
        ended_at=as_utc(row.ended_at),
        ended_by=row.ended_by,
        end_reason=row.end_reason,
    )


class HouseholdQuarantines:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock(self, household_id: str) -> None:
        """The household's row locked until this transaction ends (PostgreSQL; SQLite's
        one writer needs nothing, and renders no ``FOR UPDATE``)."""
        h = T.households.c
        await self.session.execute(
            sa.select(h.household_id).where(h.household_id == household_id).with_for_update()
        )

    async def active_of(self, household_id: str) -> HouseholdQuarantine | None:
        q = T.household_quarantines.c
        row = (
            await self.session.execute(
                sa.select(T.household_quarantines).where(
                    q.household_id == household_id, q.status == "active"
                )
            )
        ).first()
        return None if row is None else _household_quarantine(row)

    async def save(self, hq: HouseholdQuarantine) -> None:
        await upsert_row(
            self.session,
            T.household_quarantines,
            {
                "household_id": hq.household_id,
                "started_at": hq.started_at,
                "until": hq.until,
                "started_by": hq.started_by,
                "reason": hq.reason,
                "status": hq.status,
                "ended_at": hq.ended_at,
                "ended_by": hq.ended_by,
                "end_reason": hq.end_reason,
            },
        )

    async def active(self) -> list[HouseholdQuarantine]:
        q = T.household_quarantines.c
        rows = await self.session.execute(
            sa.select(T.household_quarantines)
            .where(q.status == "active")
            .order_by(q.until, q.household_id)
        )
        return [_household_quarantine(r) for r in rows]


def _site(row) -> Site:
    return Site(
        site_id=row.site_id,
        name=row.name,
        address=row.address,
        community_id=row.community_id,
        added_at=as_utc(row.added_at),
        added_by=row.added_by,
    )


def _occupant(row) -> Occupant:
    return Occupant(
        person_id=row.person_id,
        site_id=row.site_id,
        room_id=row.room_id,
        since=as_utc(row.since),
        intake_id=row.intake_id,
    )


class Sites:
    """Central quarantine sites, their rooms and who is in them. A room holds one person:
    the store's unique (site, room) refuses a second, whoever commits first wins."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, site_id: str) -> Site | None:
        row = (
            await self.session.execute(
                sa.select(T.quarantine_sites).where(T.quarantine_sites.c.site_id == site_id)
            )
        ).first()
        return None if row is None else _site(row)

    async def add(self, site: Site) -> None:
        await self.session.execute(
            sa.insert(T.quarantine_sites).values(
                site_id=site.site_id,
                name=site.name,
                address=site.address,
                community_id=site.community_id,
                added_at=site.added_at,
                added_by=site.added_by,
            )
        )

    async def all(self) -> list[Site]:
        q = sa.select(T.quarantine_sites).order_by(T.quarantine_sites.c.site_id)
        return [_site(r) for r in await self.session.execute(q)]

    async def rooms(self, site_id: str) -> list[str]:
        r = T.quarantine_rooms.c
        q = sa.select(r.room_id).where(r.site_id == site_id)
        return list((await self.session.scalars(q)).all())

    async def add_rooms(self, site_id: str, room_ids: list[str]) -> None:
        await self.session.execute(
            sa.insert(T.quarantine_rooms), [{"site_id": site_id, "room_id": r} for r in room_ids]
        )

    async def occupants(self, site_id: str | None = None) -> list[Occupant]:
        o = T.quarantine_occupants.c
        q = sa.select(T.quarantine_occupants).order_by(o.site_id, o.room_id)
        if site_id is not None:
            q = q.where(o.site_id == site_id)
        return [_occupant(r) for r in await self.session.execute(q)]

    async def occupant(self, person_id: str) -> Occupant | None:
        o = T.quarantine_occupants.c
        row = (
            await self.session.execute(
                sa.select(T.quarantine_occupants).where(o.person_id == person_id)
            )
        ).first()
        return None if row is None else _occupant(row)

    async def occupy(self, occupants: list[Occupant]) -> None:
        """Put each in their room (a stay begins); :class:`RoomTaken` if the store refuses
        one (a room or a person taken by a transaction committed meanwhile)."""
        if not occupants:
            return
        rows = [
            {
                "person_id": o.person_id,
                "site_id": o.site_id,
                "room_id": o.room_id,
                "since": o.since,
                "intake_id": o.intake_id,
            }
            for o in occupants
        ]
        try:
            await self.session.execute(sa.insert(T.quarantine_occupants), rows)
        except IntegrityError as exc:
            raise RoomTaken(str(exc.orig)) from exc
        await self.session.execute(
            sa.insert(T.quarantine_stays),
            [
                {
                    "person_id": o.person_id,
                    "site_id": o.site_id,
                    "room_id": o.room_id,
                    "started_at": o.since,
                    "intake_id": o.intake_id,
                }
                for o in occupants
            ],
        )

    async def vacate(self, person_ids: list[str], at: datetime, reason: str) -> None:
        """Free their rooms; their stays end."""
        o, s = T.quarantine_occupants.c, T.quarantine_stays.c
        await self.session.execute(
            sa.delete(T.quarantine_occupants).where(o.person_id.in_(person_ids))
        )
        await self.session.execute(
            sa.update(T.quarantine_stays)
            .where(s.person_id.in_(person_ids), s.ended_at.is_(None))
            .values(ended_at=at, end_reason=reason)
        )

    async def intake(self, intake_id: str) -> Intake | None:
        row = (
            await self.session.execute(
                sa.select(T.quarantine_intakes).where(T.quarantine_intakes.c.intake_id == intake_id)
            )
        ).first()
        if row is None:
            return None
        return Intake(
            row.intake_id, row.site_id, tuple(row.people), row.by, row.reason, as_utc(row.at)
        )

    async def add_intake(self, intake: Intake) -> None:
        try:
            await self.session.execute(
                sa.insert(T.quarantine_intakes).values(
                    intake_id=intake.intake_id,
                    site_id=intake.site_id,
                    people=list(intake.people),
                    by=intake.by,
                    reason=intake.reason,
                    at=intake.at,
                )
            )
        except IntegrityError as exc:  # the same intake, committed meanwhile: try again
            raise RoomTaken(str(exc.orig)) from exc

    async def stays_of(self, intake_id: str) -> list[Occupant]:
        """The rooms an intake gave (its stays, ended or not), in room order."""
        s = T.quarantine_stays.c
        rows = await self.session.execute(
            sa.select(T.quarantine_stays).where(s.intake_id == intake_id).order_by(s.id)
        )
        return [
            Occupant(r.person_id, r.site_id, r.room_id, as_utc(r.started_at), r.intake_id)
            for r in rows
        ]


# --- close contacts and compounds -----------------------------------------------------------
def _proposal(row) -> Proposal:
    return Proposal(
        case_person_id=row.case_person_id,
        candidate_id=row.candidate_id,
        household_id=row.household_id,
        grid_id=row.grid_id,
        kind=row.kind,
        reason=row.reason,
        gate_id=row.gate_id,
        passed_at=as_utc(row.passed_at),
        proposed_at=as_utc(row.proposed_at),
        status=ProposalStatus(row.status),
        decided_by=row.decided_by,
        decided_at=as_utc(row.decided_at),
        decision_reason=row.decision_reason,
    )


class ContactProposals:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, case_person_id: str, candidate_id: str) -> Proposal | None:
        c = T.contact_proposals.c
        row = (
            await self.session.execute(
                sa.select(T.contact_proposals).where(
                    c.case_person_id == case_person_id, c.candidate_id == candidate_id
                )
            )
        ).first()
        return None if row is None else _proposal(row)

    async def save(self, p: Proposal) -> None:
        values = dataclasses.asdict(p)
        values["status"] = p.status.value
        await upsert_row(self.session, T.contact_proposals, values)

    async def find(
        self,
        *,
        grid_id: str | None = None,
        case_person_id: str | None = None,
        status: str | None = None,
        limit: int = 1000,
    ) -> list[Proposal]:
        c = T.contact_proposals.c
        q = sa.select(T.contact_proposals)
        if grid_id is not None:
            q = q.where(c.grid_id == grid_id)
        if case_person_id is not None:
            q = q.where(c.case_person_id == case_person_id)
        if status is not None:
            q = q.where(c.status == status)
        q = q.order_by(c.proposed_at, c.case_person_id, c.candidate_id).limit(limit)
        return [_proposal(r) for r in await self.session.execute(q)]


def _compound(row) -> CompoundState:
    return CompoundState(
        compound_id=row.compound_id,
        level=ControlLevel(row.level),
        set_by=row.set_by,
        reason=row.reason,
        set_at=as_utc(row.set_at),
        last_case_at=as_utc(row.last_case_at),
        last_case_person_id=row.last_case_person_id,
        epidemic_free_since=as_utc(row.epidemic_free_since),
    )


class CompoundLevels:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, compound_id: str) -> CompoundState | None:
        row = (
            await self.session.execute(
                sa.select(T.compound_levels).where(T.compound_levels.c.compound_id == compound_id)
            )
        ).first()
        return None if row is None else _compound(row)

    async def save(self, state: CompoundState) -> None:
        values = dataclasses.asdict(state)
        values["level"] = state.level.value
        await upsert_row(self.session, T.compound_levels, values)

    async def all(self) -> list[CompoundState]:
        q = sa.select(T.compound_levels).order_by(T.compound_levels.c.compound_id)
        return [_compound(r) for r in await self.session.execute(q)]


# --- test campaigns -----------------------------------------------------------------------
#: Ids per IN (...) list: well under SQLite's and PostgreSQL's limits on parameters.
IN_CHUNK = 1000


def _campaign(row) -> camp.Campaign:
    return camp.Campaign(
        campaign_id=row.campaign_id,
        community_id=row.community_id,
        place_kind=row.place_kind,
        place_id=row.place_id,
        place_name=row.place_name,
        site=row.site,
        starts_at=as_utc(row.starts_at),
        ends_at=as_utc(row.ends_at),
        door_call_after_min=row.door_call_after_min,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
    )


def _test_result(row) -> camp.TestResult:
    return camp.TestResult(
        sample_id=row.sample_id,
        campaign_id=row.campaign_id,
        person_id=row.person_id,
        result=camp.Result(row.result),
        tested_at=as_utc(row.tested_at),
        lab=row.lab,
        recorded_at=as_utc(row.recorded_at),
    )


class Campaigns:
    """Campaigns, their people, results, reminder rounds and uploads; set-based writes (a
    lab's file of 20,000 results is one insert of many rows)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, campaign: camp.Campaign) -> None:
        await self.session.execute(
            sa.insert(T.test_campaigns).values(**dataclasses.asdict(campaign))
        )

    async def get(self, campaign_id: str) -> camp.Campaign | None:
        q = sa.select(T.test_campaigns).where(T.test_campaigns.c.campaign_id == campaign_id)
        row = (await self.session.execute(q)).first()
        return None if row is None else _campaign(row)

    async def newest(self, limit: int, open_at: datetime | None = None) -> list[camp.Campaign]:
        c = T.test_campaigns.c
        q = sa.select(T.test_campaigns).order_by(c.starts_at.desc(), c.campaign_id).limit(limit)
        if open_at is not None:
            q = q.where(c.ends_at > open_at, c.starts_at <= open_at)
        return [_campaign(r) for r in await self.session.execute(q)]

    async def residents_of(
        self, place_kind: str, place_id: str, person_ids: set[str] | None = None
    ) -> list[camp.Resident]:
        """The residents of a compound or building (of those of ``person_ids``, if given;
        None: every one), with their status in force and their building's grid."""
        r, h, b, s = T.residents.c, T.households.c, T.buildings.c, T.person_status.c
        q = (
            sa.select(r.resident_id, r.household_id, h.building_id, s.status, b.grid_id)
            .join(T.households, h.household_id == r.household_id)
            .join(T.buildings, b.building_id == h.building_id)
            .outerjoin(T.person_status, s.person_id == r.resident_id)
            .order_by(r.resident_id)
        )
        if place_kind == "compound":
            q = q.where(b.compound_id == place_id)
        else:
            q = q.where(b.building_id == place_id)
        if person_ids is None:
            return [camp.Resident(*row) for row in await self.session.execute(q)]
        out = []
        ids = sorted(person_ids)
        for i in range(0, len(ids), IN_CHUNK):
            part = q.where(r.resident_id.in_(ids[i : i + IN_CHUNK]))
            out.extend(camp.Resident(*row) for row in await self.session.execute(part))
        return out

    async def known(self, person_ids: set[str]) -> set[str]:
        """Which of these are residents anywhere."""
        ids, out = sorted(person_ids), set()
        for i in range(0, len(ids), IN_CHUNK):
            q = sa.select(T.residents.c.resident_id).where(
                T.residents.c.resident_id.in_(ids[i : i + IN_CHUNK])
            )
            out.update(await self.session.scalars(q))
        return out

    async def add_members(self, members: list[camp.Member]) -> None:
        if members:
            try:
                await self.session.execute(
                    sa.insert(T.campaign_people), [dataclasses.asdict(m) for m in members]
                )
            except IntegrityError:
                raise camp.RecordedMeanwhile("a person joined meanwhile") from None

    async def members(self, campaign_id: str) -> dict[str, camp.Member]:
        q = sa.select(T.campaign_people).where(T.campaign_people.c.campaign_id == campaign_id)
        return {row.person_id: camp.Member(**row._mapping) for row in await self.session.execute(q)}

    async def results_by_person(self, campaign_id: str) -> dict[str, list[camp.Result]]:
        c = T.campaign_results.c
        q = sa.select(c.person_id, c.result).where(c.campaign_id == campaign_id)
        out: dict[str, list[camp.Result]] = {}
        for person_id, result in await self.session.execute(q):
            out.setdefault(person_id, []).append(camp.Result(result))
        return out

    async def results_of(self, campaign_id: str, person_id: str) -> list[camp.TestResult]:
        c = T.campaign_results.c
        q = (
            sa.select(T.campaign_results)
            .where(c.campaign_id == campaign_id, c.person_id == person_id)
            .order_by(c.tested_at, c.sample_id)
        )
        return [_test_result(r) for r in await self.session.execute(q)]

    async def recorded(self, sample_ids: set[str]) -> dict[str, camp.TestResult]:
        """The samples of these recorded already (in any campaign)."""
        ids, out = sorted(sample_ids), {}
        c = T.campaign_results.c
        for i in range(0, len(ids), IN_CHUNK):
            q = sa.select(T.campaign_results).where(c.sample_id.in_(ids[i : i + IN_CHUNK]))
            for row in await self.session.execute(q):
                out[row.sample_id] = _test_result(row)
        return out

    async def add_results(self, results: list[camp.TestResult]) -> None:
        if results:
            rows = [{**dataclasses.asdict(r), "result": r.result.value} for r in results]
            try:
                await self.session.execute(sa.insert(T.campaign_results), rows)
            except IntegrityError:
                raise camp.RecordedMeanwhile("a sample was recorded meanwhile") from None

    async def rounds(self, campaign_id: str) -> dict[int, datetime]:
        c = T.campaign_rounds.c
        q = sa.select(c.round, c.at).where(c.campaign_id == campaign_id)
        return {n: as_utc(at) for n, at in await self.session.execute(q)}

    async def add_round(self, campaign_id: str, round_: int, at: datetime, people: int) -> None:
        try:
            await self.session.execute(
                sa.insert(T.campaign_rounds).values(
                    campaign_id=campaign_id, round=round_, at=at, people=people
                )
            )
        except IntegrityError:
            raise camp.RecordedMeanwhile(f"round {round_} done meanwhile") from None

    async def add_part(self, upload_id: str, part: int, text: str, at: datetime) -> None:
        row = {"upload_id": upload_id, "part": part, "text": text, "received_at": at}
        await upsert_row(self.session, T.campaign_uploads, row)

    async def parts(self, upload_id: str) -> list[tuple[int, str]]:
        c = T.campaign_uploads.c
        q = sa.select(c.part, c.text).where(c.upload_id == upload_id).order_by(c.part)
        return [(p, t) for p, t in await self.session.execute(q)]

    async def drop_upload(self, upload_id: str) -> None:
        await self.session.execute(
            sa.delete(T.campaign_uploads).where(T.campaign_uploads.c.upload_id == upload_id)
        )

    async def drop_uploads_before(self, t: datetime) -> int:
        q = sa.delete(T.campaign_uploads).where(T.campaign_uploads.c.received_at < t)
        return (await self.session.execute(q)).rowcount or 0

    async def followed(self, person_ids: set[str]) -> set[str]:
        """Which of these have an open follow-up (their test results count for release)."""
        ids, out, f = sorted(person_ids), set(), T.follow_ups.c
        for i in range(0, len(ids), IN_CHUNK):
            q = sa.select(f.person_id).where(
                f.status == "open", f.person_id.in_(ids[i : i + IN_CHUNK])
            )
            out.update(await self.session.scalars(q))
        return out


# --- check-ins, door visits, reminders (handlers/checkins.py) ----------------------------
def _checkin(row) -> ci.Checkin:
    return ci.Checkin(
        checkin_id=row.checkin_id,
        person_id=row.person_id,
        day=row.day,
        temperature_c=row.temperature_c,
        symptoms=tuple(row.symptoms or ()),
        note=row.note,
        reported_by=row.reported_by,
        source=row.source,
        submitted_at=as_utc(row.submitted_at),
        recorded_at=as_utc(row.recorded_at),
        follow_up=row.follow_up,
    )


def _checkin_values(c: ci.Checkin) -> dict:
    return {
        "person_id": c.person_id,
        "day": c.day,
        "checkin_id": c.checkin_id,
        "temperature_c": c.temperature_c,
        "symptoms": list(c.symptoms),
        "note": c.note,
        "reported_by": c.reported_by,
        "source": c.source,
        "submitted_at": c.submitted_at,
        "recorded_at": c.recorded_at,
        "follow_up": c.follow_up,
    }


def _where_people():
    """Residents with where they live, their community, its clock and policy."""
    r, h, b, c = T.residents, T.households, T.buildings, T.compounds
    return (
        r.outerjoin(h, h.c.household_id == r.c.household_id)
        .outerjoin(b, b.c.building_id == h.c.building_id)
        .outerjoin(c, c.c.compound_id == b.c.compound_id)
    )


class Checkins:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def resident(self, person_id: str) -> ci.Resident | None:
        row = (await self.session.execute(self._resident_query(person_id))).first()
        return None if row is None else self._resident(row)

    async def for_checkin(
        self, person_id: str, checkin_id: str, day: date
    ) -> tuple[ci.Resident | None, ci.Reply | None, ci.Checkin | None, fu.FollowUp | None]:
        """What a check-in needs, in one query (the hot path): the resident (None: not
        one), the reply kept for ``checkin_id`` (anyone's), the check-in in force for the
        day, the open follow-up."""
        rq, k, f = T.checkin_requests, T.checkins, T.follow_ups
        r = T.residents
        q = (
            self._resident_query(person_id)
            .add_columns(
                *[col.label(f"rq_{col.name}") for col in rq.c],
                *[col.label(f"k_{col.name}") for col in k.c],
                *[col.label(f"f_{col.name}") for col in f.c],
            )
            .outerjoin(rq, rq.c.checkin_id == checkin_id)
            .outerjoin(k, sa.and_(k.c.person_id == r.c.resident_id, k.c.day == day))
            .outerjoin(f, sa.and_(f.c.person_id == r.c.resident_id, f.c.status == "open"))
        )
        row = (await self.session.execute(q)).first()
        if row is None:
            return None, await self.reply_of(checkin_id), None, None
        m = row._mapping

        def part(prefix: str) -> SimpleNamespace | None:
            cols = {k[len(prefix) :]: v for k, v in m.items() if k.startswith(prefix)}
            return None if all(v is None for v in cols.values()) else SimpleNamespace(**cols)

        prior, in_force, follow = part("rq_"), part("k_"), part("f_")
        reply = None
        if prior is not None:
            reply = ci.Reply(
                prior.checkin_id,
                prior.person_id,
                prior.day,
                prior.status,
                prior.follow_up,
                as_utc(prior.received_at),
            )
        return (
            self._resident(row),
            reply,
            None if in_force is None else _checkin(in_force),
            None if follow is None else _follow_up(follow),
        )

    @staticmethod
    def _resident(row) -> ci.Resident:
        m = row._mapping
        policy = {k[len("policy_") :]: v for k, v in m.items() if k.startswith("policy_")}
        return ci.Resident(
            person_id=row.resident_id,
            household_id=row.household_id,
            name=row.name or "",
            grid_id=row.grid_id,
            community_id=row.community_id,
            zone=row.time_zone,
            policy=ScreeningPolicy.of(policy),
            status=row.status,
        )

    @staticmethod
    def _resident_query(person_id: str | None) -> sa.Select:
        r, b, c, cm, p, st = (
            T.residents,
            T.buildings,
            T.compounds,
            T.communities,
            T.policies,
            T.person_status,
        )
        policy_cols = [col.label(f"policy_{col.name}") for col in p.c if col.name != "community_id"]
        q = sa.select(
            r.c.resident_id,
            r.c.household_id,
            r.c.name,
            b.c.grid_id,
            c.c.community_id,
            cm.c.time_zone,
            st.c.status,
            *policy_cols,
        ).select_from(
            _where_people()
            .outerjoin(cm, cm.c.community_id == c.c.community_id)
            .outerjoin(p, p.c.community_id == c.c.community_id)
            .outerjoin(st, st.c.person_id == r.c.resident_id)
        )
        return q if person_id is None else q.where(r.c.resident_id == person_id)

    async def reply_of(self, checkin_id: str) -> ci.Reply | None:
        t = T.checkin_requests
        row = (await self.session.execute(sa.select(t).where(t.c.checkin_id == checkin_id))).first()
        if row is None:
            return None
        return ci.Reply(
            row.checkin_id,
            row.person_id,
            row.day,
            row.status,
            row.follow_up,
            as_utc(row.received_at),
        )

    async def in_force(self, person_id: str, day: date) -> ci.Checkin | None:
        t = T.checkins
        row = (
            await self.session.execute(
                sa.select(t).where(t.c.person_id == person_id, t.c.day == day)
            )
        ).first()
        return None if row is None else _checkin(row)

    async def put(self, checkin: ci.Checkin, reply: ci.Reply, replacing: bool) -> None:
        t = T.checkins
        values = _checkin_values(checkin)
        if replacing:
            await self.session.execute(
                sa.update(t)
                .where(t.c.person_id == checkin.person_id, t.c.day == checkin.day)
                .values(values)
            )
        else:
            await self.session.execute(sa.insert(t).values(values))
        await self.session.execute(
            sa.insert(T.checkin_requests).values(
                checkin_id=reply.checkin_id,
                person_id=reply.person_id,
                day=reply.day,
                status=reply.status,
                follow_up=reply.follow_up,
                received_at=reply.received_at,
            )
        )

    async def for_checkins(
        self, keys: list[tuple[str, str, date]]
    ) -> dict[tuple[str, str, date], tuple]:
        """``for_checkin`` for many (person_id, checkin_id, day) at once, set-based: four
        queries for the lot (residents, kept replies, check-ins in force, open follow-ups),
        not one each (the edge's batches, handlers/checkins.check_in_many)."""
        people = sorted({p for p, _, _ in keys})
        ids = sorted({c for _, c, _ in keys})
        days = sorted({d for _, _, d in keys})
        r, rq, k, f = T.residents, T.checkin_requests, T.checkins, T.follow_ups
        who: dict[str, ci.Resident] = {}
        replies: dict[str, ci.Reply] = {}
        in_force: dict[tuple[str, date], ci.Checkin] = {}
        follows: dict[str, fu.FollowUp] = {}
        for i in range(0, len(people), IN_CHUNK):
            chunk = people[i : i + IN_CHUNK]
            q = self._resident_query(None).where(r.c.resident_id.in_(chunk))
            for row in await self.session.execute(q):
                who[row.resident_id] = self._resident(row)
            q = sa.select(k).where(k.c.person_id.in_(chunk), k.c.day.in_(days))
            for row in await self.session.execute(q):
                in_force[(row.person_id, row.day)] = _checkin(row)
            q = sa.select(f).where(f.c.person_id.in_(chunk), f.c.status == "open")
            for row in await self.session.execute(q):
                follows[row.person_id] = _follow_up(row)
        for i in range(0, len(ids), IN_CHUNK):
            q = sa.select(rq).where(rq.c.checkin_id.in_(ids[i : i + IN_CHUNK]))
            for row in await self.session.execute(q):
                replies[row.checkin_id] = ci.Reply(
                    row.checkin_id,
                    row.person_id,
                    row.day,
                    row.status,
                    row.follow_up,
                    as_utc(row.received_at),
                )
        out = {}
        for p, c, d in keys:
            w = who.get(p)
            out[(p, c, d)] = (
                w,
                replies.get(c),
                in_force.get((p, d)) if w else None,
                follows.get(p) if w else None,
            )
        return out

    async def put_many(self, rows: list[tuple[ci.Checkin, ci.Reply, bool]]) -> None:
        """``put`` for many (checkin, reply, replacing): one executemany a statement."""
        if not rows:
            return
        t = T.checkins
        new = [_checkin_values(c) for c, _, replacing in rows if not replacing]
        again = [
            {**_checkin_values(c), "k_person": c.person_id, "k_day": c.day}
            for c, _, replacing in rows
            if replacing
        ]
        if new:
            await self.session.execute(sa.insert(t), new)
        if again:  # the SET clause from the rows' column names
            await self.session.execute(
                sa.update(t).where(
                    t.c.person_id == sa.bindparam("k_person"), t.c.day == sa.bindparam("k_day")
                ),
                again,
            )
        await self.session.execute(
            sa.insert(T.checkin_requests),
            [
                {
                    "checkin_id": reply.checkin_id,
                    "person_id": reply.person_id,
                    "day": reply.day,
                    "status": reply.status,
                    "follow_up": reply.follow_up,
                    "received_at": reply.received_at,
                }
                for _, reply, _ in rows
            ],
        )

    async def of_person(self, person_id: str, limit: int = 60) -> list[ci.Checkin]:
        t = T.checkins
        q = sa.select(t).where(t.c.person_id == person_id).order_by(t.c.day.desc()).limit(limit)
        return [_checkin(r) for r in await self.session.execute(q)]

    # --- door visits
    async def visit(self, visit_id: str) -> dict | None:
        t = T.door_visits
        row = (await self.session.execute(sa.select(t).where(t.c.visit_id == visit_id))).first()
        return None if row is None else dict(row._mapping)

    async def add_visit(self, visit: ci.Visit, members: list[dict]) -> None:
        await self.session.execute(
            sa.insert(T.door_visits).values(
                visit_id=visit.visit_id,
                household_id=visit.household_id,
                worker_id=visit.worker_id,
                visited_at=visit.visited_at,
                day=visit.day,
                members=members,
                recorded_at=visit.recorded_at,
            )
        )

    # --- reminders and missed days
    async def communities(self) -> list[tuple[str, str | None, ScreeningPolicy]]:
        cm, p = T.communities, T.policies
        q = sa.select(
            cm.c.community_id,
            cm.c.time_zone,
            *[col.label(f"policy_{col.name}") for col in p.c if col.name != "community_id"],
        ).select_from(cm.outerjoin(p, p.c.community_id == cm.c.community_id))
        out = []
        for row in await self.session.execute(q.order_by(cm.c.community_id)):
            m = row._mapping
            policy = {k[len("policy_") :]: v for k, v in m.items() if k.startswith("policy_")}
            out.append((row.community_id, row.time_zone, ScreeningPolicy.of(policy)))
        return out

    async def to_remind(
        self, community_id: str, day: date, limit: int, after: str = ""
    ) -> list[ci.ReminderTarget]:
        """Residents of the community with no check-in and no reminder for ``day``, in the
        order of their ids from ``after`` on: one set-based query (an anti-join on both),
        not one per resident; a batch starts where the last one ended."""
        r, c, k, rem = T.residents, T.compounds, T.checkins, T.checkin_reminders
        q = (
            sa.select(r.c.resident_id, r.c.name, r.c.household_id)
            .select_from(_where_people())
            .where(
                c.c.community_id == community_id,
                r.c.resident_id > after,
                ~sa.exists().where(k.c.person_id == r.c.resident_id, k.c.day == day),
                ~sa.exists().where(rem.c.person_id == r.c.resident_id, rem.c.day == day),
            )
            .order_by(r.c.resident_id)
            .limit(limit)
        )
        return [
            ci.ReminderTarget(row.resident_id, row.name or "", row.household_id)
            for row in await self.session.execute(q)
        ]

    async def reminded(self, person_ids: list[str], day: date, at: datetime) -> None:
        if person_ids:
            await self.session.execute(
                sa.insert(T.checkin_reminders),
                [{"person_id": p, "day": day, "sent_at": at} for p in person_ids],
            )

    async def missed_runs(
        self, community_id: str, day: date, days: int, limit: int, after: str = ""
    ) -> list[ci.MissedRun]:
        """Residents reminded on each of the ``days`` local days before ``day`` with no
        check-in on any of them, and no door visit asked for since their last check-in."""
        r, c, b, k = T.residents, T.compounds, T.buildings, T.checkins
        rem, dv = T.checkin_reminders, T.door_visit_requests
        first, last = day - timedelta(days=days), day - timedelta(days=1)
        yesterday = rem.alias("yesterday")
        last_checkin = (
            sa.select(sa.func.max(k.c.day))
            .where(k.c.person_id == r.c.resident_id, k.c.day < day)
            .scalar_subquery()
        )
        q = (
            sa.select(
                r.c.resident_id,
                r.c.name,
                r.c.household_id,
                b.c.grid_id,
                last_checkin.label("last_checkin_day"),
            )
            .select_from(
                _where_people().join(
                    yesterday,
                    sa.and_(yesterday.c.person_id == r.c.resident_id, yesterday.c.day == last),
                )
            )
            .where(
                c.c.community_id == community_id,
                r.c.resident_id > after,
                sa.select(sa.func.count())
                .where(rem.c.person_id == r.c.resident_id, rem.c.day.between(first, last))
                .scalar_subquery()
                == days,
                ~sa.exists().where(k.c.person_id == r.c.resident_id, k.c.day.between(first, last)),
                ~sa.exists().where(
                    dv.c.person_id == r.c.resident_id,
                    sa.or_(last_checkin.is_(None), dv.c.day > last_checkin),
                ),
            )
            .order_by(r.c.resident_id)
            .limit(limit)
        )
        return [
            ci.MissedRun(
                row.resident_id,
                row.name or "",
                row.household_id,
                row.grid_id,
                row.last_checkin_day,
            )
            for row in await self.session.execute(q)
        ]

    async def visits_requested(self, rows: list[dict]) -> None:
        if rows:
            await self.session.execute(sa.insert(T.door_visit_requests), rows)

    async def missed_follow_up_days(
        self, community_id: str, days: list[date], limit: int
    ) -> list[ms.MissedDay]:
        """One query: the community's open follow-ups joined to the candidate ``days``
        (a small literal table) on domain/missed.py's rule (after the day it began, up to
        its planned end), less the days with a check-in or a follow-up record."""
        if not days:
            return []
        r, b, c, k = T.residents, T.buildings, T.compounds, T.checkins
        f, fd = T.follow_ups, T.follow_up_days
        picks = [sa.select(sa.literal(d, sa.Date).label("day")) for d in days]
        d = (sa.union_all(*picks) if len(picks) > 1 else picks[0]).subquery("d")
        last_checkin = (
            sa.select(sa.func.max(k.c.day))
            .where(k.c.person_id == r.c.resident_id, k.c.day < d.c.day)
            .scalar_subquery()
        )
        q = (
            sa.select(
                r.c.resident_id,
                r.c.name,
                r.c.household_id,
                b.c.grid_id,
                f.c.follow_up_id,
                f.c.started_on,
                f.c.ends_on,
                d.c.day,
                last_checkin.label("last_checkin_day"),
            )
            .select_from(
                _where_people()
                .join(f, sa.and_(f.c.person_id == r.c.resident_id, f.c.status == "open"))
                .join(d, sa.and_(d.c.day > f.c.started_on, d.c.day <= f.c.ends_on))
            )
            .where(
                c.c.community_id == community_id,
                ~sa.exists().where(k.c.person_id == r.c.resident_id, k.c.day == d.c.day),
                ~sa.exists().where(fd.c.person_id == r.c.resident_id, fd.c.day == d.c.day),
            )
            .order_by(r.c.resident_id, d.c.day)
            .limit(limit)
        )
        return [
            ms.MissedDay(
                row.resident_id,
                row.name or "",
                row.household_id,
                row.grid_id,
                row.follow_up_id,
                row.started_on,
                row.ends_on,
                row.day,
                row.last_checkin_day,
            )
            for row in await self.session.execute(q)
        ]


# --- follow-up (handlers/followup.py) -----------------------------------------------------
def _follow_up(row) -> fu.FollowUp:
    return fu.FollowUp(
        follow_up_id=row.follow_up_id,
        person_id=row.person_id,
        reason=row.reason,
        started_on=row.started_on,
        ends_on=row.ends_on,
        status=row.status,
        opened_at=as_utc(row.opened_at),
        last_symptom_day=row.last_symptom_day,
        last_test_at=as_utc(row.last_test_at),
        last_test_negative=row.last_test_negative,
        released_at=as_utc(row.released_at),
        release_reason=row.release_reason,
    )


class FollowUps:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_of(self, person_id: str) -> fu.FollowUp | None:
        t = T.follow_ups
        row = (
            await self.session.execute(
                sa.select(t).where(t.c.person_id == person_id, t.c.status == "open")
            )
        ).first()
        return None if row is None else _follow_up(row)

    async def save(self, f: fu.FollowUp) -> None:
        await upsert_row(self.session, T.follow_ups, dataclasses.asdict(f))

    async def put_day(self, d: fu.FollowUpDay) -> bool:
        """Record the day (the newest report of the day replaces an earlier one); True if
        the person had no record for that day yet."""
        t = T.follow_up_days
        values = {**dataclasses.asdict(d), "symptoms": list(d.symptoms)}
        where = sa.and_(t.c.person_id == d.person_id, t.c.day == d.day)
        done = await self.session.execute(sa.update(t).where(where).values(values))
        if done.rowcount:
            return False
        await self.session.execute(sa.insert(t).values(values))
        return True

    async def of_person(self, person_id: str) -> list[fu.FollowUp]:
        t = T.follow_ups
        q = sa.select(t).where(t.c.person_id == person_id).order_by(t.c.started_on)
        return [_follow_up(r) for r in await self.session.execute(q)]

    async def days_of(self, person_id: str) -> list[fu.FollowUpDay]:
        t = T.follow_up_days
        q = sa.select(t).where(t.c.person_id == person_id).order_by(t.c.day)
        return [
            fu.FollowUpDay(
                r.person_id,
                r.day,
                r.follow_up_id,
                r.source,
                r.source_ref,
                r.temperature_c,
                tuple(r.symptoms or ()),
                as_utc(r.recorded_at),
            )
            for r in await self.session.execute(q)
        ]

    async def open_ending_by(self, day: date, limit: int = 1000) -> list[fu.FollowUp]:
        t = T.follow_ups
        q = (
            sa.select(t)
            .where(t.c.status == "open", t.c.ends_on <= day)
            .order_by(t.c.ends_on, t.c.person_id)
            .limit(limit)
        )
        return [_follow_up(r) for r in await self.session.execute(q)]


# --- the office's queries (handlers/office.py): set-based reads over the parts' tables ----
class Office:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def status_counts(
        self, community_id: str, at: datetime | None = None
    ) -> list[tuple[str, str, int]]:
        """(compound, status, residents) of the community's residents: their status in
        force (``at``: the last step before then, from the history), ``normal`` for none.
        One GROUP BY over residents, households, buildings, compounds and the statuses."""
        r, h, b, c = T.residents.c, T.households.c, T.buildings.c, T.compounds.c
        if at is None:
            st = T.person_status
            on = st.c.person_id == r.resident_id
        else:
            hist = T.status_history.c
            rank = sa.func.row_number().over(
                partition_by=hist.person_id, order_by=(hist.at.desc(), hist.id.desc())
            )
            st = (
                sa.select(hist.person_id, hist.status, rank.label("n"))
                .where(hist.at < at)
                .subquery("st")
            )
            on = sa.and_(st.c.person_id == r.resident_id, st.c.n == 1)
        # the literal inline: PostgreSQL must see the same expression in GROUP BY
        status = sa.func.coalesce(st.c.status, sa.literal_column("'normal'"))
        q = (
            sa.select(b.compound_id, status.label("status"), sa.func.count())
            .select_from(
                T.residents.join(T.households, h.household_id == r.household_id)
                .join(T.buildings, b.building_id == h.building_id)
                .join(T.compounds, c.compound_id == b.compound_id)
                .outerjoin(st, on)
            )
            .where(c.community_id == community_id)
            .group_by(b.compound_id, status)
        )
        return [(row[0], row[1], row[2]) for row in await self.session.execute(q)]

    async def step_counts(
        self, community_id: str, start: datetime, end: datetime, statuses: list[str]
    ) -> list[tuple[str, str, int]]:
        """(compound, status, people) of the community's residents who took a step to one
        of ``statuses`` in [start, end)."""
        r, h, b, c = T.residents.c, T.households.c, T.buildings.c, T.compounds.c
        hist = T.status_history.c
        q = (
            sa.select(b.compound_id, hist.status, sa.func.count(sa.distinct(hist.person_id)))
            .select_from(
                T.status_history.join(T.residents, r.resident_id == hist.person_id)
                .join(T.households, h.household_id == r.household_id)
                .join(T.buildings, b.building_id == h.building_id)
                .join(T.compounds, c.compound_id == b.compound_id)
            )
            .where(
                c.community_id == community_id,
                hist.status.in_(statuses),
                hist.at >= start,
                hist.at < end,
            )
            .group_by(b.compound_id, hist.status)
        )
        return [(row[0], row[1], row[2]) for row in await self.session.execute(q)]

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
        """The community's residents whose last check-in up to ``today`` is on or before
        ``cutoff`` (or who never checked in), by compound, grid and id: where they live,
        their grid's worker, their status, their last check-in day, whether they were
        reminded today and whether a door visit was asked for since their last check-in.
        One query."""
        r, b, c, k = T.residents, T.buildings, T.compounds, T.checkins
        g, st, rem, dv = T.grids, T.person_status, T.checkin_reminders, T.door_visit_requests
        last = (
            sa.select(sa.func.max(k.c.day))
            .where(k.c.person_id == r.c.resident_id, k.c.day <= today)
            .scalar_subquery()
        )
        q = (
            sa.select(
                r.c.resident_id.label("person_id"),
                r.c.name,
                r.c.household_id,
                b.c.building_id,
                b.c.compound_id,
                b.c.grid_id,
                g.c.worker_id.label("grid_worker"),
                st.c.status,
                last.label("last_checkin_day"),
                sa.exists()
                .where(rem.c.person_id == r.c.resident_id, rem.c.day == today)
                .label("reminded_today"),
                sa.exists()
                .where(
                    dv.c.person_id == r.c.resident_id,
                    sa.or_(last.is_(None), dv.c.day > last),
                )
                .label("door_visit_requested"),
            )
            .select_from(
                _where_people()
                .outerjoin(g, g.c.grid_id == b.c.grid_id)
                .outerjoin(st, st.c.person_id == r.c.resident_id)
            )
            .where(c.c.community_id == community_id, sa.or_(last.is_(None), last <= cutoff))
            .order_by(b.c.compound_id, b.c.grid_id, r.c.resident_id)
            .limit(limit)
        )
        if compound_id is not None:
            q = q.where(b.c.compound_id == compound_id)
        if grid_id is not None:
            q = q.where(b.c.grid_id == grid_id)
        return [
            {
                **row._mapping,
                "reminded_today": bool(row.reminded_today),
                "door_visit_requested": bool(row.door_visit_requested),
            }
            for row in await self.session.execute(q)
        ]

    async def test_results_of(self, person_id: str) -> list[camp.TestResult]:
        c = T.campaign_results.c
        q = (
            sa.select(T.campaign_results)
            .where(c.person_id == person_id)
            .order_by(c.tested_at, c.sample_id)
        )
        return [_test_result(r) for r in await self.session.execute(q)]

    async def household_quarantines_of(self, household_id: str) -> list[HouseholdQuarantine]:
        q = T.household_quarantines.c
        rows = await self.session.execute(
            sa.select(T.household_quarantines)
            .where(q.household_id == household_id)
            .order_by(q.started_at)
        )
        return [_household_quarantine(r) for r in rows]

    async def stays_of_person(self, person_id: str) -> list[dict]:
        s = T.quarantine_stays.c
        q = sa.select(T.quarantine_stays).where(s.person_id == person_id).order_by(s.id)
        return [
            {**r._mapping, "started_at": as_utc(r.started_at), "ended_at": as_utc(r.ended_at)}
            for r in await self.session.execute(q)
        ]

    async def visits_to(self, household_id: str) -> list[dict]:
        v = T.door_visits.c
        q = sa.select(T.door_visits).where(v.household_id == household_id).order_by(v.visited_at)
        return [
            {**r._mapping, "visited_at": as_utc(r.visited_at)}
            for r in await self.session.execute(q)
        ]

    async def proposals_about(self, person_id: str) -> list[Proposal]:
        """Close-contact proposals with the person as the candidate or as the case."""
        c = T.contact_proposals.c
        q = (
            sa.select(T.contact_proposals)
            .where(sa.or_(c.candidate_id == person_id, c.case_person_id == person_id))
            .order_by(c.proposed_at, c.case_person_id, c.candidate_id)
        )
        return [_proposal(r) for r in await self.session.execute(q)]
