"""One outbreak through the whole system: nats-server, the four services as processes on
their own stores (SQLite files, or PostgreSQL databases), the office tool as a process, the
gates and the door sensor as the edge contract's devices, the grid chats as a webhook sink.

1. The morning before: R-1001 (H-0101, with R-1002) left by g1; R-2001, a neighbour, 6
   minutes later; R-1003 40 minutes later (not a contact); R-3001 by g3 (another compound).
2. A test campaign at C-01 (``gridcare campaigns start``); the lab's CSV imported with
   ``gridcare campaigns import``: R-1001 positive, the others negative.
3. R-1001 confirmed (``PersonStatusChanged`` on SCREENING, role lab), H-0101 home-quarantined
   (R-1002 ``home_quarantine``): R-1001's exit at g1 denied (``quarantine``) within a second
   of the import's reply, R-1002's too.
4. H-0101's door opens (``door.H-0101.opened``): the breach alert reaches G-01's chat (the
   checkpoint, dispatch's task, notify's delivery).
5. The close-contact candidates proposed to the grid worker: R-1002 (household) and R-2001
   (same gate, 6 minutes apart); not R-1003, not R-3001 (``gridcare contacts proposed``).
6. C-01 sealed at its gates (the checkpoint's level; R-1003 may enter, not leave).
7. Screening's clock moved 13 days (still sealed), then 14 days, and nothing new: C-01
   epidemic-free and relaxed to precaution (``CompoundLevelChanged``, ``gridcare compounds
   show``; the gates let R-1003 out again).

And, on the same running system, any NATS client checks in (§4.1) and answers a PHQ-9 (§4.3)
by the edge contract: plain nats-py, JSON written by hand.

Screening's clock is moved the way a drill would: ``GRIDCARE_SCREENING_CLOCK_OFFSET_FILE``
names a file holding the seconds it runs ahead (docs/configuration.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import nats
import pytest
from system import System, write_community

from gridcare.shared.envelope import Envelope

pytestmark = pytest.mark.e2e

DAY = 86400.0
ZONE = ZoneInfo("Asia/Shanghai")  # the sample community's (communities.csv)


@pytest.fixture
def outbreak(tmp_path, service_db_urls, sink) -> Iterator[System]:
    """The whole system, screening's clock movable and its compound tick every second
    (every minute by default) so an epidemic-free compound is seen at once."""
    s = System(
        tmp_path,
        service_db_urls,
        sink,
        env={
            "screening": {
                "GRIDCARE_SCREENING_CLOCK_OFFSET_FILE": str(tmp_path / "screening-clock"),
                "GRIDCARE_SCREENING_COMPOUND_TICK_S": "1",
            }
        },
    )
    try:
        s.start()
        yield s
    finally:
        s.stop()


# --- what an operator and the devices do --------------------------------------------------------
async def gridcare(system: System, *args: str) -> tuple[str, str]:
    """The office tool as a process; (stdout, stderr), failing the test if it fails."""
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "gridcare"),
        *args,
        env={**os.environ, "GRIDCARE_NATS_URL": system.nats.url, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, f"gridcare {' '.join(args)}: {err.decode()}"
    return out.decode(), err.decode()


async def gridcare_json(system: System, *args: str) -> Any:
    out, _ = await gridcare(system, *args, "--json")
    return json.loads(out)


async def api(nc, service: str, op: str, body: dict | None = None) -> Any:
    """An office API operation's result (what the office tool asks, without its start-up:
    a process of it takes seconds on a loaded machine, so polls ask the API)."""
    msg = await nc.request(f"api.{service}.{op}", json.dumps(body or {}).encode(), timeout=10)
    reply = json.loads(msg.data)
    assert "result" in reply, reply
    return reply["result"]


async def scan(
    nc, gate: str, person: str, direction: str = "out", at: datetime | None = None
) -> dict:
    """A gate's request (edge contract §1), a new scan id each time."""
    body = {
        "scan_id": f"{gate}-{uuid.uuid4().hex[:12]}",
        "gate_id": gate,
        "direction": direction,
        "person_id": person,
        "scanned_at": (at or datetime.now(UTC)).isoformat(),
        "temperature_c": 36.5,
        "mask": True,
        "health_code": "green",
    }
    msg = await nc.request(f"gate.{gate}.scan", json.dumps(body).encode(), timeout=5)
    reply = json.loads(msg.data)
    assert "verdict" in reply, reply
    return reply


