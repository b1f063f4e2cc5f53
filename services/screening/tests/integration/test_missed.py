"""A missed follow-up day over a real nats-server and real stores (SQLite and PostgreSQL),
with a clock the test moves: a resident followed up after a check-in with symptoms is not
heard from the next day; the morning after, screening's check-in tick gives their grid
worker one urgent alert to acknowledge (NOTIFY_REQUESTS) and asks for one door visit
(SCREENING), and api.screening.followup.show shows the day missed. A second pass, and a
restarted screening's pass, send nothing more. The other resident, not followed up, gets
only the ordinary door visit after two missed days.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta

import nats
import sqlalchemy as sa
from screening_kit import SetClock, at, checkin_settings, count, stream, until

from gridcare.cli.devrun import NatsServer
from gridcare.contracts.refdata import (
    Building,
    Community,
    CommunityPolicy,
    Compound,
    Household,
    Resident,
)
from gridcare.screening.adapters import tables as T
from gridcare.screening.bootstrap import build
from gridcare.screening.domain import missed as ms
from gridcare.shared.envelope import Envelope

PLACES = (
    Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
    Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
    Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
    Household(household_id="H-0101", building_id="B-01", unit="1-101"),
    Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang"),
    Resident(resident_id="R-1002", household_id="H-0101", name="Wang Lei"),
    CommunityPolicy(community_id="CM-1", checkin_reminder_at="09:00"),
)
DAY = date(2026, 3, 12)
D1, D2 = DAY + timedelta(days=1), DAY + timedelta(days=2)


async def test_a_missed_follow_up_day_escalates_once_even_after_a_restart(tmp_path, database_url):
    server = NatsServer(store_dir=tmp_path / "nats").start()
    clock = SetClock(at(DAY, 8))
    svc = build(checkin_settings(server, database_url, tmp_path), clock=clock)
    await svc.start()
    nc = await nats.connect(server.url)
    try:
        js = nc.jetstream()
        for entity in PLACES:
            env = Envelope.wrap(entity, source="gridcare-import")
            await js.publish(entity.subject(), env.to_bytes(), headers=env.headers())

        async def projected():
            return await count(svc, T.policies) and await count(svc, T.residents) == 2

        await until(projected, what="the reference data in screening's store")
        # R-1001 checks in with a cough on DAY: followed up from DAY (to DAY + 14)
        body = {
            "checkin_id": "c-1",
            "person_id": "R-1001",
            "day": DAY.isoformat(),
            "temperature_c": 37.0,
            "symptoms": ["cough"],
            "submitted_at": "2026-03-12T07:59:00+08:00",
        }
        msg = await nc.request("resident.R-1001.checkin", json.dumps(body).encode(), timeout=10)
        assert json.loads(msg.data)["follow_up"] is True
        # nobody checks in on D1; the morning of D1 the day before was not missed
        clock.now = at(DAY, 9, 30)
        assert (await svc.components["checkin_tick"]())["follow_up_missed"] == 0
        clock.now = at(D1, 9, 30)
        assert (await svc.components["checkin_tick"]())["follow_up_missed"] == 0
        clock.now = at(D2, 8, 59)  # before the community's reminder time
        assert (await svc.components["checkin_tick"]())["follow_up_missed"] == 0
        clock.now = at(D2, 9, 0)
        done = await svc.components["checkin_tick"]()
        assert done["follow_up_missed"] == 1
        assert done["visits_requested"] == 1  # R-1002's, by the ordinary rule (DAY and D1)
        rid = ms.request_id("R-1001", D1)

        async def visits():
            found = [e for e in await stream(nc, "SCREENING") if e.type.endswith("VisitRequested")]
            return found if len(found) == 2 else []

        asked = {e.data["person_id"]: e.data for e in await until(visits, what="two visits")}
        assert asked["R-1001"]["request_id"] == rid and asked["R-1001"]["missed_days"] == 1
        assert asked["R-1001"]["day"] == D2.isoformat() and asked["R-1001"]["grid_id"] == "G-01"
        assert asked["R-1002"]["missed_days"] == 2

        async def alerts():
            found = [e.data for e in await stream(nc, "NOTIFY_REQUESTS")]
            return [n for n in found if n.get("template") == ms.TEMPLATE]

        [alert] = await until(alerts, what="task.follow_up_missed on NOTIFY_REQUESTS")
        assert alert["recipient"] == {"kind": "role", "role": "grid_worker", "place_id": "G-01"}
        assert alert["priority"] == "urgent" and alert["needs_ack"] is True
        assert alert["alert_kind"] == "follow_up_missed" and alert["request_id"] == f"{rid}-worker"
        assert alert["params"]["days"] == [D1.isoformat()]
        assert alert["params"]["last_checkin_day"] == DAY.isoformat()
        # the person's follow-up shows D1 missed, on the office's API
        ask = json.dumps({"person_id": "R-1001"}).encode()
        shown = json.loads((await nc.request("api.screening.followup.show", ask, 10)).data)
        days = [(d["day"], d["source"]) for d in shown["result"]["days"]]
        assert days == [(DAY.isoformat(), "checkin"), (D1.isoformat(), "missed")]
        # a second pass, then screening restarted (same store, same broker): nothing new
        clock.now = at(D2, 12)
        assert (await svc.components["checkin_tick"]())["follow_up_missed"] == 0
        await svc.stop()
        svc = build(checkin_settings(server, database_url, tmp_path), clock=clock)
        await svc.start()
        clock.now = at(D2, 15)
        done = await svc.components["checkin_tick"]()
        assert done["follow_up_missed"] == 0 and done["visits_requested"] == 0
        await asyncio.sleep(0.3)  # anything the relay would publish, published
        assert await count(svc, T.door_visit_requests) == 2
        assert len(await visits()) == 2 and len(await alerts()) == 1
        async with svc.store.sessions() as s:
            rows = list(
                await s.execute(sa.select(T.follow_up_days).order_by(T.follow_up_days.c.day))
            )
        assert [(r.day, r.source, r.source_ref) for r in rows][1:] == [(D1, "missed", rid)]
    finally:
        await nc.close()
        await svc.stop()
        server.stop()
