"""Load generator for ``gate.<gate_id>.scan``: run as its own process by scan_bench.py.

Two modes, both with nats-py and one reply inbox per process (``_INBOX.<id>.<seq>``), so
the cost per request on the client side is one publish and one callback:

closed  keeps exactly ``--inflight`` requests outstanding: each reply (or timeout) sends the
        next one. Throughput = verdict replies received inside the measuring window / window.
open    sends at a fixed ``--rate`` on a schedule (request i is due at t0 + i/rate) without
        waiting for replies. Latency = reply time - *scheduled* time, so a generator or
        responder that falls behind shows up as latency (no coordinated omission). A request
        without a reply after ``--timeout`` counts as timed out and as +inf in percentiles.

Requests sent during ``--warmup`` are not counted. Progress goes to stdout as JSON lines:
``{"event": "measure_start"}``, ``{"event": "measure_end"}``, then ``{"event": "result", ...}``
(scan_bench.py samples CPU counters at the first two).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import sys
import time
from datetime import datetime, timedelta, timezone

import nats

CST = timezone(timedelta(hours=8))  # the community's clock: scanned_at with +08:00
GATES = ("g1", "g2")  # compound C-01 (precaution) in examples/community/gates.csv
TEMPLATE = (
    '{"scan_id":"%s","gate_id":"%s","direction":"%s","person_id":"%s",'
    '"scanned_at":"%s","temperature_c":%s,"mask":true,"health_code":"green"}'
)


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def scan_pool(residents: list[str], size: int = 4099, seed: int = 7) -> list[tuple]:
    """(subject, gate, direction, person, temperature) combinations, ~2% feverish."""
    rnd = random.Random(seed)
    pool = []
    for _ in range(size):
        gate = rnd.choice(GATES)
        if rnd.random() < 0.02:
            temp = round(rnd.uniform(37.3, 39.0), 1)
        else:
            temp = round(rnd.uniform(36.0, 36.9), 1)
        pool.append(
            (f"gate.{gate}.scan", gate, rnd.choice(("in", "out")), rnd.choice(residents), temp)
        )
    return pool


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (inf for timed-out requests)."""
    if not sorted_values:
        return math.nan
    k = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[k]