async def events(nc, subject: str) -> list[dict]:
    """Every event on ``subject`` of the SCREENING stream so far (their data): fetched until
    the consumer has nothing pending (a fetch that times out on a loaded machine is not the
    end of them)."""
    sub = await nc.jetstream().pull_subscribe(subject, stream="SCREENING")
    out: list[dict] = []
    deadline = time.monotonic() + 30
    try:
        while True:
            assert time.monotonic() < deadline, f"{subject}: still pending after 30 s"
            try:
                msgs = await sub.fetch(100, timeout=1)
            except TimeoutError:  # nats' own, or asyncio's from a fetch's second request
                info = await sub.consumer_info()
                if info.num_pending == 0 and info.num_ack_pending == 0:
                    return out
                continue
            for m in msgs:
                out.append(Envelope.from_bytes(m.data).data)
                await m.ack()
    finally:
        await sub.unsubscribe()


async def edge_request(nc, subject: str, text: str) -> dict:
    """What any client of the resident edge does: JSON text out, JSON back."""
    msg = await nc.request(subject, text.encode("utf-8"), timeout=5)
    return json.loads(msg.data.decode("utf-8"))


# --- the test ------------------------------------------------------------------------------------
async def test_an_outbreak_from_a_positive_result_to_an_epidemic_free_compound(
    outbreak: System, sink, tmp_path
):
    system = outbreak
    write_community(tmp_path / "community", sink)
    system.import_refdata(tmp_path / "community")
    await system.wait_projected()

    async def screening_knows_the_grids() -> bool:  # who a proposal goes to
        return (
            await system.count("screening", "grids") == 2
            and await system.count("screening", "buildings", "grid_id IS NOT NULL") == 3
        )

    await system.wait_for(screening_knows_the_grids, what="grids in screening's store")

    nc = await nats.connect(system.nats.url)
    try:
        await any_client_checks_in_and_answers_a_phq9(nc)
        await the_outbreak(system, nc, sink, tmp_path)
    finally:
        await nc.close()


