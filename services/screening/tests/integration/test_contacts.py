"""Close contacts and compound levels over a real nats-server, screening on a real store
(SQLite and PostgreSQL) and a real checkpoint (its register, its gates): a person confirmed
through screening's API has their household and a neighbour at the same gate (scanned at
the checkpoint's gate) proposed, their grid worker told; the compound sealed, at the gates
too; screening's clock moved 14 days: epidemic-free and relaxed, at the gates too. A
checkpoint that does not answer: the proposal waits (retried), it is never empty.

Sample data (examples/community): C-01 (precaution; gates g1, g2; B-01, B-02 in grid G-01,
worker W-01): R-1001 and R-1002 in H-0101, R-1003 in H-0102, R-2001 in H-0201; C-02
(controlled; gate g3; B-03 in grid G-02, worker W-02): R-3001 in H-0301.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from screening_kit import MovedClock, until
from screening_kit import stream as kit_stream

from gridcare.checkpoint.bootstrap import build as build_checkpoint
from gridcare.checkpoint.config import CheckpointSettings
from gridcare.cli import refdata
from gridcare.cli.devrun import NatsServer
from gridcare.contracts.notify import REQUESTS
from gridcare.contracts.screening import COMPOUND_LEVEL_CHANGED, PersonStatusChanged
from gridcare.screening.adapters import tables as T
from gridcare.screening.adapters.register import NatsRegister, RegisterUnavailable
from gridcare.screening.bootstrap import build as build_screening
from gridcare.shared.envelope import Envelope
from gridcare.shared.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "community"


class World:
    """One nats-server, screening (the store under test), the checkpoint (its own SQLite
    store), and a client connection."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.server = NatsServer(store_dir=tmp_path / "nats").start()
        self.clock = MovedClock()
        self.screening: Any = None
        self.checkpoint: Any = None
        self.nc: Any = None

    async def start_screening(self) -> None:
        self.screening = build_screening(
            Settings(
                nats_url=self.server.url,
                database_url=self.database_url,
                var_dir=self.tmp_path / "screening",
                outbox_poll_s=0.05,
                retry_base_delay_s=0.2,
            ),
            clock=self.clock,
        )
        await self.screening.start()

    async def start_checkpoint(self) -> None:
        self.checkpoint = build_checkpoint(
            CheckpointSettings(
                nats_url=self.server.url,
                database_url=f"sqlite+aiosqlite:///{self.tmp_path / 'checkpoint.db'}",
                var_dir=self.tmp_path / "checkpoint",
                gate_check_interval_s=3600,
                housekeeping_interval_s=3600,
                retry_base_delay_s=0.05,
                outbox_poll_s=0.05,
            )
        )
        await self.checkpoint.start()

    async def connect_and_load(self) -> None:
        self.nc = await nats.connect(self.server.url)
        data = refdata.load(EXAMPLES)
        assert not data.problems, data.problems
        await refdata.publish(self.nc.jetstream(), data)

        async def projected() -> bool:
            async with self.screening.store.sessions() as s:
                people = await s.scalar(sa.select(sa.func.count()).select_from(T.residents))
                gridded = await s.scalar(
                    sa.select(sa.func.count())
                    .select_from(T.buildings)
                    .where(T.buildings.c.grid_id.is_not(None))
                )
                grids = await s.scalar(sa.select(sa.func.count()).select_from(T.grids))
            return people == 5 and gridded == 3 and grids == 2

        await until(projected, what="the reference data in screening's store")
        if self.checkpoint is not None:
            await self.checkpoint_knows_the_community()

    async def checkpoint_knows_the_community(self) -> None:
        async def known() -> bool:
            st = self.checkpoint.components["state"]
            return {"g1", "g3"} <= set(st.gate_compound) and {
                "R-1001",
                "R-2001",
                "R-1003",
                "R-3001",
            } <= set(st.resident_household)

        await until(known, what="the reference data at the checkpoint")

    async def stop(self) -> None:
        if self.nc is not None:
            await self.nc.close()
        for svc in (self.screening, self.checkpoint):
            if svc is not None:
                await svc.stop()
        self.server.stop()

    # --- what the tests do -------------------------------------------------------------------
    async def api(self, service: str, op: str, body: dict[str, Any]) -> dict[str, Any]:
        msg = await self.nc.request(f"api.{service}.{op}", json.dumps(body).encode(), timeout=5)
        return json.loads(msg.data)

    async def ok(self, service: str, op: str, body: dict[str, Any]) -> Any:
        reply = await self.api(service, op, body)
        assert "result" in reply, reply
        return reply["result"]

    async def scan(self, gate: str, person: str, at: datetime) -> dict[str, Any]:
        body = {
            "scan_id": f"{gate}-{uuid.uuid4().hex[:12]}",
            "gate_id": gate,
            "direction": "out",
            "person_id": person,
            "scanned_at": at.isoformat(),
            "temperature_c": 36.6,
            "mask": True,
            "health_code": "green",
        }
        msg = await self.nc.request(f"gate.{gate}.scan", json.dumps(body).encode(), timeout=5)
        return json.loads(msg.data)

    async def confirm(self, person: str) -> None:
        await self.ok(
            "screening",
            "status.set",
            {
                "person_id": person,
                "status": "confirmed",
                "by": "CDC lab",
                "role": "lab",
                "reason": "PCR positive",
            },
        )

    async def proposals(self, case: str) -> list[dict[str, Any]]:
        found = await self.ok("screening", "contacts.proposed", {"case_person_id": case})
        return found["proposals"]

    async def stream(self, stream: str, subject: str) -> list[dict[str, Any]]:
        """Every message on ``subject`` of ``stream`` so far (their envelopes' data)."""
        return [e.data for e in await kit_stream(self.nc, stream, subject)]

    async def gridcare(self, *args: str) -> tuple[int, str, str]:
        """The office tool as a process, against this nats-server."""
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "gridcare"),
            *args,
            env={**os.environ, "GRIDCARE_NATS_URL": self.server.url, "COLUMNS": "200"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode(), err.decode()

    async def gate_level(self, compound: str) -> str:
        [row] = (await self.ok("checkpoint", "level.show", {"compound_id": compound}))["compounds"]
        return row["level"]


@pytest.fixture
async def world(tmp_path, database_url):
    w = World(tmp_path, database_url)
    try:
        yield w
    finally:
        await w.stop()


async def test_an_outbreak_s_contacts_and_its_compound(world):
    await world.start_checkpoint()
    await world.start_screening()
    await world.connect_and_load()

    # yesterday R-1001 left by g1; R-2001 8 minutes later (a neighbour), R-1003 40 minutes
    # later (outside 15), R-3001 at the same time by g3 (another compound's gate)
    t = datetime.now(UTC) - timedelta(days=1)
    for gate, person, at in (
        ("g1", "R-1001", t),
        ("g1", "R-2001", t + timedelta(minutes=8)),
        ("g1", "R-1003", t + timedelta(minutes=40)),
        ("g3", "R-3001", t),
    ):
        verdict = await world.scan(gate, person, at)  # g3: controlled, denied, registered
        assert verdict["verdict"] == ("allow" if gate == "g1" else "deny"), verdict

    await world.confirm("R-1001")

    async def both_proposed():
        found = await world.proposals("R-1001")
        return found if len(found) >= 2 else None

    found = await until(both_proposed, what="the close-contact candidates proposed")
    assert {(p["candidate_id"], p["kind"]) for p in found} == {
        ("R-1002", "household"),
        ("R-2001", "gate"),
    }
    listed = await world.ok("screening", "contacts.proposed", {"grid_id": "G-01"})
    assert sorted(p["candidate_id"] for p in listed["proposals"]) == ["R-1002", "R-2001"]
    gate = next(p for p in found if p["kind"] == "gate")
    assert gate["reason"].startswith("gate g1 at ") and gate["grid_id"] == "G-01"
    assert all(p["status"] == "proposed" for p in found)

    # the grid worker is told, through notify's stream (nothing applied meanwhile)
    async def told():
        asks = await world.stream(REQUESTS.name, "notify.requested.>")
        return [a for a in asks if a["template"] == "task.close_contacts"]

    [ask] = await until(told, what="task.close_contacts on NOTIFY_REQUESTS")
    assert ask["recipient"] == {"kind": "role", "role": "grid_worker", "place_id": "G-01"}
    assert ask["params"]["count"] == 2 and ask["params"]["case_person_id"] == "R-1001"

    # the compound sealed, announced, and enforced at its gates
    async def sealed():
        return await world.gate_level("C-01") == "sealed"

    await until(sealed, what="C-01 sealed at the gates")
    changes = await world.stream("SCREENING", COMPOUND_LEVEL_CHANGED.format(compound_id="C-01"))
    assert [c["level"] for c in changes] == ["sealed"]

    # the worker decides: one rejected with a reason, one a close contact, held at once
    rejected = await world.ok(
        "screening",
        "contacts.reject",
        {
            "case_person_id": "R-1001",
            "candidate_id": "R-1002",
            "by": "W-01",
            "reason": "lives elsewhere since January",
        },
    )
    assert rejected["status"] == "rejected"
    refused = await world.api(
        "screening",
        "contacts.reject",
        {"case_person_id": "R-1001", "candidate_id": "R-2001", "by": "W-01", "reason": ""},
    )
    assert refused["error"]["code"] == "reason_required"
    code, _, err = await world.gridcare("contacts", "confirm", "R-1001", "R-2001", "--by", "W-01")
    assert code == 0 and "R-2001 (contact of R-1001): confirmed by W-01" in err
    shown = await world.ok("screening", "status.show", {"person_id": "R-2001"})
    assert shown["status"] == "close_contact" and shown["holds_at_gate"] is True

    async def held():
        verdict = await world.scan("g1", "R-2001", datetime.now(UTC))
        return verdict["verdict"] == "deny"

    await until(held, what="R-2001 held at g1")

    # 13 days on: not yet; 14 days on: epidemic-free, relaxed, at the gates too
    tick = world.screening.components["compound_tick"]
    world.clock.ahead = timedelta(days=13)
    await tick()
    [c01] = (await world.ok("screening", "compounds.show", {"compound_id": "C-01"}))["compounds"]
    assert c01["level"] == "sealed" and c01["days_without_case"] == 13
    assert c01["epidemic_free"] is False and c01["last_case_person_id"] == "R-1001"
    world.clock.ahead = timedelta(days=14, minutes=1)
    await tick()
    [c01] = (await world.ok("screening", "compounds.show", {"compound_id": "C-01"}))["compounds"]
    assert c01["epidemic_free"] is True and c01["level"] == "precaution"

    async def relaxed():
        return await world.gate_level("C-01") == "precaution"

    await until(relaxed, what="C-01 relaxed at the gates")
    code, out, _ = await world.gridcare("compounds", "show", "--json")
    assert code == 0
    shown = {c["compound_id"]: c for c in json.loads(out)["compounds"]}
    assert shown["C-01"]["epidemic_free"] is True
    assert shown["C-02"]["level"] == "controlled" and shown["C-02"]["last_case_at"] is None

    # the office seals the other compound through screening: the gates enforce it
    await world.ok(
        "screening",
        "compounds.level.set",
        {"compound_id": "C-02", "level": "sealed", "by": "Wang", "reason": "a case next door"},
    )

    async def c02_sealed():
        return await world.gate_level("C-02") == "sealed"

    await until(c02_sealed, what="C-02 sealed at the gates")
    bad = await world.api(
        "screening", "compounds.level.set", {"compound_id": "C-02", "level": "closed", "by": "x"}
    )
    assert bad["error"]["code"] == "invalid_request"
    assert {d["field"] for d in bad["error"]["detail"]} == {"level", "reason"}

    # the confirmation announced again (another message, the same fact): nobody proposed
    # twice, nobody told twice, the compound's count of days not started again
    [again] = [
        e
        for e in await world.stream("SCREENING", "screening.person.status.R-1001")
        if e["status"] == "confirmed"
    ]
    ev = PersonStatusChanged.model_validate(again)
    env = Envelope.wrap(ev, source="screening")
    await world.nc.jetstream().publish(ev.subject(), env.to_bytes(), headers=env.headers())

    async def handled_by_both():
        t = world.screening.store.tables.processed
        async with world.screening.store.sessions() as s:
            found = await s.scalars(sa.select(t.c.consumer).where(t.c.event_id == env.event_id))
            return {"screening-contacts", "screening-compounds"} <= set(found)

    await until(handled_by_both, what="the repeated confirmation handled")
    async with world.screening.store.sessions() as s:
        rows = await s.scalar(sa.select(sa.func.count()).select_from(T.contact_proposals))
    assert rows == 2
    assert len(await told()) == 1
    [c01] = (await world.ok("screening", "compounds.show", {"compound_id": "C-01"}))["compounds"]
    assert c01["epidemic_free"] is True and c01["level"] == "precaution"


async def test_a_checkpoint_that_does_not_answer_delays_the_proposal_never_empties_it(world):
    await world.start_screening()  # no checkpoint yet: api.checkpoint.* has no responders
    await world.connect_and_load()
    await world.confirm("R-1001")

    # the compound part needs no register: sealed in screening at once
    async def sealed():
        rows = await world.ok("screening", "compounds.show", {"compound_id": "C-01"})
        return rows["compounds"][0]["level"] == "sealed"

    await until(sealed, what="C-01 sealed in screening")
    await asyncio.sleep(1.0)  # several retries of the contacts consumer
    assert await world.proposals("R-1001") == []  # not "nobody": not decided yet

    await world.start_checkpoint()

    async def proposed():
        return await world.proposals("R-1001")

    found = await until(proposed, timeout=30, what="the proposal once the register answers")
    assert [(p["candidate_id"], p["kind"]) for p in found] == [("R-1002", "household")]


async def test_the_register_is_read_page_by_page_and_a_silent_one_is_an_error(world):
    """Screening's adapter against the real checkpoint API: a trace longer than a page is
    read to its end; no checkpoint is ``RegisterUnavailable``, never an empty answer."""
    await world.start_checkpoint()
    await world.start_screening()
    await world.connect_and_load()
    t = datetime.now(UTC) - timedelta(hours=2)
    people = ("R-1001", "R-1002", "R-1003", "R-2001")
    for i, person in enumerate(people):
        await world.scan("g1", person, t + timedelta(minutes=i))
    register = NatsRegister(lambda: world.nc, page=1)
    [own] = await register.passages_of("R-1001", t - timedelta(days=1))
    assert own.gate_id == "g1" and abs(own.scanned_at - t) < timedelta(seconds=1)
    near = await register.around(own, 15)
    assert [p.person_id for p in near] == list(people)  # four pages of one

    await world.checkpoint.stop()
    world.checkpoint = None
    with pytest.raises(RegisterUnavailable):
        await NatsRegister(lambda: world.nc, timeout_s=1).passages_of("R-1001", t)
