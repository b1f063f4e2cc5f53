"""Who is who and where, from notify's copy of the reference data (on the store or in
memory alike): the contacts a recipient stands for, the community's providers, its clock
and its policy.

- a person: a resident, a grid worker (``grids.csv``), staff, a volunteer;
- a role of a place: the grid worker of a grid; the secretary or the community doctor of a
  community (staff with that role); the duty staff of a gate (staff on duty there, else
  the gate's duty chat);
- a place's chat group (``chat_groups.csv``; a grid's own chat if it has no group row);
- every resident of a place (its households, then their residents a chunk at a time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gridcare.contracts.refdata import (
    Building,
    Channel,
    ChatGroup,
    Community,
    CommunityPolicy,
    Compound,
    Gate,
    Grid,
    Household,
    Resident,
    Staff,
    Volunteer,
)
from gridcare.shared.projection import ReferenceCopy

from ..domain.recipients import GROUP_LANGUAGES, Contact


@dataclass(frozen=True)
class Provider:
    url: str
    rate_per_s: float | None = None
    max_segments: int | None = None


def _tags(value: Any) -> tuple[str, ...]:
    return tuple(value or ())


class Directory(ReferenceCopy):
    # --- people ------------------------------------------------------------------------------
    async def contact(self, person_id: str) -> Contact | None:
        if row := await self.refdata.get(Resident.TYPE, person_id):
            return await self._resident(row)
        if row := await self.refdata.get(Staff.TYPE, person_id):
            return _staff(row)
        if grids := await self.refdata.find(Grid.TYPE, worker_id=person_id):
            return _worker(grids[0])
        if row := await self.refdata.get(Volunteer.TYPE, person_id):
            return _staff({**row, "staff_id": row["volunteer_id"], "roles": ()})
        return None

    async def _resident(self, row: dict[str, Any], community: str | None = None) -> Contact:
        if community is None:
            community = await self.community_of("household", row["household_id"])
        return Contact(
            contact_id=row["resident_id"],
            name=row["name"],
            language=row["language"],
            community_id=community,
            phone=row["phone"],
            email=row["email"],
            channels=_tags(row["channels"]),
        )

    # --- roles and groups ----------------------------------------------------------------------
    async def role(self, role: str, place_id: str) -> list[Contact]:
        if role == "grid_worker":
            grid = await self.refdata.get(Grid.TYPE, place_id)
            return [_worker(grid)] if grid else []
        if role == "duty_staff":
            gate = await self.refdata.get(Gate.TYPE, place_id)
            if gate is None:
                return []
            community = await self.community_of("compound", gate["compound_id"])
            on_duty = [
                _staff(s)
                for s in await self.refdata.find(Staff.TYPE, community_id=community)
                if "duty_staff" in (s["roles"] or ()) and place_id in (s["gates"] or ())
            ]
            if on_duty:
                return on_duty
            if gate["duty_chat_url"]:
                return [
                    _group(
                        f"gate-{place_id}",
                        gate["name"] or place_id,
                        community,
                        gate["duty_chat_url"],
                    )
                ]
            return []
        # secretary, community_doctor: staff of the community with the role
        return [
            _staff(s)
            for s in await self.refdata.find(Staff.TYPE, community_id=place_id)
            if role in (s["roles"] or ())
        ]

    async def group(self, place: str, place_id: str) -> Contact | None:
        community = await self.community_of(place, place_id)
        for g in await self.refdata.find(ChatGroup.TYPE, place_id=place_id):
            if g["place"] == place:
                return _group(g["group_id"], g["name"], g["community_id"], g["url"])
        if place == "grid" and (grid := await self.refdata.get(Grid.TYPE, place_id)):
            if grid["chat_url"]:
                return _group(f"grid-{place_id}", grid["name"], community, grid["chat_url"])
        return None

    async def households(self, place: str, place_id: str) -> list[str]:
        """The households of a place, in a stable order (a broadcast goes through them a
        chunk at a time: :meth:`residents_of`)."""
        return [h["household_id"] for h in await self._households(place, place_id)]

    async def residents_of(self, households: list[str], community: str | None) -> list[Contact]:
        rows = await self.refdata.find(Resident.TYPE, household_id=households)
        rows.sort(key=lambda r: (r["household_id"], r["resident_id"]))
        return [await self._resident(r, community) for r in rows]

    async def _households(self, place: str, place_id: str) -> list[dict[str, Any]]:
        if place == "building":
            buildings = [place_id]
        elif place == "grid":
            buildings = [
                b["building_id"] for b in await self.refdata.find(Building.TYPE, grid_id=place_id)
            ]
        else:
            compounds = (
                [place_id]
                if place == "compound"
                else [
                    c["compound_id"]
                    for c in await self.refdata.find(Compound.TYPE, community_id=place_id)
                ]
            )
            buildings = [
                b["building_id"]
                for b in await self.refdata.find(Building.TYPE, compound_id=compounds)
            ]
        return await self.refdata.find(Household.TYPE, building_id=buildings)

    async def place_known(self, place: str, place_id: str) -> bool:
        kind = {"community": Community, "compound": Compound, "building": Building, "grid": Grid}
        return await self.refdata.get(kind[place].TYPE, place_id) is not None

    # --- communities ------------------------------------------------------------------------
    async def community_of(self, place: str, place_id: str) -> str | None:
        """The community a place (or a household, a gate) belongs to."""
        if place == "community":
            return place_id
        if place == "household":
            row = await self.refdata.get(Household.TYPE, place_id)
            return await self.community_of("building", row["building_id"]) if row else None
        if place == "building":
            row = await self.refdata.get(Building.TYPE, place_id)
            return await self.community_of("compound", row["compound_id"]) if row else None
        if place == "gate":
            row = await self.refdata.get(Gate.TYPE, place_id)
            return await self.community_of("compound", row["compound_id"]) if row else None
        table = {"compound": Compound, "grid": Grid}[place]
        row = await self.refdata.get(table.TYPE, place_id)
        return row["community_id"] if row else None

    async def zone(self, community_id: str | None) -> str | None:
        row = community_id and await self.refdata.get(Community.TYPE, community_id)
        return row["time_zone"] if row else None

    async def providers(self, community_id: str | None) -> dict[str, Provider]:
        if not community_id:
            return {}
        return {
            c["kind"]: Provider(c["url"], c["rate_per_s"], c["max_segments"])
            for c in await self.refdata.find(Channel.TYPE, community_id=community_id)
        }

    async def policy(self, community_id: str | None) -> dict[str, Any] | None:
        return community_id and await self.refdata.get(CommunityPolicy.TYPE, community_id)

    async def gate(self, gate_id: str) -> dict[str, Any] | None:
        return await self.refdata.get(Gate.TYPE, gate_id)


def _staff(row: dict[str, Any]) -> Contact:
    """A member of staff (or a volunteer: the same, with no roles)."""
    return Contact(
        contact_id=row["staff_id"],
        name=row["name"],
        language=row["language"],
        community_id=row["community_id"],
        chat_url=row["chat_url"] or "",
        phone=row["phone"],
        email=row["email"],
        channels=_tags(row["channels"]),
        roles=frozenset(row["roles"] or ()),
    )


def _worker(grid: dict[str, Any]) -> Contact:
    """A grid worker: the grid's chat group is their chat."""
    return Contact(
        contact_id=grid["worker_id"],
        name=grid["worker_name"],
        language=grid["worker_language"],
        community_id=grid["community_id"] or None,
        chat_url=grid["chat_url"] or "",
        phone=grid["worker_phone"],
        email=grid["worker_email"],
        channels=_tags(grid["worker_channels"]),
        roles=frozenset({"grid_worker"}),
    )


def _group(group_id: str, name: str, community: str | None, url: str) -> Contact:
    return Contact(
        contact_id=f"group:{group_id}",
        name=name or group_id,
        language=GROUP_LANGUAGES,
        community_id=community,
        chat_url=url,
        channels=("chat",),
    )
