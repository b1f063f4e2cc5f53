"""Dispatch taking screening's decisions over a real nats-server and real stores (SQLite
and PostgreSQL): screening's events published as screening publishes them (the contract
classes in envelopes on the SCREENING stream), the tasks seen through api.dispatch.tasks,
the grid worker's messages on NOTIFY_REQUESTS and the closed tasks on DISPATCH.

A household put in home quarantine (two members) gets one support task; one member
confirmed gets one urgent transfer; a door-visit request is a task without a message of
dispatch's own (screening alerted the worker). The same decisions published again with
new message ids (a producer re-emitting them), and a late one, change nothing; the
confirmed member taken to hospital and the other released end both tasks.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime, timedelta

import nats

from gridcare.cli.devrun import NatsServer, free_port
from gridcare.contracts.refdata import Building, Community, Grid, Household, Resident
from gridcare.contracts.screening import DoorVisitRequested, PersonStatusChanged
from gridcare.dispatch.bootstrap import build
from gridcare.shared.envelope import Envelope
from gridcare.shared.settings import Settings

T0 = datetime(2026, 3, 11, 23, 31, 5, tzinfo=UTC)  # 07:31 on 12 March in Shanghai
PLACES = (
    Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
    Grid(
        grid_id="G-01",
        community_id="CM-1",
        name="Grid 1",
        worker_id="W-01",
        worker_name="Li Mei",
        worker_phone="+86 138 0000 0001",
    ),
    Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
    Household(household_id="H-0101", building_id="B-01", unit="1-101"),
    Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
    Resident(resident_id="R-1002", household_id="H-0101", name="Wang Lei"),
)


def decided(person: str, status: str, minutes: int) -> PersonStatusChanged:
    held_at_home = status in {"home_quarantine", "confirmed"}
    return PersonStatusChanged(
        person_id=person,
        status=status,
        holds_at_gate=held_at_home or status == "in_hospital",
        holds_at_home=held_at_home,
        household_id="H-0101",
        decided_at=T0 + timedelta(minutes=minutes),
        role="lab" if status == "confirmed" else "community_doctor",
        reason="",
    )


VISIT = DoorVisitRequested(
    request_id="v-R-1002-2026-03-11",
    person_id="R-1002",
    household_id="H-0101",
    grid_id="G-01",
    missed_days=2,
    day=date(2026, 3, 14),
    last_checkin_day=date(2026, 3, 11),
    requested_at=T0 + timedelta(days=2),
)


async def until(check, timeout: float = 20.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        await asyncio.sleep(0.05)
    return result


async def stream(nc, name: str) -> list[Envelope]:
    js = nc.jetstream()
    info = await js.stream_info(name)
    if not info.state.messages:
        return []
    return [
        Envelope.from_bytes((await js.get_msg(name, seq)).data)
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
    ]


async def publish(nc, event, source: str) -> None:
    env = Envelope.wrap(event, source=source)  # a new message id each time
    await nc.jetstream().publish(event.subject(), env.to_bytes(), headers=env.headers())


async def tasks(nc) -> list[dict]:
    reply = await nc.request("api.dispatch.tasks", json.dumps({"limit": 50}).encode(), 10)
    return json.loads(reply.data)["result"]["tasks"]


async def test_screening_s_decisions_become_tasks_once(tmp_path, database_url):
    server = NatsServer(store_dir=tmp_path / "nats").start()
    svc = build(
        Settings(
            nats_url=server.url,
            database_url=database_url,
            var_dir=tmp_path,
            http_port=free_port(),
            outbox_poll_s=0.05,
        )
    )
    await svc.start()
    nc = await nats.connect(server.url)
    try:
        for entity in PLACES:
            await publish(nc, entity, "gridcare-import")
        # the household into home quarantine (both members), then R-1001 confirmed
        first = [
            decided("R-1001", "home_quarantine", 0),
            decided("R-1002", "home_quarantine", 1),
            decided("R-1001", "confirmed", 30),
        ]
        for ev in first:
            await publish(nc, ev, "screening")
        await publish(nc, VISIT, "screening")

        async def three():
            found = await tasks(nc)
            return found if len(found) == 3 else []

        found = {t["kind"]: t for t in await until(three, what="three tasks")}
        assert set(found) == {"quarantine_support", "transfer", "door_visit"}
        support, transfer, visit = (
            found["quarantine_support"],
            found["transfer"],
            found["door_visit"],
        )
        assert support["household_id"] == "H-0101" and support["person_id"] is None
        assert (transfer["person_id"], transfer["urgent"]) == ("R-1001", True)
        assert visit["person_id"] == "R-1002" and not visit["urgent"]
        assert all(t["assignee_id"] == "W-01" and t["status"] == "open" for t in found.values())
        assert transfer["due_by"].endswith("+08:00")

        async def messages():
            found = [e.data for e in await stream(nc, "NOTIFY_REQUESTS")]
            return found if len(found) >= 2 else []

        told = {n["template"]: n for n in await until(messages, what="the worker told")}
        assert set(told) == {"task.quarantine_support", "task.transfer"}  # no door_visit
        assert told["task.transfer"]["priority"] == "urgent"
        assert told["task.transfer"]["needs_ack"] and told["task.transfer"]["alert_kind"]
        assert told["task.quarantine_support"]["recipient"] == {
            "kind": "role",
            "role": "grid_worker",
            "place_id": "G-01",
        }

        # re-emitted with new message ids, and a late decision: nothing new
        for ev in [*first, VISIT, decided("R-1002", "close_contact", -10)]:
            await publish(nc, ev, "screening")
        # then the confirmed member taken to hospital, the other released
        await publish(nc, decided("R-1001", "in_hospital", 120), "screening")
        await publish(nc, decided("R-1002", "released", 121), "screening")

        async def closed():
            found = [e.data for e in await stream(nc, "DISPATCH") if e.type.endswith("Closed")]
            return found if len(found) == 2 else []

        ended = {c["kind"]: c for c in await until(closed, what="two tasks closed")}
        assert ended["transfer"]["status"] == "done"
        assert ended["quarantine_support"]["status"] == "done"
        # whichever of the two is taken last ends it (they are taken one at a time)
        assert ended["quarantine_support"]["reason"] in {"released", "in_hospital"}
        await asyncio.sleep(0.5)  # anything more the redeliveries would have made, made
        now = {t["kind"]: t for t in await tasks(nc)}
        assert len(await tasks(nc)) == 3
        assert (now["transfer"]["status"], now["quarantine_support"]["status"]) == ("done",) * 2
        assert now["door_visit"]["status"] == "open" and now["transfer"]["closed_at"]
        assert len(await stream(nc, "NOTIFY_REQUESTS")) == 2
        created = [e for e in await stream(nc, "DISPATCH") if e.type.endswith("Created")]
        assert len(created) == 3
    finally:
        await nc.close()
        await svc.stop()
        server.stop()
