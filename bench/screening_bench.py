"""Screening's benchmarks (issue 14): daily check-ins on the resident edge, the morning
reminder pass, and check-ins during that pass. See bench/README.md ("screening") for what
each figure means.

    .venv/bin/python bench/screening_bench.py                 # all three, twice each (~4 min)
    .venv/bin/python bench/screening_bench.py --quick         # shorter phases, fewer rows
    .venv/bin/python bench/screening_bench.py --only checkin  # or: reminder, rush
    .venv/bin/python bench/screening_bench.py --keep          # keep the temp dir

**checkin**: screening as its own process (``python -m gridcare.screening``, SQLite,
synchronous FULL, as ``make run``) with a community of ``--residents`` people written into
its store; an open-loop generator (its own process, nats-py) sends ``--rate`` check-ins a
second to ``resident.<person_id>.checkin`` on a fixed schedule without waiting for replies,
the latency taken from each request's *scheduled* send time (no coordinated omission); then
a closed loop (``--inflight`` requests outstanding) for the most it answers. The same load
goes to the baseline, ``bare_responder.py --subject 'resident.*.checkin'`` (the scan bench's
bare nats-py responder: parses nothing, a fixed reply). After the run every reply recorded
must be a row in screening's ``checkin_requests`` (committed before the reply).

**reminder**: ``--reminder-residents`` residents written into screening's tables directly
(one transaction, as notify_bench does for its broadcast compound), a share checked in
today, a share reminded and silent the two days before (door visits); screening built in
this process on that store with its clock at 10:30 local (past the default reminder time,
10:00); ``checkins.remind`` timed from its start to its last batch committed (reminder rows
and outbox rows), then the outbox drained to NATS (JetStream, fsync always). Baseline: one
bare SQL ``INSERT ... SELECT`` of the same reminder rows and as many outbox rows in a copy
of the same store (sqlite3, WAL, synchronous FULL).

**rush**: the reminder pass while check-ins come in: screening built in this process on
a copy of the reminder store, its check-in edge on NATS; the check-in generator (its own
process, open loop at ``--rate``) runs 3 s before the pass starts and on during it; each
check-in's latency counts before, during or after the pass by its scheduled send time.

A harness-only mode: ``--loadgen JSON`` (the generator process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from benchkit import fmt, machine_cpu_s, machine_info, proc_cpu_s, source_fingerprint

ROOT = Path(__file__).resolve().parent.parent
RUSH_BEFORE_S = 3.0  # check-ins measured before the pass starts (the run's own baseline)
#: and for this long from its start (the pass alone takes about 5 s; making way for the
#: check-ins it takes longer, and all of it must be under load)
RUSH_PASS_S = 15.0
PY = sys.executable
ZONE = "Asia/Shanghai"
TZ = ZoneInfo(ZONE)


# --- the generator (its own process) ------------------------------------------------------
def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


class Loadgen:
    """Check-ins on ``resident.<id>.checkin``: ``open`` (a fixed schedule, latency from the
    scheduled time) or ``closed`` (``inflight`` outstanding). One reply inbox."""

    def __init__(self, a: dict) -> None:
        self.a = a
        self.people = Path(a["residents"]).read_text().split()
        self.rnd = random.Random(a["seed"])
        self.seq = 0
        self.outstanding: dict[int, float] = {}
        self.measured_from = math.inf
        self.window = (math.inf, math.inf)
        self.sending = True
        self.ok_all = 0  # every check-in reply (warm-up included): rows screening must have
        self.ok = self.errors = self.timeouts = self.late = 0
        self.status = {"recorded": 0, "replaced": 0}
        self.follow_up = 0
        self.error_samples: list[str] = []
        self.latencies: list[float] = []
        self.replied: list[str] = []  # the checkin_ids answered (late ones too)
        self.send_lags: list[float] = []
        self.samples: list[tuple[float, float]] = []  # (scheduled, latency): open, measured
        self.idle = asyncio.Event()
        self.now_text, self.now_at = "", 0.0

    def body(self, seq: int) -> tuple[str, bytes]:
        person = self.rnd.choice(self.people)
        t = time.perf_counter()
        if t - self.now_at > 0.001:
            self.now_local = datetime.now(TZ)
            self.now_text = self.now_local.isoformat(timespec="milliseconds")
            self.now_at = t
        today = self.now_local.date()
        day = today if self.rnd.random() < 0.5 else today - timedelta(days=1)
        fever = self.rnd.random() < self.a["fever_share"]
        doc = {
            "checkin_id": f"{self.a['tag']}-{seq}",
            "person_id": person,
            "day": day.isoformat(),
            "temperature_c": round(self.rnd.uniform(37.5, 38.5), 1)
            if fever
            else round(self.rnd.uniform(36.0, 36.9), 1),
            "symptoms": ["cough"] if fever else [],
            "submitted_at": self.now_text,
        }
        return f"resident.{person}.checkin", json.dumps(doc).encode()

    async def send(self, stamp: float | None = None) -> None:
        seq = self.seq
        self.seq += 1
        subject, body = self.body(seq)
        self.outstanding[seq] = stamp if stamp is not None else time.perf_counter()
        await self.nc.publish(subject, body, reply=f"{self.inbox}.{seq}")

    async def on_reply(self, msg) -> None:
        now = time.perf_counter()
        seq = int(msg.subject.rsplit(".", 1)[1])
        sent = self.outstanding.pop(seq, None)
        good = b'"error"' not in msg.data  # a check-in's reply (the bare one: a fixed one)
        self.ok_all += good  # late ones too: what screening must have kept
        if good:
            self.replied.append(f"{self.a['tag']}-{seq}")
        if sent is None:
            self.late += 1
            return
        if self.a["mode"] == "open":
            count = seq >= self.measured_from
        else:
            count = self.window[0] <= now <= self.window[1]
        if count:
            if self.a["mode"] == "open":
                self.samples.append((sent, now - sent if good else math.inf))
            if good:
                self.ok += 1
                self.latencies.append(now - sent)
                self.status["replaced" if b'"replaced"' in msg.data else "recorded"] += 1
                self.follow_up += b'"follow_up": true' in msg.data or b'"follow_up":true' in (
                    msg.data
                )
            else:
                self.errors += 1
                self.latencies.append(math.inf)
                if len(self.error_samples) < 3:
                    self.error_samples.append(msg.data[:300].decode(errors="replace"))
        if self.a["mode"] == "closed" and self.sending:
            await self.send()
        if not self.sending and not self.outstanding:
            self.idle.set()

    async def reaper(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            now = time.perf_counter()
            expired = []
            for seq, sent in self.outstanding.items():
                if now - sent < self.a["timeout"]:
                    break
                expired.append(seq)
            for seq in expired:
                self.outstanding.pop(seq)
                if self.a["mode"] == "open":
                    counted = seq >= self.measured_from
                else:
                    counted = self.window[0] <= now <= self.window[1]
                if counted:
                    self.timeouts += 1
                    self.latencies.append(math.inf)
                    if self.a["mode"] == "open":
                        self.samples.append((sent, math.inf))
                if self.a["mode"] == "closed" and self.sending:
                    await self.send()
            if not self.sending and not self.outstanding:
                self.idle.set()

    @staticmethod
    def emit(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    async def run_open(self) -> None:
        a = self.a
        rate = a["rate"]
        n_warm = int(rate * a["warmup"])
        total = n_warm + int(rate * a["duration"])
        self.measured_from = n_warm
        start = time.perf_counter() + 0.05
        while self.seq < total:
            due = min(total, int((time.perf_counter() - start) * rate) + 1)
            while self.seq < due:
                if self.seq == n_warm:
                    self.cpu0, self.t0 = time.process_time(), time.perf_counter()
                    self.emit({"event": "measure_start"})
                scheduled = start + self.seq / rate
                if self.seq >= n_warm:
                    self.send_lags.append(time.perf_counter() - scheduled)
                await self.send(stamp=scheduled)
            await asyncio.sleep(max(0.0, start + self.seq / rate - time.perf_counter()))
        self.finish_window()
        self.sent_measured = total - n_warm
        await self.drain(start + (total - 1) / rate + a["timeout"] + 0.2)
        for seq in list(self.outstanding):
            if seq >= self.measured_from:
                self.samples.append((self.outstanding.pop(seq), math.inf))
                self.timeouts += 1
                self.latencies.append(math.inf)

    async def run_closed(self) -> None:
        a = self.a
        for _ in range(a["inflight"]):
            await self.send()
        await asyncio.sleep(a["warmup"])
        self.cpu0, self.t0 = time.process_time(), time.perf_counter()
        self.window = (self.t0, self.t0 + a["duration"])
        self.emit({"event": "measure_start"})
        await asyncio.sleep(a["duration"])
        self.finish_window()
        self.window = (self.t0, self.t0 + self.elapsed)
        await self.drain(time.perf_counter() + a["timeout"])

    def finish_window(self) -> None:
        self.elapsed = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.cpu0
        self.emit({"event": "measure_end"})
        self.sending = False

    async def drain(self, deadline: float) -> None:
        if not self.outstanding:
            self.idle.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle.wait(), max(0.0, deadline - time.perf_counter()))

    async def main(self) -> dict:
        import nats

        self.nc = await nats.connect(self.a["url"], name="bench-checkins", allow_reconnect=False)
        self.inbox = self.nc.new_inbox()
        await self.nc.subscribe(f"{self.inbox}.*", cb=self.on_reply)
        await self.nc.flush()
        # the generator's own full GC passes would add their pauses to whichever replies
        # are due then (the same for both responders): what is loaded stays out of them
        gc.collect()
        gc.freeze()
        reaper = asyncio.create_task(self.reaper())
        try:
            await (self.run_open() if self.a["mode"] == "open" else self.run_closed())
        finally:
            reaper.cancel()
            await self.nc.close()
        lat = sorted(self.latencies)
        ms = lambda v: None if math.isinf(v) or math.isnan(v) else round(v * 1000, 2)  # noqa: E731
        res = {
            "event": "result",
            "mode": self.a["mode"],
            "window_s": round(self.elapsed, 3),
            "ok": self.ok,
            "ok_all": self.ok_all,
            "late_replies": self.late,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "status": self.status,
            "follow_up": self.follow_up,
            "error_samples": self.error_samples,
            "loadgen_cpu_s": round(self.cpu, 3),
            "replies_per_s": round(self.ok / self.elapsed, 1),
            "latency_ms": {
                "p50": ms(percentile(lat, 50)),
                "p90": ms(percentile(lat, 90)),
                "p99": ms(percentile(lat, 99)),
                "max": ms(lat[-1]) if lat else None,
            },
        }
        if self.a["mode"] == "open":
            lags = sorted(self.send_lags)
            res["sent"] = self.sent_measured
            res["offered_rate"] = self.a["rate"]
            res["send_lag_ms"] = {"p99": ms(percentile(lags, 99)), "max": ms(lags[-1])}
        else:
            res["inflight"] = self.a["inflight"]
        return res


def loadgen_main(spec: str) -> None:
    import uvloop

    gen = Loadgen(json.loads(spec))
    result = uvloop.run(gen.main())
    if gen.a.get("replied_file"):
        Path(gen.a["replied_file"]).write_text("\n".join(gen.replied))
    if gen.a.get("samples_file"):  # time.perf_counter is CLOCK_MONOTONIC: one clock for all
        Path(gen.a["samples_file"]).write_text(
            "\n".join(f"{t:.6f} {lat:.6f}" for t, lat in gen.samples)
        )
    Loadgen.emit(result)


# --- the harness --------------------------------------------------------------------------
def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def pct(xs: list[float], p: float) -> float:
    return percentile(sorted(xs), p)


def spread(values: list[float | None]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    if len(vals) == 1:
        return fmt(float(vals[0]))
    return f"{min(vals):.2f}–{max(vals):.2f}"


def screening_env(nats_url: str, db: Path, var: Path) -> dict[str, str]:
    env = {
        "GRIDCARE_NATS_URL": nats_url,
        "GRIDCARE_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "GRIDCARE_VAR_DIR": str(var),
        "GRIDCARE_LOG_LEVEL": "WARNING",
        "GRIDCARE_SQLITE_SYNCHRONOUS": "FULL",
    }
    return {k: v for k, v in {**os.environ, **env}.items() if k != "NATS_URL"}


def migrate(env: dict[str, str], log: Path) -> None:
    with open(log, "ab") as out:
        subprocess.run(
            [PY, "-m", "gridcare.screening", "migrate"], env=env, stdout=out, stderr=out, check=True
        )


def seed_community(
    db: Path, residents: int, per_household: int = 4, buildings: int = 50
) -> list[str]:
    """One community (Asia/Shanghai), two compounds, ``buildings`` buildings, households of
    ``per_household``: written into screening's own reference tables in one transaction,
    with the columns its projection would take. Returns the residents' ids."""
    import sqlalchemy as sa

    from gridcare.screening.adapters import tables as T

    n_households = math.ceil(residents / per_household)
    people = [f"R-{i:06d}" for i in range(residents)]
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as c:
            c.execute(sa.insert(T.communities), [{"community_id": "CM-B", "time_zone": ZONE}])
            c.execute(
                sa.insert(T.compounds),
                [{"compound_id": f"C-B{k}", "community_id": "CM-B"} for k in (1, 2)],
            )
            c.execute(
                sa.insert(T.buildings),
                [
                    {
                        "building_id": f"B-{b:03d}",
                        "compound_id": f"C-B{1 + b % 2}",
                        "grid_id": f"G-B{b % 10}",
                    }
                    for b in range(buildings)
                ],
            )
            c.execute(
                sa.insert(T.grids),
                [
                    {"grid_id": f"G-B{g}", "community_id": "CM-B", "worker_id": f"W-B{g}"}
                    for g in range(10)
                ],
            )
            c.execute(
                sa.insert(T.households),
                [
                    {"household_id": f"H-{h:06d}", "building_id": f"B-{h % buildings:03d}"}
                    for h in range(n_households)
                ],
            )
            c.execute(
                sa.insert(T.residents),
                [
                    {
                        "resident_id": p,
                        "household_id": f"H-{i // per_household:06d}",
                        "name": f"Resident {i}",
                        "phone": f"+86 139 {i:08d}",
                    }
                    for i, p in enumerate(people)
                ],
            )
    finally:
        engine.dispose()
    return people