class Generator:
    def __init__(self, args: argparse.Namespace, residents: list[str]) -> None:
        self.args = args
        self.pool = scan_pool(residents)
        self.tag = args.tag
        self.seq = 0
        self.outstanding: dict[int, float] = {}  # seq -> send time (closed) / due time (open)
        self.measured_from = math.inf  # seq (open) or time (closed) where counting starts
        self.window = (math.inf, math.inf)  # (start, end) of the measuring window
        self.sending = True
        # counts over the measured requests
        self.ok = 0
        self.errors = 0
        self.timeouts = 0
        self.late = 0  # replies that came after their request had timed out
        self.verdicts = {"allow": 0, "deny": 0, "refer": 0}
        self.unknown_person = 0
        self.error_samples: list[str] = []
        self.latencies: list[float] = []
        self.send_lags: list[float] = []  # open loop: how late each measured send went out
        self.now_text = ""
        self.now_text_at = 0.0
        self.idle = asyncio.Event()  # set when sending has stopped and nothing is outstanding

    # --- requests -----------------------------------------------------------------------
    def payload(self, seq: int) -> tuple[str, bytes]:
        subject, gate, direction, person, temp = self.pool[seq % len(self.pool)]
        t = time.perf_counter()
        if t - self.now_text_at > 0.001:  # the clock text, refreshed every millisecond
            self.now_text = datetime.now(CST).isoformat(timespec="milliseconds")
            self.now_text_at = t
        body = TEMPLATE % (f"{self.tag}-{seq}", gate, direction, person, self.now_text, temp)
        return subject, body.encode()

    async def send(self, stamp: float | None = None) -> None:
        seq = self.seq
        self.seq += 1
        subject, body = self.payload(seq)
        self.outstanding[seq] = stamp if stamp is not None else time.perf_counter()
        await self.nc.publish(subject, body, reply=f"{self.inbox}.{seq}")

    # --- replies ------------------------------------------------------------------------
    async def on_reply(self, msg) -> None:
        now = time.perf_counter()
        seq = int(msg.subject.rsplit(".", 1)[1])
        sent = self.outstanding.pop(seq, None)
        if sent is None:
            self.late += 1
            return
        if self.args.mode == "open":
            count = seq >= self.measured_from
        else:
            count = self.window[0] <= now <= self.window[1]
        if count:
            self.record(msg.data, now - sent)
        if self.args.mode == "closed" and self.sending:
            await self.send()
        self.check_idle()

    def check_idle(self) -> None:
        if not self.sending and not self.outstanding:
            self.idle.set()

    def record(self, data: bytes, latency: float) -> None:
        if b'"verdict"' not in data:
            self.errors += 1
            self.latencies.append(math.inf)
            if len(self.error_samples) < 3:
                self.error_samples.append(data[:300].decode(errors="replace") or "(empty)")
            return
        self.ok += 1
        self.latencies.append(latency)
        for v in self.verdicts:
            if b'"' + v.encode() + b'"' in data:
                self.verdicts[v] += 1
                break
        if b"unknown_person" in data:
            self.unknown_person += 1

    async def reaper(self) -> None:
        """Times out requests older than --timeout (oldest first: dicts keep send order)."""
        timeout = self.args.timeout
        while True:
            await asyncio.sleep(0.1)
            now = time.perf_counter()
            expired = []
            for seq, sent in self.outstanding.items():
                if now - sent < timeout:
                    break
                expired.append(seq)
            for seq in expired:
                self.outstanding.pop(seq)
                if self.args.mode == "open":
                    counted = seq >= self.measured_from
                else:
                    counted = self.window[0] <= now <= self.window[1]
                if counted:
                    self.timeouts += 1
                    self.latencies.append(math.inf)
                if self.args.mode == "closed" and self.sending:
                    await self.send()
            self.check_idle()

    # --- the two modes ------------------------------------------------------------------
    async def run_closed(self) -> None:
        a = self.args
        for _ in range(a.inflight):
            await self.send()
        await asyncio.sleep(a.warmup)
        cpu0, t0 = time.process_time(), time.perf_counter()
        self.window = (t0, t0 + a.duration)
        emit({"event": "measure_start"})
        await asyncio.sleep(a.duration)
        t1 = time.perf_counter()
        self.window = (t0, t1)
        self.cpu = time.process_time() - cpu0
        self.elapsed = t1 - t0
        emit({"event": "measure_end"})
        self.sending = False
        await self.drain(time.perf_counter() + a.timeout)

    async def run_open(self) -> None:
        a = self.args
        rate = a.rate
        n_warm = int(rate * a.warmup)
        total = n_warm + int(rate * a.duration)
        self.measured_from = n_warm
        start = time.perf_counter() + 0.05
        cpu0 = t0 = None
        while self.seq < total:
            now = time.perf_counter()
            due = min(total, int((now - start) * rate) + 1)
            while self.seq < due:
                if self.seq == n_warm:
                    cpu0, t0 = time.process_time(), time.perf_counter()
                    emit({"event": "measure_start"})
                scheduled = start + self.seq / rate
                if self.seq >= n_warm:
                    self.send_lags.append(time.perf_counter() - scheduled)
                await self.send(stamp=scheduled)
            next_due = start + self.seq / rate
            await asyncio.sleep(max(0.0, next_due - time.perf_counter()))
        t1 = time.perf_counter()
        self.cpu = time.process_time() - cpu0
        self.elapsed = t1 - t0
        emit({"event": "measure_end"})
        self.sending = False
        self.sent_measured = total - n_warm
        await self.drain(start + (total - 1) / rate + a.timeout + 0.2)
        for seq in list(self.outstanding):  # not reaped yet: past their timeout by now
            if seq >= self.measured_from:
                self.outstanding.pop(seq)
                self.timeouts += 1
                self.latencies.append(math.inf)

    async def drain(self, deadline: float) -> None:
        """Wait for the outstanding requests' replies (or timeouts), at most until deadline."""
        self.check_idle()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle.wait(), max(0.0, deadline - time.perf_counter()))

    async def main(self) -> dict:
        a = self.args
        self.nc = await nats.connect(
            a.url, name=f"bench-loadgen-{a.mode}", allow_reconnect=False, connect_timeout=5
        )
        self.inbox = self.nc.new_inbox()
        await self.nc.subscribe(f"{self.inbox}.*", cb=self.on_reply)
        await self.nc.flush()
        reaper = asyncio.create_task(self.reaper())
        try:
            if a.mode == "closed":
                await self.run_closed()
            else:
                await self.run_open()
        finally:
            reaper.cancel()
            await self.nc.close()
        return self.result()

    def result(self) -> dict:
        a = self.args
        lat = sorted(self.latencies)
        ms = lambda v: None if math.isinf(v) or math.isnan(v) else round(v * 1000, 3)  # noqa: E731
        finite = [v for v in lat if not math.isinf(v)]
        res = {
            "event": "result",
            "mode": a.mode,
            "window_s": round(self.elapsed, 3),
            "ok": self.ok,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "late_replies": self.late,
            "verdicts": self.verdicts,
            "unknown_person": self.unknown_person,
            "error_samples": self.error_samples,
            "loadgen_cpu_s": round(self.cpu, 3),
            "latency_ms": {
                "p50": ms(percentile(lat, 50)),
                "p90": ms(percentile(lat, 90)),
                "p99": ms(percentile(lat, 99)),
                "max": ms(lat[-1]) if lat else None,
                "mean_of_answered": ms(sum(finite) / len(finite)) if finite else None,
            },
        }
        if a.mode == "closed":
            res["inflight"] = a.inflight
            res["replies_per_s"] = round(self.ok / self.elapsed, 1)
        else:
            n = len(lat)
            res["offered_rate"] = a.rate
            res["requests"] = n
            res["sent"] = self.sent_measured
            res["answered_per_s"] = round(self.ok / self.elapsed, 1)
            lags = sorted(self.send_lags)
            res["send_lag_ms"] = {"p99": ms(percentile(lags, 99)), "max": ms(lags[-1])}
        return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--mode", choices=("closed", "open"), required=True)
    p.add_argument("--residents", required=True, help="file with one resident id per line")
    p.add_argument("--tag", required=True, help="scan_id prefix, unique per run and phase")
    p.add_argument("--inflight", type=int, default=128)
    p.add_argument("--rate", type=float, default=2000.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args()
    with open(args.residents, encoding="utf-8") as f:
        residents = [line.strip() for line in f if line.strip()]
    emit(asyncio.run(Generator(args, residents).main()))


if __name__ == "__main__":
    main()