async def any_client_checks_in_and_answers_a_phq9(nc) -> None:
    """§4.1 and §4.3 by the contract, for R-3001 (C-02, not part of the outbreak)."""
    today = datetime.now(ZONE).date().isoformat()
    now = datetime.now(ZONE).isoformat(timespec="seconds")

    def by_hand(text: str) -> str:  # the JSON as a client writes it, today's day and time in
        return text.replace("TODAY", today).replace("NOW", now)

    checkin = by_hand(
        '{"checkin_id": "mp-e2e-c1", "person_id": "R-3001", "day": "TODAY",'
        ' "temperature_c": 36.6, "symptoms": [], "submitted_at": "NOW"}'
    )
    reply = await edge_request(nc, "resident.R-3001.checkin", checkin)
    assert set(reply) == {"checkin_id", "status", "follow_up", "message"}, reply
    assert (reply["checkin_id"], reply["status"], reply["follow_up"]) == (
        "mp-e2e-c1",
        "recorded",
        False,
    )
    assert reply["message"]["zh"] and reply["message"]["en"]
    assert await edge_request(nc, "resident.R-3001.checkin", checkin) == reply  # a retry
    bad = by_hand(
        '{"checkin_id": "mp-e2e-c2", "person_id": "R-3001", "day": "TODAY",'
        ' "symptoms": ["sneezing"]}'
    )
    error = (await edge_request(nc, "resident.R-3001.checkin", bad))["error"]
    assert error["code"] == "invalid_checkin"
    assert {d["field"] for d in error["detail"]} >= {"symptoms.0", "submitted_at"}, error

    phq9 = by_hand(
        '{"submission_id": "mp-e2e-q1", "person_id": "R-3001", "instrument": "phq9",'
        ' "answers": [2, 2, 1, 1, 1, 1, 1, 1, 0], "submitted_at": "NOW"}'
    )
    reply = await edge_request(nc, "resident.R-3001.questionnaire", phq9)
    assert set(reply) == {"submission_id", "score", "severity", "follow_up", "message"}, reply
    assert (reply["score"], reply["severity"], reply["follow_up"]) == (10, "moderate", "call_back")
    assert reply["message"]["zh"] and reply["message"]["en"]
    assert await edge_request(nc, "resident.R-3001.questionnaire", phq9) == reply
    bad = by_hand(
        '{"submission_id": "mp-e2e-q2", "person_id": "R-3001", "instrument": "phq9",'
        ' "answers": [0, 0, 0], "submitted_at": "NOW"}'
    )
    error = (await edge_request(nc, "resident.R-3001.questionnaire", bad))["error"]
    assert error["code"] == "invalid_questionnaire", error
    assert "answers" in {d["field"] for d in error["detail"]}, error


