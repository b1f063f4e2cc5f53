"""The checkpoint service in-process against a real nats-server and real stores.

Each test gets its own nats-server (the checkpoint's durable consumer names are fixed) and
its own database (SQLite and PostgreSQL through the ``database_url`` fixture), loads the
example community's reference data with the library, and then drives the service the way
devices, ops, screening and the office do: gate scans and API calls by request/reply,
events published on the streams, door and heartbeat payloads as the edge contract defines them.

Sample data (examples/community): C-01 (precaution, community CM-1, gates g1 g2, residents
R-1001 R-1002 in H-0101, R-1003 in H-0102, R-2001 in H-0201); C-02 (controlled, gate g3,
resident R-3001 in H-0301).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from nats.js.errors import NotFoundError

from gridcare.checkpoint import handlers
from gridcare.checkpoint.adapters import tables as T
from gridcare.checkpoint.bootstrap import build
from gridcare.checkpoint.config import CheckpointSettings
from gridcare.cli import refdata
from gridcare.cli.devrun import NatsServer, free_port
from gridcare.contracts import STREAMS
from gridcare.contracts.refdata import CommunityPolicy, ControlLevel, LevelRules
from gridcare.contracts.screening import CompoundLevelChanged, PersonStatusChanged
from gridcare.shared.envelope import Envelope, Event
from gridcare.shared.lease import LeaseHeld
from gridcare.shared.localtime import as_utc
from gridcare.shared.service import Service
from gridcare.shared.store import Store
from gridcare.shared.streams import stream_for

EXAMPLES = Path(__file__).resolve().parents[4] / "examples" / "community"
CST = timezone(timedelta(hours=8))  # devices in the community write +08:00
STOP_TIMEOUT_S = 60
SEALED, CONTROLLED, PRECAUTION = (
    ControlLevel.SEALED,
    ControlLevel.CONTROLLED,
    ControlLevel.PRECAUTION,
)


# --- helpers ---------------------------------------------------------------------------------
def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(t: datetime) -> str:
    """A device's timestamp: RFC 3339 with the local (+08:00) offset."""
    return t.astimezone(CST).isoformat()


def new_scan_id(gate: str) -> str:
    return f"{gate}-{uuid.uuid4().hex[:12]}"


