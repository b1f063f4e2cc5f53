"""Screening's API (``api.screening.<op>``): the office's queries and commands."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Literal

from faststream import Context, Depends
from pydantic import AliasChoices, Field, model_validator

from gridcare.contracts.edge import Symptom
from gridcare.contracts.refdata import ControlLevel
from gridcare.shared.api import ApiRouter, Empty, Request, unit_of_work
from gridcare.shared.schema import Timestamp, Token

from ..adapters.register import REGISTER, Register
from ..domain.campaigns import Result, ResultRow
from ..domain.checkins import MemberResult, Visit
from ..domain.contacts import ProposalStatus
from ..domain.status import HealthStatus, Role
from ..handlers import campaigns, status
from ..handlers import cases as case_handlers
from ..handlers import checkins as checkin_handlers
from ..handlers import compounds as compound_handlers
from ..handlers import contacts as contact_handlers
from ..handlers import followup as followup_handlers
from ..handlers import office as office_handlers
from ..handlers import quarantine as quarantine_handlers
from ..handlers import questionnaires as questionnaire_handlers
from ..unit_of_work import ScreeningUnitOfWork
from . import CLOCK


class ListCases(Request):
    limit: int = Field(20, ge=1, le=1000)
    person_id: Token | None = None


class ListQuestionnaires(Request):
    person_id: Token | None = None
    follow_up: Literal["none", "call_back", "urgent_call_back"] | None = None
    limit: int = Field(50, ge=1, le=1000)


class SetStatus(Request):
    """A step of the status machine by a member of staff (``by``, a staff or grid worker
    id; for ``lab``, the lab's name) in ``role`` (omitted: their one role)."""

    person_id: Token
    status: HealthStatus
    by: str = Field(min_length=1, max_length=200, validation_alias=AliasChoices("by", "set_by"))
    role: Role | None = None
    reason: str = Field(min_length=3, max_length=1000)
    until: Timestamp | None = None


class ShowStatus(Request):
    person_id: Token


# --- test campaigns ------------------------------------------------------------------------
class StartCampaign(Request):
    """A campaign of a compound or building (``campaign_id`` omitted: ``<place>-<local
    start YYYYMMDD-HHMM>``); ``door_call_after_min`` after the residents' reminder, the
    untested households' grid workers are asked to call at the door."""

    place_kind: Literal["compound", "building"]
    place_id: Token
    starts_at: Timestamp
    ends_at: Timestamp
    site: str = Field(min_length=1, max_length=200)  # where people go to be tested
    by: str = Field(min_length=1, max_length=200)
    campaign_id: Token | None = None
    place_name: str = Field("", max_length=200)  # how notices name the place (default: id)
    door_call_after_min: int = Field(120, ge=1, le=7 * 24 * 60)


class CampaignRef(Request):
    campaign_id: Token


class CampaignUntested(Request):
    campaign_id: Token
    building_id: Token | None = None  # only this building's
    limit: int = Field(2000, ge=1, le=10_000)  # listed at most (the count is of all)


class ListCampaigns(Request):
    limit: int = Field(20, ge=1, le=1000)


class ResultIn(Request):
    sample_id: Token
    person_id: Token
    result: Result
    tested_at: Timestamp
    lab: str = Field(min_length=1, max_length=200)


class AddResults(Request):
    campaign_id: Token
    results: list[ResultIn] = Field(min_length=1, max_length=5000)


class UploadPart(Request):
    """One part of a CSV file too large for one message, cut at a line end."""

    upload_id: Token
    part: int = Field(ge=1, le=100_000)
    text: str


class ImportResults(Request):
    """A lab's CSV file: its text (``csv``), or the parts sent as ``upload_id`` (``parts``:
    how many, so a missing one is named)."""

    campaign_id: Token
    file_name: str = Field("results.csv", min_length=1, max_length=200)
    csv: str | None = None
    upload_id: Token | None = None
    parts: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_source(self) -> ImportResults:
        if (self.csv is None) == (self.upload_id is None):
            raise ValueError("give either csv (the file's text) or upload_id")
        return self


# --- close contacts and compounds -----------------------------------------------------------
class ListProposals(Request):
    grid_id: Token | None = None
    case_person_id: Token | None = None
    status: ProposalStatus | Literal["all"] = ProposalStatus.PROPOSED
    limit: int = Field(1000, ge=1, le=5000)


class DecideProposal(Request):
    case_person_id: Token
    candidate_id: Token
    by: Token  # the grid worker (staff id)
    reason: str = Field("", max_length=1000)  # required to reject


class ShowCompounds(Request):
    compound_id: Token | None = None


class SetCompoundLevel(Request):
    compound_id: Token
    level: ControlLevel
    by: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=3, max_length=1000)


