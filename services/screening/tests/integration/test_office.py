"""The office's queries over a real nats-server, screening on a real store (SQLite and
PostgreSQL) and a real checkpoint (its register): the day's counts per compound (one
GROUP BY, a past day from the history), who is overdue for a check-in or a test, one
resident's timeline with their gate passages, and what the timeline says when the
checkpoint does not answer; the office tool once.

Sample data (examples/community): C-01 (B-01, B-02 in grid G-01, worker W-01): R-1001 and
R-1002 in H-0101, R-1003 in H-0102, R-2001 in H-0201; C-02 (B-03 in grid G-02, worker
W-02): R-3001 in H-0301. Community CM-1 on Asia/Shanghai; check-in reminders at 10:00.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import nats
import pytest
import sqlalchemy as sa
from screening_kit import until

from gridcare.checkpoint.bootstrap import build as build_checkpoint
from gridcare.checkpoint.config import CheckpointSettings
from gridcare.cli import refdata
from gridcare.cli.devrun import NatsServer
from gridcare.screening.adapters import tables as T
from gridcare.screening.bootstrap import build as build_screening
from gridcare.shared.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "community"
SHANGHAI = ZoneInfo("Asia/Shanghai")


class Clock:
    """Screening's now: 11:00 today in Shanghai (after the 10:00 reminder time), until the
    test moves it."""

    def __init__(self) -> None:
        today = datetime.now(SHANGHAI).date()
        self.now = datetime(today.year, today.month, today.day, 11, tzinfo=SHANGHAI)

    def __call__(self) -> datetime:
        return self.now.astimezone(UTC)


class World:
    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.tmp_path = tmp_path
        self.server = NatsServer(store_dir=tmp_path / "nats").start()
        self.clock = Clock()
        self.screening = build_screening(
            Settings(
                nats_url=self.server.url,
                database_url=database_url,
                var_dir=tmp_path / "screening",
                outbox_poll_s=0.05,
                retry_base_delay_s=0.2,
            ),
            clock=self.clock,
        )
        self.checkpoint: Any = build_checkpoint(
            CheckpointSettings(
                nats_url=self.server.url,
                database_url=f"sqlite+aiosqlite:///{tmp_path / 'checkpoint.db'}",
                var_dir=tmp_path / "checkpoint",
                gate_check_interval_s=3600,
                housekeeping_interval_s=3600,
                retry_base_delay_s=0.05,
                outbox_poll_s=0.05,
            )
        )
        self.nc: Any = None

    async def start(self) -> None:
        await self.checkpoint.start()
        await self.screening.start()
        self.nc = await nats.connect(self.server.url)
        data = refdata.load(EXAMPLES)
        assert not data.problems, data.problems
        await refdata.publish(self.nc.jetstream(), data)

        async def projected() -> bool:
            async with self.screening.store.sessions() as s:
                people = await s.scalar(sa.select(sa.func.count()).select_from(T.residents))
                grids = await s.scalar(sa.select(sa.func.count()).select_from(T.grids))
            st = self.checkpoint.components["state"]
            known = {"R-1001"} <= set(st.resident_household) and "g1" in st.gate_compound
            return people == 5 and grids == 2 and known

        await until(projected, what="the reference data in screening and the checkpoint")

    async def stop(self) -> None:
        if self.nc is not None:
            await self.nc.close()
        await self.screening.stop()
        if self.checkpoint is not None:
            await self.checkpoint.stop()
        self.server.stop()

    async def api(self, service: str, op: str, body: dict[str, Any]) -> dict[str, Any]:
        msg = await self.nc.request(f"api.{service}.{op}", json.dumps(body).encode(), timeout=10)
        return json.loads(msg.data)

    async def ok(self, service: str, op: str, body: dict[str, Any]) -> Any:
        reply = await self.api(service, op, body)
        assert "result" in reply, reply
        return reply["result"]

    async def gridcare(self, *args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "gridcare"),
            *args,
            env={**os.environ, "GRIDCARE_NATS_URL": self.server.url, "COLUMNS": "200"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def world(tmp_path, database_url):
    w = World(tmp_path, database_url)
    try:
        await w.start()
        yield w
    finally:
        await w.stop()


async def test_the_offices_queries(world):
    now = world.clock()
    local_now = now.astimezone(SHANGHAI)
    today = local_now.date()

    # yesterday R-1001 left by g1 (the checkpoint's register keeps it)
    passed = datetime.now(UTC) - timedelta(days=1)  # the checkpoint's clock is the real one
    scan = {
        "scan_id": "g1-office-1",
        "gate_id": "g1",
        "direction": "out",
        "person_id": "R-1001",
        "scanned_at": passed.isoformat(),
        "temperature_c": 36.6,
        "mask": True,
        "health_code": "green",
    }
    msg = await world.nc.request("gate.g1.scan", json.dumps(scan).encode(), timeout=5)
    assert json.loads(msg.data).get("verdict") == "allow", msg.data

    # R-1003 checks in today, by the edge contract
    checkin = {
        "checkin_id": "c-office-1",
        "person_id": "R-1003",
        "day": today.isoformat(),
        "temperature_c": 36.5,
        "symptoms": [],
        "submitted_at": (local_now - timedelta(hours=2)).isoformat(),
    }
    msg = await world.nc.request("resident.R-1003.checkin", json.dumps(checkin).encode(), 10)
    assert json.loads(msg.data)["status"] == "recorded"

    # R-1001 confirmed by a lab, their household quarantined by the grid worker
    await world.ok(
        "screening",
        "status.set",
        {"person_id": "R-1001", "status": "confirmed", "by": "CDC lab", "role": "lab",
         "reason": "PCR positive"},
    )  # fmt: skip
    await world.ok(
        "screening",
        "quarantine.household.start",
        {"household_id": "H-0101", "by": "W-01", "reason": "a confirmed case at home"},
    )

    # --- the day's counts per compound
    got = await world.ok("screening", "office.counts", {})
    rows = {r["compound_id"]: r for r in got["compounds"]}
    assert set(rows) == {"C-01", "C-02"}
    c01 = rows["C-01"]
    assert c01["day"] == today.isoformat() and c01["residents"] == 4
    assert (c01["confirmed"], c01["home_quarantine"], c01["four_categories"]) == (1, 1, 1)
    assert rows["C-02"]["residents"] == 1 and rows["C-02"]["four_categories"] == 0
    assert got["totals"]["residents"] == 5
    # yesterday (from the history): nobody in any category, nobody released
    yesterday = (today - timedelta(days=1)).isoformat()
    past = await world.ok("screening", "office.counts", {"community_id": "CM-1", "day": yesterday})
    assert past["totals"]["residents"] == 5 and past["totals"]["four_categories"] == 0
    assert past["totals"]["home_quarantine"] == 0
    # a released person today, counted today (and no longer at home in quarantine)
    world.clock.now += timedelta(minutes=30)
    await world.ok(
        "screening",
        "status.set",
        {"person_id": "R-1002", "status": "released", "by": "D-01",
         "role": "community_doctor", "reason": "tested negative twice"},
    )  # fmt: skip
    later = await world.ok("screening", "office.counts", {"community_id": "CM-1"})
    c01 = next(r for r in later["compounds"] if r["compound_id"] == "C-01")
    assert c01["released_today"] == 1 and c01["home_quarantine"] == 0
    # errors named: a future day, an unknown community, a malformed day
    future = (today + timedelta(days=1)).isoformat()
    bad = await world.api("screening", "office.counts", {"day": future})
    assert bad["error"]["code"] == "invalid_day"
    bad = await world.api("screening", "office.counts", {"community_id": "CM-9"})
    assert bad["error"]["code"] == "unknown_community"
    bad = await world.api("screening", "office.counts", {"day": "yesterday"})
    assert bad["error"]["code"] == "invalid_request"
    assert [d["field"] for d in bad["error"]["detail"]] == ["day"]

    # --- who is overdue for a check-in (11:30, after the 10:00 reminder time)
    got = await world.ok("screening", "office.overdue", {"kind": "checkin"})
    assert got["communities"][0]["reminder_passed"] is True
    people = {p["person_id"]: p for p in got["people"]}
    assert sorted(people) == ["R-1001", "R-1002", "R-2001", "R-3001"]  # not R-1003
    assert people["R-2001"]["grid_worker"] == "W-01" and people["R-2001"]["missed_days"] is None
    assert people["R-1001"]["status"] == "confirmed"
    g2 = await world.ok("screening", "office.overdue", {"kind": "checkin", "grid_id": "G-02"})
    assert [(p["person_id"], p["grid_worker"]) for p in g2["people"]] == [("R-3001", "W-02")]
    bad = await world.api("screening", "office.overdue", {"kind": "visit", "grid_id": "G-9"})
    assert bad["error"]["code"] == "invalid_request"
    assert [d["field"] for d in bad["error"]["detail"]] == ["kind"]

    # --- who is overdue for a test: a running campaign of C-01, R-1003 tested
    starts = world.clock() - timedelta(hours=1)
    await world.ok(
        "screening",
        "campaigns.start",
        {"place_kind": "compound", "place_id": "C-01", "starts_at": starts.isoformat(),
         "ends_at": (starts + timedelta(hours=8)).isoformat(), "site": "the square",
         "by": "S-01", "campaign_id": "C-01-T1"},
    )  # fmt: skip
    await world.ok(
        "screening",
        "campaigns.results.add",
        {"campaign_id": "C-01-T1", "results": [
            {"sample_id": "S-1", "person_id": "R-1003", "result": "negative",
             "tested_at": (starts + timedelta(minutes=20)).isoformat(), "lab": "City Lab"}]},
    )  # fmt: skip
    got = await world.ok("screening", "office.overdue", {"kind": "test", "compound_id": "C-01"})
    assert [(p["person_id"], p["grid_worker"], p["outcome"]) for p in got["people"]] == [
        ("R-1001", "W-01", "untested"),
        ("R-1002", "W-01", "untested"),
        ("R-2001", "W-01", "untested"),
    ]
    assert got["campaigns"] == [{**got["campaigns"][0], "campaign_id": "C-01-T1", "untested": 3}]

    # --- R-1001's timeline: the register's passage, the status, the household, proposals
    async def proposed():
        found = await world.ok("screening", "contacts.proposed", {"case_person_id": "R-1001"})
        return found["proposals"]

    async def followed():
        found = await world.ok("screening", "followup.show", {"person_id": "R-1001"})
        return found["periods"]

    await until(proposed, what="R-1001's close contacts proposed")
    await until(followed, what="R-1001's follow-up opened (screening-followup)")
    got = await world.ok("screening", "office.timeline", {"person_id": "R-1001"})
    assert got["passages_unavailable"] is False
    kinds = [e["kind"] for e in got["entries"]]
    assert kinds[:4] == ["passage", "status", "follow_up", "household_quarantine"], kinds
    # R-1002, the household's one member at home in quarantine, was released: it ended
    assert set(kinds[4:]) == {"contact_proposal", "household_quarantine_ended"}
    passage = got["entries"][0]
    assert passage["gate_id"] == "g1" and passage["direction"] == "out"
    assert passage["verdict"] == "allow" and passage["at"].endswith("+08:00")
    status = got["entries"][1]
    assert (status["to"], status["by"], status["role"]) == ("confirmed", "CDC lab", "lab")
    since = await world.ok(
        "screening", "office.timeline", {"person_id": "R-1001", "since": now.isoformat()}
    )
    assert "passage" not in [e["kind"] for e in since["entries"]]

    # the office tool: the timeline as a table, the counts as JSON
    code, out, err = await world.gridcare("timeline", "R-1001")
    assert code == 0, err
    assert "passage" in out and "gate g1 out: allow" in out and "household_quarantine" in out
    code, out, err = await world.gridcare("counts", "--json")
    assert code == 0, err
    assert json.loads(out)["totals"]["confirmed"] == 1
    code, out, err = await world.gridcare("timeline", "R-9999")
    assert code == 1 and "unknown_person" in err

    # --- the checkpoint stops: the timeline says so, and keeps the rest
    await world.checkpoint.stop()
    world.checkpoint = None
    got = await world.ok("screening", "office.timeline", {"person_id": "R-1001"})
    assert got["passages_unavailable"] is True and got["passages_error"]
    assert "passage" not in [e["kind"] for e in got["entries"]]
    kinds = [e["kind"] for e in got["entries"]]
    assert kinds[:3] == ["status", "follow_up", "household_quarantine"], kinds
