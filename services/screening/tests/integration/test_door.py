"""A household's door alerts only for a member confined at home, screening's decision carried
on ``PersonStatusChanged.holds_at_home``: screening's API over a real nats-server and store
(SQLite and PostgreSQL), the real checkpoint taking its events. Members taken from home
quarantine to a central site stay held at the gate, and their door stops alerting once the
last one confined at home has gone."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from screening_kit import until

from gridcare.checkpoint.bootstrap import build as build_checkpoint
from gridcare.checkpoint.config import CheckpointSettings
from gridcare.cli.devrun import NatsServer
from gridcare.contracts.checkpoint import QUARANTINE_BREACH
from gridcare.contracts.edge import DOOR_OPENED
from gridcare.contracts.refdata import (
    Building,
    Community,
    Compound,
    Grid,
    Household,
    Resident,
    Staff,
)
from gridcare.screening.adapters import tables as T
from gridcare.screening.bootstrap import build
from gridcare.shared.envelope import Envelope
from gridcare.shared.settings import Settings

MEMBERS = ("R-1001", "R-1002", "R-1003")

COMMUNITY = (
    Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
    Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
    Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
    Grid(
        grid_id="G-01",
        community_id="CM-1",
        name="Grid 1",
        worker_id="W-01",
        worker_name="Li Mei",
        worker_phone="+86 138 0000 0001",
    ),
    Staff(staff_id="S-01", community_id="CM-1", name="Secretary Wang", roles=["secretary"]),
    Household(household_id="H-0101", building_id="B-01", unit="1-101"),
    *(Resident(resident_id=r, household_id="H-0101", name=r) for r in MEMBERS),
)


async def ok(nc, op: str, body: dict[str, Any]) -> Any:
    msg = await nc.request(f"api.screening.{op}", json.dumps(body).encode(), timeout=10)
    reply = json.loads(msg.data)
    assert "result" in reply, reply
    return reply["result"]


@pytest.fixture
async def system(tmp_path, database_url):
    server = NatsServer(store_dir=tmp_path / "nats").start()
    screening = build(
        Settings(
            nats_url=server.url, database_url=database_url, var_dir=tmp_path, outbox_poll_s=0.1
        )
    )
    checkpoint = build_checkpoint(
        CheckpointSettings(
            nats_url=server.url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'checkpoint.db'}",
            var_dir=tmp_path / "checkpoint",
            gate_check_interval_s=3600,
            housekeeping_interval_s=3600,
            retry_base_delay_s=0.05,
            outbox_poll_s=0.05,
        )
    )
    await screening.start()
    await checkpoint.start()
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    for entity in COMMUNITY:
        env = Envelope.wrap(entity, source="test")
        await js.publish(entity.subject(), env.to_bytes(), headers=env.headers())
    state = checkpoint.components["state"]

    async def projected():
        async with screening.store.sessions() as s:
            people = await s.scalar(sa.select(sa.func.count()).select_from(T.residents))
            staff = await s.scalar(sa.select(sa.func.count()).select_from(T.staff))
        known = all(state.resident_household.get(r) == "H-0101" for r in MEMBERS)
        return people == len(MEMBERS) and staff == 1 and known

    await until(projected, what="the reference data in screening and at the checkpoint")
    try:
        yield nc, checkpoint
    finally:
        await nc.close()
        await checkpoint.stop()
        await screening.stop()
        server.stop()


async def test_the_door_stops_alerting_when_the_last_member_at_home_goes_to_a_site(system):
    nc, checkpoint = system
    state = checkpoint.components["state"]
    js = nc.jetstream()
    breaches = await js.subscribe(
        QUARANTINE_BREACH.format(compound_id="C-01"), ordered_consumer=True
    )

    async def door(event_id: str) -> Any:
        opened = datetime.now(UTC).astimezone(timezone(timedelta(hours=8)))
        body = {"event_id": event_id, "household_id": "H-0101", "opened_at": opened.isoformat()}
        await js.publish(DOOR_OPENED.format(household_id="H-0101"), json.dumps(body).encode())

        async def recorded():
            async with checkpoint.store.sessions() as s:
                t = checkpoint.store.metadata.tables["door_events"]
                return (await s.execute(sa.select(t).where(t.c.event_id == event_id))).first()

        return await until(recorded, what=f"door opening {event_id} in the register")

    async def breach_for(event_id: str) -> dict[str, Any]:
        msg = await breaches.next_msg(timeout=10)
        data = Envelope.from_bytes(msg.data).data
        assert data["ref"] == f"door:{event_id}", data
        return data

    def at_home() -> list[str]:
        return sorted(h.person_id for h in state.holders_of("H-0101"))

    await ok(
        nc,
        "quarantine.household.start",
        {"household_id": "H-0101", "by": "W-01", "reason": "returned from a risk area"},
    )

    async def all_at_home():
        return at_home() == list(MEMBERS)

    await until(all_at_home, what="the checkpoint confining the three members at home")
    assert (await door("d-1")).quarantined is True
    assert (await breach_for("d-1"))["status"] == "home_quarantine"

    async def to_site(person: str) -> None:
        step = {"person_id": person, "status": "central_quarantine", "by": "S-01"}
        await ok(nc, "status.set", {**step, "reason": "taken to the Lakeside hotel"})

    # two of three taken to a central site: the one at home still makes the door alert
    for person in ("R-1001", "R-1002"):
        await to_site(person)

    async def one_at_home():
        return at_home() == ["R-1003"]

    await until(one_at_home, what="the checkpoint confining only R-1003 at home")
    assert {"R-1001", "R-1002"} <= set(state.held)  # still held at the gate
    assert state.held["R-1001"].status == "central_quarantine"
    assert (await door("d-2")).quarantined is True
    assert (await breach_for("d-2"))["status"] == "home_quarantine"

    # the last one at home taken too: held at the gate, the door only recorded
    await to_site("R-1003")

    async def none_at_home():
        return at_home() == [] and state.held.get("R-1003") is not None

    await until(none_at_home, what="the checkpoint confining nobody at home")
    assert set(MEMBERS) <= set(state.held)
    assert (await door("d-3")).quarantined is False
    with pytest.raises(nats.errors.TimeoutError):
        await breaches.next_msg(timeout=1.0)
    await breaches.unsubscribe()
