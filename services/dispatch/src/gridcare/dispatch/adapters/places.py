"""Who answers for a person or a household (their grid's worker) and their community's
clock, from dispatch's copy of the reference data (on the store or in memory alike)."""

from __future__ import annotations

from gridcare.contracts.refdata import Building, Community, Grid, Household, Resident
from gridcare.shared.projection import ReferenceCopy

from ..domain.tasks import Responsible


class Places(ReferenceCopy):
    async def household_of(self, person_id: str) -> str | None:
        row = await self.refdata.get(Resident.TYPE, person_id)
        return row["household_id"] if row else None

    async def responsible_for(self, household_id: str) -> Responsible | None:
        """The grid worker of a household (None: the reference data has not arrived)."""
        row = await self.refdata.get(Household.TYPE, household_id)
        row = row and await self.refdata.get(Building.TYPE, row["building_id"])
        grid = row and await self.refdata.get(Grid.TYPE, row["grid_id"])
        if not grid:
            return None
        community = await self.refdata.get(Community.TYPE, grid["community_id"])
        return Responsible(
            grid_id=grid["grid_id"],
            worker_id=grid["worker_id"],
            household_id=household_id,
            time_zone=community["time_zone"] if community else None,
            community_id=grid["community_id"] or None,
        )
