"""The resident edge (the edge contract §4) as any NATS client speaks it: plain nats-py,
requests written as JSON text by hand, replies read as JSON, nothing of gridcare's used to
build a request or read a reply. The service under test is started with the library (and
the community's reference data loaded with it); the client side is what a mini-program
backend or a chat bot written in any language would do.

§4.1 daily check-ins: ``resident.<person_id>.checkin``;
§4.3 questionnaires: ``resident.<person_id>.questionnaire``.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import nats
import pytest
import sqlalchemy as sa

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

COMMUNITY = (
    Community(community_id="CM-1", name="Donghu", time_zone="Asia/Shanghai"),
    Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
    Building(building_id="B-01", compound_id="C-01", grid_id="G-01", name="1"),
    Household(household_id="H-0101", building_id="B-01", unit="1-101"),
    Resident(resident_id="R-1001", household_id="H-0101", name="Wang Fang", phone="13800000001"),
    Staff(staff_id="D-01", community_id="CM-1", name="Dr Chen", roles=["community_doctor"]),
)
SEVERITIES = {"minimal", "mild", "moderate", "moderately_severe", "severe"}
FOLLOW_UPS = {"none", "call_back", "urgent_call_back"}


@pytest.fixture
async def edge(tmp_path, database_url):
    """The screening service on a real nats-server and store, with a small community."""
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
    js = nc.jetstream()
    for entity in COMMUNITY:
        env = Envelope.wrap(entity, source="gridcare-import")
        await js.publish(entity.subject(), env.to_bytes(), headers=env.headers())
    deadline = time.monotonic() + 20
    while True:
        async with svc.store.sessions() as s:
            if await s.scalar(sa.select(sa.func.count()).select_from(T.staff)):
                break
        assert time.monotonic() < deadline, "the reference data never reached screening"
        await asyncio.sleep(0.05)
    try:
        yield nc
    finally:
        await nc.close()
        await svc.stop()
        server.stop()


async def request(nc, subject: str, text: str) -> dict:
    """What any client does: UTF-8 JSON bytes out, JSON back, within a few seconds."""
    msg = await nc.request(subject, text.encode("utf-8"), timeout=5)
    reply = json.loads(msg.data.decode("utf-8"))
    assert isinstance(reply, dict)
    return reply


def assert_error(reply: dict, code: str) -> list[str]:
    """The contract's error shape; the fields it names."""
    assert set(reply) == {"error"}
    assert reply["error"]["code"] == code
    detail = reply["error"]["detail"]
    assert detail and all(
        set(d) == {"field", "error"} and isinstance(d["error"], str) and d["error"] for d in detail
    )
    return [d["field"] for d in detail]


def assert_questionnaire_reply(reply: dict, submission_id: str) -> None:
    assert set(reply) == {"submission_id", "score", "severity", "follow_up", "message"}
    assert reply["submission_id"] == submission_id
    assert isinstance(reply["score"], int) and not isinstance(reply["score"], bool)
    assert reply["severity"] in SEVERITIES and reply["follow_up"] in FOLLOW_UPS
    assert set(reply["message"]) == {"zh", "en"}
    assert all(isinstance(t, str) and t.strip() for t in reply["message"].values())


async def test_any_nats_client_can_answer_a_questionnaire(edge):
    nc = edge
    # PHQ-9, item 9 above 0, an offset of +08:00, and a field the contract does not know
    phq9 = """{"submission_id": "mp-20260312-0001", "person_id": "R-1001",
               "instrument": "phq9", "answers": [2, 2, 1, 1, 2, 1, 1, 0, 1],
               "submitted_at": "2026-03-12T08:59:00+08:00", "client": "mini-program 2.3"}"""
    reply = await request(nc, "resident.R-1001.questionnaire", phq9)
    assert_questionnaire_reply(reply, "mp-20260312-0001")
    assert (reply["score"], reply["severity"], reply["follow_up"]) == (
        11,
        "moderate",
        "urgent_call_back",
    )
    assert "12356" in reply["message"]["zh"] and "12356" in reply["message"]["en"]
    # the idempotency key: the same request again gets the same reply
    assert await request(nc, "resident.R-1001.questionnaire", phq9) == reply

    # GAD-7 in UTC ("Z"), sent by a grid worker's app for the resident
    gad7 = """{"submission_id": "mp-20260312-0002", "person_id": "R-1001",
               "instrument": "gad7", "answers": [3, 3, 3, 3, 3, 0, 0],
               "submitted_at": "2026-03-12T01:00:00Z", "reported_by": "W-01"}"""
    reply = await request(nc, "resident.R-1001.questionnaire", gad7)
    assert_questionnaire_reply(reply, "mp-20260312-0002")
    assert (reply["score"], reply["severity"], reply["follow_up"]) == (15, "severe", "call_back")

    low = """{"submission_id": "mp-20260312-0003", "person_id": "R-1001",
              "instrument": "gad7", "answers": [0, 1, 0, 0, 0, 0, 0],
              "submitted_at": "2026-03-12T09:05:00+08:00"}"""
    reply = await request(nc, "resident.R-1001.questionnaire", low)
    assert_questionnaire_reply(reply, "mp-20260312-0003")
    assert (reply["score"], reply["severity"], reply["follow_up"]) == (1, "minimal", "none")


