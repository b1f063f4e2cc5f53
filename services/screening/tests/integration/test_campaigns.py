"""Test campaigns through screening's API over a real nats-server, on a real store (SQLite
and PostgreSQL): a lab's CSV file with bad rows writes nothing and names every line; a
positive result confirms the person and quarantines their household in the same
transaction, the ``PersonStatusChanged`` events reaching the SCREENING stream; the same
file again changes nothing; a file of 20,000 results sent in parts is all or nothing;
the reminder rounds reach NOTIFY_REQUESTS."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import nats
import pytest
import sqlalchemy as sa
from screening_kit import MovedClock, count, stream, until

from gridcare.cli.devrun import NatsServer
from gridcare.contracts.notify import REQUESTS
from gridcare.contracts.refdata import Building, Community, Compound, Household, Resident
from gridcare.contracts.screening import STREAM as SCREENING
from gridcare.screening.adapters import tables as T
from gridcare.screening.bootstrap import build
from gridcare.screening.handlers import campaigns as handlers
from gridcare.screening.unit_of_work import SqlUnitOfWork
from gridcare.shared.envelope import Envelope
from gridcare.shared.settings import Settings

PEOPLE = {  # person: household
    "R-1001": "H-0101",
    "R-1002": "H-0101",
    "R-1003": "H-0102",
    "R-1004": "H-0201",
    "R-2001": "H-0301",  # in another compound
}
COMMUNITY = (
    Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
    Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
    Compound(compound_id="C-02", community_id="CM-1", name="West Garden"),
    Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
    Building(building_id="B-02", compound_id="C-01", grid_id="G-02", name="2"),
    Building(building_id="B-03", compound_id="C-02", grid_id="G-03", name="3"),
    Household(household_id="H-0101", building_id="B-01", unit="1-101"),
    Household(household_id="H-0102", building_id="B-01", unit="1-102"),
    Household(household_id="H-0201", building_id="B-02", unit="2-101"),
    Household(household_id="H-0301", building_id="B-03", unit="3-101"),
    *(Resident(resident_id=p, household_id=h, name=p) for p, h in PEOPLE.items()),
)


@pytest.fixture
async def screening(tmp_path, database_url):
    server = NatsServer(store_dir=tmp_path / "nats").start()
    clock = MovedClock()
    svc = build(
        Settings(
            nats_url=server.url, database_url=database_url, var_dir=tmp_path, outbox_poll_s=0.1
        ),
        clock=clock,
    )
    await svc.start()
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    for entity in COMMUNITY:
        env = Envelope.wrap(entity, source="test")
        await js.publish(entity.subject(), env.to_bytes(), headers=env.headers())

    async def projected():
        return await count(svc, T.residents) == len(PEOPLE)

    await until(projected, what="the reference data in screening's store")
    try:
        yield svc, nc, clock
    finally:
        await nc.close()
        await svc.stop()
        server.stop()


async def api(nc, op: str, body: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    msg = await nc.request(f"api.screening.{op}", json.dumps(body).encode(), timeout=timeout)
    return json.loads(msg.data)


async def start(nc, clock, **kw) -> dict[str, Any]:
    now = clock()
    body = {
        "place_kind": "compound",
        "place_id": "C-01",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=8)).isoformat(),
        "site": "the square by gate 1",
        "by": "Secretary Wang",
        "campaign_id": "CP-1",
        "place_name": "Donghu Garden",
        **kw,
    }
    reply = await api(nc, "campaigns.start", body, timeout=60)
    assert "result" in reply, reply
    return reply["result"]


async def stream_events(nc, stream_name: str, subject: str) -> list[dict[str, Any]]:
    """Every message on ``subject`` of ``stream_name`` so far (whole envelopes)."""
    return [e.model_dump(mode="json") for e in await stream(nc, stream_name, subject)]


def csv_of(rows: list[tuple[str, ...]]) -> str:
    return "sample_id,person_id,result,tested_at,lab\n" + "".join(",".join(r) + "\n" for r in rows)


async def test_a_lab_file_with_bad_rows_writes_nothing_and_names_every_line(screening):
    svc, nc, clock = screening
    await start(nc, clock)
    t = (clock() - timedelta(minutes=30)).astimezone(ZoneInfo("Asia/Shanghai"))
    t = t.strftime("%Y-%m-%d %H:%M")  # the community's clock, as a lab may write it
    text = csv_of(
        [
            ("S-1", "R-1001", "negative", t, "Lab A"),
            ("S-2", "R-9999", "negative", t, "Lab A"),
            ("S-3", "R-2001", "negative", t, "Lab A"),
            ("S-4", "R-1003", "unclear", "tomorrow", "Lab A"),
        ]
    )
    reply = await api(
        nc, "campaigns.results.import", {"campaign_id": "CP-1", "file_name": "a.csv", "csv": text}
    )
    assert reply["error"]["code"] == "results_refused"
    lines = [d["error"] for d in reply["error"]["detail"]]
    assert [e.split(": ")[0] for e in lines] == ["a.csv:3", "a.csv:4", "a.csv:5", "a.csv:5"]
    assert "R-9999 is not a known resident" in lines[0]
    assert "R-2001 does not live in compound C-01" in lines[1]
    assert await count(svc, T.campaign_results) == 0  # not even S-1
    # a request that is not one: every bad field named, never a timeout
    bad = await api(nc, "campaigns.results.import", {"campaign_id": "CP-1"})
    assert bad["error"]["code"] == "invalid_request"
    unknown = await api(nc, "campaigns.show", {"campaign_id": "CP-9"})
    assert unknown["error"]["code"] == "unknown_campaign"


async def test_a_positive_confirms_the_person_and_quarantines_the_household(screening):
    svc, nc, clock = screening
    await start(nc, clock)
    t = (clock() - timedelta(minutes=30)).isoformat()
    text = csv_of(
        [
            ("S-1", "R-1001", "positive", t, "Lab A"),
            ("S-2", "R-1003", "negative", t, "Lab A"),
            ("S-3", "R-1004", "invalid", t, "Lab A"),
        ]
    )
    body = {"campaign_id": "CP-1", "file_name": "a.csv", "csv": text}
    got = (await api(nc, "campaigns.results.import", body))["result"]
    assert got["recorded"] == 3 and [p["person_id"] for p in got["positives"]] == ["R-1001"]
    assert got["positives"][0]["household_quarantined"] is True
    async with svc.store.sessions() as s:
        rows = await s.execute(sa.select(T.person_status.c.person_id, T.person_status.c.status))
        statuses = dict(rows.all())
    assert statuses == {"R-1001": "confirmed", "R-1002": "home_quarantine"}
    assert (
        await count(
            svc, T.household_quarantines, T.household_quarantines.c.household_id == "H-0101"
        )
        == 1
    )

    async def announced():
        events = await stream_events(nc, SCREENING.name, "screening.person.status.>")
        got = {(e["data"]["person_id"], e["data"]["status"]) for e in events}
        return got if len(got) == 2 else None

    changed = await until(announced, what="PersonStatusChanged on the SCREENING stream")
    assert changed == {("R-1001", "confirmed"), ("R-1002", "home_quarantine")}
    shown = (await api(nc, "campaigns.show", {"campaign_id": "CP-1"}))["result"]
    assert shown["counts"] == {
        "due": 4,
        "tested": 3,
        "positive": 1,
        "negative": 1,
        "pending": 1,
        "not_tested": 1,
        "excluded": 0,
        "joined_late": 0,
    }
    # the same file again: nothing new, not one more event
    outbox = await count(svc, svc.store.tables.outbox)
    again = (await api(nc, "campaigns.results.import", body))["result"]
    assert again["recorded"] == 0 and again["already"] == 3 and again["positives"] == []
    assert await count(svc, svc.store.tables.outbox) == outbox
    assert await count(svc, T.campaign_results) == 3
    left = (await api(nc, "campaigns.untested", {"campaign_id": "CP-1"}))["result"]
    assert left["count"] == 2  # R-1002 (untested) and R-1004 (invalid sample: pending)


async def test_the_same_file_twice_through_the_api_is_recorded_once(screening):
    """Two imports of one file sent at the same moment (a retry while the first still
    runs): both answer; the samples are recorded once, the positive confirmed once."""
    svc, nc, clock = screening
    await big_compound(svc, 2000)
    await start(nc, clock, place_id="C-09", campaign_id="CP-9")
    t = (clock() - timedelta(minutes=30)).isoformat()
    rows = [(f"S-9{i:05d}", f"R-9{i:05d}", "negative", t, "Lab A") for i in range(2000)]
    rows[7] = ("S-900007", "R-900007", "positive", t, "Lab A")
    body = {"campaign_id": "CP-9", "file_name": "a.csv", "csv": csv_of(rows)}
    replies = await asyncio.gather(
        *(api(nc, "campaigns.results.import", body, timeout=60) for _ in range(2))
    )
    got = [r["result"] for r in replies]
    assert sorted((g["recorded"], g["already"]) for g in got) == [(0, 2000), (2000, 0)]
    assert [len(g["positives"]) for g in got].count(1) == 1
    assert await count(svc, T.campaign_results) == 2000
    async with svc.store.sessions() as s:
        h = T.status_history.c
        q = sa.select(sa.func.count()).where(h.person_id == "R-900007", h.status == "confirmed")
        assert await s.scalar(q) == 1


class RacingUnitOfWork(SqlUnitOfWork):
    """On its first try, waits at the barrier before writing its results: both imports
    have checked the same samples as new before either writes (PostgreSQL; on SQLite
    writers are serialised in-process and never overlap)."""

    def __init__(self, svc, barrier: asyncio.Barrier) -> None:
        super().__init__(svc.store, svc.name, None, svc.relay.wake)
        self.barrier = barrier
        self.tries = 0

    def repositories(self) -> None:
        super().repositories()
        self.tries += 1
        real, first = self.campaigns.add_results, self.tries == 1

        async def add_results(results):
            if first:
                await asyncio.wait_for(self.barrier.wait(), 10)
            await real(results)

        self.campaigns.add_results = add_results  # type: ignore[method-assign]


async def test_two_imports_that_collide_in_the_store_record_each_sample_once(screening, db_backend):
    if db_backend != "postgres":
        pytest.skip("SQLite's writers are serialised in-process: they never collide")
    svc, nc, clock = screening
    await big_compound(svc, 500)
    await start(nc, clock, place_id="C-09", campaign_id="CP-9")
    t = (clock() - timedelta(minutes=30)).isoformat()
    rows = [(f"S-9{i:05d}", f"R-9{i:05d}", "negative", t, "Lab A") for i in range(500)]
    rows[7] = ("S-900007", "R-900007", "positive", t, "Lab A")
    text = csv_of(rows)
    barrier = asyncio.Barrier(2)
    a, b = RacingUnitOfWork(svc, barrier), RacingUnitOfWork(svc, barrier)
    got = await asyncio.gather(
        *(handlers.import_csv(uow, "CP-9", "a.csv", text=text, now=clock()) for uow in (a, b))
    )
    assert max(a.tries, b.tries) == 2  # they did collide; the loser checked again
    assert sorted((g["recorded"], g["already"]) for g in got) == [(0, 500), (500, 0)]
    assert [len(g["positives"]) for g in got].count(1) == 1
    assert await count(svc, T.campaign_results) == 500
    async with svc.store.sessions() as s:
        h = T.status_history.c
        q = sa.select(sa.func.count()).where(h.person_id == "R-900007", h.status == "confirmed")
        assert await s.scalar(q) == 1


async def test_reminders_then_door_calls_reach_notify_requests(screening):
    svc, nc, clock = screening
    await start(nc, clock, door_call_after_min=60)
    t = (clock() - timedelta(minutes=30)).isoformat()
    await api(
        nc,
        "campaigns.results.add",
        {
            "campaign_id": "CP-1",
            "results": [
                {"sample_id": "S-1", "person_id": "R-1001", "result": "negative",
                 "tested_at": t, "lab": "Lab A"},
            ],
        },
    )  # fmt: skip
    first = (await api(nc, "campaigns.remind", {"campaign_id": "CP-1"}))["result"]
    assert first["round"] == 1 and first["people"] == 3
    not_yet = (await api(nc, "campaigns.remind", {"campaign_id": "CP-1"}))["result"]
    assert not_yet["round"] is None
    clock.ahead = timedelta(minutes=61)
    await svc.components["campaign_tick"]()  # as the periodic pass would

    async def requested():
        events = await stream_events(nc, REQUESTS.name, "notify.requested.>")
        return events if len(events) == 5 else None

    events = [e["data"] for e in await until(requested, what="5 requests on NOTIFY_REQUESTS")]
    people = sorted(
        e["recipient"]["person_id"] for e in events if e["recipient"]["kind"] == "person"
    )
    assert people == ["R-1002", "R-1003", "R-1004"]
    doors = {
        e["recipient"]["place_id"]: e["params"] for e in events if e["recipient"]["kind"] == "role"
    }
    assert doors["G-01"]["households"] == [
        {"household_id": "H-0101", "people": ["R-1002"]},
        {"household_id": "H-0102", "people": ["R-1003"]},
    ]
    assert doors["G-02"]["count"] == 1
    shown = (await api(nc, "campaigns.show", {"campaign_id": "CP-1"}))["result"]
    assert list(shown["rounds"]) == ["1", "2"]


BIG = 20_000


async def big_compound(svc, n: int) -> None:
    """Compound C-09 of ``n`` residents, written straight into screening's copy (publishing
    20,000 reference rows would test the projection, not the campaign)."""
    async with svc.store.sessions() as s, s.begin():
        await s.execute(
            sa.insert(T.buildings),
            [{"building_id": "B-9", "compound_id": "C-09", "grid_id": "G-9"}],
        )
        await s.execute(sa.insert(T.compounds), [{"compound_id": "C-09", "community_id": "CM-1"}])
        await s.execute(
            sa.insert(T.households),
            [{"household_id": f"H-9{i:05d}", "building_id": "B-9"} for i in range(n // 4 + 1)],
        )
        await s.execute(
            sa.insert(T.residents),
            [{"resident_id": f"R-9{i:05d}", "household_id": f"H-9{i // 4:05d}"} for i in range(n)],
        )


async def test_a_file_of_20000_results_in_parts_is_all_or_nothing(screening):
    svc, nc, clock = screening
    await big_compound(svc, BIG)
    t0 = time.perf_counter()
    c = await start(nc, clock, place_id="C-09", campaign_id="CP-BIG")
    started_s = time.perf_counter() - t0
    assert c["counts"]["due"] == BIG
    t = (clock() - timedelta(minutes=30)).isoformat()
    rows = [(f"S-9{i:05d}", f"R-9{i:05d}", "negative", t, "Lab A") for i in range(BIG)]
    rows[BIG - 7] = (rows[BIG - 7][0], "R-8", "negative", t, "Lab A")  # nobody
    lines = csv_of(rows).splitlines(keepends=True)

    async def send(upload_id: str, lines: list[str]) -> dict[str, Any]:
        parts = [lines[i : i + 5000] for i in range(0, len(lines), 5000)]
        for n, part in enumerate(parts, 1):
            body = {"upload_id": upload_id, "part": n, "text": "".join(part)}
            assert "result" in await api(nc, "campaigns.results.upload", body)
        body = {"campaign_id": "CP-BIG", "file_name": "big.csv", "upload_id": upload_id,
                "parts": len(parts)}  # fmt: skip
        return await api(nc, "campaigns.results.import", body, timeout=120)

    refused = await send("U-1", lines)
    assert refused["error"]["code"] == "results_refused"
    assert [d["error"] for d in refused["error"]["detail"]] == [
        f"big.csv:{BIG - 7 + 2}: R-8 is not a known resident"
    ]
    assert await count(svc, T.campaign_results) == 0
    lines[BIG - 7 + 1] = f"S-9{BIG - 7:05d},R-9{BIG - 7:05d},negative,{t},Lab A\n"
    t0 = time.perf_counter()
    got = (await send("U-2", lines))["result"]
    took = time.perf_counter() - t0
    assert got["recorded"] == BIG
    assert await count(svc, T.campaign_results) == BIG
    assert await count(svc, T.campaign_uploads) == 5  # U-1's parts wait for the daily purge
    shown = (await api(nc, "campaigns.show", {"campaign_id": "CP-BIG"}, timeout=30))["result"]
    assert shown["counts"]["negative"] == BIG and shown["counts"]["not_tested"] == 0
    print(f"\n20,000 residents: campaign started in {started_s:.2f} s, imported in {took:.2f} s")


# --- the office tool ----------------------------------------------------------------------------
async def gridcare(nc_url: str, *args: str) -> tuple[int, str, str]:
    """The ``gridcare`` command as the office runs it (its own process)."""
    exe = Path(sys.executable).with_name("gridcare")
    proc = await asyncio.create_subprocess_exec(
        str(exe),
        *args,
        env={**os.environ, "GRIDCARE_NATS_URL": nc_url, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_the_office_tool_imports_a_lab_file_in_parts(screening, db_backend, tmp_path):
    if db_backend == "postgres":
        pytest.skip("the office tool's part does not depend on the store")
    svc, nc, clock = screening
    url = nc.connected_url.geturl()
    n = 12_000  # about 700 kB: two parts
    await big_compound(svc, n)
    now = clock()
    code, _, err = await gridcare(
        url, "campaigns", "start", "compound", "C-09", "--id", "CP-9",
        "--starts-at", (now - timedelta(hours=1)).isoformat(),
        "--ends-at", (now + timedelta(hours=8)).isoformat(),
        "--site", "gate 1", "--by", "Secretary Wang",
    )  # fmt: skip
    assert code == 0, err
    assert "due 12000" in err
    t = (now - timedelta(minutes=30)).isoformat()
    rows = [(f"S-9{i:05d}", f"R-9{i:05d}", "negative", t, "Lab A") for i in range(n)]
    rows[10] = ("S-x", "R-900010", "maybe", t, "Lab A")
    rows[n - 1] = (f"S-9{n - 1:05d}", "R-8", "negative", t, "Lab A")
    bad = tmp_path / "lab.csv"
    bad.write_text(csv_of(rows))
    code, _, err = await gridcare(url, "campaigns", "import", "CP-9", str(bad))
    assert code == 1
    assert f"{bad}:12: result 'maybe' is not positive, negative or invalid" in err
    assert f"{bad}:{n + 1}: R-8 is not a known resident" in err
    assert "nothing imported (2 faults)" in err
    assert await count(svc, T.campaign_results) == 0
    rows[10] = ("S-900010", "R-900010", "positive", t, "Lab A")
    rows[n - 1] = (f"S-9{n - 1:05d}", f"R-9{n - 1:05d}", "negative", t, "Lab A")
    good = tmp_path / "lab-fixed.csv"
    good.write_text(csv_of(rows))
    code, _, err = await gridcare(url, "campaigns", "import", "CP-9", str(good))
    assert code == 0, err
    assert f"{n} recorded" in err and "positive R-900010" in err
    code, out, err = await gridcare(url, "campaigns", "show", "CP-9")
    assert code == 0, err
    assert "positive 1, negative 11999" in out
    code, _, err = await gridcare(url, "campaigns", "import", "CP-9", str(good))
    assert code == 0 and f"0 recorded, {n} recorded already" in err
    code, _, err = await gridcare(
        url, "campaigns", "add", "CP-9", "--sample", "S-extra", "--person", "R-900011",
        "--result", "negative", "--lab", "Lab B",
    )  # fmt: skip
    assert code == 0 and "1 recorded, 0 recorded already" in err, err
    code, out, err = await gridcare(url, "campaigns", "untested", "CP-9", "--json")
    assert code == 0 and json.loads(out)["count"] == 0, err
    code, _, err = await gridcare(url, "campaigns", "remind", "CP-9")
    assert code == 0 and "CP-9: 0 residents reminded" in err, err