# --- quarantine -----------------------------------------------------------------------------
People = Annotated[list[Token], Field(min_length=1, max_length=500)]


class StartHouseholdQuarantine(Request):
    """Every member of the household to home quarantine (a member confirmed, in hospital or
    at a central site keeps it) until ``until`` (omitted: the policy's days, 14)."""

    household_id: Token
    by: str = Field(min_length=1, max_length=200)
    role: Role | None = None
    reason: str = Field(min_length=3, max_length=1000)
    until: Timestamp | None = None


class EndHouseholdQuarantine(Request):
    household_id: Token
    by: str = Field(min_length=1, max_length=200)
    role: Role | None = None
    reason: str = Field(min_length=3, max_length=1000)


class AddSite(Request):
    """A central quarantine site (a requisitioned hotel) of a community: its rooms named
    (``rooms``) or counted (``room_count``: rooms 1..n). A room takes one person."""

    site_id: Token
    name: str = Field(min_length=1, max_length=200)
    address: str = Field("", max_length=500)
    community_id: Token
    by: str = Field(min_length=1, max_length=200)
    rooms: list[Token] | None = Field(None, min_length=1, max_length=5000)
    room_count: int | None = Field(None, ge=1, le=5000)

    @model_validator(mode="after")
    def _rooms_one_way(self) -> AddSite:
        if self.rooms is not None and self.room_count is not None:
            raise ValueError("give rooms (their names) or room_count, not both")
        return self


class AddRooms(Request):
    """More rooms: named (``rooms``) or ``count`` numbered on from the highest number."""

    site_id: Token
    rooms: list[Token] | None = Field(None, min_length=1, max_length=5000)
    count: int | None = Field(None, ge=1, le=5000)

    @model_validator(mode="after")
    def _rooms_one_way(self) -> AddRooms:
        if (self.rooms is None) == (self.count is None):
            raise ValueError("give either rooms (their names) or count")
        return self


class SiteIntake(Request):
    """A batch into a site, all or nothing; a repeat of ``intake_id`` changes nothing."""

    site_id: Token
    intake_id: Token
    people: People
    by: str = Field(min_length=1, max_length=200)
    role: Role | None = None
    reason: str = Field(min_length=3, max_length=1000)


class SiteTransfer(Request):
    from_site: Token
    to_site: Token
    people: People
    by: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=3, max_length=1000)


class SiteDischarge(Request):
    """People leave a site to ``to``: released, home_quarantine, normal or in_hospital (as
    the status machine allows from where they are)."""

    site_id: Token
    people: People
    to: HealthStatus
    by: str = Field(min_length=1, max_length=200)
    role: Role | None = None
    reason: str = Field(min_length=3, max_length=1000)


class SiteOccupancy(Request):
    site_id: Token | None = None


# --- check-ins, door visits, follow-up ----------------------------------------------------
class VisitMember(Request):
    person_id: Token
    temperature_c: float | None = Field(None, ge=34.0, le=43.0)
    symptoms: list[Symptom] = Field(default_factory=list, max_length=10)
    not_at_home: bool = False


class RecordVisit(Request):
    """A grid worker's door-to-door visit to a household, each member's result (those at
    home: that day's check-in, reported by the worker). ``visit_id`` is its idempotency key."""

    visit_id: Token
    worker_id: Token
    household_id: Token
    visited_at: Timestamp
    members: list[VisitMember] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _each_member_once(self) -> RecordVisit:
        ids = [m.person_id for m in self.members]
        if len(set(ids)) != len(ids):
            raise ValueError("a member is named more than once")
        return self


class PersonRef(Request):
    person_id: Token


# --- the office's queries (handlers/office.py) ----------------------------------------------
class OfficeCounts(Request):
    """Per compound, for the community's local ``day`` (omitted: today on its clock)."""

    community_id: Token | None = None
    day: date | None = None


class OfficeOverdue(Request):
    """Who is overdue: ``checkin`` (none today after the reminder time, or ``min_days``
    missed) or ``test`` (untested in a running campaign)."""

    kind: Literal["checkin", "test"]
    community_id: Token | None = None
    compound_id: Token | None = None
    grid_id: Token | None = None
    min_days: int = Field(1, ge=1, le=60)
    limit: int = Field(1000, ge=1, le=5000)