async def eventually(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.01):
    """Poll ``check`` (sync or async) until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {getattr(check, '__name__', '')}")
        await asyncio.sleep(interval)


def visitor(from_region: str = "Hangzhou", **extra: Any) -> dict[str, Any]:
    return {"name": "Liu Yang", "phone": "+86 135 0000 0000", "from_region": from_region, **extra}


class Checkpoint:
    """The service under test plus a client connection, and what the tests do with them."""

    def __init__(self, server: NatsServer, database_url: str, var_dir: Path) -> None:
        self.server = server
        self.database_url = database_url
        self.var_dir = var_dir
        self.svc: Service | None = None
        self.nc: Any = None
        self.js: Any = None

    # --- lifecycle -------------------------------------------------------------------------
    def settings(self) -> CheckpointSettings:
        return CheckpointSettings(
            nats_url=self.server.url,
            database_url=self.database_url,
            var_dir=self.var_dir,
            gate_check_interval_s=3600,
            housekeeping_interval_s=3600,
            retry_base_delay_s=0.05,
            outbox_poll_s=0.05,
        )

    async def start(self) -> None:
        self.svc = build(self.settings())
        await self.svc.start()

    async def stop(self) -> None:
        """Stop the service; a stop that hangs fails the test with every task's stack."""
        if self.svc is not None:
            svc, self.svc = self.svc, None
            try:
                await asyncio.wait_for(svc.stop(), STOP_TIMEOUT_S)
            except TimeoutError:
                for task in asyncio.all_tasks():
                    task.print_stack()
                raise AssertionError(f"the service did not stop within {STOP_TIMEOUT_S}s") from None

    async def restart(self) -> None:
        await self.stop()
        await self.start()
        if self.nc is not None:
            # Once in a CI run (2026-11-29), the first API request right after a restart
            # got "no responders" although start() had subscribed and flushed; not
            # reproduced in 100+ local runs. Go on once the API answers (fail after 5 s).
            await eventually(self._api_answers)

    async def _api_answers(self) -> bool:
        try:
            await self.nc.request("api.checkpoint.out", b'{"compound_id":"C-01"}', timeout=1)
        except nats.errors.NoRespondersError:
            return False
        return True

    async def connect(self) -> None:
        self.nc = await nats.connect(self.server.url)
        self.js = self.nc.jetstream()

    async def load_refdata(self) -> None:
        data = refdata.load(EXAMPLES)
        assert not data.problems, data.problems
        await refdata.publish(self.js, data)

        def loaded() -> bool:
            st = self.state
            return (
                {"g1", "g2", "g3"} <= set(st.gate_compound)
                and {"R-1001", "R-1002", "R-1003", "R-2001", "R-3001"} <= set(st.resident_household)
                and {"H-0101", "H-0102", "H-0201", "H-0301"} <= set(st.household_building)
                and {"B-01", "B-02", "B-03"} <= set(st.building_compound)
                and {"C-01", "C-02"} <= set(st.compound_community)
            )

        await eventually(loaded, timeout=15)

    # --- components ------------------------------------------------------------------------
    @property
    def service(self) -> Service:
        assert self.svc is not None
        return self.svc

    @property
    def state(self):
        return self.service.components["state"]

    @property
    def health(self):
        return self.service.components["health"]

    @property
    def scans(self):
        return self.service.components["scans"]

    async def watch_gates(self) -> None:
        """One round of the gate watch (it runs every GRIDCARE_GATE_CHECK_INTERVAL_S)."""
        await self.service.components["watch_gates"]()

    # --- devices ---------------------------------------------------------------------------
    def scan_body(self, gate: str = "g1", **fields: Any) -> dict[str, Any]:
        body = {
            "scan_id": new_scan_id(gate),
            "gate_id": gate,
            "direction": "in",
            "person_id": "R-1001",
            "scanned_at": rfc3339(now()),
            "temperature_c": 36.6,
            "mask": True,
            "health_code": "green",
        }
        body.update(fields)
        return body

    async def send(self, gate: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        msg = await self.nc.request(f"gate.{gate}.scan", raw, timeout=5)
        return json.loads(msg.data)

    async def scan(self, gate: str = "g1", **fields: Any) -> dict[str, Any]:
        return await self.send(gate, self.scan_body(gate, **fields))

    async def door(self, household: str, payload: dict[str, Any] | bytes) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        await self.nc.publish(f"door.{household}.opened", raw)
        await self.nc.flush()

    async def heartbeat(self, gate: str, payload: dict[str, Any] | bytes | None = None) -> None:
        if payload is None:
            payload = {"gate_id": gate, "sent_at": rfc3339(now()), "firmware": "1.0"}
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        await self.nc.publish(f"gate.{gate}.heartbeat", raw)
        await self.nc.flush()

    # --- other services and people -----------------------------------------------------------
    async def publish(self, event: Event, source: str) -> Envelope:
        env = Envelope.wrap(event, source=source)
        await self.js.publish(event.subject(), env.to_bytes(), headers=env.headers())
        return env

    async def api(self, op: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        msg = await self.nc.request(f"api.checkpoint.{op}", raw, timeout=5)
        return json.loads(msg.data)

    async def set_level(
        self, compound: str, level: ControlLevel, by: str, reason: str = ""
    ) -> dict[str, Any]:
        body = {"compound_id": compound, "level": level.value, "set_by": by, "reason": reason}
        reply = await self.api("level.set", body)
        assert "result" in reply, reply
        return reply["result"]

    async def issue(self, holder: str, **fields: Any) -> dict[str, Any]:
        t = now()
        body = {
            "holder_id": holder,
            "kind": "outing",
            "valid_from": rfc3339(t),
            "valid_until": rfc3339(t + timedelta(hours=1)),
            "uses": 1,
            "issued_by": "office-li",
            **fields,
        }
        reply = await self.api("permit.issue", body)
        assert "result" in reply, reply
        return reply["result"]

    # --- what the service wrote ----------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def store(self) -> AsyncIterator[Store]:
        """The service's store while the service is stopped."""
        store = Store(self.database_url, T.metadata)
        try:
            yield store
        finally:
            await store.dispose()

    async def rows(self, table: sa.Table, *where: Any) -> list:
        async with self.service.store.sessions() as s:
            return list((await s.execute(sa.select(table).where(*where))).all())

    async def dead_letters(self, consumer: str) -> list:
        t = self.service.store.tables.dead_letters
        return await self.rows(t, t.c.consumer == consumer)

    async def handled(self, env: Envelope, consumer: str, timeout: float = 5.0) -> None:
        """Wait until ``consumer`` has committed its handling of ``env``."""
        t = self.service.store.tables.processed

        async def done():
            return await self.rows(t, t.c.consumer == consumer, t.c.event_id == env.event_id)

        await eventually(done, timeout)

    async def outbox_count(self, subject: str) -> int:
        t = self.service.store.tables.outbox
        return len(await self.rows(t, t.c.subject == subject))

    async def events(self, subject: str) -> list[Envelope]:
        """Every event on ``subject`` in its stream, oldest first."""
        stream, seq, found = stream_for(subject, STREAMS).name, 1, []
        while True:
            try:
                msg = await self.js.get_msg(stream, seq, subject=subject, next=True)
            except NotFoundError:
                return found
            found.append(Envelope.from_bytes(msg.data))
            seq = msg.seq + 1

    async def event(
        self, subject: str, where: Callable[[dict], bool] | None = None, timeout: float = 5.0
    ) -> Envelope:
        """The (last) event on ``subject`` that satisfies ``where``, once it is there."""

        async def found():
            hits = [e for e in await self.events(subject) if where is None or where(e.data)]
            return hits[-1] if hits else None

        return await eventually(found, timeout, interval=0.02)

    async def stream_count(self, subject: str) -> int:
        info = await self.js.stream_info(stream_for(subject, STREAMS).name, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)


@pytest.fixture
async def cp(database_url, tmp_path) -> AsyncIterator[Checkpoint]:
    server = NatsServer(store_dir=tmp_path / "nats").start()
    h = Checkpoint(server, database_url, tmp_path)
    try:
        await h.start()
        await h.connect()
        await h.load_refdata()
        yield h
    finally:
        try:
            if h.nc is not None:
                await h.nc.close()
            await h.stop()
        finally:
            server.stop()


def reasons_of(reply: dict[str, Any]) -> tuple[str, list[str]]:
    assert "verdict" in reply, reply
    return reply["verdict"], reply["reasons"]


# --- 1. the four checks, the register, device retries ----------------------------------------
async def test_fever_is_denied_recorded_once_and_announced(cp: Checkpoint):
    body = cp.scan_body("g1", person_id="R-1001", direction="in", temperature_c=38.1)
    reply = await cp.send("g1", body)
    assert reasons_of(reply) == ("deny", ["fever"])
    assert reply["scan_id"] == body["scan_id"]
    assert set(reply["message"]) == {"zh", "en"} and "temperature" in reply["message"]["en"]
    datetime.fromisoformat(reply["decided_at"])

    # the device retries: the same reply, from memory ...
    assert await cp.send("g1", body) == reply
    # ... and from the register when memory no longer has it
    cp.scans._recent.clear()
    assert await cp.send("g1", body) == reply
    # three copies of one new scan at once: one decision, one row
    triple = cp.scan_body("g1", person_id="R-1002", temperature_c=39.0)
    replies = await asyncio.gather(*(cp.send("g1", triple) for _ in range(3)))
    assert replies[0] == replies[1] == replies[2] and replies[0]["verdict"] == "deny"

    p = T.passages.c
    rows = await cp.rows(T.passages, p.gate_id == "g1", p.scan_id == body["scan_id"])
    assert len(rows) == 1
    row = rows[0]
    assert (row.person_id, row.direction, row.verdict, row.reasons, row.temperature_c) == (
        "R-1001",
        "in",
        "deny",
        ["fever"],
        38.1,
    )
    assert row.compound_id == "C-01" and row.reply == reply
    assert len(await cp.rows(T.passages, p.scan_id == triple["scan_id"])) == 1

    env = await cp.event("checkpoint.fever.detected.g1", lambda d: d["scan_id"] == body["scan_id"])
    assert env.type == "checkpoint.FeverDetected" and env.source == "checkpoint"
    assert env.data["person_id"] == "R-1001" and env.data["temperature_c"] == 38.1
    assert env.data["compound_id"] == "C-01" and env.data["is_resident"] is True
    await cp.event("checkpoint.fever.detected.g1", lambda d: d["scan_id"] == triple["scan_id"])
    # one FeverDetected per scan, however many times the devices asked
    fevers = await cp.outbox_count("checkpoint.fever.detected.g1")
    assert fevers == 2 and await cp.stream_count("checkpoint.fever.detected.g1") == 2
    # a bad request is answered, naming each bad field
    bad = cp.scan_body(
        "g1",
        gate_id="g2",
        temperature_c=50,
        scanned_at=rfc3339(now() + timedelta(hours=1)),
    )
    err = (await cp.send("g1", bad))["error"]
    assert err["code"] == "invalid_scan"
    assert {d["field"] for d in err["detail"]} == {"gate_id", "temperature_c", "scanned_at"}
    assert (await cp.send("g1", b"not json"))["error"]["code"] == "invalid_scan"
    unknown = (await cp.scan("g9"))["error"]
    assert unknown["code"] == "invalid_scan" and unknown["detail"][0]["field"] == "gate_id"
    assert len(await cp.rows(T.passages, p.scan_id == bad["scan_id"])) == 0


def id_conflicts(cp: Checkpoint, device: str, kind: str) -> float:
    labels = {"device": device, "kind": kind}
    registry = cp.service.metrics.registry
    return registry.get_sample_value("gridcare_checkpoint_id_conflicts_total", labels) or 0


async def test_a_scan_id_reused_for_other_content_gets_the_recorded_verdict_and_is_counted(
    cp: Checkpoint,
):
    """The contract: a repeated scan_id gets the stored verdict and is recorded once. A
    "retry" that says something else (another temperature, person, time...) is not a retry:
    it still gets the stored verdict, and it is logged and counted, from memory, from the
    register, and after a restart."""
    first = cp.scan_body("g1", person_id="R-1001", temperature_c=36.5)
    reply = await cp.send("g1", first)
    assert reasons_of(reply) == ("allow", [])
    # a true retry (the same content, written otherwise): not a conflict
    same = {**first, "scanned_at": datetime.fromisoformat(first["scanned_at"]).isoformat()}
    assert await cp.send("g1", {**same, "firmware": "2.0"}) == reply
    assert id_conflicts(cp, "g1", "scan") == 0

    feverish = {**first, "temperature_c": 38.9}
    assert await cp.send("g1", feverish) == reply  # from memory
    assert id_conflicts(cp, "g1", "scan") == 1
    cp.scans._recent.clear()
    someone_else = {**first, "person_id": "R-1002", "direction": "out"}
    assert await cp.send("g1", someone_else) == reply  # from the register
    assert id_conflicts(cp, "g1", "scan") == 2
    assert await cp.send("g1", someone_else) == reply  # and from memory again
    assert id_conflicts(cp, "g1", "scan") == 3
    assert await cp.send("g1", first) == reply
    assert id_conflicts(cp, "g1", "scan") == 3

    await cp.restart()
    assert await cp.send("g1", feverish) == reply  # loaded back with what it said
    assert await cp.send("g1", first) == reply
    assert id_conflicts(cp, "g1", "scan") == 1

    (row,) = await cp.rows(T.passages, T.passages.c.scan_id == first["scan_id"])
    assert (row.person_id, row.direction, row.temperature_c) == ("R-1001", "in", 36.5)
    assert await cp.outbox_count("checkpoint.fever.detected.g1") == 0


# --- 2. control levels: ops and screening ----------------------------------------------------
async def test_sealed_by_ops_and_the_newest_level_decision_wins(cp: Checkpoint):
    await cp.set_level("C-01", SEALED, "ops-zhang", "cluster")
    await eventually(lambda: cp.state.level("C-01") is SEALED)

    assert reasons_of(await cp.scan("g1", person_id="R-1001", direction="out")) == (
        "deny",
        ["sealed"],
    )
    assert reasons_of(await cp.scan("g2", person_id="R-1001", direction="in")) == ("allow", [])
    guest = await cp.scan("g1", person_id="VIS-0001", direction="in", visitor=visitor())
    assert reasons_of(guest) == ("deny", ["visitor_not_allowed"])
    # a resident of another compound is a visitor here
    other = await cp.scan("g1", person_id="R-3001", direction="in")
    assert reasons_of(other) == ("deny", ["visitor_not_allowed"])
    (ctl,) = await cp.rows(T.compound_controls)
    assert (ctl.compound_id, ctl.level, ctl.set_by) == ("C-01", "sealed", "ops-zhang")

    lifted = await cp.set_level("C-01", PRECAUTION, "ops-zhang")
    t_lifted = datetime.fromisoformat(lifted["set_at"])
    await eventually(lambda: cp.state.level("C-01") is PRECAUTION)
    assert reasons_of(await cp.scan("g1", person_id="R-1001", direction="out")) == ("allow", [])

    # screening's decision made before ops lifted the seal arrives late: it must not win
    late = await cp.publish(
        CompoundLevelChanged(
            compound_id="C-01",
            level=SEALED,
            reason="confirmed case",
            decided_at=t_lifted - timedelta(minutes=10),
        ),
        "screening",
    )
    await cp.handled(late, "checkpoint-decisions")
    assert cp.state.level("C-01") is PRECAUTION
    assert reasons_of(await cp.scan("g2", person_id="R-1002", direction="out")) == ("allow", [])
    (ctl,) = await cp.rows(T.compound_controls)
    assert (ctl.level, ctl.set_by) == ("precaution", "ops-zhang")

    # a newer one does
    newer = await cp.publish(
        CompoundLevelChanged(
            compound_id="C-01", level=SEALED, reason="confirmed case", decided_at=now()
        ),
        "screening",
    )
    await cp.handled(newer, "checkpoint-decisions")
    assert cp.state.level("C-01") is SEALED
    assert reasons_of(await cp.scan("g2", person_id="R-1002", direction="out")) == (
        "deny",
        ["sealed"],
    )
    (ctl,) = await cp.rows(T.compound_controls)
    assert (ctl.level, ctl.set_by) == ("sealed", "screening")


# --- 3. controlled compound: outing permits --------------------------------------------------
async def test_controlled_compound_outing_permit_lifecycle(cp: Checkpoint):
    assert cp.state.level("C-02") is CONTROLLED
    first = await cp.scan("g3", person_id="R-3001", direction="out")
    assert reasons_of(first) == ("deny", ["permit_required"])

    permit = await cp.issue("R-3001", kind="outing", uses=1, return_within_h=2)
    pid = permit["permit_id"]
    assert permit["household_id"] == "H-0301" and permit["compound_id"] == "C-02"
    issued = await cp.event("checkpoint.permit.issued.C-02", lambda d: d["permit_id"] == pid)
    assert issued.data["holder_id"] == "R-3001"

    exit_body = cp.scan_body("g3", person_id="R-3001", direction="out")
    assert reasons_of(await cp.send("g3", exit_body)) == ("allow", [])
    (row,) = await cp.rows(T.permits, T.permits.c.permit_id == pid)
    assert (row.state, row.uses_left) == ("out", 0)
    exited = datetime.fromisoformat(exit_body["scanned_at"])
    assert abs((row.return_by.replace(tzinfo=UTC) - exited) - timedelta(hours=2)) < timedelta(
        seconds=1
    )
    (passage,) = await cp.rows(T.passages, T.passages.c.scan_id == exit_body["scan_id"])
    assert passage.permit_id == pid

    # the household's quota (1 outing permit per 3 days by default) is used up
    again = await cp.api(
        "permit.issue",
        {
            "holder_id": "R-3001",
            "valid_until": rfc3339(now() + timedelta(hours=2)),
            "issued_by": "office-li",
        },
    )
    assert again["error"]["code"] == "quota_exceeded", again

    back = await cp.scan("g3", person_id="R-3001", direction="in")
    assert reasons_of(back) == ("allow", [])
    (row,) = await cp.rows(T.permits, T.permits.c.permit_id == pid)
    assert (row.state, row.uses_left, row.return_by) == ("closed", 0, None)

    # the permit exists, in its window, but its one use is spent: not valid any more
    # (the edge contract: "exit needs a valid outing permit (its window, its count)")
    later = await cp.scan("g3", person_id="R-3001", direction="out")
    assert reasons_of(later) == ("deny", ["permit_expired"])


# --- 4. sealed: emergency and medical permits only -------------------------------------------
async def test_sealed_compound_lets_out_emergency_permits_only(cp: Checkpoint):
    await cp.set_level("C-01", SEALED, "ops-zhang")
    await eventually(lambda: cp.state.level("C-01") is SEALED)
    emergency = await cp.issue("R-1001", kind="emergency")
    medical = await cp.issue("R-2001", kind="medical")
    await cp.issue("R-1003", kind="outing")

    out = cp.scan_body("g1", person_id="R-1001", direction="out")
    assert reasons_of(await cp.send("g1", out)) == ("allow", [])
    (passage,) = await cp.rows(T.passages, T.passages.c.scan_id == out["scan_id"])
    assert passage.permit_id == emergency["permit_id"]
    (row,) = await cp.rows(T.permits, T.permits.c.permit_id == emergency["permit_id"])
    assert (row.state, row.uses_left) == ("out", 0)

    assert reasons_of(await cp.scan("g2", person_id="R-2001", direction="out")) == ("allow", [])
    (row,) = await cp.rows(T.permits, T.permits.c.permit_id == medical["permit_id"])
    assert row.state == "out"

    outing = await cp.scan("g1", person_id="R-1003", direction="out")
    assert reasons_of(outing) == ("deny", ["sealed"])
    nothing = await cp.scan("g1", person_id="R-1002", direction="out")
    assert reasons_of(nothing) == ("deny", ["sealed"])
    # the emergency permit's single use is spent
    assert (await cp.scan("g1", person_id="R-1001", direction="out"))["verdict"] == "deny"


# --- 5. overdue returns ----------------------------------------------------------------------
async def test_overdue_permit_is_alerted_once_and_noted_on_return(cp: Checkpoint):
    permit = await cp.issue("R-3001", return_within_h=0.0001)  # 0.36 s
    pid = permit["permit_id"]
    out = cp.scan_body("g3", person_id="R-3001", direction="out")
    assert reasons_of(await cp.send("g3", out)) == ("allow", [])
    svc, state = cp.service, cp.state

    (row,) = await cp.rows(T.permits, T.permits.c.permit_id == pid)
    return_by = row.return_by.replace(tzinfo=UTC)
    if now() < return_by:
        assert await handlers.alert_overdue(svc.unit_of_work(), state) == 0  # not due yet
    await asyncio.sleep(max(0.0, (return_by - now()).total_seconds()) + 0.05)

    assert await handlers.alert_overdue(svc.unit_of_work(), state) == 1
    env = await cp.event("checkpoint.permit.overdue.C-02", lambda d: d["permit_id"] == pid)
    assert env.type == "checkpoint.PermitOverdue"
    assert (env.data["holder_id"], env.data["household_id"]) == ("R-3001", "H-0301")
    assert datetime.fromisoformat(env.data["return_by"]) == return_by
    assert datetime.fromisoformat(env.data["exited_at"]) == datetime.fromisoformat(
        out["scanned_at"]
    )

    assert await handlers.alert_overdue(svc.unit_of_work(), state) == 0  # once per permit
    assert await cp.outbox_count("checkpoint.permit.overdue.C-02") == 1
    await asyncio.sleep(0.1)
    assert await cp.stream_count("checkpoint.permit.overdue.C-02") == 1

    back = await cp.scan("g3", person_id="R-3001", direction="in")
    assert reasons_of(back) == ("allow", ["overdue_return"])
    (row,) = await cp.rows(T.permits, T.permits.c.permit_id == pid)
    assert row.state == "closed"
    assert await handlers.alert_overdue(svc.unit_of_work(), state) == 0


# --- 6. screening's decisions about people ---------------------------------------------------
async def test_quarantine_holds_a_person_at_once(cp: Checkpoint):
    held_at = now()
    status = PersonStatusChanged(
        person_id="R-1001",
        status="home_quarantine",
        holds_at_gate=True,
        status_label={"zh": "居家隔离", "en": "home quarantine"},
        household_id="H-0101",
        decided_at=held_at,
    )
    t0 = time.perf_counter()
    await cp.publish(status, "screening")
    polls = 0
    while True:
        reply = await cp.scan("g1", person_id="R-1001", direction="out")
        polls += 1
        if "quarantine" in reply["reasons"]:
            latency = time.perf_counter() - t0
            break
        assert reasons_of(reply) == ("allow", [])
        assert time.perf_counter() - t0 < 5, "quarantine not enforced within 5 s"
    print(
        f"\nquarantine enforcement latency ({cp.service.store.engine.dialect.name}): "
        f"{latency * 1000:.1f} ms (publish to a denied scan, {polls} scans polled)"
    )
    assert latency < 1.0
    assert reasons_of(reply) == ("deny", ["quarantine"])

    breach = await cp.event(
        "checkpoint.quarantine.breach.C-01", lambda d: d["ref"] == f"scan:g1:{reply['scan_id']}"
    )
    assert breach.type == "checkpoint.QuarantineBreachAttempted"
    d = breach.data
    assert (d["via"], d["person_id"], d["household_id"], d["status"], d["gate_id"]) == (
        "gate",
        "R-1001",
        "H-0101",
        "home_quarantine",
        "g1",
    )
    # entering is not a breach; a household member who is not held passes
    assert reasons_of(await cp.scan("g1", person_id="R-1001", direction="in")) == ("allow", [])
    assert reasons_of(await cp.scan("g1", person_id="R-1002", direction="out")) == ("allow", [])

    cleared = await cp.publish(
        PersonStatusChanged(
            person_id="R-1001",
            household_id="H-0101",
            status="released",
            holds_at_gate=False,
            decided_at=now(),
        ),
        "screening",
    )
    await cp.handled(cleared, "checkpoint-decisions")
    assert reasons_of(await cp.scan("g2", person_id="R-1001", direction="out")) == ("allow", [])

    # an older decision arriving late does not hold them again
    stale = await cp.publish(
        PersonStatusChanged(
            person_id="R-1001",
            status="close_contact",
            holds_at_gate=True,
            decided_at=held_at - timedelta(hours=1),
        ),
        "screening",
    )
    await cp.handled(stale, "checkpoint-decisions")
    assert reasons_of(await cp.scan("g2", person_id="R-1001", direction="out")) == ("allow", [])
    (row,) = await cp.rows(T.person_status, T.person_status.c.person_id == "R-1001")
    assert (row.status, row.holds_at_gate) == ("released", False)


# --- 7. door sensors -------------------------------------------------------------------------
async def test_door_sensors(cp: Checkpoint):
    env = await cp.publish(
        PersonStatusChanged(
            person_id="R-1001",
            status="home_quarantine",
            holds_at_gate=True,
            household_id="H-0101",
            decided_at=now(),
        ),
        "screening",
    )
    await cp.handled(env, "checkpoint-decisions")
    assert "H-0101" in cp.state.quarantined_households
    d = T.door_events.c
    breaches = "checkpoint.quarantine.breach.C-01"

    opened = rfc3339(now())
    await cp.door("H-0101", {"event_id": "d-77", "household_id": "H-0101", "opened_at": opened})
    (row,) = await eventually(lambda: cp.rows(T.door_events, d.event_id == "d-77"))
    assert row.household_id == "H-0101" and row.quarantined is True
    breach = await cp.event(breaches, lambda x: x["ref"] == "door:d-77")
    assert (breach.data["via"], breach.data["household_id"], breach.data["person_id"]) == (
        "door",
        "H-0101",
        None,
    )
    assert breach.data["status"] == "home_quarantine" and breach.data["compound_id"] == "C-01"

    # the device sends it again: recorded once, alerted once
    await cp.door("H-0101", {"event_id": "d-77", "household_id": "H-0101", "opened_at": opened})
    duplicates = cp.service.metrics.messages.labels("checkpoint-doors", "duplicate")
    await eventually(lambda: duplicates._value.get() >= 1)
    assert len(await cp.rows(T.door_events, d.event_id == "d-77")) == 1

    # a household nobody is held in: recorded, no alert
    await cp.door(
        "H-0201", {"event_id": "d-78", "household_id": "H-0201", "opened_at": rfc3339(now())}
    )
    (row,) = await eventually(lambda: cp.rows(T.door_events, d.event_id == "d-78"))
    assert row.quarantined is False
    assert await cp.outbox_count(breaches) == 1  # committed with the door row: none added

    # malformed payloads and a household that does not match the subject: dead letters
    await cp.door("H-0102", b"{not json")
    await cp.door("H-0102", {"event_id": "d-79", "household_id": "H-0102"})  # no opened_at
    await cp.door(
        "H-0102", {"event_id": "d-80", "household_id": "H-0101", "opened_at": rfc3339(now())}
    )
    # a time that falls off the calendar in UTC: dead-lettered at once, with the reason
    # (it used to raise OverflowError, retried every ack wait for ever)
    edge = "9999-12-31T23:59:59-14:00"
    await cp.door("H-0102", {"event_id": "d-82", "household_id": "H-0102", "opened_at": edge})

    async def four_dead():
        rows = await cp.dead_letters("checkpoint-doors")
        return rows if len(rows) >= 4 else None

    dead = await eventually(four_dead)
    assert len(dead) == 4
    assert all(r.subject == "door.H-0102.opened" and r.reason for r in dead)
    assert sum("invalid message" in r.reason for r in dead) == 3
    (overflow,) = [r for r in dead if b"d-82" in r.payload]
    assert "opened_at" in overflow.reason and overflow.deliveries == 1
    (mismatch,) = [r for r in dead if b"d-80" in r.payload]
    assert "does not match the subject" in mismatch.reason
    assert len(await cp.rows(T.door_events, d.event_id.in_(["d-79", "d-80"]))) == 0

    # ... and the service carries on
    await cp.door(
        "H-0102", {"event_id": "d-81", "household_id": "H-0102", "opened_at": rfc3339(now())}
    )
    (row,) = await eventually(lambda: cp.rows(T.door_events, d.event_id == "d-81"))
    assert row.quarantined is False
    assert reasons_of(await cp.scan("g1", person_id="R-1001", direction="out")) == (
        "deny",
        ["quarantine"],
    )


async def test_a_door_event_id_reused_for_another_opening_is_counted_and_changes_nothing(
    cp: Checkpoint,
):
    d = T.door_events.c
    opened = now()
    first = {"event_id": "d-90", "household_id": "H-0102", "opened_at": rfc3339(opened)}
    await cp.door("H-0102", first)
    await eventually(lambda: cp.rows(T.door_events, d.event_id == "d-90"))
    duplicates = cp.service.metrics.messages.labels("checkpoint-doors", "duplicate")
    await cp.door("H-0102", first)  # the device's repeat
    await eventually(lambda: duplicates._value.get() >= 1)
    assert id_conflicts(cp, "H-0102", "door") == 0
    later = {**first, "opened_at": rfc3339(opened + timedelta(minutes=5))}
    await cp.door("H-0102", later)  # the id reused for another opening
    await eventually(lambda: duplicates._value.get() >= 2)
    assert id_conflicts(cp, "H-0102", "door") == 1
    (row,) = await cp.rows(T.door_events, d.event_id == "d-90")
    assert abs(as_utc(row.opened_at) - opened) < timedelta(seconds=1)


# --- 8. gate heartbeats ----------------------------------------------------------------------
async def test_gate_heartbeats_offline_and_back(cp: Checkpoint):
    health = cp.health
    await cp.publish(CommunityPolicy(community_id="CM-1", heartbeat_interval_s=0.2), "gridcare-cli")
    await eventually(lambda: cp.state.policy("C-01").heartbeat_interval_s == 0.2)

    async def keep_alive() -> None:
        while True:
            await cp.heartbeat("g1")
            await asyncio.sleep(0.1)

    alive = asyncio.create_task(keep_alive())
    try:
        await cp.heartbeat("g2")
        await eventually(lambda: "g1" in health.last_seen and "g2" in health.last_seen)
        assert health.firmware["g2"] == "1.0"
        await asyncio.sleep(0.75)  # g2 and g3 silent for more than 3 intervals

        await cp.watch_gates()
        gone = await cp.event("checkpoint.gate.offline.g2")
        assert gone.type == "checkpoint.GateWentOffline" and gone.data["compound_id"] == "C-01"
        assert gone.data["silent_s"] > 0.6 and gone.data["last_seen_at"] is not None
        g3 = await cp.event("checkpoint.gate.offline.g3")
        assert g3.data["compound_id"] == "C-02"
        assert health.online.get("g2") is False and health.online.get("g3") is False
        assert health.online.get("g1", True) is True
        assert await cp.outbox_count("checkpoint.gate.offline.g1") == 0
        registry = cp.service.metrics.registry
        assert registry.get_sample_value("gridcare_checkpoint_gates_offline") == 2
        (row,) = await cp.rows(T.gate_health, T.gate_health.c.gate_id == "g2")
        assert row.online is False

        # reported once
        await cp.watch_gates()
        assert await cp.outbox_count("checkpoint.gate.offline.g2") == 1

        # g2 speaks again
        await cp.heartbeat("g2")
        back = await cp.event("checkpoint.gate.online.g2")
        assert back.type == "checkpoint.GateCameOnline" and back.data["gate_id"] == "g2"
        assert health.online["g2"] is True
        await cp.watch_gates()
        assert registry.get_sample_value("gridcare_checkpoint_gates_offline") == 1
    finally:
        alive.cancel()
        await asyncio.gather(alive, return_exceptions=True)

    # bad heartbeats are dead letters with a reason
    await cp.heartbeat("g1", b"{not json")
    await cp.heartbeat("g9", {"gate_id": "g9", "sent_at": rfc3339(now()), "firmware": "1.0"})
    await cp.heartbeat("g2", {"gate_id": "g1", "sent_at": rfc3339(now())})
    # a time that falls off the calendar in UTC is a bad heartbeat too (it used to raise
    # OverflowError in the subscriber and vanish without a trace)
    await cp.heartbeat("g3", {"gate_id": "g3", "sent_at": "0001-01-01T00:00:00+14:00"})

    async def dead():
        rows = await cp.dead_letters("checkpoint-heartbeats")
        return rows if len(rows) >= 4 else None

    rows = await eventually(dead)
    reasons = {r.subject: r.reason for r in rows}
    assert "invalid heartbeat" in reasons["gate.g1.heartbeat"]
    assert "sent_at" in reasons["gate.g3.heartbeat"]
    assert "unknown gate 'g9'" in reasons["gate.g9.heartbeat"]
    assert "does not match" in reasons["gate.g2.heartbeat"]
    assert "g9" not in health.last_seen


async def test_a_flood_of_bad_heartbeats_is_counted_recorded_at_a_bounded_rate_and_alerted_once(
    cp: Checkpoint,
):
    """3,000 garbage heartbeats from one gate in a burst used to be 3,000 dead letters (and
    as many stream messages): now the first GRIDCARE_BAD_INPUT_PER_MINUTE (10) are kept,
    all are counted under the gate's name, and its duty staff get one alert. A made-up
    gate's are counted as "unknown": subjects cannot grow the metric's labels."""
    per_minute = cp.service.settings.bad_input_per_minute
    registry = cp.service.metrics.registry

    def counted(device: str, outcome: str) -> float:
        labels = {"kind": "heartbeat", "device": device, "outcome": outcome}
        return registry.get_sample_value("gridcare_checkpoint_bad_input_total", labels) or 0

    for i in range(3000):
        await cp.nc.publish("gate.g1.heartbeat", b"{not json %d" % i)
    for i in range(50):
        await cp.nc.publish(f"gate.made-up-{i}.heartbeat", b"[]")
    await cp.nc.flush()

    def all_counted() -> bool:
        g1 = counted("g1", "recorded") + counted("g1", "suppressed")
        return (
            g1 == 3000 and counted("unknown", "recorded") + counted("unknown", "suppressed") == 50
        )

    await eventually(all_counted, timeout=30)
    assert counted("g1", "recorded") == per_minute and counted("unknown", "recorded") == per_minute
    dead = await cp.dead_letters("checkpoint-heartbeats")
    assert len([r for r in dead if r.subject == "gate.g1.heartbeat"]) == per_minute
    assert len(dead) == 2 * per_minute
    alert = await cp.event("checkpoint.gate.badinput.g1")
    assert alert.type == "checkpoint.GateSendingBadInput"
    assert (alert.data["gate_id"], alert.data["compound_id"], alert.data["kind"]) == (
        "g1",
        "C-01",
        "heartbeat",
    )
    assert "Invalid JSON" in alert.data["reason"]
    assert alert.data["recorded_per_minute"] == per_minute
    assert await cp.outbox_count("checkpoint.gate.badinput.g1") == 1
    assert await cp.stream_count("checkpoint.gate.badinput.g1") == 1

    async def dead_letters_published() -> bool:  # the last may be on its way to the stream
        return await cp.stream_count("deadletter.checkpoint") >= 2 * per_minute

    await eventually(dead_letters_published, timeout=10)
    assert await cp.stream_count("deadletter.checkpoint") == 2 * per_minute
    # the gate's good heartbeats still count
    await cp.heartbeat("g1")
    await eventually(lambda: "g1" in cp.health.last_seen)


async def test_bad_door_events_and_invalid_scans_are_counted_per_device(cp: Checkpoint):
    """A door sensor's bad events are dead letters within its household's bound, the rest
    counted and acknowledged; invalid scans (answered, nothing written) are counted per
    gate in the same metric."""
    per_minute = cp.service.settings.bad_input_per_minute
    registry = cp.service.metrics.registry

    def counted(kind: str, device: str, outcome: str) -> float:
        labels = {"kind": kind, "device": device, "outcome": outcome}
        return registry.get_sample_value("gridcare_checkpoint_bad_input_total", labels) or 0

    for i in range(per_minute + 15):
        await cp.door("H-0102", {"event_id": f"d-bad-{i}", "household_id": "H-0102"})
    for _ in range(per_minute + 2):
        await cp.door("H-9999", b"garbage")
    await eventually(
        lambda: (
            counted("door", "H-0102", "suppressed") == 15
            and counted("door", "unknown", "suppressed") == 2
        ),
        timeout=30,
    )
    assert counted("door", "H-0102", "recorded") == per_minute
    assert counted("door", "unknown", "recorded") == per_minute
    dead = await cp.dead_letters("checkpoint-doors")
    assert len(dead) == 2 * per_minute
    assert all("opened_at" in r.reason for r in dead if r.subject == "door.H-0102.opened")
    # the household's next good event is handled as ever
    good = {"event_id": "d-good", "household_id": "H-0102", "opened_at": rfc3339(now())}
    await cp.door("H-0102", good)
    await eventually(lambda: cp.rows(T.door_events, T.door_events.c.event_id == "d-good"))

    # invalid scans: answered, counted per gate (a made-up gate as "unknown")
    assert (await cp.scan("g1", temperature_c=51))["error"]["code"] == "invalid_scan"
    assert (await cp.send("g2", b"not json"))["error"]["code"] == "invalid_scan"
    assert (await cp.scan("g-made-up"))["error"]["code"] == "invalid_scan"
    assert counted("scan", "g1", "refused") == 1 and counted("scan", "g2", "refused") == 1
    assert counted("scan", "unknown", "refused") == 1


# --- 9. policy changes without a restart -----------------------------------------------------
async def test_policy_hot_change(cp: Checkpoint):
    assert reasons_of(await cp.scan("g1", temperature_c=37.6)) == ("deny", ["fever"])
    guest = {"person_id": "VIS-0002", "visitor": visitor("Region-A")}
    assert reasons_of(await cp.scan("g1", **guest)) == ("allow", [])

    await cp.publish(
        CommunityPolicy(community_id="CM-1", fever_c=38.0, risk_regions=["Region-A"]),
        "gridcare-cli",
    )
    await eventually(lambda: cp.state.policy("C-01").fever_c == 38.0)
    assert reasons_of(await cp.scan("g1", temperature_c=37.6)) == ("allow", [])
    assert reasons_of(await cp.scan("g3", person_id="R-3001", temperature_c=37.9)) == (
        "allow",
        [],
    )
    assert reasons_of(await cp.scan("g1", temperature_c=38.0)) == ("deny", ["fever"])
    assert reasons_of(await cp.scan("g1", **guest)) == ("deny", ["visitor_risk_area"])
    tested = visitor("Region-A", negative_test_at=rfc3339(now() - timedelta(hours=3)))
    assert reasons_of(await cp.scan("g1", person_id="VIS-0002", visitor=tested)) == ("allow", [])
    (row,) = await cp.rows(T.policies, T.policies.c.community_id == "CM-1")
    assert row.policy["fever_c"] == 38.0

    await cp.publish(
        CommunityPolicy(
            community_id="CM-1",
            fever_c=38.0,
            levels={PRECAUTION: LevelRules(exit="free", visitors="deny", fever_c=37.5)},
        ),
        "gridcare-cli",
    )
    await eventually(lambda: cp.state.policy("C-01").rules(PRECAUTION).visitors == "deny")
    assert reasons_of(await cp.scan("g1", **guest)) == ("deny", ["visitor_not_allowed"])
    assert reasons_of(await cp.scan("g1", temperature_c=37.6)) == ("deny", ["fever"])
    # levels the policy does not name keep their defaults; C-02 (controlled) uses fever_c 38
    assert reasons_of(await cp.scan("g3", person_id="R-3001", temperature_c=37.6)) == (
        "allow",
        [],
    )


# --- 10. the API -----------------------------------------------------------------------------
async def test_api_out_trace_override_and_invalid_requests(cp: Checkpoint):
    # who is out
    t = now()
    left = cp.scan_body("g1", person_id="R-1001", direction="out", scanned_at=rfc3339(t))
    assert reasons_of(await cp.send("g1", left)) == ("allow", [])
    out = (await cp.api("out", {"compound_id": "C-01"}))["result"]
    assert [o["person_id"] for o in out["out"]] == ["R-1001"] and out["count"] == 1
    assert out["out"][0]["gate_id"] == "g1"
    back = cp.scan_body(
        "g2", person_id="R-1001", direction="in", scanned_at=rfc3339(t + timedelta(seconds=1))
    )
    assert reasons_of(await cp.send("g2", back)) == ("allow", [])
    out = (await cp.api("out", {"compound_id": "C-01"}))["result"]
    assert out == {"compound_id": "C-01", "count": 0, "out": []}

    # contact tracing around a scan
    t0 = now() - timedelta(hours=2)

    async def at(gate: str, person: str, minutes: float) -> str:
        body = cp.scan_body(
            gate, person_id=person, scanned_at=rfc3339(t0 + timedelta(minutes=minutes))
        )
        assert (await cp.send(gate, body))["verdict"] == "allow"
        return body["scan_id"]

    a = await at("g1", "R-1001", 0)
    b = await at("g1", "R-1002", 5)
    c = await at("g1", "R-1003", 30)
    d = await at("g2", "R-2001", 3)
    e = await at("g3", "R-3001", 1)  # another compound

    def ids(reply: dict) -> set[str]:
        assert "result" in reply, reply
        return {p["scan_id"] for p in reply["result"]["passages"]}

    assert ids(await cp.api("trace", {"gate_id": "g1", "scan_id": a, "minutes": 10})) == {a, b}
    whole = {"gate_id": "g1", "scan_id": a, "minutes": 10, "whole_compound": True}
    assert ids(await cp.api("trace", whole)) == {a, b, d}
    # page by page (a busy gate's window is more than one reply can carry), in time order
    pages, after = [], None
    while True:
        page = (await cp.api("trace", {**whole, "limit": 1, "after": after}))["result"]
        pages.append([x["scan_id"] for x in page["passages"]])
        if (after := page["next"]) is None:
            break
    assert pages == [[a], [d], [b]]
    bad_cursor = await cp.api("trace", {**whole, "after": "yesterday"})
    assert bad_cursor["error"]["code"] == "invalid_request"
    around = {"compound_id": "C-01", "at": rfc3339(t0 + timedelta(minutes=4)), "minutes": 2}
    assert ids(await cp.api("trace", around)) == {b, d}
    assert c and e
    missing = await cp.api("trace", {"gate_id": "g1", "scan_id": "nope"})
    assert missing["error"]["code"] == "not_found"

    # overrides
    denied = cp.scan_body("g2", person_id="R-1002", direction="out", temperature_c=38.4)
    assert (await cp.send("g2", denied))["verdict"] == "deny"
    ov = await cp.api(
        "override",
        {
            "gate_id": "g2",
            "scan_id": denied["scan_id"],
            "staff_id": "S-07",
            "reason": "re-measured 36.8 by hand",
        },
    )
    assert ov["result"]["original_verdict"] == "deny" and ov["result"]["person_id"] == "R-1002"
    (row,) = await cp.rows(T.overrides)
    assert (row.gate_id, row.scan_id, row.person_id, row.staff_id, row.reason) == (
        "g2",
        denied["scan_id"],
        "R-1002",
        "S-07",
        "re-measured 36.8 by hand",
    )
    recorded = await cp.event("checkpoint.override.recorded.g2")
    assert recorded.data["staff_id"] == "S-07" and recorded.data["scan_id"] == denied["scan_id"]
    twice = await cp.api(
        "override",
        {"gate_id": "g2", "scan_id": denied["scan_id"], "staff_id": "S-07", "reason": "again"},
    )
    assert twice["error"]["code"] == "already_overridden"
    # someone let through by staff is out
    out = (await cp.api("out", {"compound_id": "C-01"}))["result"]
    assert [o["person_id"] for o in out["out"]] == ["R-1002"]

    allowed = await cp.api(
        "override",
        {"gate_id": "g1", "scan_id": left["scan_id"], "staff_id": "S-07", "reason": "why not"},
    )
    assert allowed["error"]["code"] == "not_denied"
    assert len(await cp.rows(T.overrides)) == 1

    # invalid requests name the field
    def fields(reply: dict) -> set[str]:
        assert reply["error"]["code"] == "invalid_request", reply
        return {x["field"] for x in reply["error"]["detail"]}

    assert fields(await cp.api("override", {"gate_id": "g1", "scan_id": a})) == {
        "staff_id",
        "reason",
    }
    assert fields(
        await cp.api(
            "permit.issue",
            {"holder_id": "R-1001", "valid_until": "tomorrow", "uses": 0, "issued_by": "x"},
        )
    ) == {"valid_until", "uses"}
    assert fields(
        await cp.api(
            "permit.issue",
            {
                "holder_id": "R-1001",
                "valid_until": rfc3339(now() + timedelta(hours=1)),
                "issued_by": "x",
                "colour": "red",
            },
        )
    ) == {"colour"}
    assert fields(await cp.api("out", {"compound_id": "C 01"})) == {"compound_id"}
    assert fields(await cp.api("trace", {"minutes": 5})) == {"(body)"}
    assert fields(await cp.api("out", b"not json")) == {"(body)"}
    stranger = await cp.api(
        "permit.issue",
        {
            "holder_id": "X-1",
            "valid_until": rfc3339(now() + timedelta(hours=1)),
            "issued_by": "x",
        },
    )
    assert stranger["error"]["code"] == "unknown_person"


async def test_who_is_out_survives_a_restart_and_follows_retention(cp: Checkpoint):
    """Who is out lives in memory: rebuilt from the register at start (overrides too), and
    what the retention purge removes from the register is gone from it as well."""
    t = now()

    async def out_of(compound: str) -> list[tuple[str, str]]:
        reply = await cp.api("out", {"compound_id": compound})
        return [(o["person_id"], o["gate_id"]) for o in reply["result"]["out"]]

    body = cp.scan_body("g1", person_id="R-1001", direction="out", scanned_at=rfc3339(t))
    assert reasons_of(await cp.send("g1", body)) == ("allow", [])
    # a later scan of an earlier exit (a device that was offline) does not bring them back
    early = cp.scan_body(
        "g2", person_id="R-1001", direction="in", scanned_at=rfc3339(t - timedelta(minutes=5))
    )
    assert reasons_of(await cp.send("g2", early)) == ("allow", [])
    denied = cp.scan_body("g2", person_id="R-1002", direction="out", temperature_c=38.4)
    assert (await cp.send("g2", denied))["verdict"] == "deny"
    assert await out_of("C-01") == [("R-1001", "g1")]
    override = {
        "gate_id": "g2",
        "scan_id": denied["scan_id"],
        "staff_id": "S-07",
        "reason": "checked",
    }
    assert "result" in await cp.api("override", override)
    assert await out_of("C-01") == [("R-1001", "g1"), ("R-1002", "g2")]
    # a refused scan at the very instant of the last exit changes nothing
    same_instant = cp.scan_body(
        "g1", person_id="R-1001", direction="in", temperature_c=38.4, scanned_at=rfc3339(t)
    )
    assert (await cp.send("g1", same_instant))["verdict"] == "deny"
    # a visitor or a resident of another compound passing C-01's gates is not listed
    assert reasons_of(await cp.scan("g1", person_id="R-3001", direction="out"))[0] == "allow"
    assert await out_of("C-01") == [("R-1001", "g1"), ("R-1002", "g2")]

    await cp.restart()
    assert await out_of("C-01") == [("R-1001", "g1"), ("R-1002", "g2")]
    since = (await cp.api("out", {"compound_id": "C-01"}))["result"]["out"][0]["since"]
    assert datetime.fromisoformat(since) == t  # the same instant, as before the restart
    assert since.endswith("+08:00")  # on the community's clock

    # the retention purge (the service's own housekeeping) once every passage is older than
    # the retention period: nobody is out any more
    cp.service.settings.register_retention_days = 1e-9
    (retention,) = [fn for fn in cp.service._housekeeping if fn.__name__ == "retention"]
    await retention()
    assert await cp.rows(T.passages) == []
    assert await out_of("C-01") == []


# --- 11. retention ---------------------------------------------------------------------------
async def test_register_retention(cp: Checkpoint):
    old_t = now() - timedelta(days=30)
    kept_t = now() - timedelta(days=27)

    def passage(scan_id: str, t: datetime) -> dict[str, Any]:
        reply = {"scan_id": scan_id, "verdict": "allow", "reasons": [], "decided_at": t.isoformat()}
        return {
            "gate_id": "g1",
            "scan_id": scan_id,
            "compound_id": "C-01",
            "person_id": "R-1002",
            "direction": "in",
            "verdict": "allow",
            "reasons": [],
            "temperature_c": 36.5,
            "scanned_at": t,
            "decided_at": t,
            "reply": reply,
            "permit_id": None,
        }

    async with cp.service.store.transaction() as s:
        await s.execute(
            sa.insert(T.passages), [passage("g1-old", old_t), passage("g1-27d", kept_t)]
        )
        await s.execute(
            sa.insert(T.door_events).values(
                event_id="d-old",
                household_id="H-0101",
                opened_at=old_t,
                quarantined=False,
                received_at=old_t,
            )
        )
    # (the register is written in the order the scans were decided: these came in first)
    recent = await cp.scan("g1", person_id="R-1001")

    days = cp.service.settings.register_retention_days
    await handlers.purge_register(days, cp.service.unit_of_work(), cp.state)
    p = T.passages.c
    left = {r.scan_id for r in await cp.rows(T.passages)}
    assert "g1-old" not in left
    assert {"g1-27d", recent["scan_id"]} <= left
    assert await cp.rows(T.door_events, T.door_events.c.event_id == "d-old") == []
    assert len(await cp.rows(T.passages, p.scan_id == recent["scan_id"])) == 1


async def test_ages_count_on_our_clock_not_the_devices(cp: Checkpoint):
    """Retention and overdue go by when the checkpoint received a message; the device's own
    time is kept for display and for trace windows. A scan older than the register keeps
    is refused, saying so."""
    p = T.passages.c
    # a clock that says 1970: refused, naming the field and why; nothing recorded
    dated_1970 = cp.scan_body("g1", scanned_at="1970-01-01T08:00:00+08:00")
    err = (await cp.send("g1", dated_1970))["error"]
    assert err == {
        "code": "invalid_scan",
        "detail": [{"field": "scanned_at", "error": "older than the register keeps (28 days)"}],
    }
    assert await cp.rows(T.passages, p.scan_id == dated_1970["scan_id"]) == []

    # a gate replays its buffer after an outage: recorded with the time it was scanned ...
    then = now() - timedelta(days=27)
    replayed = cp.scan_body("g1", person_id="R-1002", scanned_at=rfc3339(then))
    assert reasons_of(await cp.send("g1", replayed)) == ("allow", [])
    (row,) = await cp.rows(T.passages, p.scan_id == replayed["scan_id"])
    assert abs(as_utc(row.scanned_at) - then) < timedelta(seconds=1)
    assert abs(as_utc(row.decided_at) - now()) < timedelta(minutes=1)
    # ... found by a trace around that time ...
    around = {"compound_id": "C-01", "at": rfc3339(then), "minutes": 1}
    traced = (await cp.api("trace", around))["result"]["passages"]
    assert [x["scan_id"] for x in traced] == [replayed["scan_id"]]
    # ... and kept for the retention period from now: even a purge that keeps a day keeps it
    old_door = {"event_id": "d-1970", "household_id": "H-0102", "opened_at": "1970-01-01T08:00:00Z"}
    await cp.door("H-0102", old_door)
    await eventually(lambda: cp.rows(T.door_events, T.door_events.c.event_id == "d-1970"))
    cp.service.settings.register_retention_days = 1
    (retention,) = [fn for fn in cp.service._housekeeping if fn.__name__ == "retention"]
    await retention()
    assert len(await cp.rows(T.passages, p.scan_id == replayed["scan_id"])) == 1
    assert len(await cp.rows(T.door_events, T.door_events.c.event_id == "d-1970")) == 1

    # an exit replayed two hours late: back within the hour counts from when it came in
    t = now()
    permit = await cp.issue(
        "R-3001",
        valid_from=rfc3339(t - timedelta(hours=3)),
        valid_until=rfc3339(t + timedelta(hours=3)),
        return_within_h=1,
    )
    late_exit = cp.scan_body(
        "g3", person_id="R-3001", direction="out", scanned_at=rfc3339(t - timedelta(hours=2))
    )
    assert reasons_of(await cp.send("g3", late_exit)) == ("allow", [])
    (row,) = await cp.rows(T.permits, T.permits.c.permit_id == permit["permit_id"])
    assert row.state == "out"
    assert as_utc(row.return_by) >= t + timedelta(minutes=59)
    # (the exit's own time is what the alert and the office read)
    assert abs(as_utc(row.exited_at) - (t - timedelta(hours=2))) < timedelta(seconds=1)
    assert await handlers.alert_overdue(cp.service.unit_of_work(), cp.state) == 0
    assert await cp.outbox_count("checkpoint.permit.overdue.C-02") == 0


async def test_a_heartbeats_own_time_changes_nothing_about_when_a_gate_is_offline(
    cp: Checkpoint,
):
    """The arrival time counts (the edge contract §2 as gridcare implements it): a
    heartbeat dated years ago does not make its gate offline, nor one dated years ahead
    keep it online."""
    health = cp.health
    await cp.publish(CommunityPolicy(community_id="CM-1", heartbeat_interval_s=0.2), "gridcare-cli")
    await eventually(lambda: cp.state.policy("C-01").heartbeat_interval_s == 0.2)
    sent_at = {"g1": "2001-01-01T00:00:00+08:00", "g2": "2099-01-01T00:00:00+08:00"}
    t = now()
    for gate, at in sent_at.items():
        await cp.heartbeat(gate, {"gate_id": gate, "sent_at": at, "firmware": "1.0"})
    await eventually(lambda: set(sent_at) <= set(health.last_seen))
    for gate in sent_at:
        assert abs((health.last_seen[gate] - t).total_seconds()) < 5
    await cp.watch_gates()
    assert health.online.get("g1", True) and health.online.get("g2", True)
    await asyncio.sleep(0.75)  # silent for more than 3 intervals since they arrived
    await cp.watch_gates()
    assert health.online["g1"] is False and health.online["g2"] is False
    assert await cp.dead_letters("checkpoint-heartbeats") == []


async def test_restart_keeps_state_and_answers_retries_from_the_register(cp: Checkpoint):
    env = await cp.publish(CommunityPolicy(community_id="CM-1", fever_c=38.0), "gridcare-cli")
    await cp.handled(env, "checkpoint-refdata")
    await cp.set_level("C-01", SEALED, "ops-zhang")
    held = await cp.publish(
        PersonStatusChanged(
            person_id="R-2001",
            status="home_quarantine",
            holds_at_gate=True,
            household_id="H-0201",
            decided_at=now(),
        ),
        "screening",
    )
    await cp.handled(held, "checkpoint-decisions")
    outing = await cp.issue("R-3001", return_within_h=2)
    emergency = await cp.issue("R-1003", kind="emergency")

    exit_body = cp.scan_body("g3", person_id="R-3001", direction="out")
    before = await cp.send("g3", exit_body)
    assert reasons_of(before) == ("allow", [])
    fever_body = cp.scan_body("g1", person_id="R-1001", temperature_c=38.5)
    fever = await cp.send("g1", fever_body)
    assert reasons_of(fever) == ("deny", ["fever"])

    await cp.restart()
    st = cp.state
    # rebuilt from the store at start
    assert st.policy("C-01").fever_c == 38.0
    assert st.level("C-01") is SEALED and st.level("C-02") is CONTROLLED
    assert (st.held["R-2001"].status, st.held["R-2001"].household_id) == (
        "home_quarantine",
        "H-0201",
    )
    assert "H-0201" in st.quarantined_households
    assert st.permits[outing["permit_id"]].state == "out"
    assert st.permits[emergency["permit_id"]].state == "issued"

    # device retries of scans made before the restart: same reply, recorded once
    assert await cp.send("g3", exit_body) == before
    assert await cp.send("g1", fever_body) == fever
    cp.scans._recent.clear()  # not in memory: answered from the register
    assert await cp.send("g3", exit_body) == before
    assert await cp.send("g1", fever_body) == fever
    p = T.passages.c
    for body in (exit_body, fever_body):
        assert len(await cp.rows(T.passages, p.scan_id == body["scan_id"])) == 1
    (row,) = await cp.rows(T.permits, T.permits.c.permit_id == outing["permit_id"])
    assert (row.state, row.uses_left) == ("out", 0)
    assert st.permits[outing["permit_id"]].state == "out"
    assert await cp.outbox_count("checkpoint.fever.detected.g1") == 1

    # and the rebuilt state decides new scans
    assert reasons_of(await cp.scan("g1", person_id="R-1001", temperature_c=37.6)) == ("allow", [])
    assert reasons_of(await cp.scan("g2", person_id="R-2001", direction="out")) == (
        "deny",
        ["quarantine", "sealed"],
    )
    assert reasons_of(await cp.scan("g1", person_id="R-1003", direction="out")) == ("allow", [])
    assert reasons_of(await cp.scan("g1", person_id="R-1002", direction="out")) == (
        "deny",
        ["sealed"],
    )
    assert reasons_of(await cp.scan("g3", person_id="R-3001", direction="in")) == ("allow", [])
    (row,) = await cp.rows(T.permits, T.permits.c.permit_id == outing["permit_id"])
    assert row.state == "closed"


# --- contracts: the current and the next version of an event -----------------------------
async def test_a_consumer_takes_the_current_and_the_next_version_of_an_event(cp: Checkpoint):
    """``PersonStatusChanged`` as screening publishes it today (version 1), and as a later
    screening may (version 2: a status the checkpoint has never heard of, fields and an
    envelope field it does not know): both are enforced, neither is a dead letter."""
    current = await cp.publish(
        PersonStatusChanged(
            person_id="R-1001",
            status="home_quarantine",
            holds_at_gate=True,
            household_id="H-0101",
            decided_at=now(),
        ),
        "screening",
    )
    await cp.handled(current, "checkpoint-decisions")
    assert current.schema_version == PersonStatusChanged.VERSION == 1

    data = {
        "person_id": "R-1002",
        "status": "hospital_annex",  # a status added later: screening says it holds
        "holds_at_gate": True,
        "status_label": {"zh": "医院观察区", "en": "hospital annex"},
        "household_id": "H-0101",
        "until": None,
        "decided_at": now().isoformat(),
        "decided_by": {"role": "community_doctor", "id": "D-7"},  # new in version 2
        "risk_score": 0.93,
    }
    envelope = {
        **Envelope.wrap(PersonStatusChanged.model_construct(), source="screening").model_dump(
            mode="json", exclude={"data"}
        ),
        "schema_version": 2,
        "data": data,
        "trace_parent": "00-abc-def-01",  # a new envelope field, too
    }
    raw = json.dumps(envelope).encode()
    headers = {"Nats-Msg-Id": envelope["event_id"]}
    await cp.js.publish("screening.person.status.R-1002", raw, headers=headers)
    await cp.handled(Envelope.model_validate(envelope), "checkpoint-decisions")

    for person in ("R-1001", "R-1002"):
        reply = await cp.scan("g1", person_id=person, direction="out")
        assert reasons_of(reply) == ("deny", ["quarantine"])
    assert await cp.dead_letters("checkpoint-decisions") == []
    (row,) = await cp.rows(T.person_status, T.person_status.c.person_id == "R-1002")
    assert (row.status, row.holds_at_gate) == ("hospital_annex", True)


async def test_a_member_at_a_site_is_held_at_the_gate_and_their_door_is_only_recorded(
    cp: Checkpoint,
):
    """``holds_at_home`` (screening's, beside ``holds_at_gate``): a person taken to a central
    quarantine site is held at the gate, but their household's door opening is only
    recorded; a decision from a producer without the field (an older screening) confines at
    home as it holds at the gate, and its door alerts. Both kept across a restart."""
    d, breaches = T.door_events.c, "checkpoint.quarantine.breach.C-01"
    at_site = await cp.publish(
        PersonStatusChanged(
            person_id="R-1001",
            status="central_quarantine",
            holds_at_gate=True,
            holds_at_home=False,
            household_id="H-0101",
            decided_at=now(),
        ),
        "screening",
    )
    await cp.handled(at_site, "checkpoint-decisions")
    opened = rfc3339(now())
    await cp.door("H-0101", {"event_id": "d-300", "household_id": "H-0101", "opened_at": opened})
    (row,) = await eventually(lambda: cp.rows(T.door_events, d.event_id == "d-300"))
    assert row.quarantined is False
    assert await cp.outbox_count(breaches) == 0  # committed with the door row: none
    reply = await cp.scan("g1", person_id="R-1001", direction="out")
    assert reasons_of(reply) == ("deny", ["quarantine"])

    # an older producer's decision, as it was on the wire: no holds_at_home
    data = {
        "person_id": "R-1002",
        "status": "home_quarantine",
        "holds_at_gate": True,
        "status_label": {"en": "home quarantine"},
        "household_id": "H-0101",
        "until": None,
        "decided_at": now().isoformat(),
    }
    envelope = {
        **Envelope.wrap(PersonStatusChanged.model_construct(), source="screening").model_dump(
            mode="json", exclude={"data"}
        ),
        "data": data,
    }
    raw, headers = json.dumps(envelope).encode(), {"Nats-Msg-Id": envelope["event_id"]}
    await cp.js.publish("screening.person.status.R-1002", raw, headers=headers)
    await cp.handled(Envelope.model_validate(envelope), "checkpoint-decisions")
    await cp.door("H-0101", {"event_id": "d-301", "household_id": "H-0101", "opened_at": opened})
    (row,) = await eventually(lambda: cp.rows(T.door_events, d.event_id == "d-301"))
    assert row.quarantined is True
    breach = await cp.event(breaches, lambda x: x["ref"] == "door:d-301")
    assert (breach.data["household_id"], breach.data["status"]) == ("H-0101", "home_quarantine")

    rows = await cp.rows(T.person_status, T.person_status.c.person_id.in_(["R-1001", "R-1002"]))
    assert {(r.person_id, r.holds_at_gate, r.holds_at_home) for r in rows} == {
        ("R-1001", True, False),
        ("R-1002", True, True),
    }
    await cp.restart()
    assert set(cp.state.held) >= {"R-1001", "R-1002"}
    assert [h.person_id for h in cp.state.holders_of("H-0101")] == ["R-1002"]
    assert dict(cp.state.quarantined_households) == {"H-0101": 1}


# --- one checkpoint per store -----------------------------------------------------------------
async def test_a_second_checkpoint_on_the_same_store_refuses_to_start(cp: Checkpoint, tmp_path):
    second = build(cp.settings())
    with pytest.raises(LeaseHeld, match="another instance") as refused:
        await second.start()
    assert cp.service.components["lease"].holder in str(refused.value)
    await second.stop()  # a start that was refused stops cleanly
    # the first one is untouched and goes on answering
    assert reasons_of(await cp.scan("g1", person_id="R-1001"))[0] == "allow"

    # as a process: it exits at once (3), saying why, and the running one is untouched
    env = {
        **os.environ,
        "GRIDCARE_NATS_URL": cp.server.url,
        "GRIDCARE_DATABASE_URL": cp.database_url,
        "GRIDCARE_VAR_DIR": str(tmp_path),
        "GRIDCARE_HTTP_PORT": str(free_port()),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gridcare.checkpoint",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 3, out.decode()[-2000:]
    assert b"refusing to start: another instance" in out
    assert reasons_of(await cp.scan("g1", person_id="R-1002"))[0] == "allow"
