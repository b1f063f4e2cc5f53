"""Notify against a real nats-server, a real store (SQLite and PostgreSQL) and real local
HTTP providers that fail on purpose (500s, hangs, an outage of minutes): retries, circuit
breaking, failover, dead letters and replay; one delivery for a request sent three times;
an alert that escalates until someone acknowledges it over NATS (the edge contract §5.1).

The outage of minutes is not waited for: notify's clock (what "now" is for its messages,
retries and escalations) is a clock the test moves forward.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import nats
import pytest
import sqlalchemy as sa

from gridcare.cli.devrun import NatsServer
from gridcare.contracts.notify import NotificationRequested, ToRole
from gridcare.contracts.refdata import (
    Channel,
    Community,
    Compound,
    Gate,
    Grid,
    Staff,
)
from gridcare.notify.adapters import tables as T
from gridcare.notify.bootstrap import build
from gridcare.notify.config import NotifySettings
from gridcare.notify.domain.messages import delivery_key
from gridcare.shared.envelope import Envelope, new_id


class Provider:
    """A local HTTP provider (a chat bot or an SMS gateway) that answers as told: ``ok``,
    an HTTP status (``500``), or ``hang`` (no answer for 3 s). Keeps every request."""

    def __init__(self) -> None:
        self.mode: str | int = "ok"
        self.calls: list[dict] = []  # every request, answered or not
        self.accepted: list[dict] = []  # the ones answered 200
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"] or 0)))
                entry = {"path": self.path, "key": self.headers.get("Idempotency-Key"), **body}
                provider.calls.append(entry)
                mode = provider.mode
                if mode == "hang":
                    time.sleep(3)
                    return
                if mode != "ok":
                    self.send_response(int(mode))
                    self.end_headers()
                    return
                provider.accepted.append(entry)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"id": f"p-{len(provider.accepted)}"}).encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Clock:
    """Notify's now: the real time plus however far the test has moved it."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


async def until(check, timeout: float = 20.0, what: str = ""):
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, f"not within {timeout}s: {what or check.__name__}"
        await asyncio.sleep(0.05)
    return result


@pytest.fixture
async def notify(tmp_path, database_url):
    server = NatsServer(store_dir=tmp_path / "nats").start()
    chat, sms = Provider(), Provider()
    clock = Clock()
    svc = build(
        NotifySettings(
            nats_url=server.url,
            database_url=database_url,
            var_dir=tmp_path,
            outbox_poll_s=0.1,
            notify_retry_base_s=20,  # moved through by the clock, not waited for
            notify_retry_max_s=120,
            notify_give_up_s=15 * 60,
            notify_provider_timeout_s=0.5,
            notify_breaker_failures=3,
            notify_breaker_open_s=60,
            notify_escalation_check_s=3600,  # the test escalates by hand
        ),
        clock=clock,
    )
    await svc.start()
    svc.consuming_since -= svc.settings.ack_wait_s  # no grace for a predecessor here
    nc = await nats.connect(server.url)
    js = nc.jetstream()
    for entity in (
        Community(community_id="CM-1", name="D", time_zone="Asia/Shanghai"),
        Compound(compound_id="C-01", community_id="CM-1", name="Donghu Garden"),
        Grid(
            grid_id="G-01",
            community_id="CM-1",
            name="Grid 1",
            worker_id="W-01",
            worker_name="Li Mei",
            worker_phone="+86 138 0000 0001",
            chat_url=chat.url("/hooks/G-01"),
        ),
        Gate(gate_id="g1", compound_id="C-01", name="North"),
        Staff(
            staff_id="S-01",
            community_id="CM-1",
            name="Secretary Wang",
            phone="+86 137 0000 0001",
            roles=["secretary"],
            channels=["sms"],
        ),
        Channel(channel_id="SMS", community_id="CM-1", kind="sms", url=sms.url("/sms")),
    ):
        await publish(js, entity)

    async def projected():
        async with svc.store.sessions() as s:
            return await s.scalar(sa.select(sa.func.count()).select_from(T.channels))

    await until(projected, what="the reference data in notify's store")
    await svc.components["escalate"]()  # (and the providers' limits, read at start)
    try:
        yield svc, nc, chat, sms, clock
    finally:
        await nc.close()
        await svc.stop()
        chat.stop()
        sms.stop()
        server.stop()


async def publish(js, event, event_id: str | None = None) -> Envelope:
    env = Envelope.wrap(event, source="test", event_id=event_id)
    await js.publish(event.subject(), env.to_bytes(), headers=env.headers())
    return env


