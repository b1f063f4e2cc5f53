"""The checkpoint's repositories in memory: the same behaviour as ``sql.py``, for handler
tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gridcare.contracts.refdata import CommunityPolicy, ControlLevel

from ..domain.holds import Hold


class Policies:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def put(self, p: CommunityPolicy) -> None:
        self.rows[p.community_id] = p.model_dump(mode="json")


class Controls:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def get(self, compound_id: str) -> dict[str, Any] | None:
        return self.rows.get(compound_id)

    async def put(self, compound_id: str, level: ControlLevel, by: str, reason: str, at) -> None:
        self.rows[compound_id] = {
            "compound_id": compound_id,
            "level": level.value,
            "set_by": by,
            "reason": reason,
            "set_at": at,
        }

    async def all(self) -> list[dict[str, Any]]:
        return list(self.rows.values())


class Holds:
    def __init__(self) -> None:
        self.rows: dict[str, Hold] = {}

    async def get(self, person_id: str) -> Hold | None:
        return self.rows.get(person_id)

    async def put(self, hold: Hold) -> None:
        self.rows[hold.person_id] = hold


class Permits:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def outings_since(self, household_id: str, since: datetime) -> int:
        return sum(
            1
            for p in self.rows.values()
            if p["household_id"] == household_id
            and p["kind"] == "outing"
            and p["valid_from"] >= since
        )

    async def add(self, row: dict[str, Any]) -> None:
        if row["permit_id"] in self.rows:
            raise KeyError(row["permit_id"])
        self.rows[row["permit_id"]] = {"exited_at": None, "overdue_alerted_at": None, **row}

    async def overdue(self, now: datetime) -> list[dict[str, Any]]:
        return [
            dict(p)
            for p in self.rows.values()
            if p["state"] == "out"
            and p.get("return_by") is not None
            and p["return_by"] < now
            and p["overdue_alerted_at"] is None
        ]

    async def alerted(self, permit_id: str, at: datetime) -> None:
        self.rows[permit_id]["overdue_alerted_at"] = at

    async def purge_closed_before(self, cutoff: datetime) -> None:
        for pid in [
            k for k, p in self.rows.items() if p["state"] == "closed" and p["valid_until"] < cutoff
        ]:
            del self.rows[pid]


class Register:
    def __init__(self) -> None:
        self.passages: dict[tuple[str, str], dict[str, Any]] = {}
        self.overrides: dict[tuple[str, str], dict[str, Any]] = {}
        self.doors: dict[tuple[str, str], dict[str, Any]] = {}

    def record(self, **passage: Any) -> None:
        """A passage as the gate path writes it (tests put the register's rows here)."""
        self.passages[passage["gate_id"], passage["scan_id"]] = {
            "id": len(self.passages) + 1,
            **passage,
        }

    async def passage(self, gate_id: str, scan_id: str) -> dict[str, Any] | None:
        return self.passages.get((gate_id, scan_id))

    async def between(
        self,
        start: datetime,
        end: datetime,
        gate_id: str | None,
        compound_id: str | None,
        *,
        limit: int | None = None,
        after: tuple[datetime, int] | None = None,
    ) -> list[dict[str, Any]]:
        found = sorted(
            (
                p
                for p in self.passages.values()
                if start <= p["scanned_at"] <= end
                and (p["gate_id"] == gate_id if gate_id else p["compound_id"] == compound_id)
                and (after is None or (p["scanned_at"], p["id"]) > after)
            ),
            key=lambda p: (p["scanned_at"], p["id"]),
        )
        return found if limit is None else found[:limit]

    async def newest(
        self, limit: int, gate_id: str | None, person_id: str | None
    ) -> list[dict[str, Any]]:
        found = [
            p
            for p in self.passages.values()
            if gate_id in (None, p["gate_id"]) and person_id in (None, p["person_id"])
        ]
        return sorted(found, key=lambda p: p["id"], reverse=True)[:limit]

    async def overridden(self, gate_id: str, scan_id: str) -> bool:
        return (gate_id, scan_id) in self.overrides

    async def add_override(self, row: dict[str, Any]) -> None:
        self.overrides[row["gate_id"], row["scan_id"]] = row

    async def add_door_event(self, row: dict[str, Any]) -> None:
        key = (row["household_id"], row["event_id"])
        if key in self.doors:
            raise KeyError(key)
        self.doors[key] = row

    async def door_event(self, household_id: str, event_id: str) -> dict[str, Any] | None:
        return self.doors.get((household_id, event_id))

    async def purge_before(self, cutoff: datetime) -> int:
        old = [k for k, p in self.passages.items() if p["decided_at"] < cutoff]
        for k in old:
            del self.passages[k]
        for k in [k for k, d in self.doors.items() if d["received_at"] < cutoff]:
            del self.doors[k]
        for k in [k for k, o in self.overrides.items() if o["at"] < cutoff]:
            del self.overrides[k]
        return len(old)


class GateHealthRows:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def all(self) -> list[dict[str, Any]]:
        return list(self.rows.values())

    async def put(self, gate_id: str, last_seen_at, firmware: str | None, online: bool) -> None:
        self.rows[gate_id] = {
            "gate_id": gate_id,
            "last_seen_at": last_seen_at,
            "firmware": firmware,
            "online": online,
        }
