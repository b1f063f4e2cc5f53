"""The thin slice across all four services, against real servers (SQLite and PostgreSQL):

gate scan 38.2 °C → checkpoint denies (fever) and records the passage → screening opens a
fever case → dispatch creates a follow-up task for the grid worker → notify posts a chat
alert to the grid's webhook. Each hop is asserted in that service's own store.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from system import fever_scan, write_community

pytestmark = pytest.mark.e2e


async def test_fever_scan_crosses_all_four_services(system, sink, tmp_path):
    write_community(tmp_path / "community", sink)
    system.import_refdata(tmp_path / "community")
    await system.wait_projected()

    reply = await system.request("gate.g1.scan", fever_scan("g1-000123", "R-1001"))
    assert reply["scan_id"] == "g1-000123"
    assert reply["verdict"] == "deny" and reply["reasons"] == ["fever"]
    assert reply["message"]["zh"] and reply["message"]["en"]

    # checkpoint: the passage is in the register (written before the reply)
    passages = await system.rows("checkpoint", "passages", "scan_id = 'g1-000123'")
    assert len(passages) == 1 and passages[0].verdict == "deny"
    assert passages[0].person_id == "R-1001" and passages[0].temperature_c == 38.2

    # screening: a fever case for that resident
    async def case():
        return await system.rows("screening", "cases", "person_id = 'R-1001'")

    cases = await system.wait_for(case, what="fever case")
    assert len(cases) == 1 and cases[0].kind == "fever" and cases[0].status == "open"

    # dispatch: a follow-up task for the grid worker of R-1001 (H-0101 → B-01 → G-01 → W-01)
    async def task():
        return await system.rows("dispatch", "tasks", "person_id = 'R-1001'")

    tasks = await system.wait_for(task, what="follow-up task")
    assert len(tasks) == 1
    assert tasks[0].assignee_id == "W-01" and tasks[0].grid_id == "G-01"
    assert tasks[0].case_id == cases[0].case_id and tasks[0].kind == "fever_follow_up"

    # notify: delivered to the grid's chat webhook, in the worker's language (zh), as an
    # alert to acknowledge ([its id], and a link)
    async def delivered():
        return await system.rows("notify", "messages", "status = 'sent'")

    messages = await system.wait_for(delivered, what="delivery")
    assert len(messages) == 1 and messages[0].recipient_id == "W-01"
    posts = sink.posts("/hooks/G-01")
    assert len(posts) == 1
    assert posts[0]["headers"]["Idempotency-Key"] == messages[0].delivery_key
    body = posts[0]["body"]["message"]
    assert "R-1001" in body and "发热" in body and f"[{messages[0].alert_id}]" in body

    # the device retries the same scan: same verdict, recorded once, no second alert
    again = await system.request("gate.g1.scan", fever_scan("g1-000123", "R-1001"))
    assert again == reply
    assert await system.count("checkpoint", "passages", "scan_id = 'g1-000123'") == 1

    # an English-speaking grid worker gets English (R-3001 lives in G-02, worker W-02)
    await system.request("gate.g3.scan", fever_scan("g3-000001", "R-3001", gate="g3"))

    async def english():
        return sink.posts("/hooks/G-02")

    post = (await system.wait_for(english, what="alert to G-02"))[0]
    assert "Fever follow-up" in post["body"]["message"]
    assert len(sink.posts("/hooks/G-01")) == 1


@pytest.mark.parametrize("db_backend", ["sqlite"])  # validation: no store involved
async def test_malformed_scans_get_invalid_scan_and_service_keeps_working(system, sink, tmp_path):
    write_community(tmp_path / "community", sink)
    system.import_refdata(tmp_path / "community")
    await system.wait_projected()

    def fields(reply: dict) -> set[str]:
        assert reply["error"]["code"] == "invalid_scan", reply
        return {d["field"] for d in reply["error"]["detail"]}

    bad = fever_scan("g1-bad-1", "R-1001")
    bad.update(temperature_c=51.0, mask="yes", direction="sideways")
    assert fields(await system.request("gate.g1.scan", bad)) == {
        "temperature_c",
        "mask",
        "direction",
    }
    assert fields(await system.request("gate.g2.scan", fever_scan("s-1", "R-1001"))) == {
        "gate_id"
    }  # body says g1, subject says g2
    assert fields(await system.request("gate.g9.scan", fever_scan("s-2", "R-1001", "g9"))) == {
        "gate_id"
    }  # unknown gate
    assert fields(await system.request("gate.g1.scan", b"\xff not json")) == {"(body)"}
    assert fields(await system.request("gate.g1.scan", b"[1, 2]")) == {"(body)"}
    future = fever_scan("g1-f", "R-1001")
    future["scanned_at"] = "2099-01-01T00:00:00+08:00"
    assert fields(await system.request("gate.g1.scan", future)) == {"scanned_at"}
    assert await system.count("checkpoint", "passages") == 0  # nothing invalid recorded

    ok = fever_scan("g1-ok", "R-1002", temp=36.6)
    reply = await system.request("gate.g1.scan", ok)
    assert reply["verdict"] == "allow" and reply["reasons"] == []
    assert all(p.alive for p in system.procs.values())


@pytest.mark.parametrize("db_backend", ["sqlite"])  # the slice above runs on PostgreSQL too
async def test_every_service_serves_metrics_health_and_readiness(system):
    for name, proc in system.procs.items():
        base = f"http://127.0.0.1:{proc.http_port}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as r:
            body = json.loads(r.read())
            assert body == {"ready": True, "checks": {"nats": "ok", "streams": "ok", "store": "ok"}}
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as r:
            text = r.read().decode()
            assert f"gridcare_{name}_outbox_published_total" in text
