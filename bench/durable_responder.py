"""The "durable bare" responder: the least a Python responder can do and still record every
scan durably before it replies. A reference row in scan_bench.py (not a target).

    python bench/durable_responder.py --url nats://127.0.0.1:PORT --db PATH

nats-py on uvloop (as gridcare's services), one queue-group subscription, no parsing: each
request's subject and body go into a queue; a writer task commits the whole queue to SQLite
(WAL, ``synchronous=FULL``, one ``executemany`` and one commit on the loop's thread, as
gridcare's register does) and then answers every request of the batch with a fixed verdict.
What it lacks next to gridcare is everything else: validation, rules, state, the reply's own
content, events, metrics. So its latency at 2,000 scans/s is the floor, on this machine, of
"durable before the reply" in one Python process. Stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sqlite3

import nats
import uvloop

REPLY = (
    '{"scan_id":"-","verdict":"allow","reasons":[],"message":{"zh":"请通行","en":"Please pass"},'
    '"decided_at":"2026-01-01T00:00:00+00:00"}'
).encode()


async def run(url: str, db: str) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS scans (id INTEGER PRIMARY KEY, subject TEXT, body BLOB)"
    )
    nc = await nats.connect(url, name="bench-durable")
    queue: list = []
    wake = asyncio.Event()

    async def on_scan(msg) -> None:
        queue.append(msg)
        wake.set()

    async def writer() -> None:
        while True:
            await wake.wait()
            wake.clear()
            while queue:
                batch = queue[:1000]
                del queue[:1000]
                conn.execute("BEGIN")
                conn.executemany(
                    "INSERT INTO scans (subject, body) VALUES (?, ?)",
                    [(m.subject, m.data) for m in batch],
                )
                conn.execute("COMMIT")
                for m in batch:
                    await nc.publish(m.reply, REPLY)

    task = asyncio.create_task(writer())
    await nc.subscribe("gate.*.scan", queue="bench-durable", cb=on_scan, pending_msgs_limit=200_000)
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
    args = p.parse_args()
    uvloop.run(run(args.url, args.db))


if __name__ == "__main__":
    main()
