"""Service APIs against a real nats-server: one reply shape, errors that say why, and the
operations every service answers (dead letters, health)."""

from __future__ import annotations

import json

import nats
from testkit import Ping

from gridcare.shared.envelope import Envelope


async def ask(ts, op: str, body: dict | bytes) -> dict:
    nc = await nats.connect(ts.svc.settings.nats_url)
    try:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return json.loads((await nc.request(f"api.testsvc.{op}", raw, timeout=5)).data)
    finally:
        await nc.close()


async def test_a_result_and_its_events(test_service):
    assert await ask(test_service, "echo", {"n": 4}) == {"result": {"n": 8}}
    assert await test_service.effect_count() == 1


async def test_every_bad_field_is_named(test_service):
    reply = await ask(test_service, "echo", {"n": "four", "extra": 1})
    assert reply["error"]["code"] == "invalid_request"
    assert {d["field"] for d in reply["error"]["detail"]} == {"n", "extra"}
    reply = await ask(test_service, "echo", b"not json")
    assert reply["error"]["code"] == "invalid_request"
    assert reply["error"]["detail"][0]["field"] == "(body)"


async def test_a_refusal_has_its_own_code_and_a_bug_still_answers(test_service):
    reply = await ask(test_service, "echo", {"n": 13})
    assert reply == {
        "error": {"code": "unlucky", "detail": [{"field": "n", "error": "13 is refused"}]}
    }
    reply = await ask(test_service, "echo", {"n": 0})
    assert reply["error"]["code"] == "unavailable"
    m = test_service.svc.metrics.api_requests
    assert m.labels("api.testsvc.echo", "unavailable")._value.get() == 1


async def test_an_answer_too_big_for_one_reply_is_refused_with_a_reason(test_service):
    """A reply over the server's max_payload could not be sent: the caller waited until
    it timed out. Now it is told why, and what to ask for instead."""
    ok = await ask(test_service, "blob", {"size": 500_000})
    assert len(ok["result"]["blob"]) == 500_000
    reply = await ask(test_service, "blob", {"size": 2_000_000})
    assert reply["error"]["code"] == "reply_too_large"
    assert "over the 1048576 bytes" in reply["error"]["detail"][0]["error"]
    m = test_service.svc.metrics.api_requests
    assert m.labels("api.testsvc.blob", "reply_too_large")._value.get() == 1


async def test_dead_letters_are_listed_and_replayed(test_service, eventually):
    ts = test_service
    ts.svc.consuming_since -= ts.svc.settings.ack_wait_s  # long enough: no grace
    ts.behaviour.fail_times[8] = 3  # every attempt (max_attempts: 3) fails, once more works
    env = Envelope.wrap(Ping(topic=ts.topic, n=8), source="test")
    nc = await nats.connect(ts.svc.settings.nats_url)
    try:
        await nc.jetstream().publish(f"test.{ts.topic}", env.to_bytes(), headers=env.headers())
    finally:
        await nc.close()

    async def listed():
        return (await ask(ts, "dead_letters.list", {}))["result"]["dead_letters"]

    [dead] = await eventually(listed)
    assert dead["event_id"] == env.event_id and "transient 8" in dead["reason"]
    health = (await ask(ts, "health", {}))["result"]
    assert health["ready"] and health["dead_letters_not_replayed"] == 1
    replayed = await ask(ts, "dead_letters.replay", {"id": dead["id"]})
    assert replayed["result"]["subject"] == f"test.{ts.topic}"

    async def handled():
        return await ts.effect_count() == 1

    await eventually(handled)
    [dead] = await listed()
    assert dead["replayed_at"] is not None
    reply = await ask(ts, "dead_letters.replay", {"id": 999})
    assert reply["error"]["code"] == "unknown_dead_letter"
