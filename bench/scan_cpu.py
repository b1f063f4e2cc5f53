"""CPU per scan of the checkpoint's own scan path, without the network round trips.

    .venv/bin/python bench/scan_cpu.py                  # 30,000 scans in batches of 64
    .venv/bin/python bench/scan_cpu.py --batch 3        # small commits, as at 2,000 scans/s
    .venv/bin/python bench/scan_cpu.py --profile        # and where it goes (cProfile)

Starts a nats-server (for the service's streams) and the real checkpoint in this process on
a temp SQLite store, loads ``examples/community``, then hands it scans straight through
``ScanResponder.handle`` (validation, the rules, the register's group commit, the reply),
``--batch`` at a time, and prints the event loop thread's CPU per scan. It leaves out
nats-py's receive and send of each request, which ``scan_bench.py`` includes; in their
place it pays for a task and a decoded reply per scan, a few µs. The machine is shared, so
compare runs of this tool made one after another (a few each), not with another day's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nats

from gridcare.checkpoint.bootstrap import build
from gridcare.checkpoint.config import CheckpointSettings
from gridcare.cli import refdata
from gridcare.cli.devrun import NatsServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "community"
CST = timezone(timedelta(hours=8))
PEOPLE = ("R-1001", "R-1002", "R-1003")  # residents of C-01, whose gate g1 is used


class Probe:
    """A request as the subscription hands it over (subject, data), whose reply the run
    awaits instead of the network."""

    reply = "probe"

    def __init__(self, subject: str, data: bytes, fut: asyncio.Future) -> None:
        self.subject, self.data, self.fut = subject, data, fut


def scan_bodies(start: int, n: int) -> list[bytes]:
    """Valid scans at g1: in and out, about 2% feverish (as in scan_bench.py)."""
    return [
        json.dumps(
            {
                "scan_id": f"cpu-{k:09d}",
                "gate_id": "g1",
                "direction": "in" if k % 2 else "out",
                "person_id": PEOPLE[k % len(PEOPLE)],
                "scanned_at": datetime.now(CST).isoformat(),
                "temperature_c": 38.0 if k % 50 == 0 else 36.5,
                "mask": True,
                "health_code": "green",
            }
        ).encode()
        for k in range(start, start + n)
    ]


async def measure(scans: int, batch: int, profile: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="scan_cpu-"))
    server = NatsServer(store_dir=tmp / "nats").start()
    svc = build(
        CheckpointSettings(
            nats_url=server.url,
            database_url=f"sqlite+aiosqlite:///{tmp}/checkpoint.db",
            var_dir=tmp,
            gate_check_interval_s=3600,
            housekeeping_interval_s=3600,
        )
    )
    nc = None
    try:
        await svc.start()
        nc = await nats.connect(server.url)
        await refdata.publish(nc.jetstream(), refdata.load(EXAMPLES))
        state, responder = svc.components["state"], svc.components["scans"]
        deadline = time.monotonic() + 30
        while not (set(PEOPLE) <= set(state.resident_household) and "g1" in state.gate_compound):
            if time.monotonic() > deadline:
                sys.exit("the checkpoint did not load examples/community within 30 s")
            await asyncio.sleep(0.05)

        loop = asyncio.get_running_loop()
        send = responder._send

        async def answered(msg, body: bytes, label: str, t0: float) -> None:
            """The responder's reply, into the waiting probe's future (not onto NATS)."""
            if isinstance(msg, Probe):
                msg.fut.set_result(json.loads(body))
            else:
                await send(msg, body, label, t0)

        responder._send = answered

        async def scan(body: bytes) -> dict:
            probe = Probe("gate.g1.scan", body, loop.create_future())
            await responder._on_msg(probe)  # the subscription's own callback
            return await probe.fut

        async def run(bodies: list[bytes]) -> None:
            for i in range(0, len(bodies), batch):
                replies = await asyncio.gather(*(scan(b) for b in bodies[i : i + batch]))
                bad = [r for r in replies if "verdict" not in r]
                if bad:
                    sys.exit(f"a scan was not answered with a verdict: {bad[0]}")

        await run(scan_bodies(0, min(3000, scans)))  # warm-up
        bodies = scan_bodies(10_000_000, scans)  # made before the clock starts
        prof = cProfile.Profile() if profile else None
        cpu, wall = time.thread_time(), time.perf_counter()
        if prof:
            prof.enable()
        await run(bodies)
        if prof:
            prof.disable()
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        print(
            f"{scans} scans in batches of {batch}: {1e6 * cpu / scans:.1f} µs of the loop "
            f"thread's CPU per scan ({1e6 * wall / scans:.1f} µs wall)"
            + (" [under cProfile: slower]" if prof else "")
        )
        if prof:
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    finally:
        if nc is not None:
            await nc.close()
        await svc.stop()
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scans", type=int, default=30_000)
    ap.add_argument("--batch", type=int, default=64, help="scans in flight at once")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the run")
    args = ap.parse_args()
    if args.scans < 1 or args.batch < 1:
        ap.error("--scans and --batch must be at least 1")
    asyncio.run(measure(args.scans, args.batch, args.profile))


if __name__ == "__main__":
    main()
