"""Quarantine through screening's API over a real nats-server, on a real store (SQLite and
PostgreSQL): a household's home quarantine started and ended (each member's
``PersonStatusChanged`` on the SCREENING stream with the household, which the checkpoint's
door alert keys on), central sites (intake all or nothing, transfer, discharge, occupancy),
and two intakes at once into one site: never more people than rooms, whichever commits
first (on PostgreSQL both have read the free rooms before either writes: the store's unique
(site, room) refuses the second, which runs again and finds the site as it is)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from screening_kit import MovedClock, until

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
from gridcare.contracts.screening import PERSON_STATUS_CHANGED
from gridcare.screening.adapters import tables as T
from gridcare.screening.bootstrap import build
from gridcare.screening.handlers import quarantine as handlers
from gridcare.screening.unit_of_work import SqlUnitOfWork
from gridcare.shared.envelope import Envelope
from gridcare.shared.errors import ApiError
from gridcare.shared.settings import Settings

CONTACTS = [f"R-3{n:03d}" for n in range(1, 13)]  # twelve close contacts, one a household


def community() -> list[Any]:
    entities: list[Any] = [
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
        Staff(
            staff_id="S-01",
            community_id="CM-1",
            name="Secretary Wang",
            phone="+86 137 0000 0001",
            roles=["secretary"],
            channels=["sms"],
        ),
        Staff(
            staff_id="D-01",
            community_id="CM-1",
            name="Chen Jing",
            phone="+86 136 0000 0002",
            roles=["community_doctor"],
            channels=["sms"],
        ),
        Household(household_id="H-0101", building_id="B-01", unit="1-101"),
        Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
        Resident(resident_id="R-1002", household_id="H-0101", name="Wang Lei"),
        Resident(resident_id="R-1003", household_id="H-0101", name="Wang Min"),
    ]
    for n, person in enumerate(CONTACTS, start=1):
        entities.append(Household(household_id=f"H-03{n:02d}", building_id="B-01", unit=f"3-{n}"))
        entities.append(Resident(resident_id=person, household_id=f"H-03{n:02d}", name=person))
    return entities


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
    entities = community()
    for entity in entities:
        env = Envelope.wrap(entity, source="test")
        await js.publish(entity.subject(), env.to_bytes(), headers=env.headers())
    residents = sum(isinstance(e, Resident) for e in entities)

    async def projected():
        async with svc.store.sessions() as s:
            people = await s.scalar(sa.select(sa.func.count()).select_from(T.residents))
            staff = await s.scalar(sa.select(sa.func.count()).select_from(T.staff))
            zones = await s.scalar(sa.select(sa.func.count()).select_from(T.communities))
            return people == residents and staff == 2 and zones == 1

    await until(projected, what="the reference data in screening's store")
    try:
        yield svc, nc, clock
    finally:
        await nc.close()
        await svc.stop()
        server.stop()


async def api(nc, op: str, body: dict[str, Any]) -> dict[str, Any]:
    msg = await nc.request(f"api.screening.{op}", json.dumps(body).encode(), timeout=10)
    return json.loads(msg.data)


async def ok(nc, op: str, body: dict[str, Any]) -> Any:
    reply = await api(nc, op, body)
    assert "result" in reply, reply
    return reply["result"]


async def refused(nc, op: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api(nc, op, body)
    assert "error" in reply, reply
    return reply["error"]


async def changes(nc, person_id: str, count: int) -> list[dict[str, Any]]:
    """The person's PersonStatusChanged events on the SCREENING stream, once there are
    ``count`` (the outbox publishes them a moment after the reply)."""
    js = nc.jetstream()
    subject = PERSON_STATUS_CHANGED.format(person_id=person_id)
    found: list[dict[str, Any]] = []
    sub = await js.subscribe(subject, ordered_consumer=True)
    try:

        async def enough():
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.2)
                except TimeoutError:
                    return len(found) >= count
                found.append(Envelope.from_bytes(msg.data).data)

        await until(enough, what=f"{count} PersonStatusChanged of {person_id}")
    finally:
        await sub.unsubscribe()
    return found


# --- a household at home ----------------------------------------------------------------------
async def test_a_household_quarantined_and_released_through_the_api(screening):
    svc, nc, clock = screening
    clock.ahead = timedelta(days=2)
    await ok(
        nc,
        "status.set",
        {"person_id": "R-1001", "status": "confirmed", "by": "City Lab", "role": "lab",
         "reason": "positive test"},
    )  # fmt: skip
    started = await ok(
        nc,
        "quarantine.household.start",
        {"household_id": "H-0101", "by": "S-01", "reason": "a confirmed case at home"},
    )
    assert [(m["person_id"], m["status"], m["changed"]) for m in started["members"]] == [
        ("R-1001", "confirmed", False),  # held more strictly: kept
        ("R-1002", "home_quarantine", True),
        ("R-1003", "home_quarantine", True),
    ]
    start = datetime.fromisoformat(started["started_at"])
    assert started["until"].endswith("+08:00")
    assert datetime.fromisoformat(started["until"]) - start == timedelta(days=14)
    assert abs(start - clock()) < timedelta(seconds=30)  # on screening's clock
    for person in ("R-1002", "R-1003"):
        [event] = await changes(nc, person, 1)
        assert event["status"] == "home_quarantine" and event["holds_at_gate"] is True
        assert event["household_id"] == "H-0101"  # what the checkpoint's door alert keys on
    [confirmed] = await changes(nc, "R-1001", 1)
    assert confirmed["status"] == "confirmed"  # nothing more for the confirmed member

    [listed] = (await ok(nc, "quarantine.households", {}))["households"]
    assert listed["household_id"] == "H-0101" and listed["until"] == started["until"]
    assert 13.9 < listed["days_left"] <= 14

    clock.ahead += timedelta(days=14)
    ended = await ok(
        nc,
        "quarantine.household.end",
        {"household_id": "H-0101", "by": "D-01", "reason": "14 days, negative tests"},
    )
    assert ended["status"] == "ended"
    assert [m["status"] for m in ended["members"]] == ["confirmed", "released", "released"]
    for person in ("R-1002", "R-1003"):
        events = await changes(nc, person, 2)
        assert events[-1]["status"] == "released" and events[-1]["holds_at_gate"] is False
        assert events[-1]["household_id"] == "H-0101"
    assert (await ok(nc, "quarantine.households", {}))["households"] == []
    async with svc.store.sessions() as s:
        row = (await s.execute(sa.select(T.household_quarantines))).one()
    assert row.status == "ended" and row.end_reason == "14 days, negative tests"

    error = await refused(
        nc, "quarantine.household.end", {"household_id": "H-0101", "by": "D-01", "reason": "x"}
    )
    assert error["code"] in ("not_quarantined", "invalid_request")
    error = await refused(nc, "quarantine.household.start", {"household_id": "H-0101"})
    assert error["code"] == "invalid_request"
    assert {d["field"] for d in error["detail"]} == {"by", "reason"}


# --- central sites ----------------------------------------------------------------------------
async def test_a_site_takes_in_transfers_and_discharges_through_the_api(screening):
    svc, nc, clock = screening
    await ok(
        nc,
        "sites.add",
        {"site_id": "HOTEL-1", "name": "Jinjiang Inn", "address": "8 Hubin Rd",
         "community_id": "CM-1", "by": "S-01", "room_count": 10},
    )  # fmt: skip
    await ok(
        nc,
        "sites.add",
        {"site_id": "HOTEL-2", "name": "Hanting", "community_id": "CM-1", "by": "S-01",
         "rooms": ["A1", "A2"]},
    )  # fmt: skip
    added = await ok(nc, "sites.rooms.add", {"site_id": "HOTEL-2", "count": 1})
    assert added["added"] == ["1"] and added["rooms"] == 3

    intake = {"site_id": "HOTEL-1", "by": "S-01", "reason": "close contacts of R-1001"}
    error = await refused(
        nc, "sites.intake", {**intake, "intake_id": "night-1", "people": CONTACTS}
    )
    assert error["code"] == "site_full" and "only 10 would" in error["detail"][0]["error"]
    async with svc.store.sessions() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(T.quarantine_occupants)) == 0

    taken = await ok(nc, "sites.intake", {**intake, "intake_id": "night-1", "people": CONTACTS[:8]})
    assert [a["room_id"] for a in taken["assigned"]] == [str(n) for n in range(1, 9)]
    assert taken["free"] == 2
    again = await ok(nc, "sites.intake", {**intake, "intake_id": "night-1", "people": CONTACTS[:8]})
    assert again["assigned"] == taken["assigned"]
    [event] = await changes(nc, "R-3001", 1)
    assert event["status"] == "central_quarantine" and event["source"] == "intake:night-1"

    moved = await ok(
        nc,
        "sites.transfer",
        {"from_site": "HOTEL-1", "to_site": "HOTEL-2", "people": CONTACTS[:3], "by": "S-01",
         "reason": "HOTEL-1 floor 1 for cases"},
    )  # fmt: skip
    assert [m["room_id"] for m in moved["moved"]] == ["1", "A1", "A2"]
    error = await refused(
        nc,
        "sites.transfer",
        {"from_site": "HOTEL-1", "to_site": "HOTEL-2", "people": [CONTACTS[3]], "by": "S-01",
         "reason": "more room"},
    )  # fmt: skip
    assert error["code"] == "site_full"

    clock.ahead = timedelta(days=14)
    out = await ok(
        nc,
        "sites.discharge",
        {"site_id": "HOTEL-2", "people": ["R-3001"], "to": "released", "by": "D-01",
         "reason": "14 days, two negative tests"},
    )  # fmt: skip
    assert out["discharged"] == [{"person_id": "R-3001", "status": "released"}]
    events = await changes(nc, "R-3001", 2)
    assert events[-1]["status"] == "released" and events[-1]["household_id"] == "H-0301"

    sites = {s["site_id"]: s for s in (await ok(nc, "sites.occupancy", {}))["sites"]}
    assert (sites["HOTEL-1"]["occupied"], sites["HOTEL-1"]["free"]) == (5, 5)
    assert [o["room_id"] for o in sites["HOTEL-1"]["occupants"]] == ["4", "5", "6", "7", "8"]
    assert (sites["HOTEL-2"]["occupied"], sites["HOTEL-2"]["free"]) == (2, 1)
    assert sites["HOTEL-2"]["occupants"][0]["since"].endswith("+08:00")
    async with svc.store.sessions() as s:
        stays = await s.execute(sa.select(T.quarantine_stays).order_by(T.quarantine_stays.c.id))
        stays = stays.all()
    assert len(stays) == 8 + 3  # eight taken in, three moved
    assert sum(st.ended_at is not None for st in stays) == 4  # three moved out, one discharged

    error = await refused(nc, "sites.occupancy", {"site_id": "NOWHERE"})
    assert error["code"] == "unknown_site"
    error = await refused(nc, "sites.intake", {**intake, "intake_id": "x", "people": []})
    assert error["code"] == "invalid_request" and error["detail"][0]["field"] == "people"


# --- two intakes at once ----------------------------------------------------------------------
class RacingUnitOfWork(SqlUnitOfWork):
    """On its first try, waits at the barrier before writing the rooms it chose: both
    intakes have read the same free rooms before either writes (PostgreSQL; on SQLite
    writers are serialised in-process and never overlap)."""

    def __init__(self, svc, barrier: asyncio.Barrier | None) -> None:
        super().__init__(svc.store, svc.name, None, svc.relay.wake)
        self.barrier = barrier
        self.tries = 0

    def repositories(self) -> None:
        super().repositories()
        self.tries += 1
        real, barrier, first = self.sites.occupy, self.barrier, self.tries == 1

        async def occupy(occupants):
            if barrier is not None and first:
                await asyncio.wait_for(barrier.wait(), 10)
            await real(occupants)

        self.sites.occupy = occupy  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("first", "second", "fit"),
    [(6, 6, "one"), (5, 5, "both")],
    ids=["6+6 into 10: one fits", "5+5 into 10: both fit"],
)
async def test_two_intakes_at_once_never_overfill_a_site(screening, db_backend, first, second, fit):
    svc, nc, clock = screening
    await ok(
        nc,
        "sites.add",
        {"site_id": "HOTEL-1", "name": "Jinjiang Inn", "community_id": "CM-1", "by": "S-01",
         "room_count": 10},
    )  # fmt: skip
    barrier = asyncio.Barrier(2) if db_backend == "postgres" else None
    a = RacingUnitOfWork(svc, barrier)
    b = RacingUnitOfWork(svc, barrier)

    async def take(uow, intake_id, people):
        try:
            return await handlers.intake(
                uow, "HOTEL-1", people, intake_id=intake_id, by="S-01", role=None,
                reason="close contacts", now=clock(),
            )  # fmt: skip
        except ApiError as exc:
            return exc

    results = await asyncio.gather(
        take(a, "night-a", CONTACTS[:first]), take(b, "night-b", CONTACTS[first : first + second])
    )
    if db_backend == "postgres":
        assert max(a.tries, b.tries) >= 2  # they did collide; the store refused one room
    errors = [r for r in results if isinstance(r, ApiError)]
    async with svc.store.sessions() as s:
        rows = (await s.execute(sa.select(T.quarantine_occupants))).all()
        central = await s.scalar(
            sa.select(sa.func.count())
            .select_from(T.person_status)
            .where(T.person_status.c.status == "central_quarantine")
        )
    rooms = [r.room_id for r in rows]
    assert len(rooms) == len(set(rooms)) <= 10
    if fit == "one":
        [error] = errors
        assert error.code == "site_full" and "only 4 would" in error.detail
        assert len(rows) == 6 and central == 6  # the refused batch left nobody behind
    else:
        assert errors == [] and len(rows) == 10 and central == 10
        assert sorted(rooms, key=int) == [str(n) for n in range(1, 11)]


class RacingHouseholdUnitOfWork(SqlUnitOfWork):
    """Waits at the barrier before taking the household's lock: both starts have begun
    their transactions before either reads the household's quarantine (PostgreSQL)."""

    def __init__(self, svc, barrier: asyncio.Barrier | None) -> None:
        super().__init__(svc.store, svc.name, None, svc.relay.wake)
        self.barrier = barrier

    def repositories(self) -> None:
        super().repositories()
        real, barrier = self.household_quarantines.lock, self.barrier

        async def lock(household_id):
            if barrier is not None:
                await asyncio.wait_for(barrier.wait(), 10)
            await real(household_id)

        self.household_quarantines.lock = lock  # type: ignore[method-assign]


