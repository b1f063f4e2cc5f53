"""Questionnaires over a real nats-server and real stores (SQLite and PostgreSQL): a
resident's app asks ``resident.<person_id>.questionnaire`` with plain nats-py and JSON
bytes (the edge contract §4.3); the reply, the submission kept, the call-back on the
NOTIFY_REQUESTS stream; a repeat (also many at once) is one submission and one request;
bad bodies are answered ``invalid_questionnaire`` naming every bad field, never a timeout.
"""

from __future__ import annotations

import asyncio
import json

import nats
import pytest
import sqlalchemy as sa
from screening_kit import MovedClock, until

from gridcare.cli.devrun import NatsServer, free_port
from gridcare.contracts.refdata import (
    Building,
    Community,
    Compound,
    Household,
    Resident,
    Staff,
)
from gridcare.screening.adapters import tables as T
from gridcare.screening.bootstrap import build
from gridcare.shared.envelope import Envelope
from gridcare.shared.settings import Settings

PLACES = (
    Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
    Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
    Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
    Household(household_id="H-0101", building_id="B-01", unit="1-101"),
    Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang", phone="13800000001"),
    Staff(staff_id="D-01", community_id="CM-1", name="Dr Chen", roles=["community_doctor"]),
)


@pytest.fixture
async def screening(tmp_path, database_url):
    server = NatsServer(store_dir=tmp_path / "nats").start()
    svc = build(
        Settings(
            nats_url=server.url,
            database_url=database_url,
            var_dir=tmp_path,
            http_port=free_port(),
            outbox_poll_s=0.05,
        ),
        clock=MovedClock(),
    )
    await svc.start()
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    for entity in PLACES:
        env = Envelope.wrap(entity, source="gridcare-import")
        await js.publish(entity.subject(), env.to_bytes(), headers=env.headers())

    async def projected():
        async with svc.store.sessions() as s:
            return await s.scalar(sa.select(sa.func.count()).select_from(T.staff))

    await until(projected, what="the reference data in screening's store")
    try:
        yield svc, nc
    finally:
        await nc.close()
        await svc.stop()
        server.stop()


async def ask(nc, person: str, doc: dict | bytes) -> dict:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    msg = await nc.request(f"resident.{person}.questionnaire", data, timeout=10)
    return json.loads(msg.data)


def answers(submission_id: str = "q-1", **changes) -> dict:
    return {
        "submission_id": submission_id,
        "person_id": "R-1001",
        "instrument": "phq9",
        "answers": [0, 1, 0, 1, 0, 1, 0, 0, 1],  # item 9 above 0
        "submitted_at": "2026-03-12T08:59:00+08:00",
        **changes,
    }


async def submissions(svc) -> list:
    async with svc.store.sessions() as s:
        return list(await s.execute(sa.select(T.questionnaire_submissions)))


async def requests_to_notify(nc) -> list[Envelope]:
    js = nc.jetstream()
    info = await js.stream_info("NOTIFY_REQUESTS")
    return [
        Envelope.from_bytes((await js.get_msg("NOTIFY_REQUESTS", seq)).data)
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
        if info.state.messages
    ]


async def test_an_urgent_answer_is_kept_replied_and_a_call_back_requested_once(screening):
    svc, nc = screening
    reply = await ask(nc, "R-1001", answers())
    assert reply["submission_id"] == "q-1" and reply["score"] == 4
    assert reply["severity"] == "minimal" and reply["follow_up"] == "urgent_call_back"
    assert "12356" in reply["message"]["zh"] and "12356" in reply["message"]["en"]
    [row] = await submissions(svc)  # kept before the reply
    assert row.answers == [0, 1, 0, 1, 0, 1, 0, 0, 1] and row.follow_up == "urgent_call_back"

    async def requested():
        return await requests_to_notify(nc)

    [env] = await until(requested, what="the call-back on NOTIFY_REQUESTS")
    assert env.type == "notify.NotificationRequested"
    assert env.data["recipient"] == {
        "kind": "role",
        "role": "community_doctor",
        "place_id": "CM-1",
    }
    assert env.data["priority"] == "urgent" and env.data["needs_ack"] is True
    assert env.data["alert_kind"] == "mental_health_urgent"
    assert env.data["template"] == "task.mental_health_call_back"
    assert "score" not in env.data["params"] and "answers" not in env.data["params"]

    # the app retries, once and then five times at once: the same reply, nothing new
    again = await ask(nc, "R-1001", answers())
    many = await asyncio.gather(*(ask(nc, "R-1001", answers()) for _ in range(5)))
    assert all(r == reply for r in [again, *many])
    await asyncio.sleep(0.5)  # the relay polls every 0.05 s: a second request would be out
    assert len(await submissions(svc)) == 1
    assert len(await requests_to_notify(nc)) == 1


