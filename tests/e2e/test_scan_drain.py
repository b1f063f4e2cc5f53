"""SIGTERM in the middle of a storm of gate scans: every scan the checkpoint received is
answered (none times out), and every verdict a device got is in the register.

"Received" is made certain, not left to timing: the checkpoint is paused (SIGSTOP) while the
second wave of the storm is sent, so the whole wave is waiting on its connection when the
SIGTERM is handled (the server has routed every request to it: the client's flush), and it
resumes (SIGCONT) with both at once. An unsubscribe at that moment drops what the client
library has not handed to the callback yet; a drain answers all of it."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from pathlib import Path

import nats
import pytest
import sqlalchemy as sa

from gridcare.cli import refdata
from gridcare.cli.devrun import NatsServer, ServiceProcess, free_port

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "community"
RESIDENTS = ["R-1001", "R-1002", "R-1003", "R-2001"]  # C-01, gates g1 and g2
FIRST_WAVE = 2_000  # answered before the stop
SECOND_WAVE = 6_000  # waiting on the connection when the SIGTERM is handled
TIMEOUT_S = 5.0  # a device's wait for a verdict (the storm is answered in a second or two)


def scan(n: int) -> tuple[str, bytes, tuple[str, str]]:
    gate = ("g1", "g2")[n % 2]
    scan_id = f"s{n:05d}"
    body = {
        "scan_id": scan_id,
        "gate_id": gate,
        "direction": ("in", "out")[n // 2 % 2],
        "person_id": RESIDENTS[n % len(RESIDENTS)],
        "scanned_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "temperature_c": 36.6,
        "mask": True,
        "health_code": "green",
    }
    return f"gate.{gate}.scan", json.dumps(body).encode(), (gate, scan_id)


async def send(nc, n: int, outcomes: dict) -> None:
    """One scan, no retry: the outcome of the first request is the test."""
    subject, body, key = scan(n)
    try:
        msg = await nc.request(subject, body, timeout=TIMEOUT_S)
    except nats.errors.NoRespondersError:  # the service had stopped taking scans
        outcomes[key] = "no responders"
    except nats.errors.TimeoutError:  # received and never answered
        outcomes[key] = "timeout"
    else:
        outcomes[key] = json.loads(msg.data)


async def test_sigterm_mid_storm_answers_every_scan_received(tmp_path):
    server = NatsServer(store_dir=tmp_path / "nats").start()
    db = tmp_path / "checkpoint.db"
    proc = ServiceProcess(
        "checkpoint",
        {
            "GRIDCARE_NATS_URL": server.url,
            "GRIDCARE_VAR_DIR": str(tmp_path),
            "GRIDCARE_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        },
        tmp_path / "log" / "checkpoint.log",
        free_port(),
    )
    nc = None
    try:
        await asyncio.to_thread(proc.start().wait_ready, 60)
        assert proc.proc is not None
        nc = await nats.connect(server.url, pending_size=64 * 1024 * 1024)
        await refdata.publish(nc.jetstream(), refdata.load(EXAMPLES))
        await known(nc)

        first: dict = {}
        await asyncio.gather(*(send(nc, n, first) for n in range(FIRST_WAVE)))
        proc.proc.send_signal(signal.SIGSTOP)
        try:
            second: dict = {}
            wave = [
                asyncio.create_task(send(nc, n, second))
                for n in range(FIRST_WAVE, FIRST_WAVE + SECOND_WAVE)
            ]
            await asyncio.sleep(0)  # every request published ...
            await nc.flush()  # ... and routed by the server to the (paused) checkpoint
            proc.proc.send_signal(signal.SIGTERM)
        finally:
            proc.proc.send_signal(signal.SIGCONT)
        t0 = time.monotonic()
        await asyncio.gather(*wave)
        code = await asyncio.to_thread(proc.proc.wait, 30)
        stopped_in = time.monotonic() - t0
    finally:
        if nc is not None:
            await nc.close()
        proc.stop(kill=True)
        server.stop()

    def kinds(outcomes: dict) -> dict:
        return dict(Counter(o if isinstance(o, str) else "answered" for o in outcomes.values()))

    print(
        f"\nfirst wave: {kinds(first)}; second wave, waiting at the SIGTERM: {kinds(second)}; "
        f"exit {code} in {stopped_in:.1f}s"
    )
    assert kinds(first) == {"answered": FIRST_WAVE}
    lost = kinds(second).get("timeout", 0)
    assert lost == 0, f"{lost} of {SECOND_WAVE} scans received and never answered"
    # all of the second wave had reached the checkpoint: none is refused, all are answered
    assert kinds(second) == {"answered": SECOND_WAVE}
    assert code == 0
    answered = {**first, **second}
    assert all("verdict" in reply for reply in answered.values()), "every answer is a verdict"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT gate_id, scan_id, verdict FROM passages")).all()
    engine.dispose()
    rows = [r for r in rows if not r.scan_id.startswith("probe-")]
    register = {(g, s): v for g, s, v in rows}
    assert len(register) == len(rows) == len(answered)  # each once
    for key, reply in answered.items():
        assert register.get(key) == reply["verdict"], key


async def known(nc) -> None:
    """Until the checkpoint knows the community (its gates and residents)."""
    deadline = time.monotonic() + 30
    while True:
        subject, body, _ = scan(0)
        probe = json.loads(body) | {"scan_id": f"probe-{time.monotonic_ns()}"}
        reply = json.loads((await nc.request(subject, json.dumps(probe).encode(), 5)).data)
        if "verdict" in reply:
            return
        assert time.monotonic() < deadline, reply
        await asyncio.sleep(0.1)
