"""Notify against a real nats-server, a real store and a real HTTP chat endpoint: a
provider that fails is retried by redelivery until it answers, and the recipient gets the
message once."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import nats
import pytest
import sqlalchemy as sa

from gridcare.cli.devrun import NatsServer, WebhookSink
from gridcare.contracts.checkpoint import GateSendingBadInput
from gridcare.contracts.dispatch import TaskCreated
from gridcare.contracts.refdata import Community, Compound, Gate, Grid
from gridcare.notify.adapters import tables as T
from gridcare.notify.bootstrap import build
from gridcare.shared.envelope import Envelope
from gridcare.shared.settings import Settings


async def until(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, f"not true within {timeout}s"
        await asyncio.sleep(0.05)
    return result


@pytest.fixture
async def notify(tmp_path, database_url):
    server = NatsServer(store_dir=tmp_path / "nats").start()
    sink = WebhookSink(fail_first=2).start()  # the provider is down for two posts
    svc = build(
        Settings(
            nats_url=server.url,
            database_url=database_url,
            var_dir=tmp_path,
            retry_base_delay_s=0.05,
            retry_max_delay_s=0.2,
            outbox_poll_s=0.1,
        )
    )
    await svc.start()
    svc.consuming_since -= svc.settings.ack_wait_s  # no grace for a predecessor here
    nc = await nats.connect(server.url)
    try:
        yield svc, nc.jetstream(), sink
    finally:
        await nc.close()
        await svc.stop()
        sink.stop()
        server.stop()


async def publish(js, event, source: str) -> Envelope:
    env = Envelope.wrap(event, source=source)
    await js.publish(event.subject(), env.to_bytes(), headers=env.headers())
    return env


async def community_with_a_grid(svc, js, sink) -> None:
    await publish(js, Community(community_id="CM-1", name="D", time_zone="Asia/Shanghai"), "t")
    grid = Grid(
        grid_id="G-01",
        community_id="CM-1",
        name="Grid 1",
        worker_id="W-01",
        worker_name="Li Mei",
        worker_phone="+86 138 0000 0001",
        chat_url=sink.url("/hooks/G-01"),
    )
    await publish(js, grid, "gridcare-import")

    async def grid_known():
        async with svc.store.sessions() as s:
            return await s.scalar(sa.select(sa.func.count()).select_from(T.grids))

    await until(grid_known)


def a_task(task_id: str = "t-1") -> TaskCreated:
    return TaskCreated(
        task_id=task_id,
        kind="fever_follow_up",
        person_id="R-1001",
        household_id="H-0101",
        assignee_id="W-01",
        assignee_role="grid_worker",
        grid_id="G-01",
        due_by=datetime.now(UTC) + timedelta(hours=2),
        summary={"zh": "发热随访：居民 R-1001", "en": "Fever follow-up: R-1001"},
    )


async def test_a_failing_provider_is_retried_and_the_worker_gets_one_message(notify):
    svc, js, sink = notify
    await community_with_a_grid(svc, js, sink)
    task = a_task()
    env = await publish(js, task, "dispatch")

    async def sent():
        async with svc.store.sessions() as s:
            return (
                await s.execute(sa.select(T.deliveries).where(T.deliveries.c.status == "sent"))
            ).all()

    [delivery] = await until(sent)
    assert delivery.attempts == 3 and delivery.cause_event_id == env.event_id
    [post] = sink.posts("/hooks/G-01")  # two refused, one accepted: the worker sees one
    assert post["headers"]["X-Gridcare-Notification-Id"] == delivery.notification_id
    assert "R-1001" in post["body"]["message"]
    retried = svc.metrics.messages.labels("notify-tasks", "retried")._value.get()
    assert retried == 2

    # the same task announced again (dispatch re-emitted it): no second message
    await publish(js, task, "dispatch")
    duplicates = svc.metrics.messages.labels("notify-tasks", "handled")

    async def both_handled():
        return duplicates._value.get() >= 2

    await until(both_handled)
    assert len(sink.posts("/hooks/G-01")) == 1


async def test_a_provider_down_for_seconds_loses_nothing_to_the_dead_letters(notify):
    """The chat is down for 3 s. The retry delay grows (0.05 s doubling to 0.2 s here; a
    second doubling to five minutes by default) for as long as the retry horizon (an hour
    by default): the alert arrives once the chat is back. Before, the fifth failure (after
    about 0.55 s here, 7.5 s with the defaults of then) made it a dead letter that a person
    had to replay."""
    svc, js, sink = notify
    await community_with_a_grid(svc, js, sink)
    sink.fail_first = 10**6  # down ...
    await publish(js, a_task("t-2"), "dispatch")
    retried = svc.metrics.messages.labels("notify-tasks", "retried")
    await asyncio.sleep(3.0)
    assert retried._value.get() >= 6  # more attempts than the old limit of five
    sink.fail_first = 0  # ... and back

    async def sent():
        async with svc.store.sessions() as s:
            return (
                await s.execute(sa.select(T.deliveries).where(T.deliveries.c.status == "sent"))
            ).all()

    await until(sent)
    await until(lambda: _true(len(sink.posts("/hooks/G-01")) == 1))
    async with svc.store.sessions() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(T.deliveries)) == 1
        dead = await s.scalar(sa.select(sa.func.count()).select_from(svc.store.tables.dead_letters))
    assert dead == 0


async def _true(value: bool) -> bool:
    return value


async def test_a_gate_sending_bad_input_reaches_its_duty_chat(notify):
    """The checkpoint's GateSendingBadInput on checkpoint.gate.> (the notify-gates consumer,
    which skips the types it does not know): one post in the gate's duty chat."""
    _, js, sink = notify
    sink.fail_first = 0
    await publish(js, Community(community_id="CM-1", name="D", time_zone="Asia/Shanghai"), "t")
    await publish(js, Compound(compound_id="C-01", community_id="CM-1", name="Donghu"), "t")
    gate = Gate(gate_id="g1", compound_id="C-01", name="North", duty_chat_url=sink.url("/duty"))
    await publish(js, gate, "gridcare-import")
    alert = GateSendingBadInput(
        gate_id="g1",
        compound_id="C-01",
        kind="heartbeat",
        reason="invalid heartbeat: (body): Invalid JSON",
        recorded_per_minute=10,
        at=datetime.now(UTC),
    )
    await publish(js, alert, "checkpoint")
    [post] = await until(lambda: _true(sink.posts("/duty")))
    assert "bad data" in post["body"]["title"] and "Invalid JSON" in post["body"]["message"]