async def test_a_call_back_is_normal_and_a_low_score_asks_nobody(screening):
    svc, nc = screening
    moderate = await ask(
        nc, "R-1001", answers("q-2", instrument="gad7", answers=[2, 2, 2, 2, 1, 1, 0])
    )
    assert (moderate["score"], moderate["severity"], moderate["follow_up"]) == (
        10,
        "moderate",
        "call_back",
    )
    low = await ask(nc, "R-1001", answers("q-3", answers=[1, 1, 1, 1, 0, 0, 0, 0, 0]))
    assert (low["score"], low["severity"], low["follow_up"]) == (4, "minimal", "none")

    async def requested():
        return await requests_to_notify(nc)

    [env] = await until(requested, what="the call-back on NOTIFY_REQUESTS")
    assert env.data["priority"] == "normal" and env.data["needs_ack"] is False
    await asyncio.sleep(0.5)
    assert len(await requests_to_notify(nc)) == 1 and len(await submissions(svc)) == 2

    # the office's list, newest first, on the community's clock
    msg = await nc.request(
        "api.screening.questionnaires.list", json.dumps({"limit": 10}).encode(), timeout=10
    )
    listed = json.loads(msg.data)["result"]["submissions"]
    assert [s["submission_id"] for s in listed] == ["q-3", "q-2"]
    assert listed[1]["submitted_at"] == "2026-03-12T08:59:00+08:00"
    msg = await nc.request(
        "api.screening.questionnaires.list",
        json.dumps({"follow_up": "call_back"}).encode(),
        timeout=10,
    )
    assert [s["submission_id"] for s in json.loads(msg.data)["result"]["submissions"]] == ["q-2"]


@pytest.mark.parametrize(
    ("person", "body", "fields"),
    [
        (
            "R-1001",
            answers(person_id="R-2002", answers=[0, 5, 0], submitted_at="2026-03-12 08:59"),
            ["person_id", "answers", "answers.1", "submitted_at"],
        ),
        ("R-1001", answers(instrument="bdi2"), ["instrument"]),
        ("R-1001", answers(instrument="gad7"), ["answers"]),  # nine answers for seven items
        ("R-1001", answers(answers=[0, 0, 0, 0, 0, 0, 0, 0, 1.5]), ["answers.8"]),
        ("R-1001", b"\x00not json", ["(body)"]),
        ("R-1001", b'"a string"', ["(body)"]),
        ("R-1001", {}, ["submission_id", "person_id", "submitted_at", "instrument", "answers"]),
    ],
)
async def test_bad_requests_are_answered_naming_every_bad_field(screening, person, body, fields):
    svc, nc = screening
    reply = await ask(nc, person, body)
    assert reply["error"]["code"] == "invalid_questionnaire"
    assert sorted(d["field"] for d in reply["error"]["detail"]) == sorted(fields)
    assert await submissions(svc) == []


async def test_an_unknown_resident_is_told_so(screening):
    svc, nc = screening
    reply = await ask(nc, "R-9999", answers(person_id="R-9999"))
    assert reply["error"]["code"] == "unknown_person"
    assert reply["error"]["detail"][0]["field"] == "person_id"
    assert await submissions(svc) == []