async def test_two_household_starts_at_once_make_one_quarantine(screening, db_backend):
    """Two members of staff start the same household's quarantine at once: one quarantine,
    to the later end (on PostgreSQL without the household's lock both would read none and
    both insert; the store's partial unique index would refuse the second)."""
    svc, _nc, clock = screening
    barrier = asyncio.Barrier(2) if db_backend == "postgres" else None
    now = clock()
    ends = [now + timedelta(days=7), now + timedelta(days=14)]

    async def start(n: int, end: datetime) -> dict[str, Any]:
        uow = RacingHouseholdUnitOfWork(svc, barrier)
        return await handlers.start_household(
            uow, "H-0101", by="S-01", role=None, reason=f"start {n}", now=now, until=end
        )

    results = await asyncio.gather(*(start(n, end) for n, end in enumerate(ends)))
    assert {r["household_id"] for r in results} == {"H-0101"}
    async with svc.store.sessions() as s:
        rows = (
            await s.execute(
                sa.select(T.household_quarantines).where(
                    T.household_quarantines.c.household_id == "H-0101"
                )
            )
        ).all()
    [row] = rows
    assert row.status == "active" and row.until.replace(tzinfo=UTC) == ends[1]


async def test_the_store_itself_refuses_a_second_active_household_quarantine(screening):
    svc, _nc, clock = screening
    row = {"household_id": "H-0101", "until": clock() + timedelta(days=14), "started_by": "S-01",
           "reason": "r", "status": "active"}  # fmt: skip
    async with svc.store.transaction() as s:
        await s.execute(sa.insert(T.household_quarantines).values(started_at=clock(), **row))
    with pytest.raises(sa.exc.IntegrityError):
        async with svc.store.transaction() as s:
            later = clock() + timedelta(hours=1)
            await s.execute(sa.insert(T.household_quarantines).values(started_at=later, **row))


