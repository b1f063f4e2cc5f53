"""Checkpoint alerts through dispatch and notify, against real processes:

- a quarantine breach (at a gate, or a quarantined household's door) becomes an URGENT task
  for the grid worker responsible, and an urgent chat alert in the grid's chat;
- an overdue return on a permit becomes a (not urgent) task and alert;
- a gate going offline / coming back online is posted to the gate's duty chat, in Chinese
  and English; a gate without a duty chat is dead-lettered with that reason.

The checkpoint events are published here exactly as the checkpoint publishes them (an
envelope on the event's subject, with its headers). Every step is idempotent: the same
envelope again (a new Nats-Msg-Id, so JetStream lets it through) or the same fact in a new
envelope makes no second task and no second post.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta, timezone

import nats
import pytest
from system import System, write_community

from gridcare.contracts.checkpoint import (
    GateCameOnline,
    GateWentOffline,
    PermitOverdue,
    QuarantineBreachAttempted,
)
from gridcare.shared.envelope import Envelope, Event, new_id

QUARANTINE = {"zh": "居家隔离", "en": "home quarantine"}  # screening's words, carried on

pytestmark = pytest.mark.e2e


async def publish(system: System, env: Envelope, subject: str, msg_id: str | None = None):
    """What the checkpoint's outbox relay does; ``msg_id`` overrides the Nats-Msg-Id."""
    nc = await nats.connect(system.nats.url)
    try:
        headers = env.headers()
        if msg_id is not None:
            headers["Nats-Msg-Id"] = msg_id
        ack = await nc.jetstream().publish(
            subject, env.to_bytes(), headers=headers, stream="CHECKPOINT", timeout=5
        )
        assert not ack.duplicate
    finally:
        await nc.close()


def checkpoint_envelope(event: Event) -> Envelope:
    return Envelope.wrap(event, source="checkpoint")


async def settled(system: System, consumers: list[tuple[str, str]]) -> None:
    """Every named durable has nothing pending or unacked, and no outbox has unsent rows."""
    nc = await nats.connect(system.nats.url)
    js = nc.jetstream()

    async def idle() -> bool:
        for stream, durable in consumers:
            info = await js.consumer_info(stream, durable)
            if info.num_pending or info.num_ack_pending:
                return False
        for service in ("dispatch", "notify"):
            if await system.count(service, "outbox", "sent_at IS NULL") != 0:
                return False
        return True

    try:
        await system.wait_for(idle, what="consumers drained and outboxes sent")
    finally:
        await nc.close()


