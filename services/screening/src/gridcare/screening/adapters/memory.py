"""Screening's repositories in memory: the same behaviour as ``sql.py``, for handler tests."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from ..domain.cases import Case, Observation
from ..domain.quarantine import HouseholdQuarantine, Intake, Occupant, RoomTaken, Site
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
