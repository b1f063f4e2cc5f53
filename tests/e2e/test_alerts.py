"""Checkpoint alerts through dispatch and notify, against real processes:

- a quarantine breach (at a gate, or a quarantined household's door) becomes an URGENT task
  for the grid worker responsible, and an urgent chat alert in the grid's chat;
- an overdue return on a permit becomes a (not urgent) task and alert;
- a gate going offline / coming back online is told to its duty staff (or its duty chat, in
  Chinese and English).

The checkpoint events are published here exactly as the checkpoint publishes them (an
envelope on the event's subject, with its headers). Every step is idempotent: the same
envelope again (a new Nats-Msg-Id, so JetStream lets it through) or the same fact in a new
envelope makes no second task and no second post.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta, timezone

import nats
import pytest
from system import System, write_community

from gridcare.contracts.checkpoint import PermitOverdue, QuarantineBreachAttempted
from gridcare.contracts.refdata import CommunityPolicy
from gridcare.shared.envelope import Envelope, Event, new_id

QUARANTINE = {"zh": "居家隔离", "en": "home quarantine"}  # screening's words, carried on

pytestmark = pytest.mark.e2e


async def publish(
    system: System,
    env: Envelope,
    subject: str,
    stream: str = "CHECKPOINT",
    msg_id: str | None = None,
):
    """What the checkpoint's outbox relay does; ``msg_id`` overrides the Nats-Msg-Id."""
    nc = await nats.connect(system.nats.url)
    try:
        headers = env.headers()
        if msg_id is not None:
            headers["Nats-Msg-Id"] = msg_id
        ack = await nc.jetstream().publish(
            subject, env.to_bytes(), headers=headers, stream=stream, timeout=5
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
        return len(await system.rows("notify", "messages", "status = 'sent'")) == 3

    await system.wait_for(three_deliveries, what="three chat alerts")
    await settled(
        system,
        [
            ("CHECKPOINT", "dispatch-breaches"),
            ("CHECKPOINT", "dispatch-overdue"),
            ("NOTIFY_REQUESTS", "notify-requests-urgent"),
            ("NOTIFY_REQUESTS", "notify-requests"),
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
    assert overdue_post["body"]["title"].startswith("逾期未归")
    assert (
        "逾期未归" in overdue_post["body"]["message"] and "P-42" in overdue_post["body"]["message"]
    )
    # the breaches are alerts to acknowledge ([id] and a link); the overdue return is not
    breach_post = next(p for p in g1 if "R-1001" in p["body"]["message"])
    assert "[" in breach_post["body"]["title"] and "/ack/" in breach_post["body"]["message"]
    assert "[" not in overdue_post["body"]["title"]
    delivered = {d.delivery_key for d in await system.rows("notify", "messages", "status = 'sent'")}
    assert {p["headers"]["Idempotency-Key"] for p in g1 + g2} == delivered
    for name in ("dispatch", "notify"):
        assert await system.count(name, "dead_letters") == 0, system.logs()


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_a_gate_offline_and_back_reaches_its_duty_staff(system, sink, tmp_path):
    """The checkpoint finds gates silent (heartbeats every second by this community's
    policy: offline after three) and asks notify to tell their duty staff: whoever is on duty
    there (DS-01 at g1 and g2, in their language, through their chat), else the gate's duty
    chat (g3, in Chinese and English). An offline gate is an alert to acknowledge; a gate
    that speaks again is back online."""
    await community(system, sink, tmp_path, gates={"g3": sink.url("/hooks/duty-g3")})
    policy = CommunityPolicy(community_id="CM-1", heartbeat_interval_s=1)
    await publish(system, Envelope.wrap(policy, source="gridcare-cli"), policy.subject(), "REFDATA")

    def offline(path: str) -> list[dict]:
        return [p for p in sink.posts(path) if "离线" in p["body"]["title"]]

    async def all_offline():
        return len(offline("/hooks/staff-DS-01")) == 2 and len(offline("/hooks/duty-g3")) == 1

    await system.wait_for(all_offline, timeout=60, what="three gates reported offline")
    ds = offline("/hooks/staff-DS-01")
    titles = " ".join(p["body"]["title"] for p in ds)
    assert "北门" in titles and "南门" in titles  # g1 and g2, by their names
    assert all("[" in p["body"]["title"] for p in ds)  # to acknowledge: its [alert id]
    g3 = offline("/hooks/duty-g3")[0]["body"]
    assert "offline" in g3["message"] and "离线" in g3["message"]  # a chat reads both
    assert sink.posts("/hooks/G-") == []

    # g1 speaks again: back online, told to the same duty staff
    nc = await nats.connect(system.nats.url)
    try:
        hb = {"gate_id": "g1", "sent_at": datetime.now(UTC).isoformat(), "firmware": "1.0"}
        await nc.publish("gate.g1.heartbeat", json.dumps(hb).encode())
        await nc.flush()
    finally:
        await nc.close()

    async def back():
        return [p for p in sink.posts("/hooks/staff-DS-01") if "恢复" in p["body"]["title"]]

    [up] = await system.wait_for(back, what="g1 back online")
    assert "北门" in up["body"]["title"]
    messages = await system.rows("notify", "messages", "template = 'gate.offline'")
    assert {m.recipient_id for m in messages} == {"DS-01", "group:gate-g3"}
    for name in ("checkpoint", "notify"):
        assert await system.count(name, "dead_letters") == 0, system.logs()