async def test_the_store_itself_refuses_a_second_person_in_a_room(screening):
    svc, nc, clock = screening
    await ok(
        nc,
        "sites.add",
        {"site_id": "HOTEL-1", "name": "Jinjiang Inn", "community_id": "CM-1", "by": "S-01",
         "room_count": 2},
    )  # fmt: skip
    await ok(
        nc,
        "sites.intake",
        {"site_id": "HOTEL-1", "intake_id": "n1", "people": ["R-3001"], "by": "S-01",
         "reason": "close contact"},
    )  # fmt: skip
    with pytest.raises(sa.exc.IntegrityError):
        async with svc.store.transaction() as s:
            await s.execute(
                sa.insert(T.quarantine_occupants).values(
                    person_id="R-3002", site_id="HOTEL-1", room_id="1", since=clock()
                )
            )


# --- the office tool --------------------------------------------------------------------------
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
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_the_office_tool_quarantines_and_takes_in_a_file(screening, db_backend, tmp_path):
    if db_backend == "postgres":
        pytest.skip("the office tool's part does not depend on the store")
    _, nc, _ = screening
    url = nc.connected_url.geturl()
    code, out, err = await gridcare(
        url, "quarantine", "start", "H-0101", "--by", "S-01", "--reason", "returned from Wuhan"
    )
    assert code == 0, err
    assert "home_quarantine" in out and "R-1003" in out
    code, out, err = await gridcare(url, "quarantine", "list", "--json")
    assert code == 0, err
    [listed] = json.loads(out)["households"]
    assert listed["household_id"] == "H-0101"

    code, _, err = await gridcare(
        url, "sites", "add", "HOTEL-1", "--name", "Jinjiang Inn", "--community", "CM-1",
        "--by", "S-01", "--rooms", "3",
    )  # fmt: skip
    assert code == 0, err
    bad = tmp_path / "bad.csv"
    bad.write_text("person_id\nR-3001\nR 3002\nR-3001\n")
    code, _, err = await gridcare(
        url, "sites", "intake", "HOTEL-1", str(bad), "--by", "S-01", "--reason", "contacts"
    )
    assert code == 2
    assert f"{bad}:3" in err.replace("\n", "") and f"{bad}:4" in err.replace("\n", "")
    night = tmp_path / "night.csv"
    night.write_text("person_id\nR-3001\nR-3002\n\n# the third in the morning\n")
    for _ in range(2):  # the same file twice: one intake
        code, out, err = await gridcare(
            url, "sites", "intake", "HOTEL-1", str(night), "--by", "S-01", "--reason", "contacts"
        )
        assert code == 0, err
        assert "R-3001" in out and "R-3002" in out and "1 rooms free" in err
    code, out, err = await gridcare(url, "sites", "occupancy", "--who")
    assert code == 0, err
    assert "HOTEL-1" in out and "R-3002" in out
    code, out, err = await gridcare(
        url, "sites", "intake", "HOTEL-1", str(bad.with_name("none.csv")), "--by", "S-01",
        "--reason", "contacts",
    )  # fmt: skip
    assert code == 2


