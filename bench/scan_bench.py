"""Benchmark of the checkpoint's gate-scan path (``gate.<gate_id>.scan``), as ratios.

    .venv/bin/python bench/scan_bench.py            # full run, about 2-3 minutes
    .venv/bin/python bench/scan_bench.py --quick    # shorter phases, under about a minute

One run starts its own nats-server (loopback, temp dir, JetStream fsync "always") and
measures these responders one after another, never two at once:

  bare      bench/bare_responder.py: nats-py, fixed reply, no work (the ceiling)
  naive     bench/naive_responder.py: FastStream + pydantic + one SQLite commit per scan
  durable_bare  bench/durable_responder.py: nats-py + group commit of the raw requests to
            SQLite (FULL) before a fixed reply: the floor of "durable before the reply"
  durable_rules  the same with gridcare's own per-scan work (``--rules``): its validation,
            rules, reply, register row and metrics, and nothing else (no state or events)
  gridcare  the real checkpoint service (python -m gridcare.checkpoint), with a community
            of 2000 extra residents imported through ``gridcare import``

and, in a full run, the bare responder once more at the end, to see how much the machine
drifted meanwhile. For each: a closed-loop throughput phase and an open-loop latency phase
at a fixed offered rate (bench/loadgen.py, a separate process). The machine is shared and
noisy, so the figures that matter are the ratios against the baselines of the same run.
Writes the current report, bench/results/scan.md (kept in git: one report, the newest),
and its raw figures, bench/results/scan.json (not kept). Exits 0 whatever the figures;
non-zero only when the harness failed (a responder did not start, no replies).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import queue
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import nats
from benchkit import fmt, machine_cpu_s, machine_info, proc_cpu_s, source_fingerprint

from gridcare.cli.devrun import NatsServer, ServiceProcess, free_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
EXAMPLES = ROOT / "examples" / "community"
PY = sys.executable
CST = timezone(timedelta(hours=8))

# Households of compound C-01 (precaution), whose gates g1/g2 the scans go through.
C01_HOUSEHOLDS = ("H-0101", "H-0102", "H-0201")

TARGET_RATIO = {"gridcare/bare throughput": 0.70, "gridcare/naive throughput": 5.0}
TARGET_P99_MS = 5.0  # gridcare's p99 at the offered rate
# CPU busy (plus steal) outside the benchmark's own processes above which a phase counts as
# disturbed by other work on the machine
DISTURBED_CORES = 0.3


@dataclass
class Plan:
    quick: bool
    inflight: int = 128
    tp_warmup: float = 2.0
    tp_duration: float = 10.0
    rate: float = 2000.0
    lat_warmup: float = 1.0
    lat_duration: float = 10.0
    timeout: float = 5.0
    residents: int = 2000
    bare_again: bool = True
    only: tuple[str, ...] = ()  # measure only these responders (a partial run)

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if not quick:
            return cls(quick=False)
        return cls(
            quick=True,
            tp_warmup=1.0,
            tp_duration=3.0,
            lat_warmup=0.5,
            lat_duration=3.0,
            timeout=2.0,
            residents=500,  # the checkpoint projects them one by one: ~10 s saved
            bare_again=False,
        )


# --- processes: every one we start is registered here and stopped in cleanup() -------------
class Processes:
    def __init__(self) -> None:
        self.popens: list[subprocess.Popen] = []
        self.services: list[ServiceProcess] = []
        self.nats: NatsServer | None = None

    def popen(self, cmd: list[str], log: Path, **kw) -> subprocess.Popen:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            p = subprocess.Popen(
                cmd, stderr=out, start_new_session=True, stdout=kw.pop("stdout", out), **kw
            )
        self.popens.append(p)
        return p

    @staticmethod
    def stop_popen(p: subprocess.Popen, wait_s: float = 15.0) -> None:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(wait_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def cleanup(self) -> None:
        for p in self.popens:
            self.stop_popen(p, 5.0)
        for s in self.services:
            s.stop(wait_s=10.0)
        if self.nats:
            self.nats.stop()


# --- CPU counters from /proc ----------------------------------------------------------------


def nats_in_msgs(monitor_port: int) -> int | None:
    """Messages the server has received in all (its /varz), to cross-check the client."""
    try:
        url = f"http://127.0.0.1:{monitor_port}/varz"
        with urllib.request.urlopen(url, timeout=2) as r:
            return json.load(r)["in_msgs"]
    except (OSError, ValueError, KeyError):
        return None


def snapshot(pids: dict[str, int], monitor_port: int) -> dict:
    busy, steal = machine_cpu_s()
    snap = {name: proc_cpu_s(pid) for name, pid in pids.items()}
    snap.update(_t=time.monotonic(), _busy=busy, _steal=steal)
    snap["_in_msgs"] = nats_in_msgs(monitor_port)
    return snap


def cpu_cores(a: dict, b: dict) -> dict[str, float | None]:
    """Average cores used between two snapshots, per process and for the machine."""
    wall = b["_t"] - a["_t"]
    out: dict[str, float | None] = {}
    for k in a:
        if k in ("_t", "_in_msgs"):
            continue
        name = {"_busy": "machine_busy", "_steal": "machine_steal"}.get(k, k)
        out[name] = None if a[k] is None or b[k] is None else round((b[k] - a[k]) / wall, 2)
    return out


# --- community ------------------------------------------------------------------------------
def write_community(folder: Path, n: int) -> list[str]:
    """The example community plus ``n`` residents R-B0001... in compound C-01's households."""
    folder.mkdir(parents=True, exist_ok=True)
    for src in EXAMPLES.glob("*.csv"):
        shutil.copy(src, folder / src.name)
    path = folder / "residents.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0].keys())
    generated = [f"R-B{i:04d}" for i in range(1, n + 1)]
    for i, rid in enumerate(generated):
        rows.append(
            {
                "resident_id": rid,
                "household_id": C01_HOUSEHOLDS[i % len(C01_HOUSEHOLDS)],
                "name": f"Bench Resident {i + 1}",
                "phone": f"+86 139 2000 {(i + 1) % 10000:04d}",
                "language": "zh" if i % 3 else "en",
                "vulnerabilities": "",
            }
        )
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return generated


