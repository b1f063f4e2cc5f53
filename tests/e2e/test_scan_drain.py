"""SIGTERM in the middle of a storm of gate scans: every scan the checkpoint received is
answered (none times out), and every verdict a device got is in the register.

"Received" is made certain for most of the storm, not left to timing: the checkpoint is
paused (SIGSTOP) while a wave of scans is sent, so the whole wave is waiting on its
connection when the SIGTERM is handled (the server has routed every request to it), and it
resumes (SIGCONT) with both at once. An unsubscribe at that moment drops what the client
library has not handed to the callback yet; a drain answers all of it. Meanwhile devices
go on scanning, one scan at a time each, through the stop: what they send while the
checkpoint drains either reaches it and is answered, or finds it gone ("no responders", and
the device tries again later); none may time out."""

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
DEVICES = 200  # scanning all along, each one scan at a time
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


async def device(nc, d: int, outcomes: dict, stop: asyncio.Event) -> None:
    """Scans one after another until the checkpoint is gone (or a scan goes unanswered)."""
    n = 100_000 + d * 1_000
    while not stop.is_set():
        await send(nc, n, outcomes)
        if outcomes[scan(n)[2]] in ("no responders", "timeout"):
            return
        n += 1


async def test_sigterm_mid_storm_answers_every_scan_received(tmp_path):
    server = NatsServer(store_dir=tmp_path / "nats", log_file=tmp_path / "nats.log").start()
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
        devices: dict = {}
        never = asyncio.Event()  # (the devices stop when the checkpoint is gone)
        scanning = [asyncio.create_task(device(nc, d, devices, never)) for d in range(DEVICES)]
        while len(devices) < 5 * DEVICES:
            await asyncio.sleep(0.005)
        proc.proc.send_signal(signal.SIGSTOP)
        try:
            second: dict = {}
            wave = [
                asyncio.create_task(send(nc, n, second))
                for n in range(FIRST_WAVE, FIRST_WAVE + SECOND_WAVE)
            ]
            await asyncio.sleep(0)  # every request published (into the client's buffer) ...
            while nc.pending_data_size:  # ... written to the socket (nats-py's flush() sends
                await asyncio.sleep(0.001)  # its PING ahead of its buffer) ...
            await nc.flush()  # ... and routed by the server to the (paused) checkpoint
            proc.proc.send_signal(signal.SIGTERM)
        finally:
            proc.proc.send_signal(signal.SIGCONT)
        t0 = time.monotonic()
        await asyncio.gather(*wave, *scanning)
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
        f"{DEVICES} devices scanning through the stop: {kinds(devices)}; "
        f"exit {code} in {stopped_in:.1f}s"
    )
    assert kinds(first) == {"answered": FIRST_WAVE}
    lost = kinds(second).get("timeout", 0) + kinds(devices).get("timeout", 0)
    assert lost == 0, f"{lost} scans received and never answered"
    # all of the second wave had reached the checkpoint: none is refused, all are answered
    assert kinds(second) == {"answered": SECOND_WAVE}
    assert code == 0
    answered = {k: v for k, v in {**first, **second, **devices}.items() if isinstance(v, dict)}
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
