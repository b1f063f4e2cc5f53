"""Where a person lives and what their community's clock is, from screening's copy of the
reference data (on the store or in memory alike)."""

from __future__ import annotations

from gridcare.contracts.refdata import Building, Community, Compound, Household, Resident
from gridcare.shared.projection import ReferenceCopy


class Places(ReferenceCopy):
    async def household_of(self, person_id: str) -> str | None:
        row = await self.refdata.get(Resident.TYPE, person_id)
        return row["household_id"] if row else None

    async def zone_of_person(self, person_id: str) -> str | None:
        """The time zone of the person's community (None: not known yet)."""
        household = await self.household_of(person_id)
        row = household and await self.refdata.get(Household.TYPE, household)
        row = row and await self.refdata.get(Building.TYPE, row["building_id"])
        row = row and await self.refdata.get(Compound.TYPE, row["compound_id"])
        row = row and await self.refdata.get(Community.TYPE, row["community_id"])
        return row["time_zone"] if row else None