def batch_metrics(url: str) -> dict[str, float]:
    """Screening's check-in transactions so far, from its metrics: how many, the check-ins
    in them, their time, and how many took longer than 10 ms."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    out = {"commits": 0.0, "checkins": 0.0, "seconds": 0.0, "over_10ms": 0.0}
    within_10ms = 0.0
    for fam in text_string_to_metric_families(text):
        for smp in fam.samples:
            if smp.name.endswith("checkin_batch_size_sum"):
                out["checkins"] = smp.value
            elif smp.name.endswith("checkin_commit_duration_seconds_count"):
                out["commits"] = smp.value
            elif smp.name.endswith("checkin_commit_duration_seconds_sum"):
                out["seconds"] = smp.value
            elif (
                smp.name.endswith("checkin_commit_duration_seconds_bucket")
                and float(smp.labels["le"]) == 0.01
            ):
                within_10ms = smp.value
    out["over_10ms"] = out["commits"] - within_10ms
    return out


def count_rows(db: Path, table: str, where: str = "") -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute(f"SELECT count(*) FROM {table} {where}").fetchone()[0]
    finally:
        con.close()


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.logs = tmp / "log"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.nats = None
        self.results: dict = {
            "checkin": {"runs": []},
            "reminder": {"runs": []},
            "rush": {"runs": []},
        }

    def start_nats(self) -> None:
        from gridcare.cli.devrun import NatsServer

        self.nats = NatsServer(
            store_dir=self.tmp / "nats", sync_interval="always", log_file=self.logs / "nats.log"
        ).start()
        say(f"nats-server on {self.nats.url} (pid {self.nats.proc.pid})")

    # --- check-ins --------------------------------------------------------------------------
    def spec(self, mode: str, tag: str, residents: str, **more: object) -> dict:
        """The check-in generator's settings (``--loadgen``): ``residents`` a file of ids in
        the temp dir; ``more`` its warm-up, duration and output files."""
        return {
            "url": self.nats.url,
            "mode": mode,
            "residents": str(self.tmp / residents),
            "tag": tag,
            "seed": hash(tag) & 0xFFFF,
            "rate": self.args.rate,
            "inflight": self.args.inflight,
            "timeout": 5.0,
            "fever_share": 0.02,
            **more,
        }

    def loadgen(
        self, mode: str, tag: str, pids: dict[str, int], metrics_url: str | None = None
    ) -> dict:
        a = self.args
        spec = self.spec(
            mode,
            tag,
            "residents.txt",
            warmup=1.0 if a.quick else 2.0,
            duration=4.0 if a.quick else 10.0,
            replied_file=str(self.tmp / f"replied-{tag}.txt"),
        )
        p = subprocess.Popen(
            [PY, __file__, "--loadgen", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=open(self.logs / "loadgen.log", "ab"),
            text=True,
        )
        pids = {**pids, "loadgen": p.pid}
        cpu: dict[str, dict] = {}
        result = None
        for line in p.stdout:
            ev = json.loads(line)
            if ev["event"] in ("measure_start", "measure_end"):
                cpu[ev["event"]] = {
                    "t": time.monotonic(),
                    "machine": sum(machine_cpu_s()),
                    **{k: proc_cpu_s(v) for k, v in pids.items()},
                    "batches": batch_metrics(metrics_url) if metrics_url else None,
                }
            elif ev["event"] == "result":
                result = ev
        p.wait()
        if result is None:
            raise RuntimeError(f"the generator failed; see {self.logs / 'loadgen.log'}")
        s, e = cpu["measure_start"], cpu["measure_end"]
        dt = e["t"] - s["t"]
        cores = {
            k: None if s.get(k) is None or e.get(k) is None else round((e[k] - s[k]) / dt, 2)
            for k in ("machine", *pids)
        }
        result["cpu_cores"] = cores
        if s["batches"] and e["batches"]:  # screening's transactions in the window
            result["batches"] = {k: e["batches"][k] - s["batches"][k] for k in s["batches"]}
        known = sum(v for k, v in cores.items() if k != "machine" and v)
        result["cpu_cores"]["other"] = round(cores["machine"] - known, 2)
        if cores.get("responder") and result["replies_per_s"]:
            result["responder_cpu_us_per_reply"] = round(
                1e6 * cores["responder"] / result["replies_per_s"], 0
            )
        return result

    def run_bare(self, tag: str, durable: bool = False) -> dict:
        """A baseline under the same load: ``bare_responder.py`` (a fixed reply, no work)
        or, ``durable``, ``durable_responder.py`` (each request's raw bytes group-committed
        to its own SQLite file, WAL, synchronous FULL, on the loop's thread, before a fixed
        reply: what the disk alone costs a durable reply at that moment)."""
        script = "durable_responder.py" if durable else "bare_responder.py"
        cmd = [PY, str(ROOT / "bench" / script), "--url", self.nats.url]
        cmd += ["--subject", "resident.*.checkin"]
        if durable:
            cmd += ["--db", str(self.tmp / f"{tag}.db")]
        p = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=open(self.logs / "bare.log", "ab"), text=True
        )
        try:
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(f"{script} did not start")
            pids = {"responder": p.pid, "nats": self.nats.proc.pid}
            return self.phases(pids, tag)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(10)

    def run_screening(self, svc, tag: str) -> dict:
        pids = {"responder": svc.proc.pid, "nats": self.nats.proc.pid}
        return self.phases(pids, tag, f"http://127.0.0.1:{svc.http_port}/metrics")

    def phases(self, pids: dict[str, int], tag: str, metrics_url: str | None = None) -> dict:
        """The closed loop first (at most ``inflight`` left over), then the open loop: a
        responder slower than the offered rate is left with a backlog that would otherwise
        fill the next phase's window."""
        closed = self.loadgen("closed", f"{tag}-closed", pids, metrics_url)
        time.sleep(1.0)
        return {"open": self.loadgen("open", f"{tag}-open", pids, metrics_url), "closed": closed}

    def checkin(self) -> None:
        from gridcare.cli.devrun import ServiceProcess, free_port

        a = self.args
        db = self.tmp / "screening.db"
        env = screening_env(self.nats.url, db, self.tmp / "var")
        migrate(env, self.logs / "screening.log")
        t0 = time.monotonic()
        people = seed_community(db, a.residents)
        (self.tmp / "residents.txt").write_text("\n".join(people))
        say(
            f"{len(people):,} residents written into screening's store in "
            f"{time.monotonic() - t0:.1f}s"
        )
        replies = 0
        for run in range(a.repeat):
            tag = f"r{run}-{datetime.now(UTC):%H%M%S}"
            # one responder on the subject at a time (another queue group gets every
            # request too): the bare one, then screening started afresh on its store
            bare = self.run_bare(f"bare-{tag}")
            say(
                f"bare run {run + 1}: open p99 {bare['open']['latency_ms']['p99']} ms, "
                f"closed {bare['closed']['replies_per_s']}/s"
            )
            durable = self.run_bare(f"durable-{tag}", durable=True)
            say(
                f"durable bare run {run + 1}: open p99 "
                f"{durable['open']['latency_ms']['p99']} ms, "
                f"closed {durable['closed']['replies_per_s']}/s"
            )
            svc = ServiceProcess("screening", env, self.logs / "screening.log", free_port())
            svc.start().wait_ready(90)
            try:
                time.sleep(1.0)
                scr = self.run_screening(svc, f"scr-{tag}")
                time.sleep(2)  # screening's outbox (fever events) settles
            finally:
                svc.stop()
            replies += scr["open"]["ok_all"] + scr["closed"]["ok_all"]
            say(
                f"screening run {run + 1}: open p99 {scr['open']['latency_ms']['p99']} ms, "
                f"{scr['open']['replies_per_s']}/s answered; closed "
                f"{scr['closed']['replies_per_s']}/s"
            )
            self.results["checkin"]["runs"].append(
                {"bare": bare, "durable_bare": durable, "screening": scr}
            )
        ids = [line for f in self.tmp.glob("replied-scr-*.txt") for line in f.read_text().split()]
        con = sqlite3.connect(db)
        try:
            con.execute("CREATE TEMP TABLE replied (checkin_id TEXT PRIMARY KEY)")
            con.executemany("INSERT INTO replied VALUES (?)", [(i,) for i in ids])
            kept = con.execute(
                "SELECT count(*) FROM replied JOIN checkin_requests USING (checkin_id)"
            ).fetchone()[0]
        finally:
            con.close()
        stored = count_rows(db, "checkin_requests")
        self.results["checkin"]["durable"] = {
            "replies": replies,
            "replied_ids": len(ids),
            "replied_and_stored": kept,
            "checkin_requests": stored,
            "checkins": count_rows(db, "checkins"),
            "follow_ups": count_rows(db, "follow_ups"),
            "ok": kept == len(ids) == replies,
        }
        self.results["checkin"]["log_errors"] = log_errors(self.logs / "screening.log")
        say(f"durable: {replies} replies, {stored} rows in checkin_requests")

    # --- the reminder pass ------------------------------------------------------------------
    def reminder(self) -> None:
        a = self.args
        n = a.reminder_residents
        base = self.tmp / "reminder-seed.db"
        env = screening_env(self.nats.url, base, self.tmp / "var")
        migrate(env, self.logs / "screening.log")
        today = datetime.now(TZ).date()
        t0 = time.monotonic()
        people = seed_community(base, n, buildings=200)
        seeded = seed_checkins(base, people, today, a.checked_in_share, a.silent_share)
        took = time.monotonic() - t0
        say(
            f"{n:,} residents and {seeded['checkins_today']:,} of today's check-ins written "
            f"into screening's store in {took:.1f}s"
        )
        self.results["reminder"]["seed"] = {**seeded, "residents": n, "seconds": round(took, 1)}
        if "rush" in a.only:
            import uvloop

            (self.tmp / "rush-residents.txt").write_text("\n".join(people))
            for run in range(a.repeat):
                rdb = self.tmp / f"rush-{run}.db"
                shutil.copy(base, rdb)
                res = uvloop.run(self.rush_once(rdb, today, run))  # as a service process runs
                d = res["during"]
                say(
                    f"rush run {run + 1}: check-ins p99 {res['before']['p99']} ms before the "
                    f"pass, {d['p99']} ms during it ({d['n']:,}); the pass {res['pass_s']} s"
                )
                self.results["rush"]["runs"].append(res)
        if "reminder" not in a.only:
            return
        for run in range(a.repeat):
            bdb = self.tmp / f"baseline-{run}.db"
            shutil.copy(base, bdb)
            bl = baseline_insert_select(bdb, today)
            rdb = self.tmp / f"reminder-{run}.db"
            shutil.copy(base, rdb)
            res = asyncio.run(self.pass_once(rdb, today, run))
            res["baseline"] = bl
            res["ratio"] = round(res["pass_s"] / bl["seconds"], 1)
            say(
                f"reminder run {run + 1}: pass {res['pass_s']} s ({res['reminded']:,} reminded, "
                f"{res['visits']} visits), outbox drained at {res['drained_s']} s; baseline "
                f"{bl['seconds']} s"
            )
            self.results["reminder"]["runs"].append(res)

    def in_process(self, db: Path, today: date, var: str) -> tuple:
        """Screening built in this process on ``db``, its clock at 10:30 local today:
        ``(service, settings, now)``."""
        from gridcare.cli.devrun import free_port
        from gridcare.screening.bootstrap import build
        from gridcare.screening.config import ScreeningSettings

        settings = ScreeningSettings(
            nats_url=self.nats.url,
            database_url=f"sqlite+aiosqlite:///{db}",
            var_dir=self.tmp / var,
            http_port=free_port(),
            log_level="WARNING",
            screening_checkin_tick_s=3600,  # the harness runs the pass itself
        )
        now = datetime.combine(today, datetime.min.time().replace(hour=10, minute=30), TZ)
        now = now.astimezone(UTC)
        return build(settings, clock=lambda: now), settings, now

    async def rush_once(self, db: Path, today: date, run: int) -> dict:
        """The pass while check-ins come in: the generator (its own process, open loop at
        ``--rate``/s over NATS, as in the check-in bench) runs; ``RUSH_BEFORE_S`` into its
        measured window the pass starts. Each check-in's latency is put in the window its
        scheduled send time falls in (before the pass, during it, after it)."""
        from gridcare.screening.handlers import checkins

        svc, settings, now = self.in_process(db, today, f"var-rush-{run}")
        await svc.start()
        gc.collect()  # as Service.run does once ready
        gc.freeze()
        samples = self.tmp / f"rush-{run}-samples.txt"
        log = open(self.logs / "loadgen.log", "ab")  # noqa: ASYNC230 (opened once, before the load)
        spec = self.spec(
            "open",
            f"rush-{run}",
            "rush-residents.txt",
            warmup=2.0,
            duration=RUSH_BEFORE_S + RUSH_PASS_S,
            samples_file=str(samples),
        )
        gen = await asyncio.create_subprocess_exec(
            PY,
            __file__,
            "--loadgen",
            json.dumps(spec),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        try:
            assert gen.stdout is not None
            while json.loads(await gen.stdout.readline())["event"] != "measure_start":
                pass
            await asyncio.sleep(RUSH_BEFORE_S)
            t0 = time.perf_counter()
            done = await checkins.remind(svc.unit_of_work, now, settings.screening_reminder_batch)
            t1 = time.perf_counter()
            await gen.communicate()
        finally:
            if gen.returncode is None:
                gen.kill()
                await gen.wait()
            await svc.stop()
            gc.unfreeze()
            log.close()
        phases: dict[str, list[float]] = {"before": [], "during": [], "after": []}
        for line in samples.read_text().split("\n"):
            if line:
                t, lat = map(float, line.split())
                phase = "before" if t < t0 else "during" if t <= t1 else "after"
                phases[phase].append(lat)

        def summary(xs: list[float]) -> dict:
            xs.sort()
            ms = lambda v: None if math.isinf(v) else round(v * 1000, 1)  # noqa: E731
            return {
                "n": len(xs),
                "p50": ms(percentile(xs, 50)) if xs else None,
                "p99": ms(percentile(xs, 99)) if xs else None,
                "max": ms(xs[-1]) if xs else None,
                "timeouts": sum(math.isinf(x) for x in xs),
            }

        return {
            "pass_s": round(t1 - t0, 2),
            "reminded": done.get("reminded", 0),
            "visits": done.get("visits_requested", 0),
            "load_ended_first": not phases["after"],
            **{k: summary(v) for k, v in phases.items()},
        }

    async def pass_once(self, db: Path, today: date, run: int) -> dict:
        import sqlalchemy as sa

        from gridcare.screening.handlers import checkins

        svc, settings, now = self.in_process(db, today, f"var-{run}")
        await svc.start()
        outbox = svc.store.tables.outbox

        async def unsent() -> int:
            async with svc.store.sessions() as s:
                return await s.scalar(
                    sa.select(sa.func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
                )

        try:
            await asyncio.sleep(1.0)  # started and idle
            before = await unsent()
            cpu0, t0 = time.process_time(), time.perf_counter()
            done = await checkins.remind(svc.unit_of_work, now, settings.screening_reminder_batch)
            t1 = time.perf_counter()
            cpu_pass = time.process_time() - cpu0
            left_at_end = await unsent()
            while True:  # the relay's progress, from the table it empties
                left = await unsent()
                if left == 0 or time.perf_counter() - t1 > 300:
                    break
                await asyncio.sleep(0.05)
            t2 = time.perf_counter()
            async with svc.store.sessions() as s:
                rows = await s.scalar(sa.select(sa.func.count()).select_from(outbox))
        finally:
            await svc.stop()
        return {
            "pass_s": round(t1 - t0, 2),
            "pass_cpu_s": round(cpu_pass, 2),
            "drained_s": round(t2 - t0, 2),
            "drained": left == 0,
            "outbox_before": before,
            "outbox_unsent_at_pass_end": left_at_end,
            "outbox_rows": rows,
            "reminded": done.get("reminded", 0),
            "visits": done.get("visits_requested", 0),
            "reminder_rows": count_rows(db, "checkin_reminders", f"WHERE day = '{today}'"),
            "batch": settings.screening_reminder_batch,
        }

    # --- run and report ---------------------------------------------------------------------
    def run(self) -> None:
        self.start_nats()
        try:
            if "checkin" in self.args.only:
                self.checkin()
            if {"reminder", "rush"} & self.args.only:
                self.reminder()
        finally:
            self.nats.stop()


def seed_checkins(db: Path, people: list[str], today: date, share: float, silent: float) -> dict:
    """Today's check-ins for ``share`` of the residents (every k-th), and for ``silent`` of
    them reminders on each of the two days before with no check-in (door visits due)."""
    import sqlalchemy as sa

    from gridcare.screening.adapters import tables as T

    step = max(1, round(1 / share)) if share else 0
    sstep = max(1, round(1 / silent)) if silent else 0
    at = datetime.now(UTC)
    checkins, reminders = [], []
    for i, p in enumerate(people):
        if step and i % step == 0:
            checkins.append(
                {
                    "person_id": p,
                    "day": today,
                    "checkin_id": f"seed-{p}",
                    "temperature_c": 36.5,
                    "symptoms": [],
                    "note": "",
                    "reported_by": None,
                    "source": "resident",
                    "submitted_at": at,
                    "recorded_at": at,
                    "follow_up": False,
                }
            )
        elif sstep and i % sstep == 1:
            for back in (1, 2):
                reminders.append(
                    {"person_id": p, "day": today - timedelta(days=back), "sent_at": at}
                )
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as c:
            if checkins:
                c.execute(sa.insert(T.checkins), checkins)
            if reminders:
                c.execute(sa.insert(T.checkin_reminders), reminders)
    finally:
        engine.dispose()
    return {"checkins_today": len(checkins), "silent_two_days": len(reminders) // 2}


def baseline_insert_select(db: Path, today: date) -> dict:
    """The floor: the same reminder rows, and an outbox row each (a JSON payload of about
    the same size), by one ``INSERT ... SELECT`` each in one transaction, sqlite3 with WAL
    and synchronous FULL, in a copy of the same store."""
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        at = datetime.now(UTC).isoformat()
        day = today.isoformat()
        todo = (
            "FROM residents r WHERE NOT EXISTS (SELECT 1 FROM checkins k WHERE "
            "k.person_id = r.resident_id AND k.day = :day) AND NOT EXISTS (SELECT 1 FROM "
            "checkin_reminders m WHERE m.person_id = r.resident_id AND m.day = :day)"
        )
        t0 = time.perf_counter()
        con.execute("BEGIN")
        con.execute(
            "INSERT INTO outbox (event_id, subject, payload, headers, created_at, attempts) "
            "SELECT 'bl-' || r.resident_id || '-' || :day, 'notify.requested.bulk', "
            "CAST(json_object('request_id', 'bl-' || r.resident_id, 'to', json_object("
            "'kind', 'person', 'person_id', r.resident_id), 'template', 'checkin.reminder', "
            "'params', json_object('name', r.name, 'day', :day), 'priority', 'bulk', "
            "'requested_at', :at, 'padding', hex(randomblob(120))) AS BLOB), "
            "json_object('Nats-Msg-Id', 'bl-' || r.resident_id), :at, 0 " + todo,
            {"day": day, "at": at},
        )
        n = con.execute(
            "INSERT INTO checkin_reminders (person_id, day, sent_at) SELECT r.resident_id, "
            ":day, :at " + todo,
            {"day": day, "at": at},
        ).rowcount
        con.execute("COMMIT")
        took = time.perf_counter() - t0
    finally:
        con.close()
    return {"seconds": round(took, 3), "rows": n}


def log_errors(path: Path, limit: int = 3) -> dict:
    lines = []
    try:
        for line in path.read_text(errors="replace").splitlines():
            if '"ERROR"' in line or "Traceback" in line or " ERROR " in line:
                lines.append(line[:300])
    except OSError:
        pass
    return {"count": len(lines), "first": lines[:limit]}


# --- the report ---------------------------------------------------------------------------
def render(r: dict, command: str) -> str:
    info, src = r["machine"], r["source"]
    out = [
        f"# Screening: check-ins and the reminder pass, {r['finished']}",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {info['nproc']} cores ({info['cpu']}), Python {info['python']}, "
        f"nats-server {info['versions']['nats-server']}; busy before the start "
        f"{info['busy_cores_before_start']} cores; fsync of a 4 KiB write p50 "
        f"{info['fsync_ms']['p50']} ms, p99 {info['fsync_ms']['p99']} ms. Code: "
        f"services/screening/src + shared/src sha256 {src['sha256']} ({src['files']} files, "
        f"newest {src['newest_utc']}).",
        "",
    ]
    ck = r.get("checkin")
    if ck and ck["runs"]:
        a = r["args"]
        out += [
            "## Check-ins on `resident.<person_id>.checkin` (target: p99 ≤ 50 ms at "
            f"{a['rate']:.0f}/s offered)",
            "",
            f"Screening as its own process (SQLite, synchronous FULL), {a['residents']:,} "
            "residents; each check-in for a random resident, today or yesterday (local), 2% "
            "with a fever and a cough (a follow-up, a status change, events). Open loop: "
            f"{a['rate']:.0f}/s on a schedule, latency from the scheduled send. Closed loop: "
            f"{a['inflight']} outstanding. Baselines under the same load, measured in the "
            "same run just before screening: **bare**, `bench/bare_responder.py --subject "
            "'resident.*.checkin'` (nats-py, a fixed reply, no work); **durable_bare**, "
            "`bench/durable_responder.py` on the same subject (each request's raw bytes "
            "group-committed to its own SQLite file, WAL, synchronous FULL, before a fixed "
            "reply: what the disk alone costs a durable reply at that moment).",
            "",
            "| run | responder | open: answered/s | p50 ms | p90 ms | p99 ms | max ms | "
            "timeouts | send lag p99 ms | closed: replies/s | CPU µs/reply (closed) | "
            "recorded / replaced |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for i, run in enumerate(ck["runs"], 1):
            for name in ("bare", "durable_bare", "screening"):
                o, c = run[name]["open"], run[name]["closed"]
                lat = o["latency_ms"]
                p99 = fmt(lat["p99"], 1) if lat["p99"] is not None else "timeout"
                rr = (
                    f"{o['status']['recorded']} / {o['status']['replaced']}"
                    if name == "screening"
                    else "-"
                )
                out.append(
                    f"| {i} | {name} | {o['replies_per_s']} | {fmt(lat['p50'])} | "
                    f"{fmt(lat['p90'])} | {p99} | "
                    f"{fmt(lat['max'])} | {o['timeouts']} | {fmt(o['send_lag_ms']['p99'])} | "
                    f"{c['replies_per_s']} | {fmt(c.get('responder_cpu_us_per_reply'), 0)} | {rr} |"
                )
        txs = [
            (i, phase, run["screening"][phase]["batches"])
            for i, run in enumerate(ck["runs"], 1)
            for phase in ("open", "closed")
            if run["screening"][phase].get("batches")
        ]
        if txs:
            out += [
                "",
                "Screening's check-in transactions in each measured window (from its metrics, "
                "`checkin_batch_size`, `checkin_commit_duration_seconds`; the time of one is "
                "its reads, writes and commit, during which the loop is blocked):",
                "",
                "| run | phase | transactions | check-ins each (mean) | ms each (mean) | "
                "over 10 ms |",
                "|---|---|---:|---:|---:|---:|",
            ]
            for i, phase, b in txs:
                n = b["commits"] or 1
                out.append(
                    f"| {i} | {phase} | {b['commits']:.0f} | {b['checkins'] / n:.1f} | "
                    f"{1e3 * b['seconds'] / n:.2f} | {b['over_10ms']:.0f} |"
                )
        p99s = [run["screening"]["open"]["latency_ms"]["p99"] for run in ck["runs"]]
        ratios_tp = [
            run["screening"]["open"]["replies_per_s"] / run["bare"]["open"]["replies_per_s"]
            for run in ck["runs"]
        ]
        ratios_closed = [
            run["screening"]["closed"]["replies_per_s"] / run["bare"]["closed"]["replies_per_s"]
            for run in ck["runs"]
        ]
        ratios_p99 = [
            (run["screening"]["open"]["latency_ms"]["p99"] or math.inf)
            / run["bare"]["open"]["latency_ms"]["p99"]
            for run in ck["runs"]
            if run["bare"]["open"]["latency_ms"]["p99"]
        ]
        ratios_durable = [
            (run["screening"]["open"]["latency_ms"]["p99"] or math.inf)
            / run["durable_bare"]["open"]["latency_ms"]["p99"]
            for run in ck["runs"]
            if run["durable_bare"]["open"]["latency_ms"]["p99"]
        ]
        worst = None if any(p is None for p in p99s) else max(p99s)
        d = ck["durable"]
        out += [
            "",
            "| check | runs (min–max) | target | result |",
            "|---|---:|---:|---|",
            f"| screening p99 at {a['rate']:.0f}/s | {spread(p99s)} ms | ≤ 50 ms | "
            f"{'PASS' if worst is not None and worst <= 50 else 'FAIL'} |",
            f"| answered/s ÷ bare's, open loop | {spread(ratios_tp)} | 1.00 (all answered) | "
            f"{'PASS' if min(ratios_tp) >= 0.99 else 'FAIL'} |",
            f"| p99 ÷ bare's p99, open loop | {spread(ratios_p99)} | reported | |",
            f"| p99 ÷ durable bare's p99, open loop | {spread(ratios_durable)} | reported | |",
            f"| replies/s ÷ bare's, closed loop ({a['inflight']} in flight) | "
            f"{spread(ratios_closed)} | reported | |",
            "| every reply durable: its `checkin_id` in screening's `checkin_requests` "
            f"after the run (warm-up and late replies included) | {d['replied_and_stored']:,} "
            f"of {d['replies']:,} | all | {'PASS' if d['ok'] else 'FAIL'} |",
            "",
            f"Screening's store after the runs: {d['checkin_requests']:,} check-ins received "
            "(more than the replies when the generator gave up on some before screening "
            f"answered them), {d['checkins']:,} in force, "
            f"{d['follow_ups']} follow-ups. Errors in screening's log: "
            f"{ck['log_errors']['count']}.",
            "",
            "CPU in cores during each measured window, from /proc:",
            "",
            "| run | responder | phase | loadgen | responder | nats-server | machine | other |",
            "|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for i, run in enumerate(ck["runs"], 1):
            for name in ("bare", "screening"):
                for m in ("open", "closed"):
                    cc = run[name][m]["cpu_cores"]
                    out.append(
                        f"| {i} | {name} | {m} | {fmt(cc.get('loadgen'))} | "
                        f"{fmt(cc.get('responder'))} | {fmt(cc.get('nats'))} | "
                        f"{fmt(cc.get('machine'))} | {fmt(cc.get('other'))} |"
                    )
        samples = [
            s
            for run in ck["runs"]
            for m in ("open", "closed")
            for s in run["screening"][m]["error_samples"]
        ]
        if samples:
            out += ["", "Error replies (samples): " + "; ".join(f"`{s}`" for s in samples[:3])]
        if ck.get("notes"):
            out += ["", *ck["notes"]]
        out.append("")
    rm = r.get("reminder")
    if rm and rm["runs"]:
        s = rm["seed"]
        out += [
            f"## The morning reminder pass over {s['residents']:,} residents (target: < 10 s)",
            "",
            f"{s['residents']:,} residents written into screening's own tables directly (one "
            f"transaction, {s['seconds']} s), {s['checkins_today']:,} of them checked in "
            f"today, {s['silent_two_days']:,} reminded on each of the two days before with no "
            "check-in (a door visit and a `checkin.missed` alert each). Screening built in "
            "the harness's process on a copy of that store (SQLite, synchronous FULL) with "
            "its clock at 10:30 local (reminders from 10:00); `handlers.checkins.remind` timed "
            "from its start to its last batch committed (reminder rows and outbox rows), then "
            "until the outbox relay had published every row to JetStream (fsync always). "
            "Baseline: one bare `INSERT ... SELECT` of the same reminder rows and as many "
            "outbox rows (a JSON payload of about the same size), in one transaction, in "
            "another copy of the same store (sqlite3, WAL, synchronous FULL).",
            "",
            "| run | pass s | pass CPU s | reminded | door visits | outbox rows | unsent at "
            "pass end | drained to NATS s | baseline s | pass ÷ baseline |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for i, x in enumerate(rm["runs"], 1):
            out.append(
                f"| {i} | {x['pass_s']} | {x['pass_cpu_s']} | {x['reminded']:,} | {x['visits']} | "
                f"{x['outbox_rows']:,} | {x['outbox_unsent_at_pass_end']:,} | "
                f"{x['drained_s'] if x['drained'] else 'not in 300 s'} | "
                f"{x['baseline']['seconds']} | {x['ratio']} |"
            )
        passes = [x["pass_s"] for x in rm["runs"]]
        expected = s["residents"] - s["checkins_today"]
        ok_rows = all(x["reminded"] == expected == x["reminder_rows"] for x in rm["runs"])
        out += [
            "",
            "| check | runs (min–max) | target | result |",
            "|---|---:|---:|---|",
            f"| the pass, start to last outbox row committed | {spread(passes)} s | < 10 s | "
            f"{'PASS' if max(passes) < 10 else 'FAIL'} |",
            f"| the outbox drained to NATS (from the pass's start) | "
            f"{spread([x['drained_s'] for x in rm['runs']])} s | reported | |",
            f"| pass ÷ bare INSERT ... SELECT | {spread([x['ratio'] for x in rm['runs']])} | "
            "reported | |",
            f"| everyone not checked in reminded once ({expected:,}) | "
            f"{', '.join(str(x['reminder_rows']) for x in rm['runs'])} | {expected:,} | "
            f"{'PASS' if ok_rows else 'FAIL'} |",
            "",
        ]
    ru = r.get("rush")
    if ru and ru["runs"]:
        a, s = r["args"], r["reminder"]["seed"]
        out += [
            "## Check-ins during the morning pass (target: p99 ≤ 50 ms, as at any time)",
            "",
            f"The same {s['residents']:,} residents; screening built in the harness's process "
            "as for the pass above, its check-in edge subscribed on NATS. The check-in "
            f"generator (open loop, {a['rate']:.0f}/s, its own process, as in the check-in "
            f"bench) runs {RUSH_BEFORE_S:.0f} s, then the pass starts while it goes on for "
            f"{RUSH_PASS_S:.0f} s more. Each check-in counts in the window its scheduled send "
            "falls in: before the pass (the run's baseline), during it, or after it. Those "
            "who check in during the pass are not reminded, so fewer are.",
            "",
            "| run | before: n | p50 ms | p99 ms | during: n | p50 ms | p99 ms | max ms | "
            "timeouts | pass s | reminded |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for i, x in enumerate(ru["runs"], 1):
            b, d = x["before"], x["during"]
            out.append(
                f"| {i} | {b['n']:,} | {fmt(b['p50'])} | {fmt(b['p99'])} | {d['n']:,} | "
                f"{fmt(d['p50'])} | {fmt(d['p99'])} | {fmt(d['max'])} | {d['timeouts']} | "
                f"{x['pass_s']}{' (outlasted the load)' if x['load_ended_first'] else ''} | "
                f"{x['reminded']:,} |"
            )
        during = [x["during"]["p99"] for x in ru["runs"]]
        ratios = [
            x["during"]["p99"] / x["before"]["p99"]
            for x in ru["runs"]
            if x["during"]["p99"] and x["before"]["p99"]
        ]
        worst = None if any(p is None for p in during) else max(during)
        out += [
            "",
            "| check | runs (min–max) | target | result |",
            "|---|---:|---:|---|",
            f"| check-in p99 during the pass | {spread(during)} ms | ≤ 50 ms | "
            f"{'PASS' if worst is not None and worst <= 50 else 'FAIL'} |",
            f"| p99 during ÷ p99 before | {spread(ratios)} | reported | |",
            "",
        ]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter phases, fewer residents")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument(
        "--only", default="checkin,reminder,rush", help="some of: checkin, reminder, rush"
    )
    ap.add_argument("--repeat", type=int, default=2, help="runs of each (the report's spread)")
    ap.add_argument("--residents", type=int, default=20_000)
    ap.add_argument("--rate", type=float, default=1000.0, help="check-ins/s offered (open loop)")
    ap.add_argument("--inflight", type=int, default=64, help="closed loop: outstanding")
    ap.add_argument("--reminder-residents", type=int, default=100_000)
    ap.add_argument("--checked-in-share", type=float, default=0.3)
    ap.add_argument("--silent-share", type=float, default=0.01)
    ap.add_argument("--loadgen", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.loadgen:
        loadgen_main(args.loadgen)
        return
    args.only = {x.strip() for x in args.only.split(",") if x.strip()}
    if args.quick and args.reminder_residents == 100_000:
        args.reminder_residents = 20_000
    command = "python bench/screening_bench.py " + " ".join(sys.argv[1:])
    command = ".venv/bin/" + command.strip()
    src = source_fingerprint("screening")
    info = machine_info(["nats-py", "sqlalchemy", "aiosqlite", "faststream"])
    tmp = Path(tempfile.mkdtemp(prefix="screening-bench-"))
    bench = Bench(args, tmp)
    failed = False
    try:
        bench.run()
    except Exception as exc:
        failed = True
        say(f"the harness failed: {exc!r} (logs in {tmp / 'log'})")
        args.keep = True
    report = {
        "finished": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}",
        "args": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
        "machine": info,
        "source": src,
        "source_after": source_fingerprint("screening"),
        **bench.results,
    }
    if src["sha256"] != report["source_after"]["sha256"]:
        report.setdefault("checkin", {}).setdefault("notes", []).append(
            "**Note**: screening's or the shared code changed while this ran "
            f"({src['sha256']} → {report['source_after']['sha256']})."
        )
    text = render(report, command)
    print(text)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    name = (
        "screening"
        if args.only == {"checkin", "reminder", "rush"} and not args.quick
        else "screening-partial"
    )
    (out / f"{name}.md").write_text(text)
    (out / f"{name}.json").write_text(json.dumps(report, indent=1, default=str))
    say(f"report: bench/results/{name}.md")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        say(f"kept {tmp}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
