"""The health status machine through screening's API over a real nats-server, on a real
store (SQLite and PostgreSQL): a step by a grid worker from the grids sheet, a refused step
answered with its error (never a timeout), the history on the local clock, and the
``PersonStatusChanged`` each step puts on the SCREENING stream (through the outbox)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from screening_kit import MovedClock, until

from gridcare.cli.devrun import NatsServer
from gridcare.contracts.refdata import (
    Building,
    Community,
    Compound,
    Grid,
    Household,
    Resident,
    Staff,
)
from gridcare.contracts.screening import PERSON_STATUS_CHANGED
from gridcare.screening.adapters import tables as T
from gridcare.screening.bootstrap import build
from gridcare.shared.envelope import Envelope
from gridcare.shared.settings import Settings

COMMUNITY = (
    Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
    Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
    Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
    Household(household_id="H-0101", building_id="B-01", unit="1-101"),
    Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
    Grid(
        grid_id="G-01",
        community_id="CM-1",
        name="Grid 1",
        worker_id="W-01",
        worker_name="Li Mei",
        worker_phone="+86 138 0000 0001",
    ),
    Staff(
        staff_id="D-01",
        community_id="CM-1",
        name="Chen Jing",
        phone="+86 136 0000 0002",
        roles=["community_doctor"],
        channels=["sms"],
    ),
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
        async with svc.store.sessions() as s:
            staff = await s.scalar(sa.select(sa.func.count()).select_from(T.staff))
            grids = await s.scalar(sa.select(sa.func.count()).select_from(T.grids))
            people = await s.scalar(sa.select(sa.func.count()).select_from(T.communities))
            return staff == 1 and grids == 1 and people == 1

    await until(projected, what="the reference data in screening's store")
    try:
        yield svc, nc, clock
    finally:
        await nc.close()
        await svc.stop()
        server.stop()


async def api(nc, op: str, body: dict[str, Any] | bytes) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg = await nc.request(f"api.screening.{op}", raw, timeout=5)
    return json.loads(msg.data)


async def last_change(nc, person_id: str, status: str) -> dict[str, Any]:
    """The newest PersonStatusChanged of the person on the SCREENING stream, once it is the
    one to ``status`` (the outbox publishes it a moment after the reply)."""
    js = nc.jetstream()
    subject = PERSON_STATUS_CHANGED.format(person_id=person_id)

    async def published():
        try:
            data = Envelope.from_bytes((await js.get_last_msg("SCREENING", subject)).data).data
        except nats.js.errors.NotFoundError:
            return None
        return data if data["status"] == status else None

    return await until(published, what=f"a PersonStatusChanged to {status} on {subject}")


async def test_a_step_a_refusal_and_the_event_on_the_stream(screening):
    svc, nc, clock = screening
    clock.ahead = timedelta(days=3)  # screening's now, not the wall clock's
    body = {
        "person_id": "R-1001",
        "status": "home_quarantine",
        "set_by": "W-01",  # the old call shape: no role (the worker's one), set_by for by
        "reason": "returned from a risk area",
    }
    reply = await api(nc, "status.set", body)
    assert reply == {
        "result": {
            "person_id": "R-1001",
            "status": "home_quarantine",
            "previous_status": "normal",
            "role": "grid_worker",
            "holds_at_gate": True,
        }
    }
    changed = await last_change(nc, "R-1001", "home_quarantine")
    assert (changed["status"], changed["previous_status"], changed["role"]) == (
        "home_quarantine",
        "normal",
        "grid_worker",
    )
    assert changed["holds_at_gate"] is True and changed["household_id"] == "H-0101"
    assert changed["source"] == "office" and changed["reason"] == "returned from a risk area"
    decided = datetime.fromisoformat(changed["decided_at"])
    assert abs(decided - clock()) < timedelta(minutes=1)  # the moved clock, 3 days ahead

    # a grid worker may not release anyone: refused, with what is allowed, nothing changes
    refused = await api(
        nc,
        "status.set",
        {"person_id": "R-1001", "status": "released", "by": "W-01", "reason": "14 days"},
    )
    assert refused["error"]["code"] == "role_not_allowed"
    [detail] = refused["error"]["detail"]
    assert detail["field"] == "role"
    assert "home_quarantine -> released may be made by community_doctor" in detail["error"]
    assert "not by grid_worker" in detail["error"]

    # a step the table does not have at all
    refused = await api(
        nc,
        "status.set",
        {"person_id": "R-1001", "status": "normal", "by": "D-01", "reason": "fine"},
    )
    assert refused["error"]["code"] == "transition_not_allowed"
    assert "from home_quarantine a person may go to" in refused["error"]["detail"][0]["error"]

    # a bad body: the validation error, field by field
    invalid = await api(nc, "status.set", {"person_id": "R-1001", "status": "cured", "by": "D-01"})
    assert {d["field"] for d in invalid["error"]["detail"]} >= {"status", "reason"}

    # the doctor releases; the history reads every step on the local clock
    clock.ahead += timedelta(days=14)
    done = await api(
        nc,
        "status.set",
        {
            "person_id": "R-1001",
            "status": "released",
            "by": "D-01",
            "role": "community_doctor",
            "reason": "14 days, PCR negative",
        },
    )
    assert done["result"]["holds_at_gate"] is False
    released = await last_change(nc, "R-1001", "released")
    assert (released["previous_status"], released["role"]) == (
        "home_quarantine",
        "community_doctor",
    )
    shown = (await api(nc, "status.show", {"person_id": "R-1001"}))["result"]
    assert shown["status"] == "released"
    assert [(h["from"], h["to"], h["by"], h["role"]) for h in shown["history"]] == [
        ("normal", "home_quarantine", "W-01", "grid_worker"),
        ("home_quarantine", "released", "D-01", "community_doctor"),
    ]
    assert all(h["at"].endswith("+08:00") for h in shown["history"])
    async with svc.store.sessions() as s:
        rows = (await s.execute(sa.select(T.status_history).order_by(T.status_history.c.id))).all()
    assert [(r.previous_status, r.status, r.role, r.source) for r in rows] == [
        ("normal", "home_quarantine", "grid_worker", "office"),
        ("home_quarantine", "released", "community_doctor", "office"),
    ]


async def test_the_machine_as_data(screening):
    _, nc, _ = screening
    got = (await api(nc, "status.transitions", {}))["result"]
    steps = {(t["from"], t["to"]): t for t in got["transitions"]}
    assert steps[("close_contact", "home_quarantine")]["roles"] == [
        "community_doctor",
        "grid_worker",
        "screening",
        "secretary",
    ]
    assert steps[("suspected", "normal")]["reason_required"] is True
    assert ("home_quarantine", "normal") not in steps
