"""Screening's unit of work: the repositories a handler loads through, on the store
(:class:`SqlUnitOfWork`) or in memory (:class:`FakeUnitOfWork`, for handler tests)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Protocol

from gridcare.shared import uow
from gridcare.shared.projection import MemoryReferenceData, SqlReferenceData

from .adapters import memory, sql
from .adapters.places import Places
from .domain import campaigns as camp
from .domain import checkins as ci
from .domain import followup as fu
from .domain import missed as ms
from .domain.cases import Case, Observation
from .domain.compounds import CompoundState
from .domain.contacts import Proposal
from .domain.policy import ScreeningPolicy
from .domain.quarantine import HouseholdQuarantine, Intake, Occupant, Site
from .domain.questionnaires import Submission
from .domain.status import StatusDecision


class Cases(Protocol):
    async def open_case_of(self, person_id: str, kind: str) -> Case | None: ...
    async def add(self, case: Case) -> None: ...
    async def observe(self, case: Case, observation: Observation) -> bool:
        """Add the reading to the case; False if it is there already."""
        ...

    async def newest(self, limit: int, person_id: str | None = None) -> list[Case]: ...


class Questionnaires(Protocol):
    async def get(self, person_id: str, submission_id: str) -> Submission | None: ...
    async def add(self, submission: Submission) -> None:
        """Raises ``AlreadySubmitted`` if the (person, submission id) is kept already."""
        ...

    async def newest(
        self, limit: int, person_id: str | None = None, follow_up: str | None = None
    ) -> list[Submission]:
        """The newest received first (of one person, with one follow-up)."""
        ...


class Statuses(Protocol):
    async def get(self, person_id: str) -> StatusDecision | None: ...
    async def record(self, decision: StatusDecision) -> None: ...
    async def history(self, person_id: str) -> list[StatusDecision]: ...


class HouseholdQuarantines(Protocol):
    async def lock(self, household_id: str) -> None:
        """No other transaction changes the household's quarantine until this one ends:
        two starts at once make one quarantine, the later extending it."""
        ...

    async def active_of(self, household_id: str) -> HouseholdQuarantine | None: ...
    async def save(self, hq: HouseholdQuarantine) -> None: ...
    async def active(self) -> list[HouseholdQuarantine]:
        """The active ones, the soonest to end first."""
        ...


class Sites(Protocol):
    async def get(self, site_id: str) -> Site | None: ...
    async def add(self, site: Site) -> None: ...
    async def all(self) -> list[Site]: ...
    async def rooms(self, site_id: str) -> list[str]: ...
    async def add_rooms(self, site_id: str, room_ids: list[str]) -> None: ...
    async def occupants(self, site_id: str | None = None) -> list[Occupant]: ...
    async def occupant(self, person_id: str) -> Occupant | None: ...
    async def occupy(self, occupants: list[Occupant]) -> None:
        """Raises ``RoomTaken`` if a room (or person) was taken meanwhile."""
        ...

    async def vacate(self, person_ids: list[str], at: datetime, reason: str) -> None: ...
    async def intake(self, intake_id: str) -> Intake | None: ...
    async def add_intake(self, intake: Intake) -> None: ...
    async def stays_of(self, intake_id: str) -> list[Occupant]: ...


class ContactProposals(Protocol):
    async def get(self, case_person_id: str, candidate_id: str) -> Proposal | None: ...
    async def save(self, p: Proposal) -> None: ...
    async def find(
        self,
        *,
        grid_id: str | None = None,
        case_person_id: str | None = None,
        status: str | None = None,
        limit: int = 1000,
    ) -> list[Proposal]: ...


class CompoundLevels(Protocol):
    async def get(self, compound_id: str) -> CompoundState | None: ...
    async def save(self, state: CompoundState) -> None: ...
    async def all(self) -> list[CompoundState]: ...


class Campaigns(Protocol):
    """Test campaigns (handlers/campaigns.py): writes of many rows are one statement."""

    async def add(self, campaign: camp.Campaign) -> None: ...
    async def get(self, campaign_id: str) -> camp.Campaign | None: ...
    async def newest(self, limit: int, open_at: datetime | None = None) -> list[camp.Campaign]:
        """The newest first; ``open_at``: only those running then."""
        ...

    async def residents_of(
        self, place_kind: str, place_id: str, person_ids: set[str] | None = None
    ) -> list[camp.Resident]:
        """The residents of a compound or building now (of ``person_ids`` only, if given),
        with their status in force and their building's grid."""
        ...

    async def known(self, person_ids: set[str]) -> set[str]: ...
    async def add_members(self, members: list[camp.Member]) -> None:
        """Raises ``RecordedMeanwhile`` if one is there already (another transaction)."""
        ...

    async def members(self, campaign_id: str) -> dict[str, camp.Member]: ...
    async def results_by_person(self, campaign_id: str) -> dict[str, list[camp.Result]]: ...
    async def results_of(self, campaign_id: str, person_id: str) -> list[camp.TestResult]: ...
    async def recorded(self, sample_ids: set[str]) -> dict[str, camp.TestResult]: ...
    async def add_results(self, results: list[camp.TestResult]) -> None:
        """Raises ``RecordedMeanwhile`` if a sample is there already (another transaction)."""
        ...

    async def rounds(self, campaign_id: str) -> dict[int, datetime]: ...
    async def add_round(self, campaign_id: str, round_: int, at: datetime, people: int) -> None:
        """Raises ``RecordedMeanwhile`` if the round is done already (another transaction)."""
        ...

    async def add_part(self, upload_id: str, part: int, text: str, at: datetime) -> None: ...
    async def parts(self, upload_id: str) -> list[tuple[int, str]]: ...
    async def drop_upload(self, upload_id: str) -> None: ...
    async def drop_uploads_before(self, t: datetime) -> int: ...
    async def followed(self, person_ids: set[str]) -> set[str]:
        """Which of these have an open follow-up."""
        ...