INSIDE = {  # the checkpoint's own metrics read around each phase
    "gridcare_checkpoint_register_batch_size_count": "batches",
    "gridcare_checkpoint_register_batch_size_sum": "scans",
    "gridcare_checkpoint_register_commit_duration_seconds_sum": "commit_s",
}


def service_counters(http_port: int) -> dict[str, float]:
    """The register's batch and commit counters from the checkpoint's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in INSIDE:
            out[INSIDE[name]] = float(value)
    return out


def diff_counters(a: dict, b: dict) -> dict:
    d = {k: b[k] - a.get(k, 0.0) for k in b}
    if d.get("batches"):
        d["scans_per_batch"] = round(d["scans"] / d["batches"], 1)
        d["commit_ms_mean"] = round(1000 * d["commit_s"] / d["batches"], 3)
    return d


def sqlite_count(db: Path, table: str, where: str = "") -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            q = f"SELECT COUNT(*) FROM {table}" + (f" WHERE {where}" if where else "")
            return con.execute(q).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return -1


# --- probing a responder --------------------------------------------------------------------
def probe(url: str, person: str, deadline: float, alive, accept) -> dict | None:
    """Send scans until one gets a reply ``accept`` likes; None at the deadline."""

    async def go() -> dict | None:
        nc = await nats.connect(url, name="bench-probe")
        try:
            n = 0
            while time.monotonic() < deadline and alive():
                n += 1
                body = {
                    "scan_id": f"probe-{os.getpid()}-{time.time_ns()}-{n}",
                    "gate_id": "g1",
                    "direction": "in",
                    "person_id": person,
                    "scanned_at": datetime.now(CST).isoformat(),
                    "temperature_c": 36.5,
                    "mask": True,
                    "health_code": "green",
                }
                try:
                    msg = await nc.request("gate.g1.scan", json.dumps(body).encode(), timeout=2)
                    reply = json.loads(msg.data)
                    if accept(reply):
                        return reply
                except (nats.errors.NoRespondersError, nats.errors.TimeoutError, ValueError):
                    pass
                await asyncio.sleep(0.3)
            return None
        finally:
            await nc.close()

    return asyncio.run(go())


def is_verdict(reply: dict) -> bool:
    return isinstance(reply, dict) and "verdict" in reply


def is_known_allow(reply: dict) -> bool:
    return (
        is_verdict(reply)
        and reply["verdict"] == "allow"
        and "unknown_person" not in reply.get("reasons", [])
    )


# --- the benchmark --------------------------------------------------------------------------
class Bench:
    def __init__(self, plan: Plan, tmp: Path) -> None:
        self.plan = plan
        self.tmp = tmp
        self.logs = tmp / "log"
        self.procs = Processes()
        self.results: dict[str, dict] = {}
        self.failures: list[str] = []
        self.nats: NatsServer | None = None
        self.residents_file = tmp / "residents.txt"
        self.people: list[str] = []
        self.run_tag = datetime.now(UTC).strftime("%H%M%S")

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # --- setup ------------------------------------------------------------------------------
    def start_nats(self) -> None:
        self.nats = NatsServer(
            store_dir=self.tmp / "nats", sync_interval="always", log_file=self.logs / "nats.log"
        )
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs.nats = self.nats
        self.nats.start()
        self.say(f"nats-server on {self.nats.url} (pid {self.nats.proc.pid})")

    def write_community(self) -> None:
        self.people = write_community(self.tmp / "community", self.plan.residents)
        self.residents_file.write_text("\n".join(self.people) + "\n")

    def import_community(self) -> None:
        folder = self.tmp / "community"
        env = {**os.environ, "GRIDCARE_NATS_URL": self.nats.url}
        t0 = time.monotonic()
        r = subprocess.run(
            [str(Path(PY).parent / "gridcare"), "import", str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        (self.logs / "import.log").write_text(r.stdout + r.stderr)
        if r.returncode != 0:
            raise RuntimeError(f"gridcare import failed ({r.returncode}): {r.stdout}{r.stderr}")
        last = (r.stdout + r.stderr).strip().splitlines()[-1:] or [""]
        self.say(f"imported the community in {time.monotonic() - t0:.1f}s: {last[0]}")

    # --- one load-generator run -------------------------------------------------------------
    def loadgen(self, name: str, mode: str, pids: dict[str, int]) -> dict:
        p = self.plan
        tag = f"{mode}-{name}-{self.run_tag}"
        cmd = [PY, str(BENCH / "loadgen.py"), "--url", self.nats.url, "--mode", mode]
        cmd += ["--residents", str(self.residents_file), "--tag", tag]
        cmd += ["--timeout", str(p.timeout)]
        if mode == "closed":
            cmd += ["--inflight", str(p.inflight)]
            cmd += ["--warmup", str(p.tp_warmup), "--duration", str(p.tp_duration)]
            budget = p.tp_warmup + p.tp_duration
        else:
            cmd += ["--rate", str(p.rate)]
            cmd += ["--warmup", str(p.lat_warmup), "--duration", str(p.lat_duration)]
            budget = p.lat_warmup + p.lat_duration
        log = self.logs / f"loadgen-{name}-{mode}.log"
        gen = self.procs.popen(cmd, log, stdout=subprocess.PIPE)
        lines: queue.Queue = queue.Queue()

        def read() -> None:
            for line in gen.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + budget + p.timeout + 30
        pids = {**pids, "loadgen": gen.pid, "harness": os.getpid()}
        snaps: list[dict] = []
        result = None
        while result is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                break
            event = json.loads(line)
            if event["event"] in ("measure_start", "measure_end"):
                snaps.append(snapshot(pids, self.nats.monitor_port))
            elif event["event"] == "result":
                result = event
        if result is None:
            Processes.stop_popen(gen, 2.0)
            raise RuntimeError(f"load generator gave no result; see {log}")
        gen.wait(10)
        if len(snaps) == 2:
            a, b = snaps
            result["cpu_cores"] = cpu_cores(a, b)
            if a["_in_msgs"] is not None and b["_in_msgs"] is not None:
                # requests + replies (+ gridcare's outbox events): a cross-check of the client
                result["server_in_msgs_per_s"] = round(
                    (b["_in_msgs"] - a["_in_msgs"]) / (b["_t"] - a["_t"]), 1
                )
        return result

    def measure(
        self, name: str, pids: dict[str, int], latency: bool = True, settle=None, inside=None
    ) -> dict:
        """Throughput, then latency; ``settle()`` runs between them (returns notes);
        ``inside()`` reads the responder's own counters (diffed over each phase)."""
        out: dict = {}
        self.say(f"{name}: throughput, {self.plan.inflight} in flight")
        before = inside() if inside else None
        out["throughput"] = tp = self.loadgen(name, "closed", pids)
        if inside:
            tp["inside"] = diff_counters(before, inside())
        self.say(
            f"{name}: {tp['replies_per_s']:.0f} replies/s "
            f"(errors {tp['errors']}, timeouts {tp['timeouts']})"
        )
        if latency:
            time.sleep(0.5)
            if settle:
                out["settle"] = settle()
            self.say(f"{name}: latency at {self.plan.rate:.0f} scans/s offered")
            before = inside() if inside else None
            out["latency"] = lat = self.loadgen(name, "open", pids)
            if inside:
                lat["inside"] = diff_counters(before, inside())
            ms = lat["latency_ms"]
            self.say(
                f"{name}: p50 {fmt_ms(ms['p50'])} p99 {fmt_ms(ms['p99'])} ms, answered "
                f"{lat['answered_per_s']:.0f}/s, timed out {lat['timeouts']}, "
                f"errors {lat['errors']}"
            )
        return out

    # --- the responders ---------------------------------------------------------------------
    def run_script(self, name: str, script: str, extra: list[str], latency: bool = True) -> None:
        log = self.logs / f"{name}.log"
        t0 = time.monotonic()
        proc = self.procs.popen([PY, str(BENCH / script), "--url", self.nats.url, *extra], log)
        try:
            reply = probe(
                self.nats.url,
                self.people[0],
                time.monotonic() + 60,
                lambda: proc.poll() is None,
                is_verdict,
            )
            if reply is None:
                raise RuntimeError(f"{name} did not answer (exit {proc.poll()}); see {log}")
            self.say(f"{name}: ready in {time.monotonic() - t0:.1f}s (pid {proc.pid})")
            res = self.measure(name, {"responder": proc.pid, "nats": self.nats.proc.pid}, latency)
            res["start_s"] = round(time.monotonic() - t0, 1)
            self.results[name] = res
        finally:
            Processes.stop_popen(proc, 20.0)

    def run_bare(self, name: str = "bare", latency: bool = True, loop: str = "asyncio") -> None:
        self.run_script(name, "bare_responder.py", ["--loop", loop], latency)

    def run_durable(self, name: str = "durable_bare", rules: bool = False) -> None:
        db = self.tmp / f"{name}.db"
        self.run_script(name, "durable_responder.py", ["--db", str(db)] + ["--rules"] * rules)
        self.results[name]["rows_stored"] = sqlite_count(db, "passages" if rules else "scans")

    def run_naive(self) -> None:
        db = self.tmp / "naive.db"
        self.run_script("naive", "naive_responder.py", ["--db", str(db)])
        self.results["naive"]["rows_stored"] = sqlite_count(db, "scans")

    def start_gridcare(self, db: Path, extra_env: dict[str, str]) -> ServiceProcess:
        url = f"sqlite+aiosqlite:///{db}"
        env = {
            "GRIDCARE_NATS_URL": self.nats.url,
            "GRIDCARE_DATABASE_URL": url,
            "GRIDCARE_CHECKPOINT_DATABASE_URL": url,  # wins over the above if set outside
            "GRIDCARE_VAR_DIR": str(self.tmp / "var"),
            **extra_env,
        }
        attempts = 3
        for attempt in range(1, attempts + 1):
            svc = ServiceProcess("checkpoint", env, self.logs / "checkpoint.log", free_port())
            self.procs.services.append(svc)
            try:
                svc.start().wait_ready(90)
                return svc
            except (RuntimeError, TimeoutError) as exc:
                svc.stop(kill=True)
                if attempt == attempts:
                    raise
                self.say(f"checkpoint did not start ({exc}); retrying in 20s (it may be mid-edit)")
                time.sleep(20)
        raise AssertionError("unreachable")

    def run_gridcare(self, name: str = "gridcare", extra_env: dict | None = None) -> None:
        db = self.tmp / f"{name}.db"
        self.import_community()  # again for a second run: its fresh store needs it all
        t0 = time.monotonic()
        svc = self.start_gridcare(db, extra_env or {})
        source = source_fingerprint(
            "checkpoint"
        )  # what it imported at its start, give or take a second
        try:
            self.say(
                f"gridcare checkpoint: ready in {time.monotonic() - t0:.1f}s (pid {svc.proc.pid})"
            )
            # Wait for the projection: its residents table (while it has one) holds them all,
            # and the last generated resident is allowed, not referred as unknown_person.
            with (self.tmp / "community" / "residents.csv").open(encoding="utf-8") as f:
                expected = len(list(csv.DictReader(f)))
            t1 = time.monotonic()
            deadline = t1 + 180
            while 0 <= sqlite_count(db, "residents") < expected:
                if time.monotonic() > deadline or not svc.alive:
                    n = sqlite_count(db, "residents")
                    raise RuntimeError(f"checkpoint projected {n}/{expected} residents")
                time.sleep(0.5)
            deadline = max(deadline, time.monotonic() + 30)
            reply = probe(
                self.nats.url, self.people[-1], deadline, lambda: svc.alive, is_known_allow
            )
            if reply is None:
                raise RuntimeError(f"checkpoint never allowed a known resident; see {svc.log_file}")
            projection_s = time.monotonic() - t1
            self.say(f"gridcare checkpoint: reference data projected in {projection_s:.1f}s")
            time.sleep(1.0)  # let the refdata consumer and the outbox relay go idle

            def backlog() -> int:
                """Outbox rows unsent (a fever's events, say)."""
                return sqlite_count(db, "outbox", "sent_at IS NULL")

            def settle() -> dict:
                """Let the outbox relay catch up with the throughput phase (bounded), so the
                latency phase starts from an idle service."""
                t = time.monotonic()
                limit = 20.0 if self.plan.quick else 60.0
                before = pending = backlog()
                while pending > 0 and time.monotonic() - t < limit and svc.alive:
                    time.sleep(0.25)
                    pending = backlog()
                waited = time.monotonic() - t
                self.say(f"gridcare: outbox {before} -> {pending} unsent after {waited:.1f}s")
                return {
                    "outbox_unsent_before": before,
                    "outbox_unsent_after": pending,
                    "waited_s": round(waited, 1),
                }

            pids = {"responder": svc.proc.pid, "nats": self.nats.proc.pid}
            res = self.measure(
                name, pids, settle=settle, inside=lambda: service_counters(svc.http_port)
            )
            res["projection_s"] = round(projection_s, 1)
            res["outbox_unsent_before_stop"] = sqlite_count(db, "outbox", "sent_at IS NULL")
        finally:
            t2 = time.monotonic()
            svc.stop(wait_s=30.0)
            stop_s = time.monotonic() - t2
        res["stop_s"] = round(stop_s, 1)
        res["source"] = source
        res["source_changed_during_run"] = (
            source_fingerprint("checkpoint")["sha256"] != source["sha256"]
        )
        res["rows_stored"] = sqlite_count(db, "passages")
        res["outbox_unsent"] = sqlite_count(db, "outbox", "sent_at IS NULL")
        self.results[name] = res

    # --- the whole run ----------------------------------------------------------------------
    def run(self) -> None:
        self.start_nats()
        self.write_community()
        steps = [
            ("bare", self.run_bare),
            ("bare_uvloop", lambda: self.run_bare("bare_uvloop", loop="uvloop")),
            ("naive", self.run_naive),
            ("durable_bare", self.run_durable),
            ("durable_rules", lambda: self.run_durable("durable_rules", rules=True)),
            ("gridcare", self.run_gridcare),
            (
                "gridcare_sync_normal",
                lambda: self.run_gridcare(
                    "gridcare_sync_normal", {"GRIDCARE_SQLITE_SYNCHRONOUS": "NORMAL"}
                ),
            ),
        ]
        if self.plan.bare_again and not self.plan.only:
            steps.append(("bare_again", lambda: self.run_bare("bare_again", latency=False)))
        if self.plan.only:
            steps = [(n, f) for n, f in steps if n in self.plan.only]
        for name, step in steps:
            try:
                step()
            except (RuntimeError, TimeoutError, OSError) as exc:
                self.failures.append(f"{name}: {exc}")
                self.say(f"FAILED {name}: {exc}")
        for name, res in self.results.items():
            for phase in ("throughput", "latency"):
                r = res.get(phase)
                # a saturated responder may answer nothing within the timeout in the open
                # loop, yet answer late: that is a result; no reply at all is a failure
                if r and r["ok"] == 0 and r["late_replies"] == 0:
                    self.failures.append(f"{name} {phase}: no verdict replies at all")