async def the_outbreak(system: System, nc, sink, tmp_path: Path) -> None:
    now = datetime.now(UTC)

    # 1. the morning before the result: passages in the checkpoint's register; meanwhile the
    # office starts a test campaign at C-01
    t = now - timedelta(hours=2)

    async def passages() -> None:
        for gate, person, at, verdict in (
            ("g1", "R-1001", t, "allow"),
            ("g1", "R-2001", t + timedelta(minutes=6), "allow"),  # a neighbour, 6 min later
            ("g1", "R-1003", t + timedelta(minutes=40), "allow"),  # outside the 15 min window
            ("g3", "R-3001", t, "deny"),  # C-02 is controlled: no permit, but registered
        ):
            assert (await scan(nc, gate, person, at=at))["verdict"] == verdict

    # 2. the campaign, and the lab's file
    campaign, _ = await asyncio.gather(
        gridcare_json(
            system,
            "campaigns",
            "start",
            "compound",
            "C-01",
            "--starts-at",
            (now - timedelta(hours=1)).isoformat(),
            "--ends-at",
            (now + timedelta(hours=8)).isoformat(),
            "--site",
            "the square by gate 1",
            "--by",
            "S-01",
            "--name",
            "Donghu Garden",
        ),
        passages(),
    )
    cid = campaign["campaign_id"]
    assert campaign["new"] and campaign["counts"]["due"] == 4, campaign  # R-1001..3, R-2001
    sampled = (now - timedelta(minutes=30)).astimezone(ZONE).isoformat(timespec="seconds")
    lab = tmp_path / "lab-results.csv"
    lab.write_text(
        "sample_id,person_id,result,tested_at,lab\n"
        f"S-0001,R-1001,positive,{sampled},City Lab\n"
        f"S-0002,R-1002,negative,{sampled},City Lab\n"
        f"S-0003,R-1003,negative,{sampled},City Lab\n"
        f"S-0004,R-2001,negative,{sampled},City Lab\n",
        encoding="utf-8",
    )
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "gridcare"),
        "campaigns",
        "import",
        cid,
        str(lab),
        env={**os.environ, "GRIDCARE_NATS_URL": system.nats.url, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    # the first line the tool prints is the reply's ("4 recorded, ..."): the moment of it
    first = await asyncio.wait_for(proc.stderr.readline(), 60)
    replied = time.monotonic()
    assert b"recorded" in first, first

    # 3. R-1001 held at the gate within a second of that reply (scans as the gate sends)
    tries = 0
    while True:
        tries += 1
        verdict = await scan(nc, "g1", "R-1001")
        if "quarantine" in verdict["reasons"]:
            denied = time.monotonic()
            break
        assert time.monotonic() - replied < 5, f"R-1001 still passes: {verdict}"
        await asyncio.sleep(0.02)
    assert verdict["verdict"] == "deny"
    assert denied - replied < 1.0, f"denied {denied - replied:.3f} s after the reply"
    _, tail = await asyncio.wait_for(proc.communicate(), 60)
    err = (first + tail).decode()
    assert proc.returncode == 0, err
    assert "4 recorded" in err and "positive R-1001 (S-0001): confirmed" in err, err
    assert "H-0101 household quarantined" in err, err
    print(f"R-1001 denied at g1 {denied - replied:.3f} s after the import's reply ({tries} scans)")

    [confirmed] = [
        e for e in await events(nc, "screening.person.status.R-1001") if e["status"] == "confirmed"
    ]
    assert confirmed["holds_at_gate"] is True and confirmed["role"] == "lab"
    assert confirmed["source"] == f"campaign:{cid}"
    [home] = await events(nc, "screening.person.status.R-1002")
    assert (home["status"], home["household_id"], home["holds_at_gate"]) == (
        "home_quarantine",
        "H-0101",
        True,
    )
    [h0101] = (await api(nc, "screening", "quarantine.households"))["households"]
    assert h0101["household_id"] == "H-0101" and h0101["days_left"] > 13.9, h0101
    assert {(m["person_id"], m["status"]) for m in h0101["members"]} == {
        ("R-1001", "confirmed"),  # held more strictly already: keeps it
        ("R-1002", "home_quarantine"),
    }

    async def r1002_held() -> bool:
        return "quarantine" in (await scan(nc, "g1", "R-1002"))["reasons"]

    await system.wait_for(r1002_held, timeout=10, what="R-1002 held at g1")

    # 4. H-0101's door opens (edge contract §3): the grid worker's chat is alerted
    opened = datetime.now(UTC).isoformat()
    door = {"event_id": "d-e2e-1", "household_id": "H-0101", "opened_at": opened}
    await nc.publish("door.H-0101.opened", json.dumps(door).encode())
    await nc.flush()

    # hop by hop, so a failure says where it stopped: the checkpoint's register, dispatch's
    # task, notify's delivery
    async def door_recorded() -> list:
        return await system.rows("checkpoint", "door_events", "event_id = 'd-e2e-1'")

    [recorded] = await system.wait_for(door_recorded, what="the door event at the checkpoint")
    assert recorded.quarantined, "H-0101's door opening was not taken for a breach"

    async def door_task() -> list:
        return await system.rows(
            "dispatch", "tasks", "kind = 'quarantine_breach' AND person_id IS NULL"
        )

    [task] = await system.wait_for(door_task, what="dispatch's task for the door")
    assert (task.household_id, task.assignee_id, bool(task.urgent)) == ("H-0101", "W-01", True)

    async def door_alert() -> list[dict]:
        return [p for p in sink.posts("/hooks/G-01") if "隔离户开门" in p["body"]["title"]]

    [alert] = await system.wait_for(door_alert, what="the door alert in G-01's chat")
    assert "H-0101" in alert["body"]["title"] and "门磁" in alert["body"]["message"]

    # 5. the close-contact candidates, proposed to the grid worker, nothing applied
    async def proposed() -> list[dict] | None:
        asked = await api(nc, "screening", "contacts.proposed", {"case_person_id": "R-1001"})
        return asked["proposals"] if len(asked["proposals"]) >= 2 else None

    found = await system.wait_for(proposed, what="close-contact candidates")
    assert {(p["candidate_id"], p["kind"]) for p in found} == {
        ("R-1002", "household"),
        ("R-2001", "gate"),
    }, found
    assert all(p["status"] == "proposed" and p["grid_id"] == "G-01" for p in found)
    [gate] = [p for p in found if p["kind"] == "gate"]
    assert gate["gate_id"] == "g1" and gate["reason"].startswith("gate g1 at "), gate
    shown = await api(nc, "screening", "status.show", {"person_id": "R-2001"})
    assert shown["holds_at_gate"] is False, shown  # a proposal holds nobody

    async def worker_told() -> list[dict]:
        return [p for p in sink.posts() if "密接待核查" in p["body"]["title"]]

    [told] = await system.wait_for(worker_told, what="task.close_contacts delivered")
    assert "R-1001" in told["body"]["title"]

    # 6. C-01 sealed at its gates: R-1003 (not held) may come in, not go out
    async def sealed() -> bool:
        [c01] = (await api(nc, "checkpoint", "level.show", {"compound_id": "C-01"}))["compounds"]
        return c01["level"] == "sealed"

    await system.wait_for(sealed, what="C-01 sealed at the checkpoint")
    out = await scan(nc, "g2", "R-1003", "out")
    assert (out["verdict"], out["reasons"]) == ("deny", ["sealed"]), out
    assert (await scan(nc, "g2", "R-1003", "in"))["verdict"] == "allow"
    [c01] = (await api(nc, "screening", "compounds.show", {"compound_id": "C-01"}))["compounds"]
    assert (c01["level"], c01["last_case_person_id"], c01["epidemic_free"]) == (
        "sealed",
        "R-1001",
        False,
    )

    # 7. screening's clock 13 days on: still sealed; 14 days on, nothing new: epidemic-free
    system.move_clock("screening", 13 * DAY)

    async def thirteen_days() -> dict | None:
        [c] = (await api(nc, "screening", "compounds.show", {"compound_id": "C-01"}))["compounds"]
        return c if c["days_without_case"] == 13 else None

    c01 = await system.wait_for(thirteen_days, what="13 days on screening's clock")
    assert c01["level"] == "sealed" and c01["epidemic_free"] is False
    system.move_clock("screening", 14 * DAY + 60)

    async def epidemic_free() -> dict | None:
        [c] = (await api(nc, "screening", "compounds.show", {"compound_id": "C-01"}))["compounds"]
        return c if c["epidemic_free"] else None

    c01 = await system.wait_for(epidemic_free, what="C-01 epidemic-free")
    assert c01["level"] == "precaution" and c01["days_without_case"] == 14, c01
    changes = await events(nc, "screening.compound.level.C-01")
    assert [c["level"] for c in changes] == ["sealed", "precaution"], changes

    async def relaxed() -> bool:
        [c] = (await api(nc, "checkpoint", "level.show", {"compound_id": "C-01"}))["compounds"]
        return c["level"] == "precaution"

    await system.wait_for(relaxed, what="C-01 relaxed at the checkpoint")
    assert (await scan(nc, "g2", "R-1003", "out"))["verdict"] == "allow"
    held = await scan(nc, "g1", "R-1001", "out")  # the case is still the doctor's to release
    assert held["verdict"] == "deny" and "quarantine" in held["reasons"], held

    # what the office reads with its tool (two processes at once: each takes seconds here)
    (proposals, _), shown = await asyncio.gather(
        gridcare(system, "contacts", "proposed", "--grid", "G-01"),
        gridcare_json(system, "compounds", "show"),
    )
    assert "R-1002" in proposals and "R-2001" in proposals and "R-1003" not in proposals
    compounds = {c["compound_id"]: c for c in shown["compounds"]}
    assert compounds["C-01"]["epidemic_free"] is True
    assert compounds["C-01"]["level"] == "precaution"
    assert compounds["C-02"]["level"] == "controlled" and compounds["C-02"]["last_case_at"] is None
    for name in ("checkpoint", "screening", "dispatch", "notify"):
        assert await system.count(name, "dead_letters") == 0, system.logs()