class OfficeTimeline(Request):
    person_id: Token
    since: Timestamp | None = None


def router(service: str) -> ApiRouter:
    api = ApiRouter(service)

    @api.op("cases", description="The newest cases (of one person), times on the local clock.")
    async def cases(req: ListCases, uow: ScreeningUnitOfWork = Depends(unit_of_work)) -> dict:
        return {"cases": await case_handlers.newest_cases(req.limit, req.person_id, uow)}

    @api.op(
        "status.set",
        description="A step of the health status machine by a member of staff in a role "
        "(PersonStatusChanged); refused with what is allowed if the table does not allow it.",
    )
    async def set_status(
        req: SetStatus,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        # every gate waits on this decision: before ordinary writers, and on SQLite on the
        # loop's thread (a short transaction; no thread hop per statement)
        uow.urgent = uow.blocking = True
        d = await status.set_status(
            uow,
            req.person_id,
            req.status,
            by=req.by,
            role=req.role,
            reason=req.reason,
            now=clock(),
            until=req.until,
        )
        return {
            "person_id": d.person_id,
            "status": d.status.value,
            "previous_status": d.previous.value if d.previous else None,
            "role": d.role,
            "holds_at_gate": d.holds_at_gate,
        }

    @api.op("status.show", description="A person's health status and its history.")
    async def show_status(
        req: ShowStatus, uow: ScreeningUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        return await status.status_of(req.person_id, uow)

    @api.op(
        "questionnaires.list",
        description="The newest PHQ-9 / GAD-7 submissions (of one person, with one "
        "follow-up: none, call_back, urgent_call_back), times on the local clock.",
    )
    async def questionnaires_list(
        req: ListQuestionnaires, uow: ScreeningUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        found = await questionnaire_handlers.newest(
            uow,
            limit=req.limit,
            person_id=req.person_id,
            follow_up=req.follow_up,
        )
        return {"submissions": found}

    @api.op("status.list", description="The statuses, and which hold a person at the gate.")
    async def list_statuses(req: Empty) -> dict:
        return {"statuses": status.statuses()}

    @api.op(
        "status.transitions",
        description="The health status machine as data: every allowed step, who may take "
        "it, and which are steps back (a reason required).",
    )
    async def status_transitions(req: Empty) -> dict:
        return status.transitions()

    # --- test campaigns --------------------------------------------------------------------
    @api.op(
        "campaigns.start",
        description="A nucleic-acid campaign of a compound or building: its residents now are "
        "due (not those in hospital or central quarantine).",
    )
    async def campaigns_start(
        req: StartCampaign,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await campaigns.start_campaign(
            uow,
            place_kind=req.place_kind,
            place_id=req.place_id,
            starts_at=req.starts_at,
            ends_at=req.ends_at,
            site=req.site,
            by=req.by,
            now=clock(),
            campaign_id=req.campaign_id,
            place_name=req.place_name,
            door_call_after_min=req.door_call_after_min,
        )

    @api.op("campaigns.list", description="The newest campaigns.")
    async def campaigns_list(
        req: ListCampaigns, uow: ScreeningUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        return {"campaigns": await campaigns.newest(uow, req.limit)}

    @api.op(
        "campaigns.show",
        description="A campaign's counts: due, tested, positive, negative, pending (invalid "
        "samples only), not tested, excluded; its reminder rounds.",
    )
    async def campaigns_show(
        req: CampaignRef, uow: ScreeningUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        return await campaigns.show(uow, req.campaign_id)

    @api.op(
        "campaigns.untested",
        description="Who is due and not tested yet (or only invalid samples), by building "
        "and household.",
    )
    async def campaigns_untested(
        req: CampaignUntested, uow: ScreeningUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        return await campaigns.untested(
            uow, req.campaign_id, building_id=req.building_id, limit=req.limit
        )

    @api.op(
        "campaigns.results.add",
        description="Results (idempotent by sample_id), all or none: every fault named. A "
        "positive confirms the person and quarantines the household.",
    )
    async def campaigns_results_add(
        req: AddResults,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        rows = [
            ResultRow(f"results.{i}", r.sample_id, r.person_id, r.result, r.tested_at, r.lab)
            for i, r in enumerate(req.results)
        ]
        return await campaigns.record_results(uow, req.campaign_id, rows, now=clock())

    @api.op(
        "campaigns.results.upload",
        description="One part of a large CSV file (cut at line ends), kept for "
        "campaigns.results.import.",
    )
    async def campaigns_results_upload(
        req: UploadPart,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await campaigns.upload_part(uow, req.upload_id, req.part, req.text, now=clock())

    @api.op(
        "campaigns.results.import",
        description="A lab's CSV file (sample_id, person_id, result, tested_at, lab): every "
        "bad row named as file:line, nothing written unless every row is good.",
    )
    async def campaigns_results_import(
        req: ImportResults,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await campaigns.import_csv(
            uow,
            req.campaign_id,
            req.file_name,
            now=clock(),
            text=req.csv,
            upload_id=req.upload_id,
            parts=req.parts,
        )

    @api.op(
        "campaigns.remind",
        description="The reminder round due: 1 each untested resident (notice.test_campaign), "
        "2 (door_call_after_min later) their grid workers, to call at the door.",
    )
    async def campaigns_remind(
        req: CampaignRef,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await campaigns.remind(uow, req.campaign_id, now=clock())

    # --- close contacts and compounds ------------------------------------------------------
    @api.op(
        "contacts.proposed",
        description="Close-contact candidates of confirmed cases (of a grid, of a case; by "
        "default those still to decide), oldest first.",
    )
    async def contacts_proposed(
        req: ListProposals, uow: ScreeningUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        found = await contact_handlers.proposals(
            uow,
            grid_id=req.grid_id,
            case_person_id=req.case_person_id,
            status=None if req.status == "all" else ProposalStatus(req.status).value,
            limit=req.limit,
        )
        return {"proposals": found}

    @api.op(
        "contacts.confirm",
        description="A grid worker confirms a candidate: a close contact (PersonStatusChanged).",
    )
    async def contacts_confirm(
        req: DecideProposal,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await contact_handlers.decide(
            req.case_person_id,
            req.candidate_id,
            ProposalStatus.CONFIRMED,
            by=req.by,
            reason=req.reason,
            now=clock(),
            uow=uow,
        )

    @api.op(
        "contacts.reject",
        description="A grid worker rejects a candidate, with a reason (kept).",
    )
    async def contacts_reject(
        req: DecideProposal,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await contact_handlers.decide(
            req.case_person_id,
            req.candidate_id,
            ProposalStatus.REJECTED,
            by=req.by,
            reason=req.reason,
            now=clock(),
            uow=uow,
        )

    @api.op(
        "compounds.show",
        description="Each compound's level, its last new case, the days without one, and "
        "whether (since when) it is epidemic-free.",
    )
    async def compounds_show(
        req: ShowCompounds,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return {"compounds": await compound_handlers.show(uow, clock(), req.compound_id)}

    @api.op(
        "compounds.level.set",
        description="The office sets a compound's level, with a reason (CompoundLevelChanged).",
    )
    async def compounds_level_set(
        req: SetCompoundLevel,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await compound_handlers.set_level(
            req.compound_id, req.level, by=req.by, reason=req.reason, now=clock(), uow=uow
        )

    # --- quarantine ------------------------------------------------------------------------
    @api.op(
        "quarantine.household.start",
        description="A household into home quarantine: every member to home_quarantine "
        "(PersonStatusChanged with the household; one held more strictly keeps it), until "
        "the planned end (default 14 local days); again while active: extended.",
    )
    async def quarantine_household_start(
        req: StartHouseholdQuarantine,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await quarantine_handlers.start_household(
            uow, req.household_id, by=req.by, role=req.role, reason=req.reason, now=clock(),
            until=req.until,
        )  # fmt: skip

    @api.op(
        "quarantine.household.end",
        description="End a household's quarantine: the members at home are released (the "
        "door alert stops once nobody is held).",
    )
    async def quarantine_household_end(
        req: EndHouseholdQuarantine,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await quarantine_handlers.end_household(
            uow, req.household_id, by=req.by, role=req.role, reason=req.reason, now=clock()
        )

    @api.op(
        "quarantine.households",
        description="The households in home quarantine and until when (local times), the "
        "soonest to end first, with each member's status.",
    )
    async def quarantine_households(
        req: Empty,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return {"households": await quarantine_handlers.households(uow, clock())}

    @api.op("sites.add", description="A central quarantine site of a community, its rooms.")
    async def sites_add(
        req: AddSite,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await quarantine_handlers.add_site(
            uow, req.site_id, name=req.name, address=req.address, community_id=req.community_id,
            by=req.by, now=clock(), rooms=req.rooms, room_count=req.room_count,
        )  # fmt: skip

    @api.op("sites.rooms.add", description="More rooms for a site (named, or a count).")
    async def sites_rooms_add(
        req: AddRooms, uow: ScreeningUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        return await quarantine_handlers.add_rooms(
            uow, req.site_id, rooms=req.rooms, count=req.count
        )

    @api.op(
        "sites.intake",
        description="A batch into a site, all or nothing (site_full names how many fit): "
        "each a room and central_quarantine; idempotent by intake_id.",
    )
    async def sites_intake(
        req: SiteIntake,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await quarantine_handlers.intake(
            uow, req.site_id, req.people, intake_id=req.intake_id, by=req.by, role=req.role,
            reason=req.reason, now=clock(),
        )  # fmt: skip

    @api.op(
        "sites.transfer",
        description="People from one site to another, all or nothing (refused if the target "
        "has too few free rooms).",
    )
    async def sites_transfer(
        req: SiteTransfer,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await quarantine_handlers.transfer(
            uow, req.from_site, req.to_site, req.people, by=req.by, reason=req.reason,
            now=clock(),
        )  # fmt: skip

    @api.op(
        "sites.discharge",
        description="People leave a site: rooms freed, each to the status asked, with a reason.",
    )
    async def sites_discharge(
        req: SiteDischarge,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await quarantine_handlers.discharge(
            uow, req.site_id, req.people, to=req.to, by=req.by, role=req.role,
            reason=req.reason, now=clock(),
        )  # fmt: skip

    @api.op(
        "sites.occupancy",
        description="Per site: rooms, occupied, free, and who is in which room since when.",
    )
    async def sites_occupancy(
        req: SiteOccupancy, uow: ScreeningUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        return {"sites": await quarantine_handlers.occupancy(uow, req.site_id)}

    @api.op(
        "visits.record",
        description="A grid worker's door visit: each member's temperature and symptoms, or "
        "not at home; those at home get that day's check-in (idempotent by visit_id).",
    )
    async def visits_record(
        req: RecordVisit,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        visit = Visit(
            req.visit_id,
            req.household_id,
            req.worker_id,
            req.visited_at,
            req.visited_at.date(),  # the local day is the handler's to say
            tuple(
                MemberResult(m.person_id, m.temperature_c, tuple(m.symptoms), m.not_at_home)
                for m in req.members
            ),
        )
        return await checkin_handlers.record_visit(visit, uow, clock())

    @api.op("checkins.list", description="A resident's check-ins, newest day first.")
    async def checkins_list(
        req: PersonRef, uow: ScreeningUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        return await checkin_handlers.checkins_of(req.person_id, uow)

    @api.op("followup.show", description="A person's follow-up periods and their days.")
    async def followup_show(
        req: PersonRef, uow: ScreeningUnitOfWork = Depends(unit_of_work)
    ) -> dict:
        return await followup_handlers.follow_up_of(req.person_id, uow)

    # --- the office's queries ----------------------------------------------------------------
    @api.op(
        "office.counts",
        description="Per compound: residents, the four categories (confirmed, suspected, "
        "fever not excluded, close contacts) and their sum, symptomatic follow-up, home and "
        "central quarantine, in hospital, recovered and released that day; and totals.",
    )
    async def office_counts(
        req: OfficeCounts,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await office_handlers.counts(
            uow, clock(), community_id=req.community_id, day=req.day
        )

    @api.op(
        "office.overdue",
        description="Who is overdue for a check-in or a test (a running campaign's "
        "untested), by compound, grid and person, with their grid worker.",
    )
    async def office_overdue(
        req: OfficeOverdue,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> dict:
        return await office_handlers.overdue(
            uow, clock(), kind=req.kind, community_id=req.community_id,
            compound_id=req.compound_id, grid_id=req.grid_id, min_days=req.min_days,
            limit=req.limit,
        )  # fmt: skip

    @api.op(
        "office.timeline",
        description="One resident's check-ins, door visits, questionnaires (severity only), "
        "tests, status steps, quarantine, site stays, close-contact proposals and gate "
        "passages, oldest first (passages_unavailable: the checkpoint did not answer).",
    )
    async def office_timeline(
        req: OfficeTimeline,
        uow: ScreeningUnitOfWork = Depends(unit_of_work),
        checkpoint_register: Register = Context(REGISTER),
    ) -> dict:
        return await office_handlers.timeline(
            uow, checkpoint_register, req.person_id, since=req.since
        )

    return api