class Checkins(Protocol):
    """Check-ins, door visits, reminders (handlers/checkins.py)."""

    async def resident(self, person_id: str) -> ci.Resident | None:
        """Where the resident lives, their community's clock and policy, their status: in
        one query on the store (the check-in's hot path)."""
        ...

    async def reply_of(self, checkin_id: str) -> ci.Reply | None: ...
    async def for_checkin(
        self, person_id: str, checkin_id: str, day: date
    ) -> tuple[ci.Resident | None, ci.Reply | None, ci.Checkin | None, fu.FollowUp | None]:
        """What a check-in needs in one query: the resident (None: not one), the reply kept
        for ``checkin_id`` (whoever's), the check-in in force that day, the open follow-up."""
        ...

    async def in_force(self, person_id: str, day: date) -> ci.Checkin | None: ...
    async def put(self, checkin: ci.Checkin, reply: ci.Reply, replacing: bool) -> None: ...
    async def for_checkins(
        self, keys: list[tuple[str, str, date]]
    ) -> dict[tuple[str, str, date], tuple]:
        """``for_checkin`` for many (person_id, checkin_id, day), set-based (a batch)."""
        ...

    async def put_many(self, rows: list[tuple[ci.Checkin, ci.Reply, bool]]) -> None:
        """``put`` for many (checkin, reply, replacing), in bulk."""
        ...

    async def of_person(self, person_id: str, limit: int = 60) -> list[ci.Checkin]: ...
    async def visit(self, visit_id: str) -> dict | None: ...
    async def add_visit(self, visit: ci.Visit, members: list[dict]) -> None: ...
    async def communities(self) -> list[tuple[str, str | None, ScreeningPolicy]]: ...
    async def to_remind(
        self, community_id: str, day: date, limit: int, after: str = ""
    ) -> list[ci.ReminderTarget]:
        """Residents of a community with neither a check-in nor a reminder for ``day``, by
        id from ``after`` on."""
        ...

    async def reminded(self, person_ids: list[str], day: date, at: datetime) -> None: ...
    async def missed_runs(
        self, community_id: str, day: date, days: int, limit: int, after: str = ""
    ) -> list[ci.MissedRun]: ...
    async def visits_requested(self, rows: list[dict]) -> None: ...
    async def missed_follow_up_days(
        self, community_id: str, days: list[date], limit: int
    ) -> list[ms.MissedDay]:
        """The community's people with an open follow-up and, among ``days``, the days of
        it (domain/missed.py's rule) with no check-in and no follow-up record: one query,
        by person then day (handlers/missed.py)."""
        ...


class FollowUps(Protocol):
    """Follow-up periods and days (handlers/followup.py)."""

    async def open_of(self, person_id: str) -> fu.FollowUp | None: ...
    async def save(self, f: fu.FollowUp) -> None: ...
    async def put_day(self, d: fu.FollowUpDay) -> bool:
        """Record the person's day (a later report of the day replaces it); True if new."""
        ...

    async def of_person(self, person_id: str) -> list[fu.FollowUp]: ...
    async def days_of(self, person_id: str) -> list[fu.FollowUpDay]: ...
    async def open_ending_by(self, day: date, limit: int = 1000) -> list[fu.FollowUp]: ...