async def community(system: System, sink, tmp_path, gates: dict[str, str] | None = None):
    folder = tmp_path / "community"
    write_community(folder, sink)
    if gates is not None:  # the sample gates, with a duty chat where given
        path = folder / "gates.csv"
        rows = list(csv.DictReader(path.open(encoding="utf-8")))
        for r in rows:
            r["duty_chat_url"] = gates.get(r["gate_id"], "")
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)
    system.import_refdata(folder)
    await system.wait_projected()

    async def gates_projected() -> bool:
        return await system.count("notify", "gates") == 3

    await system.wait_for(gates_projected, what="gates in notify's store")


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_breach_and_overdue_become_tasks_for_the_grid_worker(system, sink, tmp_path):
    await community(system, sink, tmp_path)
    at = datetime(2026, 3, 12, 7, 31, 5, tzinfo=timezone(timedelta(hours=8)))

    # R-1001 (H-0101 → B-01 → G-01 → W-01, Chinese) tries to leave through gate g1
    breach = QuarantineBreachAttempted(
        via="gate",
        compound_id="C-01",
        person_id="R-1001",
        household_id=None,
        status="home_quarantine",
        status_label=QUARANTINE,
        gate_id="g1",
        ref="g1-000777",
        at=at,
    )
    env = checkpoint_envelope(breach)
    await publish(system, env, breach.subject())

    async def breach_task():
        return await system.rows("dispatch", "tasks", "kind = 'quarantine_breach'")

    tasks = await system.wait_for(breach_task, what="quarantine breach task")
    assert len(tasks) == 1
    t = tasks[0]
    assert (t.person_id, t.household_id, t.grid_id, t.assignee_id) == (
        "R-1001",
        "H-0101",
        "G-01",
        "W-01",
    )
    assert t.urgent and t.status == "open" and t.case_id is None

    async def grid1_posts():
        return sink.posts("/hooks/G-01")

    post = (await system.wait_for(grid1_posts, what="urgent alert to G-01"))[0]
    assert "紧急" in post["body"]["title"]
    message = post["body"]["message"]
    assert "R-1001" in message and "g1" in message and "2026-03-12 07:31" in message
    assert "居家隔离" in message

    # the same envelope again (JetStream would drop a repeated Nats-Msg-Id, so a new one),
    # and the same fact in a new envelope (the checkpoint emitted it again)
    await publish(system, env, breach.subject(), msg_id=new_id())
    await publish(system, checkpoint_envelope(breach), breach.subject())

    # a quarantined household's door opens: H-0301 → B-03 → G-02 → W-02 (English)
    door = QuarantineBreachAttempted(
        via="door",
        compound_id="C-02",
        person_id=None,
        household_id="H-0301",
        status="home_quarantine",
        status_label=QUARANTINE,
        ref="d-77",
        at=at,
    )
    await publish(system, checkpoint_envelope(door), door.subject())

    # R-2001 (H-0201 → B-02 → G-01 → W-01) is not back from an outing permit
    overdue = PermitOverdue(
        permit_id="P-42",
        holder_id="R-2001",
        household_id="H-0201",
        compound_id="C-01",
        exited_at=at - timedelta(hours=3),
        return_by=at,
    )
    await publish(system, checkpoint_envelope(overdue), overdue.subject())

    async def three_deliveries():
        return len(await system.rows("notify", "deliveries", "status = 'sent'")) == 3

    await system.wait_for(three_deliveries, what="three chat alerts")
    await settled(
        system,
        [
            ("CHECKPOINT", "dispatch-breaches"),
            ("CHECKPOINT", "dispatch-overdue"),
            ("DISPATCH", "notify-tasks"),
        ],
    )

    # the repeats were handled (the new envelope) or dropped (the same one), and made nothing
    processed = await system.count(
        "dispatch", "processed_messages", "consumer = 'dispatch-breaches'"
    )
    assert processed == 3  # the breach, its new envelope, the door
    tasks = {
        t.kind + ":" + (t.person_id or t.household_id): t
        for t in await system.rows("dispatch", "tasks")
    }
    assert set(tasks) == {
        "quarantine_breach:R-1001",
        "quarantine_breach:H-0301",
        "overdue_return:R-2001",
    }
    d = tasks["quarantine_breach:H-0301"]
    assert d.person_id is None and d.urgent and (d.grid_id, d.assignee_id) == ("G-02", "W-02")
    o = tasks["overdue_return:R-2001"]
    assert not o.urgent and (o.household_id, o.grid_id, o.assignee_id) == (
        "H-0201",
        "G-01",
        "W-01",
    )

    # one post per task, at the right grid's chat, with the right title
    g1, g2 = sink.posts("/hooks/G-01"), sink.posts("/hooks/G-02")
    assert len(g1) == 2 and len(g2) == 1
    assert g2[0]["body"]["title"].startswith("URGENT")
    assert "H-0301" in g2[0]["body"]["message"] and "door" in g2[0]["body"]["message"]
    overdue_post = next(p for p in g1 if "R-2001" in p["body"]["message"])
    assert overdue_post["body"]["title"] == "新任务"
    assert (
        "逾期未归" in overdue_post["body"]["message"] and "P-42" in overdue_post["body"]["message"]
    )
    delivered = {
        d.notification_id for d in await system.rows("notify", "deliveries", "status = 'sent'")
    }
    assert {p["headers"]["X-Gridcare-Notification-Id"] for p in g1 + g2} == delivered
    for name in ("dispatch", "notify"):
        assert await system.count(name, "dead_letters") == 0, system.logs()


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_gate_offline_and_online_reach_the_duty_chat(system, sink, tmp_path):
    await community(
        system,
        sink,
        tmp_path,
        gates={"g1": sink.url("/hooks/duty-g1"), "g3": sink.url("/hooks/duty-g3")},
    )
    seen = datetime.now(UTC) - timedelta(seconds=95)
    offline = GateWentOffline(gate_id="g1", compound_id="C-01", last_seen_at=seen, silent_s=95)
    env = checkpoint_envelope(offline)
    await publish(system, env, offline.subject())
    await publish(system, env, offline.subject(), msg_id=new_id())  # delivered twice
    online = GateCameOnline(gate_id="g1", compound_id="C-01", at=datetime.now(UTC))
    await publish(system, checkpoint_envelope(online), online.subject())
    # g2 has no duty chat: a clear dead letter, not a retry loop
    lost = GateWentOffline(gate_id="g2", compound_id="C-01", last_seen_at=None, silent_s=90)
    await publish(system, checkpoint_envelope(lost), lost.subject())

    async def dead_g2():
        return await system.rows("notify", "dead_letters", "consumer = 'notify-gates'")

    dead = await system.wait_for(dead_g2, what="dead letter for gate g2")
    await settled(system, [("CHECKPOINT", "notify-gates")])

    assert len(dead) == 1 and "gate g2 has no duty_chat_url" in dead[0].reason
    assert dead[0].deliveries == 1  # rejected at once, not retried

    posts = sink.posts("/hooks/duty-g1")
    assert len(posts) == 2, posts
    down, up = (p["body"] for p in posts)
    assert "离线" in down["title"] and "offline" in down["title"]
    assert "离线" in down["message"] and "offline" in down["message"] and "95" in down["message"]
    assert "North gate" in down["message"]
    assert "恢复在线" in up["message"] and "back online" in up["message"]
    assert sink.posts("/hooks/G-") == [] and sink.posts("/hooks/duty-g3") == []

    deliveries = await system.rows("notify", "deliveries", "status = 'sent'")
    assert {d.recipient_id for d in deliveries} == {"duty:g1"} and len(deliveries) == 2
    assert {p["headers"]["X-Gridcare-Notification-Id"] for p in posts} == {
        d.notification_id for d in deliveries
    }
