"""Where a person lives and what their community's clock is, from screening's copy of the
reference data (on the store or in memory alike)."""

from __future__ import annotations

from gridcare.contracts.refdata import (
    Building,
    Community,
    Compound,
    Grid,
    Household,
    Resident,
    Staff,
)
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

    async def community_of_person(self, person_id: str) -> str | None:
        """The community the person lives in (None: not known yet)."""
        household = await self.household_of(person_id)
        row = household and await self.refdata.get(Household.TYPE, household)
        row = row and await self.refdata.get(Building.TYPE, row["building_id"])
        row = row and await self.refdata.get(Compound.TYPE, row["compound_id"])
        return row["community_id"] if row else None

    async def contact_of(self, person_id: str) -> dict[str, str | None] | None:
        """Whom a call-back rings: ``{name, phone, grid_id}`` of a resident (each may be
        None: not given, or its building not known yet); None: not a known resident."""
        row = await self.refdata.get(Resident.TYPE, person_id)
        if row is None:
            return None
        household = await self.refdata.get(Household.TYPE, row["household_id"])
        building = household and await self.refdata.get(Building.TYPE, household["building_id"])
        return {
            "name": row.get("name") or None,
            "phone": row.get("phone") or None,
            "grid_id": building.get("grid_id") if building else None,
        }

    async def role_held(self, role: str, community_id: str) -> bool:
        """Whether a member of the community's staff (staff.csv) holds ``role``."""
        members = await self.refdata.find(Staff.TYPE, community_id=community_id)
        return any(role in (m["roles"] or []) for m in members)

    async def staff(self, staff_id: str) -> dict | None:
        """A member of staff as the status machine sees them: ``{staff_id, community_id,
        roles}``; a grid's worker holds ``grid_worker`` (with any roles staff.csv gives
        them). None: nobody of that id."""
        member = await self.refdata.get(Staff.TYPE, staff_id)
        grids = await self.refdata.find(Grid.TYPE, worker_id=staff_id)
        if member is None and not grids:
            return None
        roles = list(member["roles"]) if member else []
        if grids and "grid_worker" not in roles:
            roles.append("grid_worker")
        community = member["community_id"] if member else grids[0]["community_id"]
        return {"staff_id": staff_id, "community_id": community, "roles": roles}

    async def members_of(self, household_id: str) -> list[str]:
        """The residents of a household, in the order of their ids."""
        rows = await self.refdata.find(Resident.TYPE, household_id=household_id)
        return [r["resident_id"] for r in rows]

    async def zone_of_household(self, household_id: str) -> str | None:
        row = await self.refdata.get(Household.TYPE, household_id)
        row = row and await self.refdata.get(Building.TYPE, row["building_id"])
        row = row and await self.refdata.get(Compound.TYPE, row["compound_id"])
        return await self.zone_of_community(row["community_id"]) if row else None

    async def zone_of_community(self, community_id: str) -> str | None:
        """The community's time zone (None: the community is not known)."""
        row = await self.refdata.get(Community.TYPE, community_id)
        return row["time_zone"] if row else None

    async def home_of(self, household_id: str) -> dict[str, str | None] | None:
        """Where a household lives: ``{household_id, building_id, compound_id, grid_id,
        community_id}`` (None: the household or its building is not known yet)."""
        household = await self.refdata.get(Household.TYPE, household_id)
        building = household and await self.refdata.get(Building.TYPE, household["building_id"])
        if not building:
            return None
        compound = await self.refdata.get(Compound.TYPE, building["compound_id"])
        return {
            "household_id": household_id,
            "building_id": building["building_id"],
            "compound_id": building["compound_id"],
            "grid_id": building.get("grid_id"),
            "community_id": compound["community_id"] if compound else None,
        }

    async def compound(self, compound_id: str) -> dict | None:
        """A compound's row: ``{compound_id, community_id, control_level}``."""
        return await self.refdata.get(Compound.TYPE, compound_id)

    async def compound_ids(self) -> list[str]:
        return [r["compound_id"] for r in await self.refdata.find(Compound.TYPE)]