# --- the door sensor, at a real checkpoint ----------------------------------------------------
async def test_the_door_alerts_while_the_household_is_quarantined_and_stops_after(
    screening, tmp_path
):
    """The checkpoint knows nothing of quarantine: it holds whoever screening's events hold,
    by their household. Quarantined, the household's door opening is a breach; ended (every
    member released), it is only recorded."""
    svc, nc, clock = screening
    checkpoint = build_checkpoint(
        CheckpointSettings(
            nats_url=svc.settings.nats_url,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'checkpoint.db'}",
            var_dir=tmp_path / "checkpoint",
            gate_check_interval_s=3600,
            housekeeping_interval_s=3600,
            retry_base_delay_s=0.05,
            outbox_poll_s=0.05,
        )
    )
    await checkpoint.start()
    try:
        state = checkpoint.components["state"]

        async def knows():
            return state.resident_household.get("R-1003") == "H-0101"

        await until(knows, what="the reference data at the checkpoint")
        js = nc.jetstream()
        breaches = await js.subscribe(
            QUARANTINE_BREACH.format(compound_id="C-01"), ordered_consumer=True
        )

        async def door(n: int) -> None:
            opened = datetime.now(UTC).astimezone(timezone(timedelta(hours=8)))
            body = {"event_id": f"d-{n}", "household_id": "H-0101", "opened_at": opened.isoformat()}
            await js.publish(DOOR_OPENED.format(household_id="H-0101"), json.dumps(body).encode())

        await ok(
            nc,
            "quarantine.household.start",
            {"household_id": "H-0101", "by": "W-01", "reason": "returned from a risk area"},
        )

        async def all_held():
            return len(state.holders_of("H-0101")) == 3

        await until(all_held, what="the checkpoint holding the household's three members")
        await door(1)
        msg = await breaches.next_msg(timeout=10)
        breach = Envelope.from_bytes(msg.data).data
        assert breach["via"] == "door" and breach["household_id"] == "H-0101"
        assert breach["status"] == "home_quarantine"

        clock.ahead = timedelta(days=14)
        await ok(
            nc,
            "quarantine.household.end",
            {"household_id": "H-0101", "by": "D-01", "reason": "14 days, negative tests"},
        )

        async def none_held():
            return state.holders_of("H-0101") == []

        await until(none_held, what="the checkpoint releasing the household")
        await door(2)

        async def recorded():
            async with checkpoint.store.sessions() as s:
                t = checkpoint.store.metadata.tables["door_events"]
                row = (await s.execute(sa.select(t).where(t.c.event_id == "d-2"))).first()
            return row

        row = await until(recorded, what="the second door opening in the register")
        assert row.quarantined is False
        with pytest.raises(nats.errors.TimeoutError):
            await breaches.next_msg(timeout=1.0)
        await breaches.unsubscribe()
    finally:
        await checkpoint.stop()


