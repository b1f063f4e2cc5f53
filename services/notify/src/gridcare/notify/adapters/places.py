"""Who is reached where (grid chats, gates' duty chats) and the community's clock, from
notify's copy of the reference data (on the store or in memory alike)."""

from __future__ import annotations

from typing import Any

from gridcare.contracts.refdata import Community, Compound, Gate, Grid
from gridcare.shared.projection import ReferenceCopy


class Places(ReferenceCopy):
    async def grid(self, grid_id: str) -> dict[str, Any] | None:
        return await self.refdata.get(Grid.TYPE, grid_id)

    async def gate(self, gate_id: str) -> dict[str, Any] | None:
        return await self.refdata.get(Gate.TYPE, gate_id)

    async def zone_of_community(self, community_id: str) -> str | None:
        row = await self.refdata.get(Community.TYPE, community_id)
        return row["time_zone"] if row else None

    async def zone_of_compound(self, compound_id: str) -> str | None:
        row = await self.refdata.get(Compound.TYPE, compound_id)
        return await self.zone_of_community(row["community_id"]) if row else None