def fever(request_id: str = "task-1") -> NotificationRequested:
    return NotificationRequested(
        request_id=request_id,
        recipient=ToRole(role="grid_worker", place_id="G-01"),
        template="task.fever_follow_up",
        params={
            "person_id": "R-1001",
            "gate_id": "g1",
            "temperature_c": 38.2,
            "observed_at": None,
            "hours": 2,
        },
        priority="urgent",
        needs_ack=True,
        alert_kind="fever",
        places={"grid_id": "G-01", "community_id": "CM-1", "gate_id": "g1"},
    )


async def message(svc, recipient: str = "W-01") -> sa.Row:
    async with svc.store.sessions() as s:
        q = sa.select(T.messages).where(T.messages.c.recipient_id == recipient)
        return (await s.execute(q)).one()


async def test_the_same_request_three_times_is_one_delivery(notify):
    svc, nc, chat, _, _ = notify
    js = nc.jetstream()
    ev = fever()
    first = await publish(js, ev)
    await publish(js, ev, event_id=first.event_id)  # a retry within the duplicate window
    await publish(js, ev, event_id=new_id())  # the producer asked again, anew
    await until(lambda: _true(len(chat.accepted) >= 1), what="the alert at the chat")
    await asyncio.sleep(1.0)
    assert len(chat.accepted) == 1
    assert chat.accepted[0]["key"] == (await message(svc)).delivery_key
    assert "[" in chat.accepted[0]["title"] and "38.2" in chat.accepted[0]["message"]


async def test_an_outage_of_minutes_is_ridden_out_with_retries_a_circuit_and_failover(notify):
    """The chat answers 500 and the SMS gateway hangs, for eight minutes of notify's time.
    The message is tried on the chat, then on the SMS route (failover), round again later;
    after three failures in a row a provider's circuit opens and it is not called until it
    is probed again; nothing is given up (the horizon is 15 minutes); once the chat is back
    the worker gets the alert, once."""
    svc, nc, chat, sms, clock = notify
    chat.mode, sms.mode = 500, "hang"
    await publish(nc.jetstream(), fever())
    await until(lambda: _true(len(chat.calls) >= 1), what="the first try")
    circuit = svc.metrics.registry.get_sample_value
    for _ in range(16):  # eight minutes, thirty seconds at a time
        clock.ahead += timedelta(seconds=30)
        svc.components["sender"].wake()
        await asyncio.sleep(0.6)
    assert len(sms.calls) >= 1 and len(chat.calls) >= 2  # two tries on a route, then the next
    gate_of = svc.components["gate"]
    states = {p: gate_of.breaker(p).state for p in gate_of.providers()}
    assert "open" in states.values() or "half_open" in states.values(), states
    await svc.components["escalate"]()  # (no one answered: the secretary is told too)
    calls_while_down = len(chat.calls)
    assert calls_while_down < 16  # a dead provider is not hammered: the circuit held calls back
    m = await message(svc)
    assert m.status in ("queued", "sending") and m.attempts >= 4 and not chat.accepted
    chat.mode, sms.mode = "ok", "ok"
    keys = {delivery_key(m.message_id, channel) for channel in ("chat", "sms")}

    def delivered() -> list[dict]:
        return [c for c in chat.accepted + sms.accepted if c["key"] in keys]

    for _ in range(12):
        clock.ahead += timedelta(seconds=60)
        svc.components["sender"].wake()
        await asyncio.sleep(0.5)
        if delivered():
            break
    await until(lambda: _true(len(delivered()) == 1), what="the alert once a provider is back")

    async def sent():
        return (await message(svc)).status == "sent"

    await until(sent, what="its outcome committed")
    assert len(delivered()) == 1
    async with svc.store.sessions() as s:
        dead = await s.scalar(sa.select(sa.func.count()).select_from(svc.store.tables.dead_letters))
    assert dead == 0
    sent = circuit("gridcare_notify_deliveries_total", {"channel": "chat", "outcome": "sent"}) or 0
    sent += circuit("gridcare_notify_deliveries_total", {"channel": "sms", "outcome": "sent"}) or 0
    assert sent == 2  # the worker's alert, and the secretary's escalation


async def test_given_up_it_is_a_dead_letter_and_its_replay_delivers_it(notify):
    svc, nc, chat, sms, clock = notify
    chat.mode, sms.mode = 503, 503
    await publish(nc.jetstream(), fever())
    await until(lambda: _true(len(chat.calls) >= 1), what="the first try")
    clock.ahead += timedelta(minutes=16)  # past the give-up horizon
    svc.components["sender"].wake()

    async def dead():
        rows = await svc.dead_letters.list()
        return rows if rows else None

    [row] = await until(dead, timeout=30, what="the dead letter")
    assert row["consumer"] == "notify-delivery" and "Li Mei" in row["reason"]
    assert (await message(svc)).status == "failed"
    chat.mode, sms.mode = "ok", "ok"
    await svc.dead_letters.replay(row["id"], svc.publish_to_stream)
    await until(lambda: _true(len(chat.accepted) == 1), what="the replayed alert")

    async def sent():
        return (await message(svc)).status == "sent"

    await until(sent, what="its outcome committed")


