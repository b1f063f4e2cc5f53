"""What the gate path needs to know, in memory: the verdict never waits on a database.

Loaded from the checkpoint's store at start and kept current by the reference-data
projections (updated after each commit), so a change reaches every gate of this instance
as soon as its event is handled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from gridcare.shared.events import Building, Compound, ControlLevel, Gate, Household, Resident

from . import tables as T


@dataclass
class GateState:
    gate_compound: dict[str, str] = field(default_factory=dict)
    compound_level: dict[str, ControlLevel] = field(default_factory=dict)
    building_compound: dict[str, str] = field(default_factory=dict)
    household_building: dict[str, str] = field(default_factory=dict)
    resident_household: dict[str, str] = field(default_factory=dict)

    async def load(self, s: AsyncSession) -> None:
        self.gate_compound = dict(
            (await s.execute(sa.select(T.gates.c.gate_id, T.gates.c.compound_id))).tuples().all()
        )
        self.compound_level = {
            cid: ControlLevel(level)
            for cid, level in (
                await s.execute(sa.select(T.compounds.c.compound_id, T.compounds.c.control_level))
            ).tuples()
        }
        self.building_compound = dict(
            (await s.execute(sa.select(T.buildings.c.building_id, T.buildings.c.compound_id)))
            .tuples()
            .all()
        )
        self.household_building = dict(
            (await s.execute(sa.select(T.households.c.household_id, T.households.c.building_id)))
            .tuples()
            .all()
        )
        self.resident_household = dict(
            (await s.execute(sa.select(T.residents.c.resident_id, T.residents.c.household_id)))
            .tuples()
            .all()
        )

    # --- updates from the projections (after commit) ------------------------------------------
    def apply(self, entity: object) -> None:
        match entity:
            case Gate():
                self.gate_compound[entity.gate_id] = entity.compound_id
            case Compound():
                self.compound_level[entity.compound_id] = ControlLevel(entity.control_level)
            case Building():
                self.building_compound[entity.building_id] = entity.compound_id
            case Household():
                self.household_building[entity.household_id] = entity.building_id
            case Resident():
                self.resident_household[entity.resident_id] = entity.household_id

    # --- queries of the gate path ---------------------------------------------------------
    def home_compound(self, person_id: str) -> str | None:
        household = self.resident_household.get(person_id)
        building = self.household_building.get(household) if household else None
        return self.building_compound.get(building) if building else None

    def level(self, compound_id: str) -> ControlLevel:
        return self.compound_level.get(compound_id, ControlLevel.PRECAUTION)
