"""Outbox, reliable consumer, idempotency and dead letters against a real nats-server,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import json
import time

import nats
import pytest
import sqlalchemy as sa
from testkit import Ping, make_service

from gridcare.cli.devrun import NatsServer
from gridcare.shared.envelope import Envelope


async def publish_ping(ts, n: int, *, msg_id: str | None = None, env: Envelope | None = None):
    env = env or Envelope.wrap(Ping(topic=ts.topic, n=n), source="test")
    nc = await nats.connect(ts.svc.settings.nats_url)
    try:
        headers = env.headers()
        if msg_id:
            headers["Nats-Msg-Id"] = msg_id
        await nc.jetstream().publish(f"test.{ts.topic}", env.to_bytes(), headers=headers)
    finally:
        await nc.close()
    return env


async def dead_letters(ts) -> list:
    t = ts.svc.store.tables.dead_letters
    async with ts.svc.store.sessions() as s:
        return (await s.execute(sa.select(t).where(t.c.consumer == ts.durable))).all()


async def test_handled_once_and_acked(test_service, eventually):
    await publish_ping(test_service, 1)

    async def done():
        return await test_service.effect_count() == 1

    await eventually(done)
    assert test_service.behaviour.calls == {1: 1}


async def test_transient_failure_is_retried_then_succeeds(test_service, eventually):
    test_service.behaviour.fail_times[7] = 2
    await publish_ping(test_service, 7)

    async def done():
        return await test_service.effect_count() == 1

    await eventually(done)
    assert test_service.behaviour.calls[7] == 3  # two NACKs with backoff, then success
    assert await dead_letters(test_service) == []
    m = test_service.svc.metrics.messages
    assert m.labels(test_service.durable, "retried")._value.get() == 2


def consuming_for_a_while(ts) -> None:
    """As if the service had been consuming for longer than one ack wait."""
    ts.svc.consuming_since -= ts.svc.settings.ack_wait_s


async def test_persistent_failure_is_dead_lettered_with_reason(test_service, eventually):
    consuming_for_a_while(test_service)
    test_service.behaviour.permanent.add(9)
    env = await publish_ping(test_service, 9)

    async def dead():
        return await dead_letters(test_service)

    rows = await eventually(dead)
    assert len(rows) == 1
    row = rows[0]
    assert row.deliveries == 3 and "boom 9" in row.reason and row.event_id == env.event_id
    assert json.loads(row.payload)["event_id"] == env.event_id  # the message, kept for replay
    assert await test_service.effect_count() == 0  # every attempt rolled back
    assert test_service.behaviour.calls[9] == 3

    # the dead letter is announced on the DEADLETTER stream through the outbox
    nc = await nats.connect(test_service.svc.settings.nats_url)
    try:
        js = nc.jetstream()

        async def announced():  # (the relay publishes it a moment after the commit)
            msg = await js.get_last_msg("DEADLETTER", "deadletter.testsvc")
            dead_env = Envelope.from_bytes(msg.data)
            return dead_env if dead_env.causation_id == env.event_id else None

        dead_env = await eventually(announced)
        assert dead_env.data["reason"] == row.reason
        assert base64.b64decode(dead_env.data["payload_b64"]) == row.payload
        assert dead_env.causation_id == env.event_id
    finally:
        await nc.close()


async def test_last_attempt_waits_for_what_a_killed_predecessor_held(test_service, eventually):
    """Just after a start, a message that fails (its reference data, held unacked by the
    killed predecessor, comes back only after the ack wait) is not dead-lettered at once:
    its last attempt is put off until the service has been consuming for one ack wait."""
    ts = test_service
    ts.behaviour.fail_until[5] = time.monotonic() + 1.5  # back well within the ack wait (5 s)
    await publish_ping(ts, 5)

    async def done():
        return await ts.effect_count() == 1

    await eventually(done)
    assert await dead_letters(ts) == []
    # max_attempts (3) within a fraction of a second, the last one put off
    assert ts.behaviour.calls[5] == 4


async def test_permanent_error_is_dead_lettered_at_once(test_service, eventually):
    await publish_ping(test_service, -1)

    async def dead():
        return await dead_letters(test_service)

    rows = await eventually(dead)
    assert rows[0].deliveries == 1 and "never valid" in rows[0].reason


async def test_malformed_message_is_dead_lettered_not_lost(test_service, eventually):
    nc = await nats.connect(test_service.svc.settings.nats_url)
    try:
        await nc.jetstream().publish(
            f"test.{test_service.topic}",
            b"{not json",
            headers={"Nats-Msg-Id": f"garbage-{test_service.topic}"},
        )
    finally:
        await nc.close()

    async def dead():
        return await dead_letters(test_service)

    rows = await eventually(dead)
    assert rows[0].payload == b"{not json" and "invalid message" in rows[0].reason
    # and the consumer keeps working
    await publish_ping(test_service, 2)

    async def done():
        return await test_service.effect_count() == 1

    await eventually(done)


async def test_duplicate_beyond_dedup_window_is_handled_once(test_service, eventually):
    env = await publish_ping(test_service, 3)
    # the same event again with another Msg-Id: JetStream cannot tell, the consumer must
    await publish_ping(test_service, 3, env=env, msg_id=f"another-{test_service.topic}")
    m = test_service.svc.metrics.messages

    async def both_seen():
        return m.labels(test_service.durable, "duplicate")._value.get() == 1

    await eventually(both_seen)
    assert await test_service.effect_count() == 1


async def emit_ping(svc, topic: str, n: int) -> Envelope:
    async with svc.unit_of_work() as uow:
        uow.emit(Ping(topic=topic, n=n))
        await uow.commit()
    return uow.committed[-1]


async def test_outbox_row_published_with_msg_id_and_marked_after_puback(test_service):
    svc = test_service.svc
    await svc.relay.stop()  # drive the relay by hand
    env = await emit_ping(svc, "outbox-" + test_service.topic, 5)
    assert await svc.relay.pending() == 1
    assert await svc.relay.relay_once() == 1
    assert await svc.relay.pending() == 0
    nc = await nats.connect(svc.settings.nats_url)
    try:
        msg = await nc.jetstream().get_last_msg("TESTS", f"test.outbox-{test_service.topic}")
        assert msg.headers["Nats-Msg-Id"] == env.event_id
        assert Envelope.from_bytes(msg.data) == env
    finally:
        await nc.close()


async def test_outbox_keeps_rows_while_nats_is_down(tmp_path, database_url):
    server = NatsServer(store_dir=tmp_path / "nats").start()
    ts = make_service(server.url, database_url, tmp_path)
    svc = ts.svc
    await svc.start()
    await svc.relay.stop()
    try:
        server.stop()
        await emit_ping(svc, ts.topic, 1)
        assert await svc.relay.relay_once() == 0  # no PubAck, so not marked sent
        t = svc.store.tables.outbox
        async with svc.store.sessions() as s:
            row = (await s.execute(sa.select(t))).one()
        # NATS being away is held against no row: nothing counted, nothing put off
        assert row.sent_at is None and row.attempts == 0 and row.next_attempt_at is None

        server.start()  # same port, same JetStream data
        for _ in range(100):
            if await svc.relay.relay_once() == 1:
                break
            import asyncio

            await asyncio.sleep(0.1)
        assert await svc.relay.pending() == 0
    finally:
        await svc.stop()
        server.stop()


@pytest.mark.parametrize("n", [1])
async def test_readiness_reports_each_check(test_service, n):
    checks = await test_service.svc.readiness()
    assert checks == {"nats": "ok", "streams": "ok", "store": "ok"}