async def test_an_unacknowledged_alert_escalates_and_an_acknowledgement_stops_it(notify):
    svc, nc, chat, sms, clock = notify
    await publish(nc.jetstream(), fever())
    await until(lambda: _true(len(chat.accepted) == 1), what="the alert to the grid worker")
    alert_id = chat.accepted[0]["title"].rsplit("[", 1)[1].rstrip("]")
    clock.ahead += timedelta(minutes=6)  # 5 minutes without an acknowledgement
    await svc.components["escalate"]()
    await until(lambda: _true(len(sms.accepted) == 1), what="the alert to the secretary")
    assert sms.accepted[0]["to"] == "+8613700000001" and f"[{alert_id}]" in sms.accepted[0]["text"]
    # the edge contract §5.1: only a recipient may acknowledge it
    ack = "staff.{}.ack"
    body = json.dumps({"alert_id": alert_id}).encode()
    refused = json.loads((await nc.request(ack.format("R-1001"), body, timeout=5)).data)
    assert refused["error"]["code"] == "not_yours"
    unknown = json.dumps({"alert_id": "NOSUCH00"}).encode()
    missing = json.loads((await nc.request(ack.format("S-01"), unknown, timeout=5)).data)
    assert missing["error"]["code"] == "unknown_alert"
    bad = json.loads((await nc.request(ack.format("S-01"), b"{}", timeout=5)).data)
    assert bad["error"]["code"] == "invalid_ack"
    done = json.loads((await nc.request(ack.format("S-01"), body, timeout=5)).data)
    assert done["alert_id"] == alert_id and done["status"] == "acknowledged"
    assert done["acknowledged_at"].endswith("+08:00")
    # the grid worker, who had it first, is told who took it; nobody else is escalated to
    await until(lambda: _true(len(chat.accepted) == 2), what="the grid worker told")
    assert "Secretary Wang" in chat.accepted[1]["message"]
    clock.ahead += timedelta(hours=2)
    await svc.components["escalate"]()
    await asyncio.sleep(0.5)
    assert len(sms.accepted) == 1 and len(chat.accepted) == 2


async def _true(value: bool) -> bool:
    return value


async def test_receipts_and_acknowledgement_links_over_http(notify):
    """Notify's HTTP port: providers' receipts (our JSON form and Twilio's), refused for a
    message nobody knows; an alert's link shows a page on GET and acknowledges on POST."""
    svc, nc, chat, _, _ = notify
    await publish(nc.jetstream(), fever())
    await until(lambda: _true(len(chat.accepted) == 1), what="the alert")

    async def sent():
        m = await message(svc)
        return m if m.status == "sent" else None

    m = await until(sent, what="the outcome committed")
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.asgi), base_url="http://n")
    async with http:
        r = await http.post("/receipts", json={"key": m.delivery_key, "status": "delivered"})
        assert r.status_code == 200 and r.json()["status"] == "delivered"
        r = await http.post("/receipts", json={"key": "nobody", "status": "delivered"})
        assert r.status_code == 404 and r.json()["error"] == "unknown_message"
        r = await http.post("/receipts", json={"status": "delivered"})
        assert r.status_code == 400
        form = {"MessageSid": m.provider_ref, "MessageStatus": "delivered"}
        r = await http.post("/receipts/twilio", data=form)
        assert r.status_code == 200
        link = chat.accepted[0]["message"].rsplit("http://", 1)[1].split("/", 1)[1]
        page = await http.get("/" + link)
        assert page.status_code == 200 and "<form" in page.text
        assert (await message(svc)).status == "delivered"  # a GET acknowledges nothing
        forged = await http.post("/" + link[:-4] + "0000")
        assert forged.status_code == 404
        taken = await http.post("/" + link)
        assert taken.status_code == 200 and "Acknowledged" in taken.text
    assert (await message(svc)).status == "acknowledged"
    async with svc.store.sessions() as s:
        h = T.history.c
        statuses = (
            await s.scalars(sa.select(h.status).where(h.message_id == m.message_id).order_by(h.id))
        ).all()
    assert statuses[:3] == ["queued", "sending", "sent"]
    assert "delivered" in statuses and statuses[-1] == "acknowledged"
