"""The outbox never blocks (``outbox.py``), against a real nats-server, on SQLite and on
PostgreSQL: a row the server cannot take is set aside with its reason and the rows behind
it go on; a refused row is tried again later and holds back only its own subject; dead
letters are announced with a bounded excerpt of the message."""

from __future__ import annotations

import base64

import nats
import pytest
import sqlalchemy as sa
from nats.js.errors import NotFoundError
from testkit import TESTS, Ping, make_service

from gridcare.shared.envelope import Envelope, new_id, utcnow


@pytest.fixture
async def service(nats_server, database_url, tmp_path):
    ts = make_service(
        nats_server.url,
        database_url,
        tmp_path,
        outbox_batch=3,  # the case: three bad rows filled a batch for ever
        outbox_max_attempts=2,
        retry_base_delay_s=60,  # a refused row waits (the test moves its time on)
    )
    await ts.svc.start()
    await ts.svc.relay.stop()  # each pass is run by the test
    yield ts
    await ts.svc.stop()


def raw_row(subject: str, payload: bytes, **headers: str) -> dict:
    eid = new_id()
    return {
        "event_id": eid,
        "subject": subject,
        "payload": payload,
        "headers": {"Nats-Msg-Id": eid, **headers},
        "created_at": utcnow(),
        "attempts": 0,
    }


def ping_row(ts, n: int, subject: str | None = None, **headers: str) -> dict:
    env = Envelope.wrap(Ping(topic=ts.topic, n=n), source="test")
    row = raw_row(subject or f"test.{ts.topic}", env.to_bytes(), **headers)
    row["event_id"] = row["headers"]["Nats-Msg-Id"] = env.event_id
    return row


async def insert(ts, *rows: dict) -> list[int]:
    t = ts.svc.store.tables.outbox
    ids = []
    async with ts.svc.store.transaction() as s:
        for r in rows:
            ids.append((await s.execute(sa.insert(t).values(**r))).inserted_primary_key[0])
    return ids


async def outbox(ts) -> dict[int, sa.Row]:
    t = ts.svc.store.tables.outbox
    async with ts.svc.store.sessions() as s:
        return {r.id: r for r in (await s.execute(sa.select(t))).all()}


async def stream_ns(ts) -> list[int]:
    """The ``n`` of every Ping on the test's subject, in stream order (read by sequence: no
    consumer whose idle wait could end the list early on a loaded machine)."""
    nc = await nats.connect(ts.svc.settings.nats_url)
    try:
        js = nc.jetstream()
        out, seq = [], 1
        while True:
            try:
                msg = await js.get_msg(TESTS.name, seq, subject=f"test.{ts.topic}", next=True)
            except NotFoundError:
                return out
            out.append(Envelope.from_bytes(msg.data).data["n"])
            seq = msg.seq + 1
    finally:
        await nc.close()


async def test_rows_over_max_payload_are_set_aside_and_the_rest_go_on(service):
    """Three rows over the server's max_payload filled a batch of three on every pass, and
    the fever behind them never went out. Now each is parked at once with its reason,
    counted and listed; the row behind them is published; a replay puts one back."""
    ts = service
    big = b"x" * 1_100_000  # over the default max_payload (1 MB)
    bad = await insert(ts, *(raw_row(f"test.{ts.topic}", big) for _ in range(3)))
    (good,) = await insert(ts, ping_row(ts, 1))

    assert await ts.svc.relay.relay_once() == 0  # the three parked, nothing sent yet
    assert await ts.svc.relay.relay_once() == 1  # the row behind them
    rows = await outbox(ts)
    assert rows[good].sent_at is not None
    for i in bad:
        assert rows[i].parked_at is not None and rows[i].sent_at is None
        assert "over the server's max_payload" in rows[i].last_error
    assert await stream_ns(ts) == [1]
    assert ts.svc.metrics.outbox_parked._value.get() == 3
    assert await ts.svc.relay.pending() == 0

    health = await ts.svc.health()
    assert health["outbox_parked"] == 3 and health["outbox_pending"] == 0
    listed = await ts.svc.relay.parked()
    assert [p["id"] for p in listed] == sorted(bad, reverse=True)
    assert listed[0]["payload_bytes"] == len(big) and "max_payload" in listed[0]["reason"]

    # replayed once the cause is fixed (here it is not: parked again, with its reason)
    await ts.svc.relay.replay(bad[0])
    assert (await outbox(ts))[bad[0]].parked_at is None
    await ts.svc.relay.relay_once()
    assert (await outbox(ts))[bad[0]].parked_at is not None
    with pytest.raises(LookupError):
        await ts.svc.relay.replay(good)  # sent, not parked


