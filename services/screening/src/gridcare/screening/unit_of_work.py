"""Screening's unit of work: the repositories a handler loads through, on the store
(:class:`SqlUnitOfWork`) or in memory (:class:`FakeUnitOfWork`, for handler tests)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from gridcare.shared import uow
from gridcare.shared.projection import MemoryReferenceData, SqlReferenceData

from .adapters import memory, sql
from .adapters.places import Places
from .domain.cases import Case, Observation
from .domain.quarantine import HouseholdQuarantine, Intake, Occupant, Site
from .domain.status import StatusDecision


class Cases(Protocol):
    async def open_case_of(self, person_id: str, kind: str) -> Case | None: ...
    async def add(self, case: Case) -> None: ...
    async def observe(self, case: Case, observation: Observation) -> bool:
        """Add the reading to the case; False if it is there already."""
        ...

    async def newest(self, limit: int, person_id: str | None = None) -> list[Case]: ...


class Statuses(Protocol):
    async def get(self, person_id: str) -> StatusDecision | None: ...
    async def record(self, decision: StatusDecision) -> None: ...
    async def history(self, person_id: str) -> list[StatusDecision]: ...


class HouseholdQuarantines(Protocol):
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


class ScreeningUnitOfWork(uow.UnitOfWork):
    places: Places
    cases: Cases
    statuses: Statuses
    household_quarantines: HouseholdQuarantines
    sites: Sites


class SqlUnitOfWork(uow.SqlUnitOfWork, ScreeningUnitOfWork):
    def repositories(self) -> None:
        self.places = Places(SqlReferenceData(self.session, sql.REFERENCE_TABLES))
        self.cases = sql.Cases(self.session)
        self.statuses = sql.Statuses(self.session)
        self.household_quarantines = sql.HouseholdQuarantines(self.session)
        self.sites = sql.Sites(self.session)


class FakeUnitOfWork(uow.FakeUnitOfWork, ScreeningUnitOfWork):
    def __init__(self, source: str = "screening", inbound: uow.Inbound | None = None) -> None:
        super().__init__(source, inbound)
        self.refdata = MemoryReferenceData(sql.REFERENCE_TABLES)
        self.places = Places(self.refdata)
        self.cases = memory.Cases()
        self.statuses = memory.Statuses()
        self.household_quarantines = memory.HouseholdQuarantines()
        self.sites = memory.Sites()

    def state(self) -> dict[str, Any]:
        return {
            **{f"ref:{k}": v for k, v in self.refdata.rows.items()},
            "cases": self.cases.rows,
            "statuses": self.statuses.current,
            "history": self.statuses.log,
            "household_quarantines": self.household_quarantines.rows,
            "sites": self.sites.sites,
            "site_rooms": self.sites.rooms_of,
            "site_occupants": self.sites.occupied,
            "site_stays": self.sites.stays,
            "site_intakes": self.sites.intakes,
        }
