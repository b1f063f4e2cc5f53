"""How long the checkpoint's start takes to rebuild who is out from a big register.

    .venv/bin/python bench/rebuild_bench.py                     # 2,000,000 passages, 100,000 people
    .venv/bin/python bench/rebuild_bench.py --passages 200000 --people 20000

At start, before it answers a scan, the checkpoint reads every person's last passage let
through from the register (``adapters.sql.load_last_passed``): one pass over what retention
keeps (28 days by default). This fills a temp SQLite register through the service's own
migrations and ``BulkInsert`` (scans two seconds apart over 20 compounds, ~2% refused),
then times that one call. Filling takes longer than the rebuild; progress is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta

from gridcare.checkpoint.adapters import tables as T
from gridcare.checkpoint.adapters.sql import load_last_passed
from gridcare.checkpoint.domain.state import GateState
from gridcare.checkpoint.entrypoints.scans import PASSAGE_COLUMNS
from gridcare.shared.store import BulkInsert, Store

REPLY = (
    '{"scan_id":"x","verdict":"allow","reasons":[],'
    '"message":{"zh":"请通行","en":"Please pass"},"decided_at":"2026-11-01T00:00:00+00:00"}'
)
BATCH = 10_000


def passages(start: int, n: int, people: int) -> list[dict]:
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    for k in range(start, start + n):
        at = t0 + timedelta(seconds=2 * k)
        rows.append(
            {
                "gate_id": f"g{k % 4}",
                "scan_id": f"s{k:010d}",
                "compound_id": f"C-{k % 20:02d}",
                "person_id": f"R-{k % people:07d}",
                "direction": "out" if (k // people) % 2 == 0 else "in",
                "verdict": "deny" if k % 50 == 0 else "allow",
                "reasons": '["fever"]' if k % 50 == 0 else "[]",
                "temperature_c": 36.5,
                "scanned_at": at,
                "decided_at": at,
                "reply": REPLY,
                "permit_id": None,
            }
        )
    return rows


async def measure(n: int, people: int) -> None:
    folder = tempfile.mkdtemp(prefix="rebuild_bench-")
    store = Store(f"sqlite+aiosqlite:///{folder}/checkpoint.db", T.metadata)
    try:
        await store.migrate(T.MIGRATIONS)
        bulk = BulkInsert(T.passages, PASSAGE_COLUMNS, json_text={"reply", "reasons"})
        for start in range(0, n, BATCH):
            rows = passages(start, min(BATCH, n - start), people)
            await store.blocking_write(lambda conn, rows=rows: bulk.execute(conn, rows))
            if (start // BATCH) % 20 == 19:
                print(f"  filled {start + len(rows):,} of {n:,} passages", flush=True)
        state = GateState()
        t = time.perf_counter()
        async with store.sessions() as s:
            await load_last_passed(s, state)
        took = time.perf_counter() - t
        entries = sum(len(v) for v in state.last_passed.values())
        print(
            f"{n:,} passages of {people:,} people: who is out rebuilt in {took:.2f} s "
            f"({entries:,} people with a last passage; SQLite)"
        )
    finally:
        await store.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passages", type=int, default=2_000_000)
    ap.add_argument("--people", type=int, default=100_000)
    args = ap.parse_args()
    if args.passages < 1 or args.people < 1:
        ap.error("--passages and --people must be at least 1")
    asyncio.run(measure(args.passages, args.people))


if __name__ == "__main__":
    main()