async def test_a_refused_row_waits_holding_back_its_own_subject_only(service):
    """The stream refuses a row (here: the sequence it expects is wrong, a real refusal by
    the server). It is tried again later, after a growing delay, and the later rows of its
    subject wait for it (the order per subject is kept); the rows of other subjects go. After
    ``outbox_max_attempts`` refusals it is parked, and its subject moves on."""
    ts = service
    other = f"test.{ts.topic}.other"
    refused, after, elsewhere = await insert(
        ts,
        ping_row(ts, 1, **{"Nats-Expected-Last-Subject-Sequence": "999999"}),
        ping_row(ts, 2),
        ping_row(ts, 3, subject=other),
    )
    await ts.svc.relay.relay_once()  # 1 refused, so 2 is not sent past it; 3 goes
    rows = await outbox(ts)
    assert rows[refused].attempts == 1 and rows[refused].next_attempt_at is not None
    assert "refused by the stream" in rows[refused].last_error
    assert rows[refused].parked_at is None
    assert rows[after].sent_at is None and rows[elsewhere].sent_at is not None

    later = (await insert(ts, ping_row(ts, 4)))[0]  # committed while 1 waits: held back
    fourth = await insert(ts, ping_row(ts, 5, subject=other))
    await ts.svc.relay.relay_once()
    rows = await outbox(ts)
    assert rows[after].sent_at is None and rows[later].sent_at is None  # behind 1
    assert rows[fourth[0]].sent_at is not None  # another subject goes on

    # the second refusal (after its delay) parks it, and its subject moves on
    t = ts.svc.store.tables.outbox
    async with ts.svc.store.transaction() as s:
        await s.execute(sa.update(t).where(t.c.id == refused).values(next_attempt_at=utcnow()))
    await ts.svc.relay.relay_once()
    rows = await outbox(ts)
    assert rows[refused].parked_at is not None and rows[refused].attempts == 2
    await ts.svc.relay.relay_once()
    assert (await outbox(ts))[later].sent_at is not None
    assert await stream_ns(ts) == [2, 4]  # in commit order, the parked one left out


async def test_a_dead_letter_of_900_kb_is_announced_with_an_excerpt(service, eventually):
    """A dead letter's announcement carried the whole payload in base64: for a message of
    900 KB that is over NATS's 1 MB, and the relay retried it for ever. The store keeps the
    message whole; the announcement carries its first 4 KiB, its size, and says so."""
    ts = service
    garbage = b"{" + b"x" * 900_000
    nc = await nats.connect(ts.svc.settings.nats_url)
    try:
        js = nc.jetstream()
        await js.publish(f"test.{ts.topic}", garbage, headers={"Nats-Msg-Id": new_id()})
        t = ts.svc.store.tables.dead_letters

        async def dead():
            async with ts.svc.store.sessions() as s:
                return (await s.execute(sa.select(t).where(t.c.consumer == ts.durable))).all()

        (row,) = await eventually(dead)
        assert row.payload == garbage  # kept whole for replay
        assert await ts.svc.relay.relay_once() == 1
        msg = await js.get_last_msg("DEADLETTER", "deadletter.testsvc")
    finally:
        await nc.close()
    env = Envelope.from_bytes(msg.data)
    assert env.causation_id is None and env.data["reason"] == row.reason
    assert env.schema_version == 2
    assert base64.b64decode(env.data["payload_b64"]) == garbage[:4096]
    assert env.data["payload_bytes"] == len(garbage) and env.data["payload_truncated"] is True
    assert len(msg.data) < 10_000
