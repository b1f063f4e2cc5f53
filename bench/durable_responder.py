"""The "durable bare" responder: the least a Python responder can do and still record every
scan durably before it replies. A reference row in scan_bench.py (not a target).

    python bench/durable_responder.py --url nats://127.0.0.1:PORT --db PATH
    python bench/durable_responder.py --url ... --db PATH --rules   # the "durable_rules" row

nats-py on uvloop (as gridcare's services), one queue-group subscription, no parsing: each
request's subject and body go into a queue; a writer task commits the whole queue to SQLite
(WAL, ``synchronous=FULL``, one ``executemany`` and one commit on the loop's thread, as
gridcare's register does) and then answers every request of the batch with a fixed verdict.
What it lacks next to gridcare is everything else: validation, rules, state, the reply's own
content, events, metrics. So its latency at 2,000 scans/s is the floor, on this machine, of
"durable before the reply" in one Python process.

``--rules`` adds the per-scan work of gridcare's own code and nothing else: the checkpoint's
validation (``domain.parse_scan``), its rules (``domain.evaluate``, every scanner a resident
of the gate's compound at the precaution level, as in the benchmark's community), its reply
(``scans.verdict_body``), its register row in a ``passages`` table made from
``tables.passages`` (the same columns, unique key and index), and its two per-scan metrics.
No state, permits, retries, events or outbox. So its throughput is the most a Python
process can keep of the bare ceiling while doing the work every verdict needs. Stops on
SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import nats
import uvloop

REPLY = (
    '{"scan_id":"-","verdict":"allow","reasons":[],"message":{"zh":"请通行","en":"Please pass"},'
    '"decided_at":"2026-01-01T00:00:00+00:00"}'
).encode()


def fixed_reply(conn: sqlite3.Connection) -> tuple[str, Callable]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS scans (id INTEGER PRIMARY KEY, subject TEXT, body BLOB)"
    )
    return "INSERT INTO scans (subject, body) VALUES (?, ?)", lambda m: (REPLY, (m.subject, m.data))


def gridcare_rules(db: str) -> tuple[str, Callable]:
    """gridcare's validation, rules, reply, register row and metrics for one scan."""
    import sqlalchemy as sa
    from prometheus_client import Counter, Histogram

    from gridcare.checkpoint.adapters import tables as T
    from gridcare.checkpoint.domain import InvalidScan, Policy, Situation, evaluate, parse_scan
    from gridcare.checkpoint.domain.scan import fingerprint
    from gridcare.checkpoint.entrypoints.scans import (
        PASSAGE_COLUMNS,
        reasons_json,
        reply_body,
        verdict_body,
    )
    from gridcare.contracts.refdata import ControlLevel

    T.passages.create(sa.create_engine(f"sqlite:///{db}"), checkfirst=True)
    insert = (
        f"INSERT INTO passages ({', '.join(PASSAGE_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(PASSAGE_COLUMNS))})"
    )
    policy, max_future, max_age = Policy(), timedelta(minutes=5), timedelta(days=28)
    verdicts = Counter("scans_total", "Gate scans answered, by verdict", ["verdict"])
    by_label = {v: verdicts.labels(v) for v in ("allow", "deny", "refer", "invalid")}
    latency = Histogram("scan_duration_seconds", "Time from request to reply")

    def work(msg) -> tuple[bytes, tuple | None]:
        t0 = time.perf_counter()
        now = datetime.now(UTC)
        try:
            gate = msg.subject.split(".")[1]
            scan = parse_scan(msg.data, gate, now, max_future, policy, max_age)
        except InvalidScan as exc:
            by_label["invalid"].inc()
            return reply_body(exc.reply()), None
        compound = "C-01"
        who = Situation(compound, ControlLevel.PRECAUTION, is_resident=True, is_known=True)
        verdict = evaluate(scan, who, policy, now).verdict
        decided = now.isoformat()
        body = verdict_body(scan.scan_id, verdict, decided)
        row = dict(
            gate_id=scan.gate_id,
            scan_id=scan.scan_id,
            compound_id=compound,
            person_id=scan.person_id,
            direction=scan.direction,
            verdict=verdict.verdict,
            reasons=reasons_json(verdict.reasons),
            temperature_c=scan.temperature_c,
            scanned_at=scan.scanned_at.isoformat(),
            decided_at=decided,
            reply=body.decode(),
            permit_id=None,
            fingerprint=fingerprint(scan),
        )
        by_label[verdict.verdict].inc()
        latency.observe(time.perf_counter() - t0)
        return body, tuple(row[c] for c in PASSAGE_COLUMNS)

    return insert, work


async def run(url: str, db: str, rules: bool, subject: str = "gate.*.scan") -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    insert, work = gridcare_rules(db) if rules else fixed_reply(conn)
    nc = await nats.connect(url, name="bench-durable")
    queue: list = []
    wake = asyncio.Event()

    async def on_scan(msg) -> None:
        queue.append((msg, *work(msg)))
        wake.set()

    async def writer() -> None:
        while True:
            await wake.wait()
            wake.clear()
            while queue:
                batch = queue[:1000]
                del queue[:1000]
                conn.execute("BEGIN")
                conn.executemany(insert, [row for _, _, row in batch if row is not None])
                conn.execute("COMMIT")
                for m, body, _ in batch:
                    await nc.publish(m.reply, body)

    task = asyncio.create_task(writer())
    await nc.subscribe(subject, queue="bench-durable", cb=on_scan, pending_msgs_limit=200_000)
    await nc.flush()
    print("ready", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await nc.drain()
    task.cancel()
    conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--rules", action="store_true", help="gridcare's per-scan work (see above)")
    p.add_argument(
        "--subject",
        default="gate.*.scan",
        help="what it answers (screening_bench.py: 'resident.*.checkin', without --rules)",
    )
    args = p.parse_args()
    uvloop.run(run(args.url, args.db, args.rules, args.subject))


if __name__ == "__main__":
    main()