async def test_bad_requests_get_the_contracts_errors_never_silence(edge):
    nc = edge
    bad = """{"submission_id": "mp 1", "person_id": "R-1002", "instrument": "phq9",
              "answers": [0, 0, 4, 0, 0, 0, 0, 0], "submitted_at": "12/03/2026 08:59"}"""
    fields = assert_error(
        await request(nc, "resident.R-1001.questionnaire", bad), "invalid_questionnaire"
    )
    assert sorted(fields) == ["answers", "answers.2", "person_id", "submission_id", "submitted_at"]
    for text in ("", "null", "[]", "{", '{"instrument": "gad7", "answers": "0000000"}'):
        reply = await request(nc, "resident.R-1001.questionnaire", text)
        assert_error(reply, "invalid_questionnaire")
    unknown = """{"submission_id": "mp-1", "person_id": "R-4040", "instrument": "gad7",
                  "answers": [0, 0, 0, 0, 0, 0, 0], "submitted_at": "2026-03-12T01:00:00Z"}"""
    reply = await request(nc, "resident.R-4040.questionnaire", unknown)
    assert assert_error(reply, "unknown_person") == ["person_id"]


def assert_checkin_reply(reply: dict, checkin_id: str) -> None:
    assert set(reply) == {"checkin_id", "status", "follow_up", "message"}
    assert reply["checkin_id"] == checkin_id
    assert reply["status"] in {"recorded", "replaced"}
    assert isinstance(reply["follow_up"], bool)
    assert set(reply["message"]) == {"zh", "en"}
    assert all(isinstance(t, str) and t.strip() for t in reply["message"].values())


async def test_any_nats_client_can_check_in(edge):
    nc = edge
    shanghai = datetime.now(UTC) + timedelta(hours=8)  # the community's local day
    today = shanghai.date().isoformat()
    now = shanghai.strftime("%Y-%m-%dT%H:%M:%S+08:00")
    well = """{"checkin_id": "c-9", "person_id": "R-1001", "day": "TODAY",
                "temperature_c": 36.6, "symptoms": [], "submitted_at": "NOW",
                "app": "mini-program 2.3"}""".replace("TODAY", today).replace("NOW", now)
    reply = await request(nc, "resident.R-1001.checkin", well)
    assert_checkin_reply(reply, "c-9")
    assert (reply["status"], reply["follow_up"]) == ("recorded", False)
    # the idempotency key: the same request again gets the same reply
    assert await request(nc, "resident.R-1001.checkin", well) == reply

    # a later one for the same day replaces it; a cough is followed up
    cough = """{"checkin_id": "c-10", "person_id": "R-1001", "day": "TODAY",
                 "temperature_c": 37.0, "symptoms": ["cough"], "note": "since last night",
                 "reported_by": "W-01", "submitted_at": "NOW"}"""
    cough = cough.replace("TODAY", today).replace("NOW", now)
    reply = await request(nc, "resident.R-1001.checkin", cough)
    assert_checkin_reply(reply, "c-10")
    assert (reply["status"], reply["follow_up"]) == ("replaced", True)


async def test_a_bad_check_in_names_every_bad_field(edge):
    nc = edge
    bad = """{"checkin_id": "c 1", "person_id": "R-1002", "day": "12/03/2026",
              "temperature_c": "warm", "symptoms": ["sneezing"], "submitted_at": "soon"}"""
    fields = assert_error(await request(nc, "resident.R-1001.checkin", bad), "invalid_checkin")
    assert {"checkin_id", "person_id", "day", "temperature_c", "submitted_at"} <= set(fields)
    assert any(f.startswith("symptoms") for f in fields)
    for text in ("", "null", "[]", "{"):
        assert_error(await request(nc, "resident.R-1001.checkin", text), "invalid_checkin")
    today = (datetime.now(UTC) + timedelta(hours=8)).date().isoformat()
    unknown = """{"checkin_id": "c-1", "person_id": "R-4040", "day": "TODAY",
                   "symptoms": [], "submitted_at": "NOW"}"""
    unknown = unknown.replace("TODAY", today).replace("NOW", datetime.now(UTC).isoformat())
    reply = await request(nc, "resident.R-4040.checkin", unknown)
    assert assert_error(reply, "unknown_person") == ["person_id"]