async def test_seventy_close_contacts_in_one_night(screening):
    """The story (MISSION.md): a hotel takes in 70+ close contacts in one night, in one
    request the office tool waits for (its timeout is 10 s), each a room and central
    quarantine, all committed together."""
    svc, nc, _ = screening
    night = [f"R-5{n:03d}" for n in range(1, 71)]
    js = nc.jetstream()
    for n, person in enumerate(night, start=1):
        for entity in (
            Household(household_id=f"H-05{n:02d}", building_id="B-01", unit=f"5-{n}"),
            Resident(resident_id=person, household_id=f"H-05{n:02d}", name=person),
        ):
            env = Envelope.wrap(entity, source="test")
            await js.publish(entity.subject(), env.to_bytes(), headers=env.headers())

    async def projected():
        async with svc.store.sessions() as s:
            t = T.residents
            return await s.scalar(
                sa.select(sa.func.count()).select_from(t).where(t.c.resident_id.in_(night))
            ) == len(night)

    await until(projected, what="seventy more residents in screening's store")
    await ok(
        nc,
        "sites.add",
        {"site_id": "HOTEL-1", "name": "Jinjiang Inn", "community_id": "CM-1", "by": "S-01",
         "room_count": 80},
    )  # fmt: skip
    t0 = time.perf_counter()
    taken = await ok(
        nc,
        "sites.intake",
        {"site_id": "HOTEL-1", "intake_id": "night-1", "people": night, "by": "S-01",
         "reason": "close contacts of the B-01 cluster"},
    )  # fmt: skip
    took = time.perf_counter() - t0
    print(f"\nintake of {len(night)}: {took * 1000:.0f} ms")
    assert took < 10
    assert len(taken["assigned"]) == 70 and taken["free"] == 10
    async with svc.store.sessions() as s:
        p = T.person_status
        central = await s.scalar(
            sa.select(sa.func.count()).select_from(p).where(p.c.status == "central_quarantine")
        )
    assert central == 70
