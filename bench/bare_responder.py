"""The "bare" responder on ``gate.*.scan``: the ceiling scan_bench.py compares gridcare with.

    python bench/bare_responder.py --url nats://127.0.0.1:PORT [--loop uvloop]

Plain nats-py, one queue-group subscription, parses nothing, answers every request with the
same small verdict. It measures what one Python process can answer on this machine through
the client library, nats-server and loopback, with no work per scan. Stops on SIGTERM/SIGINT.
``--loop uvloop`` runs it on uvloop, the event loop gridcare's services use (an extra
reference row in the report; the target ratios use the plain asyncio one).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import nats
import uvloop

REPLY = (
    '{"scan_id":"-","verdict":"allow","reasons":[],"message":{"zh":"请通行","en":"Please pass"},'
    '"decided_at":"2026-01-01T00:00:00+00:00"}'
).encode()


async def run(url: str, subject: str = "gate.*.scan") -> None:
    nc = await nats.connect(url, name="bench-bare")

    async def on_scan(msg) -> None:
        await nc.publish(msg.reply, REPLY)

    await nc.subscribe(subject, queue="bench-bare", cb=on_scan)
    await nc.flush()
    print("ready", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await nc.drain()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    p.add_argument(
        "--subject",
        default="gate.*.scan",
        help="what it answers (screening_bench.py: 'resident.*.checkin')",
    )
    args = p.parse_args()
    if args.loop == "uvloop":
        uvloop.run(run(args.url, args.subject))
    else:
        asyncio.run(run(args.url, args.subject))


if __name__ == "__main__":
    main()