class OfficeQueries(Protocol):
    """The office's reads across the parts' tables (handlers/office.py): set-based."""

    async def status_counts(
        self, community_id: str, at: datetime | None = None
    ) -> list[tuple[str, str, int]]:
        """(compound, status, residents): the status in force (``at``: as it was then)."""
        ...

    async def step_counts(
        self, community_id: str, start: datetime, end: datetime, statuses: list[str]
    ) -> list[tuple[str, str, int]]:
        """(compound, status, people) who stepped to one of ``statuses`` in [start, end)."""
        ...

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
        """Residents whose last check-in is on or before ``cutoff`` (or none)."""
        ...

    async def test_results_of(self, person_id: str) -> list[camp.TestResult]: ...
    async def household_quarantines_of(self, household_id: str) -> list[HouseholdQuarantine]: ...
    async def stays_of_person(self, person_id: str) -> list[dict]: ...
    async def visits_to(self, household_id: str) -> list[dict]: ...
    async def proposals_about(self, person_id: str) -> list[Proposal]: ...


class ScreeningUnitOfWork(uow.UnitOfWork):
    places: Places
    questionnaires: Questionnaires
    cases: Cases
    statuses: Statuses
    household_quarantines: HouseholdQuarantines
    sites: Sites
    contacts: ContactProposals
    compounds: CompoundLevels
    campaigns: Campaigns
    checkins: Checkins
    follow_ups: FollowUps
    office: OfficeQueries


class SqlUnitOfWork(uow.SqlUnitOfWork, ScreeningUnitOfWork):
    def repositories(self) -> None:
        self.places = Places(SqlReferenceData(self.session, sql.REFERENCE_TABLES))
        self.questionnaires = sql.Questionnaires(self.session)
        self.cases = sql.Cases(self.session)
        self.statuses = sql.Statuses(self.session)
        self.household_quarantines = sql.HouseholdQuarantines(self.session)
        self.sites = sql.Sites(self.session)
        self.contacts = sql.ContactProposals(self.session)
        self.compounds = sql.CompoundLevels(self.session)
        self.campaigns = sql.Campaigns(self.session)
        self.checkins = sql.Checkins(self.session)
        self.follow_ups = sql.FollowUps(self.session)
        self.office = sql.Office(self.session)


class FakeUnitOfWork(uow.FakeUnitOfWork, ScreeningUnitOfWork):
    def __init__(self, source: str = "screening", inbound: uow.Inbound | None = None) -> None:
        super().__init__(source, inbound)
        self.refdata = MemoryReferenceData(sql.REFERENCE_TABLES)
        self.places = Places(self.refdata)
        self.questionnaires = memory.Questionnaires()
        self.cases = memory.Cases()
        self.statuses = memory.Statuses()
        self.household_quarantines = memory.HouseholdQuarantines()
        self.sites = memory.Sites()
        self.contacts = memory.ContactProposals()
        self.compounds = memory.CompoundLevels()
        self.campaigns = memory.Campaigns(self.refdata, self.statuses, lambda: self.follow_ups)
        self.checkins = memory.Checkins(self.refdata, self.statuses)
        self.follow_ups = memory.FollowUps()
        self.checkins.follow_ups = self.follow_ups
        self.office = memory.Office(self)  # reads the repositories above

    def state(self) -> dict[str, Any]:
        return {
            **{f"ref:{k}": v for k, v in self.refdata.rows.items()},
            "questionnaires": self.questionnaires.rows,
            "cases": self.cases.rows,
            "statuses": self.statuses.current,
            "history": self.statuses.log,
            "household_quarantines": self.household_quarantines.rows,
            "sites": self.sites.sites,
            "site_rooms": self.sites.rooms_of,
            "site_occupants": self.sites.occupied,
            "site_stays": self.sites.stays,
            "site_intakes": self.sites.intakes,
            "contact_proposals": self.contacts.rows,
            "compound_levels": self.compounds.rows,
            "campaigns": self.campaigns.campaigns,
            "campaign_people": self.campaigns.people,
            "campaign_results": self.campaigns.results,
            "campaign_rounds": self.campaigns.round_rows,
            "campaign_uploads": self.campaigns.uploads,
            "checkins": self.checkins.rows,
            "checkin_replies": self.checkins.replies,
            "door_visits": self.checkins.visits,
            "checkin_reminders": self.checkins.reminders,
            "door_visit_requests": self.checkins.visit_requests,
            "follow_ups": self.follow_ups.rows,
            "follow_up_days": self.follow_ups.days,
        }
