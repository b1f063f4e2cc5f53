"""A storm of gate scans with the checkpoint SIGKILLed and restarted in the middle: every
scan that got a verdict is in the register, once, with that verdict (docs/edge-contract.md §1)."""

from __future__ import annotations

import asyncio
import json
import time

import nats
import pytest
from system import fever_scan, write_community

pytestmark = pytest.mark.e2e
DEVICES = 16  # gates sending at once (each keeps one scan in flight, like a real device)
PER_DEVICE = 100


async def gate_device(nc, gate: str, scans: list[dict], replies: dict) -> None:
    for scan in scans:
        body = json.dumps(scan).encode()
        while True:  # a device retries the same scan until it gets a verdict
            try:
                msg = await nc.request(f"gate.{gate}.scan", body, timeout=0.5)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                await asyncio.sleep(0.05)
                continue
            reply = json.loads(msg.data)
            if "error" in reply:
                assert reply["error"]["code"] == "unavailable", reply
                await asyncio.sleep(0.05)
                continue
            replies[(gate, scan["scan_id"])] = reply
            break


@pytest.mark.parametrize("db_backend", ["sqlite"])
async def test_sigkill_mid_storm_loses_no_register_entry(system, sink, tmp_path):
    residents = write_community(tmp_path / "community", sink, extra_residents=50)
    system.import_refdata(tmp_path / "community")
    await system.wait_projected()
    gates = ["g1", "g2"]
    work = {}
    for d in range(DEVICES):
        gate = gates[d % 2]
        work[(d, gate)] = [
            # mostly normal readings, some fevers (which fan out through the other services)
            fever_scan(
                f"s{d:02d}-{i:04d}",
                residents[(d * PER_DEVICE + i) % len(residents)],
                gate=gate,
                temp=38.0 if i % 25 == 0 else 36.5,
            )
            for i in range(PER_DEVICE)
        ]
    replies: dict = {}
    nc = await nats.connect(system.nats.url)
    try:
        t0 = time.monotonic()
        devices = [
            asyncio.create_task(gate_device(nc, gate, scans, replies))
            for (_, gate), scans in work.items()
        ]
        total = DEVICES * PER_DEVICE
        while len(replies) < total // 3:
            await asyncio.sleep(0.01)
        answered_before_kill = dict(replies)
        system.kill("checkpoint")  # SIGKILL in the middle of the storm
        await asyncio.sleep(0.5)
        await asyncio.to_thread(system.restart, "checkpoint")
        await asyncio.wait_for(asyncio.gather(*devices), 180)
        elapsed = time.monotonic() - t0
    finally:
        await nc.close()

    assert len(replies) == total
    rows = await system.rows("checkpoint", "passages")
    register = {(r.gate_id, r.scan_id): r for r in rows}
    assert len(rows) == len(register) == total  # every scan once, none twice
    for key, reply in replies.items():
        assert register[key].verdict == reply["verdict"], key
    # what a device saw before the kill is what the register holds after it
    for key, reply in answered_before_kill.items():
        stored = register[key].reply
        stored = json.loads(stored) if isinstance(stored, str) else stored
        assert stored == reply
    print(
        f"\n{total} scans from {DEVICES} devices in {elapsed:.1f}s with a SIGKILL; "
        f"{len(answered_before_kill)} answered before it; register: {len(rows)} rows"
    )