# --- the report -----------------------------------------------------------------------------
def fmt_ms(v: float | None) -> str:
    return "timeout" if v is None else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def cpu_us_per_reply(tp: dict) -> float | None:
    """The responder's CPU per reply in a throughput phase (µs), if it was measured."""
    cores = tp.get("cpu_cores", {}).get("responder")
    return round(1e6 * cores / tp["replies_per_s"], 1) if cores and tp["replies_per_s"] else None


def derive(results: dict, plan: Plan) -> tuple[dict, list[str]]:
    """Ratios, target checks and warnings about the measurement itself."""
    tps = {k: v["throughput"]["replies_per_s"] for k, v in results.items() if "throughput" in v}
    bare_runs = [tps[k] for k in ("bare", "bare_again") if k in tps]
    bare = sum(bare_runs) / len(bare_runs) if bare_runs else None
    derived: dict = {"bare_ceiling_replies_per_s": bare}
    notes: list[str] = []
    if len(bare_runs) == 2:
        drift = abs(bare_runs[1] - bare_runs[0]) / bare
        derived["bare_drift"] = round(drift, 3)
        if drift > 0.15:
            notes.append(
                f"the bare ceiling moved {drift:.0%} between the start and the end of the run: "
                f"the machine's load changed meanwhile; read the ratios as ±{drift:.0%}."
            )
    g = tps.get("gridcare")
    ratio_bare = g / bare if g is not None and bare else None
    ratio_naive = g / tps["naive"] if g is not None and tps.get("naive") else None
    checks = []
    for name, value in (
        ("gridcare/bare throughput", ratio_bare),
        ("gridcare/naive throughput", ratio_naive),
    ):
        ok = value is not None and value >= TARGET_RATIO[name]
        shown = "-" if value is None else f"{value:.3f}"
        target = f"≥ {TARGET_RATIO[name]:.2f}"
        checks.append({"check": name, "value": value, "shown": shown, "target": target, "pass": ok})
    lat = results.get("gridcare", {}).get("latency")
    p99 = lat["latency_ms"]["p99"] if lat else None  # None: timed out (or not measured)
    checks.append(
        {
            "check": f"gridcare p99 at {plan.rate:.0f}/s offered",
            "value": p99,
            "shown": (fmt_ms(p99) + " ms") if lat else "-",
            "target": f"≤ {TARGET_P99_MS:g} ms",
            "pass": p99 is not None and p99 <= TARGET_P99_MS,
        }
    )
    derived["checks"] = checks
    bare_lat = results.get("bare", {}).get("latency")
    floor = bare_lat["latency_ms"]["p99"] if bare_lat else None
    derived["bare_p99_ms"] = floor
    bare_tp = results.get("bare", {}).get("throughput")
    derived["bare_cpu_us_per_reply"] = cpu_us_per_reply(bare_tp) if bare_tp else None
    if floor is not None and floor > TARGET_P99_MS / 2:
        notes.append(
            f"the bare responder's own p99 at {plan.rate:.0f}/s was {fmt_ms(floor)} ms, more "
            f"than half the {TARGET_P99_MS:g} ms target (on a quiet machine here it is under "
            "2 ms): the machine added delays of its own to this run's latencies, invisible as "
            "CPU used by other processes; read gridcare's p99 with that in mind, or run again."
        )
    normal = results.get("gridcare_sync_normal", {})
    if normal.get("latency") and normal.get("throughput"):
        nl = normal["latency"]["latency_ms"]
        notes.append(
            "gridcare_sync_normal is the same checkpoint with GRIDCARE_SQLITE_SYNCHRONOUS=NORMAL "
            "(no fsync per commit: a commit survives a crash of the service, not a power cut; "
            f"docs/operations.md): {normal['throughput']['replies_per_s']:.0f} replies/s, p99 "
            f"at {plan.rate:.0f}/s {fmt_ms(nl['p99'])} ms (for reference; the targets use the "
            "default, FULL)."
        )
    if g is not None and tps.get("bare_uvloop"):
        derived["gridcare_over_bare_uvloop"] = round(g / tps["bare_uvloop"], 3)
        notes.append(
            f"gridcare runs on uvloop; the bare responder on uvloop answered "
            f"{tps['bare_uvloop']:.0f}/s: gridcare/bare(uvloop) = {g / tps['bare_uvloop']:.3f} "
            "(for reference; the target uses the plain bare responder, as the issue defines it)."
        )

    if bare and tps.get("durable_rules"):
        rules = tps["durable_rules"] / bare
        derived["durable_rules_over_bare"] = round(rules, 3)
        notes.append(
            f"durable_rules keeps {rules:.3f} of the bare ceiling: gridcare's own validation, "
            "rules, reply, register row and metrics, written durably and with nothing else "
            "(no state, retries or events): about the most a Python responder doing the "
            "work every verdict needs keeps on this machine (bench/durable_responder.py)."
        )

    cores = os.cpu_count() or 1
    disturbed: list[str] = []
    for name, res in results.items():
        tp = res.get("throughput")
        if tp and tp.get("cpu_cores"):
            c = tp["cpu_cores"]
            busy = c.get("machine_busy") or 0
            if name.startswith("bare") and busy >= 0.8 * cores:
                notes.append(
                    f"{name}: the machine was {busy / cores:.0%} busy (load generator "
                    f"{c.get('loadgen')}, responder {c.get('responder')}, nats-server "
                    f"{c.get('nats')} cores): the ceiling is what {cores} shared cores allow "
                    "generator, server and responder together, not the responder's alone."
                )
        for phase in ("throughput", "latency"):
            c = (res.get(phase) or {}).get("cpu_cores")
            if not c:
                continue
            ours = sum(c.get(k) or 0 for k in ("loadgen", "responder", "nats", "harness"))
            other = (c.get("machine_busy") or 0) - ours + (c.get("machine_steal") or 0)
            if other >= DISTURBED_CORES:
                # only the phases the targets use make the run "disturbed"
                if phase == "throughput" or name.startswith("gridcare"):
                    disturbed.append(f"{name} {phase} ({other:.2f} cores)")
                else:
                    notes.append(
                        f"{name} {phase}: {other:.2f} cores busy outside the benchmark's "
                        "processes (no target uses this phase)."
                    )
        lt = res.get("latency")
        if lt:
            capacity = tp["replies_per_s"] if tp else None
            if capacity and lt["answered_per_s"] >= 0.95 * lt["offered_rate"]:
                if lt["offered_rate"] > capacity:
                    notes.append(
                        f"{name}: it answered all of {lt['offered_rate']:.0f}/s offered, more "
                        f"than its closed-loop throughput ({capacity:.0f}/s with "
                        f"{tp['inflight']} in flight): a backlog makes its batches larger, so "
                        "it is at its limit and the latency is mostly queueing."
                    )
                elif lt["offered_rate"] >= 0.8 * capacity:
                    notes.append(
                        f"{name}: {lt['offered_rate']:.0f}/s offered is "
                        f"{lt['offered_rate'] / capacity:.0%} of its measured throughput: it "
                        "keeps up, but its latency is mostly queueing."
                    )
            if lt["answered_per_s"] < 0.95 * lt["offered_rate"]:
                notes.append(
                    f"{name}: answered {lt['answered_per_s']:.0f}/s of {lt['offered_rate']:.0f}/s "
                    "offered: saturated, so its latency figures are queueing time."
                )
            lag = lt["send_lag_ms"]
            if lag["p99"] > 2.0:
                notes.append(
                    f"{name}: the open-loop generator itself sent 1% of the scans more than "
                    f"{lag['p99']:.1f} ms late (max {lag['max']:.1f} ms), short of CPU: that "
                    "much of the latency is the generator's (it is counted, from the schedule)."
                )
        for phase in ("throughput", "latency"):
            r = res.get(phase)
            if r and r["errors"]:
                sample = r["error_samples"][:1]
                notes.append(f"{name} {phase}: {r['errors']} non-verdict replies, e.g. {sample}")
            if r and r.get("unknown_person"):
                notes.append(f"{name} {phase}: {r['unknown_person']} replies with unknown_person")
    derived["disturbed"] = disturbed
    g = results.get("gridcare")
    if g and "rows_stored" in g:
        answered = sum(g[p]["ok"] for p in ("throughput", "latency") if p in g)
        if 0 <= g["rows_stored"] < answered:
            notes.append(
                f"gridcare stored {g['rows_stored']} passages but {answered} verdicts were "
                "counted: some verdicts were not in the register after the stop."
            )
    return derived, notes


def render(report: dict) -> str:
    plan, m, results, d = report["plan"], report["machine"], report["results"], report["derived"]
    lines = [
        f"# Gate-scan benchmark, {report['started_utc']}",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, {m['platform']}  ",
        "Load average at start / end: {} / {}; CPU busy in the second before the start: "
        "{} cores  ".format(
            " ".join(f"{x:.2f}" for x in m["loadavg_start"]),
            " ".join(f"{x:.2f}" for x in m["loadavg_end"]),
            m["busy_cores_before_start"],
        ),
        "fsync of a 4 KiB write at the start: p50 {p50} ms, p99 {p99} ms (on 2026-11-29 "
        "evening a whole 3-scan register commit, its fsync included, took about 0.25 ms)  ".format(
            **m["fsync_ms"]
        ),
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + "  ",
        f"Duration: {report['duration_s']:.0f} s{' (--quick)' if plan['quick'] else ''}",
        "",
        f"Throughput: closed loop, {plan['inflight']} requests in flight, {plan['tp_warmup']:g} s "
        f"warm-up + {plan['tp_duration']:g} s measured. Latency: open loop, "
        f"{plan['rate']:.0f} scans/s on a fixed schedule, {plan['lat_warmup']:g} s warm-up + "
        f"{plan['lat_duration']:g} s measured, latency from the scheduled send time; "
        f"no reply within {plan['timeout']:g} s = timed out (and +inf in percentiles). "
        f"Community: {plan['residents']} generated residents; scans on gates g1/g2 (C-01, "
        "precaution), ~2% feverish.",
        "",
        "## Targets",
        "",
        "| check | value | target | result |",
        "|---|---:|---:|---|",
    ]
    for c in d["checks"]:
        verdict = "PASS" if c["pass"] else "FAIL"
        lines.append(f"| {c['check']} | {c['shown']} | {c['target']} | {verdict} |")
    bare = d.get("bare_ceiling_replies_per_s")
    if d.get("disturbed"):
        lines += [
            "",
            "**Disturbed run**: other work on the machine used CPU (busy + steal, beyond the "
            "benchmark's own processes) during " + ", ".join(d["disturbed"]) + ". Ratios "
            "between a disturbed and an undisturbed phase are not trustworthy: run again.",
        ]
    else:
        lines += ["", "No phase was disturbed by other work on the machine."]
    if d.get("bare_p99_ms") is not None:
        speed = d.get("bare_cpu_us_per_reply")
        lines += [
            "",
            f"The machine in this run: the bare responder's p99 at {plan['rate']:.0f}/s was "
            f"{fmt_ms(d['bare_p99_ms'])} ms"
            + (f", and it spent {speed:g} µs of CPU per reply" if speed else "")
            + " (on a quiet hour here: under 2 ms, and 8 µs; more µs means a slower host, "
            "which makes every responder's CPU per scan, and gridcare's latency, larger).",
        ]
    lines += [
        "",
        "Ratios use the bare ceiling "
        + (f"{bare:.0f} replies/s" if bare else "-")
        + (
            f" (mean of the bare runs at the start and the end; drift {d['bare_drift']:.0%})"
            if "bare_drift" in d
            else ""
        )
        + ".",
        "",
        "## Throughput (closed loop)",
        "",
        "| responder | replies/s | × bare | errors | timeouts | p50 ms | p99 ms | "
        "responder CPU µs per reply | "
        "CPU cores: loadgen / responder / nats / machine busy / steal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, res in results.items():
        tp = res.get("throughput")
        if not tp:
            continue
        c = tp.get("cpu_cores", {})
        cpu = " / ".join(
            fmt(c.get(k)) for k in ("loadgen", "responder", "nats", "machine_busy", "machine_steal")
        )
        rel = f"{tp['replies_per_s'] / bare:.3f}" if bare else "-"
        us = cpu_us_per_reply(tp)
        per_reply = f"{us:.0f}" if us is not None else "-"
        lines.append(
            f"| {name} | {tp['replies_per_s']:.0f} | {rel} | {tp['errors']} | {tp['timeouts']} | "
            f"{fmt_ms(tp['latency_ms']['p50'])} | {fmt_ms(tp['latency_ms']['p99'])} | "
            f"{per_reply} | {cpu} |"
        )
    lines += [
        "",
        f"## Latency at {plan['rate']:.0f} scans/s offered (open loop)",
        "",
        "| responder | answered/s | p50 ms | p90 ms | p99 ms | max ms | timed out | errors | "
        "send lag p99 / max ms | CPU cores: loadgen / responder / nats / machine busy / steal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, res in results.items():
        lt = res.get("latency")
        if not lt:
            continue
        ms = lt["latency_ms"]
        c = lt.get("cpu_cores", {})
        cpu = " / ".join(
            fmt(c.get(k)) for k in ("loadgen", "responder", "nats", "machine_busy", "machine_steal")
        )
        lines.append(
            f"| {name} | {lt['answered_per_s']:.0f} | {fmt_ms(ms['p50'])} | {fmt_ms(ms['p90'])} | "
            f"{fmt_ms(ms['p99'])} | {fmt_ms(ms['max'])} | {lt['timeouts']} of {lt['requests']} | "
            f"{lt['errors']} | {lt['send_lag_ms']['p99']:.1f} / {lt['send_lag_ms']['max']:.1f} | "
            f"{cpu} |"
        )
    lines += ["", "## Checks on the measurement", ""]
    for name, res in results.items():
        parts = []
        for phase in ("throughput", "latency"):
            r = res.get(phase)
            if r:
                v = r["verdicts"]
                server = r.get("server_in_msgs_per_s")
                parts.append(
                    f"{phase}: allow {v['allow']}, deny {v['deny']}, refer {v['refer']}, "
                    f"late replies {r['late_replies']}"
                    + (f", nats-server received {server:.0f} msgs/s" if server is not None else "")
                    + (
                        f", register: {r['inside']['scans_per_batch']} scans per commit, "
                        f"{r['inside']['commit_ms_mean']} ms per commit"
                        if r.get("inside", {}).get("batches")
                        else ""
                    )
                )
        extra = []
        if "settle" in res:
            st = res["settle"]
            extra.append(
                f"outbox {st['outbox_unsent_before']} → {st['outbox_unsent_after']} unsent "
                f"after waiting {st['waited_s']} s between the phases"
            )
        for k, label in (
            ("rows_stored", "rows in its store after the run"),
            ("outbox_unsent_before_stop", "outbox rows unsent at the end of the latency phase"),
            ("outbox_unsent", "outbox rows unsent after stop"),
            ("projection_s", "s to project the reference data"),
            ("stop_s", "s to stop"),
        ):
            if k in res:
                extra.append(f"{res[k]} {label}")
        if "source" in res:
            src = res["source"]
            extra.append(
                f"source measured: sha256 {src['sha256']} of {src['files']} files of "
                f"services/checkpoint and shared, newest {src['newest_utc']}"
                + (" (edited again while it ran)" if res.get("source_changed_during_run") else "")
            )
        lines.append(f"- **{name}**: " + "; ".join(parts + extra))
    if report["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    if report["failures"]:
        lines += ["", "## Harness failures", ""] + [f"- {f}" for f in report["failures"]]
    lines += [
        "",
        "Every figure comes from this one run; compare ratios across runs, not absolute numbers "
        "(the machine is shared). See bench/README.md.",
        "",
    ]
    return "\n".join(lines)


def write_report(report: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    md = render(report)
    raw = json.dumps(report, indent=2, default=str)
    if report["plan"]["only"]:  # a partial run: for development, not a result to keep
        path = RESULTS / "partial.md"
        path.write_text(md, encoding="utf-8")
        (RESULTS / "partial.json").write_text(raw, encoding="utf-8")
        print()
        print(md)
        print(f"written: {path.relative_to(ROOT)} (a partial run; not kept in git)")
        return path
    path = RESULTS / "scan.md"
    path.write_text(md, encoding="utf-8")
    (RESULTS / "scan.json").write_text(raw, encoding="utf-8")
    print()
    print(md)
    print(f"written: {path.relative_to(ROOT)} (and scan.json)")
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter phases (about a minute)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, stores)")
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated responders to measure (bare, bare_uvloop, naive, durable_bare,\n"
        "durable_rules, gridcare, gridcare_sync_normal), for "
        "development; a partial run is written to bench/results/partial.md, not scan.md",
    )
    args = ap.parse_args()
    plan = Plan.make(args.quick)
    plan.only = tuple(x for x in args.only.split(",") if x)
    known = {
        "bare",
        "bare_uvloop",
        "naive",
        "durable_bare",
        "durable_rules",
        "gridcare",
        "gridcare_sync_normal",
    }
    unknown = set(plan.only) - known
    if unknown:
        ap.error(f"--only: unknown responder(s) {', '.join(sorted(unknown))}")

    # Settings from the caller's environment would change what is measured: drop them.
    dropped = sorted(k for k in os.environ if k.startswith("GRIDCARE_") or k == "NATS_URL")
    for k in dropped:
        del os.environ[k]

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    started = datetime.now(UTC)
    report = {
        "started_utc": started.strftime("%Y-%m-%d %H:%M:%SZ"),
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(PY, ROOT), *sys.argv]),
        "plan": plan.__dict__,
        "machine": machine_info(("nats-py", "faststream", "sqlalchemy", "aiosqlite", "pydantic")),
        "dropped_env": dropped,
    }
    tmp = Path(tempfile.mkdtemp(prefix="scan_bench-"))
    bench = Bench(plan, tmp)
    bench.say(
        f"scan_bench: temp dir {tmp}{' (dropped ' + ', '.join(dropped) + ')' if dropped else ''}"
    )
    code = 0
    try:
        bench.run()
    except KeyboardInterrupt:
        bench.say("interrupted: stopping everything")
        code = 130
    except Exception as exc:  # the harness itself failed
        bench.failures.append(f"harness: {exc!r}")
        bench.say(f"FAILED: {exc!r}")
    finally:
        bench.procs.cleanup()
    if code == 130:
        print(f"logs kept in {tmp}")
        return code
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["duration_s"] = (datetime.now(UTC) - started).total_seconds()
    report["results"] = bench.results
    report["derived"], report["notes"] = derive(bench.results, plan)
    report["failures"] = bench.failures
    report["temp_dir"] = str(tmp)
    write_report(report)
    if bench.failures:
        print(f"harness failures; logs kept in {tmp}")
        return 1
    if args.keep:
        print(f"logs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
