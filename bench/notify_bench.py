"""Benchmark of notify's delivery (issue 13's performance part), as figures of one run.

    .venv/bin/python bench/notify_bench.py            # full run, about 2-3 minutes
    .venv/bin/python bench/notify_bench.py --quick    # 4,000 residents, under a minute
    .venv/bin/python bench/notify_bench.py --keep     # keep the temp dir (logs, SQLite file)

One run starts its own nats-server (loopback, temp dir, JetStream fsync "always", like
``make run``), a local SMS gateway (this file with ``--serve-provider``: one process,
asyncio streams on uvloop, HTTP/1.1 keep-alive, answers every POST 200 ``{"id"}`` and
keeps each one's arrival time and key) and notify itself as a process (``python -m
gridcare.notify``, SQLite under the temp dir). It publishes a generated community as
reference data (one compound, 20,000 residents with phones, an SMS channel capped at
500/s pointing at the gateway), waits until notify's store has them, restarts notify (it
reads the providers' caps when it gets ready), then measures, one after another:

  raw         one process (this file with ``--raw-post``) posting the same JSON to the same
              gateway through one pooled aiohttp session, a few in flight, a fixed count:
              the ceiling of "HTTP posting from one Python process" on this machine
  capped      a broadcast to every resident (NotificationRequested, ToResidents of the
              compound, notice.text, normal) through the gateway capped at 500/s: the cap
              allows 40 s; meanwhile an urgent alert (ToPerson of a resident) every 200 ms,
              timed from its publish to its arrival at the gateway (one machine clock)
  uncapped    the same broadcast again after the channel is pointed at the gateway's second
              port, which has no cap: messages/s delivered
  raw_again   the raw posting once more, to see how much the machine drifted meanwhile

and samples notify's RSS (/proc/<pid>/status VmRSS) every 0.25 s throughout. Writes the
current report, bench/results/notify.md (kept in git: one report, the newest), and its
raw figures, bench/results/notify.json (not kept). Exits 0 whatever the figures;
non-zero only when the harness failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchkit import TICK, fmt, machine_cpu_s, machine_info, proc_cpu_s, source_fingerprint

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PY = sys.executable

URGENT_MARK = "BENCH-URGENT-"
RAW_KEY = "raw-"
TARGET_CAP_SLACK = 0.05  # the capped broadcast within 5% of what the cap allows
TARGET_URGENT_P99_MS = 250.0
DISTURBED_CORES = 0.3  # CPU (busy + steal) outside our processes that marks a phase disturbed
RSS_FLAT_MB = 5.0  # RSS growth over the second half of the capped broadcast counted as flat


@dataclass
class Plan:
    quick: bool
    residents: int = 20_000
    per_household: int = 4
    rate: float = 500.0  # the gateway's cap, per second
    urgent_every_s: float = 0.2
    raw_count: int = 5_000
    raw_inflight: int = 4
    raw_warmup: int = 300
    sample: int = 1_000  # residents published through JetStream to time the projection
    refdata: bool = False  # the whole community through JetStream (slow: see --refdata)

    @classmethod
    def make(cls, quick: bool) -> Plan:
        if not quick:
            return cls(quick=False)
        return cls(quick=True, residents=4_000, raw_count=2_000, sample=300)

    @property
    def allowed_s(self) -> float:
        return self.residents / self.rate


# =============================================================================================
# The SMS gateway (a separate process): --serve-provider
# =============================================================================================
def serve_provider(out: Path) -> None:
    """Two listening ports (capped, uncapped) of one server; GET /stats gives the counts,
    GET /dump writes every POST's (arrival, port, kind, key, to, urgent number) to ``out``."""
    import uvloop

    records: list[tuple] = []
    counts = {"capped": 0, "uncapped": 0, "urgent": 0, "raw": 0, "other": 0}
    mark = URGENT_MARK.encode()

    def dump() -> None:
        out.write_text(json.dumps(records))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: str):
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                line, _, rest = head.partition(b"\r\n")
                method, path = line.split(b" ", 2)[:2]
                length = 0
                close = False
                for h in rest.split(b"\r\n"):
                    name, _, value = h.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"connection" and value.strip().lower() == b"close":
                        close = True
                body = await reader.readexactly(length) if length else b""
                t = time.monotonic()
                if method == b"POST":
                    msg = json.loads(body)
                    key, text = msg.get("key", ""), msg.get("text", "")
                    urgent = None
                    if key.startswith(RAW_KEY):
                        kind = "raw"
                    elif mark in body or URGENT_MARK in text:
                        kind = "urgent"
                        i = text.find(URGENT_MARK) + len(URGENT_MARK)
                        urgent = int(text[i : i + 6])
                    else:
                        kind = port
                    counts[kind] += 1
                    records.append((t, port, kind, key, msg.get("to"), urgent))
                    reply = b'{"id":"p-%d"}' % len(records)
                elif path == b"/dump":
                    dump()
                    reply = json.dumps({"records": len(records)}).encode()
                else:
                    reply = json.dumps(counts).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(reply), reply)
                )
                if close:
                    await writer.drain()
                    return
        finally:
            writer.close()

    async def main() -> None:
        servers = {}
        for port in ("capped", "uncapped"):
            servers[port] = await asyncio.start_server(
                lambda r, w, p=port: handle(r, w, p), "127.0.0.1", 0, backlog=1024
            )
        ports = {p: s.sockets[0].getsockname()[1] for p, s in servers.items()}
        print(json.dumps(ports), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()

    uvloop.run(main())


# =============================================================================================
# Raw HTTP posting (a separate process): --raw-post
# =============================================================================================
def raw_post(url: str, count: int, inflight: int, warmup: int, text: str) -> None:
    """Post ``warmup`` then ``count`` SMS-gateway requests to ``url`` from one pooled
    aiohttp session (the client notify posts with) with ``inflight`` in flight; print one
    JSON line of figures."""
    import aiohttp
    import uvloop

    tag = f"{RAW_KEY}{os.getpid()}-"

    async def main() -> dict:
        client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=inflight),
            timeout=aiohttp.ClientTimeout(total=10.0),
            headers={"User-Agent": "bench-raw", "Accept-Encoding": "identity"},
            auto_decompress=False,
        )
        errors = 0
        seq = 0

        async def post_until(limit: int) -> None:
            nonlocal errors, seq
            while seq < limit:
                seq += 1
                key = f"{tag}{seq}"
                payload = {"to": f"+86 139 {seq % 10_000:04d} 0000", "text": text, "key": key}
                async with client.post(
                    url,
                    data=json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(),
                    headers={
                        "Content-Type": "application/json; charset=utf-8",
                        "Idempotency-Key": key,
                        "X-Gridcare-Notification-Id": key,
                    },
                ) as r:
                    await r.read()
                    if not 200 <= r.status < 300:
                        errors += 1

        try:
            await asyncio.gather(*(post_until(warmup) for _ in range(inflight)))
            print(json.dumps({"event": "start"}), flush=True)
            cpu0, t0 = time.process_time(), time.perf_counter()
            await asyncio.gather(*(post_until(warmup + count) for _ in range(inflight)))
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            print(json.dumps({"event": "end"}), flush=True)
        finally:
            await client.close()
        return {
            "posts": count,
            "seconds": round(wall, 3),
            "per_s": round(count / wall, 1),
            "cpu_us_per_post": round(1e6 * cpu / count, 1),
            "cpu_cores": round(cpu / wall, 2),
            "errors": errors,
            "inflight": inflight,
        }

    print(json.dumps(uvloop.run(main())), flush=True)


# =============================================================================================
# The harness
# =============================================================================================


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def threads_cpu_s(pid: int) -> tuple[float, float] | None:
    """(main thread, other threads) CPU seconds of a process: notify's event loop runs on
    its main thread; its store's connections (aiosqlite) on threads of their own."""
    main = other = 0.0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / TICK
            if int(tid) == pid:
                main += cpu
            else:
                other += cpu
    except (OSError, IndexError, ValueError):
        return None
    return main, other


def snapshot(pids: dict[str, int]) -> dict:
    busy, steal = machine_cpu_s()
    snap = {name: proc_cpu_s(pid) for name, pid in pids.items()}
    if "notify" in pids and (split := threads_cpu_s(pids["notify"])):
        snap["_notify_loop"], snap["_notify_threads"] = split
    snap.update(_t=time.monotonic(), _busy=busy, _steal=steal)
    return snap


def cpu_cores(a: dict, b: dict) -> dict[str, float | None]:
    wall = b["_t"] - a["_t"]
    out: dict[str, float | None] = {}
    for k in a:
        if k == "_t" or k not in b:
            continue
        name = {"_busy": "machine_busy", "_steal": "machine_steal"}.get(k, k.lstrip("_"))
        out[name] = None if a[k] is None or b[k] is None else round((b[k] - a[k]) / wall, 2)
    ours = sum(v or 0 for k, v in out.items() if k in {n for n in a if not n.startswith("_")})
    other = (out["machine_busy"] or 0) - ours + (out["machine_steal"] or 0)
    out["other"] = round(max(0.0, other), 2)  # (rounding of the tick counts aside)
    return out


def sqlite_scalar(db: Path, query: str, default=-1):
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(query).fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return default


def http_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def pct(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100), nearest rank."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return s[k]


class RssSampler(threading.Thread):
    """notify's VmRSS every ``every_s`` seconds, with the time."""

    def __init__(self, pid: int, every_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            v = rss_mb(self.pid)
            if v is not None:
                self.samples.append((time.monotonic(), v))
            self._halt.wait(self.every_s)

    def stop(self) -> None:
        self._halt.set()
        self.join(2)

    def between(self, t0: float, t1: float) -> list[tuple[float, float]]:
        return [(t, v) for t, v in self.samples if t0 <= t <= t1]


class Bench:
    def __init__(self, plan: Plan, tmp: Path) -> None:
        self.plan = plan
        self.tmp = tmp
        self.logs = tmp / "log"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.db = tmp / "notify.db"
        self.results: dict = {}
        self.failures: list[str] = []
        self.popens: list[subprocess.Popen] = []
        self.nats = None
        self.notify = None
        self.provider: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}
        self.rss: RssSampler | None = None
        self.tag = datetime.now(UTC).strftime("%H%M%S")
        self.residents: list[str] = []
        self.sms_text = "Everyone down for testing at 14:00 in the square (notify bench)"

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    # --- processes --------------------------------------------------------------------------
    def popen(self, cmd: list[str], log: Path, **kw) -> subprocess.Popen:
        with open(log, "ab") as out:
            p = subprocess.Popen(
                cmd, stderr=out, stdout=kw.pop("stdout", out), start_new_session=True, **kw
            )
        self.popens.append(p)
        return p

    @staticmethod
    def stop_popen(p: subprocess.Popen, wait_s: float = 10.0) -> None:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(wait_s)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def cleanup(self) -> None:
        steps = [lambda: self.rss and self.rss.stop()]
        steps.append(lambda: self.notify and self.notify.stop(wait_s=20.0))
        steps += [lambda p=p: self.stop_popen(p, 5.0) for p in self.popens]
        steps.append(lambda: self.nats and self.nats.stop())
        for step in steps:
            try:
                step()
            except Exception as exc:  # stop the others all the same
                self.say(f"cleanup: {exc!r}")

    def pids(self, **extra: int) -> dict[str, int]:
        pids = {"harness": os.getpid(), "nats": self.nats.proc.pid, "provider": self.provider.pid}
        if self.notify and self.notify.alive:
            pids["notify"] = self.notify.proc.pid
        return {**pids, **extra}

    # --- setup ------------------------------------------------------------------------------
    def start_nats(self) -> None:
        from gridcare.cli.devrun import NatsServer

        self.nats = NatsServer(
            store_dir=self.tmp / "nats", sync_interval="always", log_file=self.logs / "nats.log"
        )
        self.nats.start()
        self.say(f"nats-server on {self.nats.url} (pid {self.nats.proc.pid})")

    def start_provider(self) -> None:
        cmd = [PY, __file__, "--serve-provider", str(self.tmp / "provider.json")]
        self.provider = self.popen(cmd, self.logs / "provider.log", stdout=subprocess.PIPE)
        line = self.provider.stdout.readline()
        if not line:
            raise RuntimeError(f"the provider did not start; see {self.logs / 'provider.log'}")
        self.ports = json.loads(line)
        self.say(f"SMS gateway (pid {self.provider.pid}) on ports {self.ports}")

    def provider_stats(self) -> dict[str, int]:
        return http_json(f"http://127.0.0.1:{self.ports['uncapped']}/stats")

    def provider_records(self) -> list[list]:
        http_json(f"http://127.0.0.1:{self.ports['uncapped']}/dump", timeout=30)
        return json.loads((self.tmp / "provider.json").read_text())

    def sms_url(self, port: str) -> str:
        return f"http://127.0.0.1:{self.ports[port]}/sms"

    def start_notify(self) -> None:
        from gridcare.cli.devrun import ServiceProcess, free_port

        url = f"sqlite+aiosqlite:///{self.db}"
        env = {
            "GRIDCARE_NATS_URL": self.nats.url,
            "GRIDCARE_DATABASE_URL": url,
            "GRIDCARE_NOTIFY_DATABASE_URL": url,
            "GRIDCARE_VAR_DIR": str(self.tmp / "var"),
        }
        t0 = time.monotonic()
        for attempt in (1, 2, 3):
            svc = ServiceProcess("notify", env, self.logs / "notify.log", free_port())
            self.notify = svc
            try:
                svc.start().wait_ready(90)
                break
            except (RuntimeError, TimeoutError) as exc:
                svc.stop(kill=True)
                if attempt == 3:
                    raise
                self.say(f"notify did not start ({exc}); retrying in 20s (it may be mid-edit)")
                time.sleep(20)
        self.say(f"notify ready in {time.monotonic() - t0:.1f}s (pid {self.notify.proc.pid})")

    def community(self) -> tuple[list, list]:
        """A community with one compound for the broadcasts: ``residents`` people,
        ``per_household`` per household, 20 buildings, every one reachable by SMS only (no
        chat, no email), its SMS channel capped at ``rate``. Returns (the community's own
        rows, its households and residents)."""
        from gridcare.contracts.refdata import (
            Building,
            Community,
            Compound,
            Grid,
            Household,
            Resident,
        )

        p = self.plan
        places: list = [
            Community(community_id="CM-NB", name="Notify bench", time_zone="Asia/Shanghai"),
            Compound(compound_id="C-NB", community_id="CM-NB", name="Bench Garden"),
            Grid(
                grid_id="G-NB",
                community_id="CM-NB",
                name="Bench grid",
                worker_id="W-NB",
                worker_name="Bench Worker",
                worker_phone="+86 138 0000 9999",
            ),
        ]
        buildings = [f"B-NB{b:02d}" for b in range(20)]
        places += [
            Building(building_id=b, compound_id="C-NB", grid_id="G-NB", name=b) for b in buildings
        ]
        places.append(self.channel("capped"))
        households = [f"H-NB{h:05d}" for h in range(-(-p.residents // p.per_household))]
        people: list = [
            Household(household_id=h, building_id=buildings[i % len(buildings)], unit=str(i))
            for i, h in enumerate(households)
        ]
        self.residents = [f"R-NB{i:05d}" for i in range(p.residents)]
        people += [
            Resident(
                resident_id=r,
                household_id=households[i // p.per_household],
                name=f"Bench Resident {i}",
                phone=f"+86 139 {i // 10_000:04d} {i % 10_000:04d}",
                language="zh" if i % 3 else "en",
            )
            for i, r in enumerate(self.residents)
        ]
        return places, people

    def sample(self, n: int) -> list:
        """Another compound of the community (not broadcast to) with ``n`` residents: what
        is published to time notify's projection of reference data."""
        from gridcare.contracts.refdata import Building, Compound, Household, Resident

        rows: list = [
            Compound(compound_id="C-NS", community_id="CM-NB", name="Sample Court"),
            Building(building_id="B-NS", compound_id="C-NS", grid_id="G-NB", name="S"),
        ]
        households = [f"H-NS{h:04d}" for h in range(-(-n // 4))]
        rows += [Household(household_id=h, building_id="B-NS", unit=h) for h in households]
        rows += [
            Resident(
                resident_id=f"R-NS{i:04d}",
                household_id=households[i // 4],
                name=f"Sample Resident {i}",
                phone=f"+86 137 0000 {i:04d}",
            )
            for i in range(n)
        ]
        return rows

    def channel(self, port: str):
        from gridcare.contracts.refdata import Channel

        return Channel(
            channel_id="SMS-NB",
            community_id="CM-NB",
            kind="sms",
            url=self.sms_url(port),
            rate_per_s=self.plan.rate if port == "capped" else None,
        )

    async def _publish(self, events: list, window: int = 512) -> None:
        import nats

        from gridcare.shared.envelope import Envelope

        nc = await nats.connect(self.nats.url, name="notify-bench-refdata")
        js = nc.jetstream()
        try:
            for i in range(0, len(events), window):
                envs = [
                    (e, Envelope.wrap(e, source="notify-bench")) for e in events[i : i + window]
                ]
                await asyncio.gather(
                    *(
                        js.publish(e.subject(), env.to_bytes(), headers=env.headers(), timeout=30)
                        for e, env in envs
                    )
                )
        finally:
            await nc.close()

    def publish(self, events: list) -> None:
        asyncio.run(self._publish(events))

    def project(self, rows: list, residents: int) -> dict:
        """Publish ``rows`` as reference data and wait until notify's store has them (its
        residents table holds ``residents``, its channels table the channel)."""
        t0 = time.monotonic()
        self.publish(rows)
        published = time.monotonic() - t0
        deadline = time.monotonic() + 600
        while True:
            n = sqlite_scalar(self.db, "SELECT COUNT(*) FROM residents", 0)
            chan = sqlite_scalar(self.db, "SELECT COUNT(*) FROM channels", 0)
            if n >= residents and chan >= 1:
                break
            if time.monotonic() > deadline or not self.notify.alive:
                raise RuntimeError(f"notify projected {n}/{residents} residents")
            time.sleep(0.1)
        took = time.monotonic() - t0
        cpu = proc_cpu_s(self.notify.proc.pid)
        return {
            "rows": len(rows),
            "publish_s": round(published, 1),
            "projected_s": round(took, 1),
            "rows_per_s": round(len(rows) / took, 0),
            "_cpu": cpu,
        }

    def seed(self, rows: list) -> float:
        """Write ``rows`` into notify's copy of the reference data in one transaction, as
        its projection would (the columns of its tables taken from each entity): the
        projection takes one transaction per row (see the report), which for 25,000 rows
        would be most of the run. Notify is stopped meanwhile."""
        import sqlalchemy as sa

        from gridcare.notify.adapters.sql import REFERENCE_TABLES

        t0 = time.monotonic()
        by_table: dict = {}
        for e in rows:
            table = REFERENCE_TABLES[e.TYPE]
            values = e.model_dump()
            by_table.setdefault(table, []).append(
                {c.name: values.get(c.name) for c in table.columns}
            )
        engine = sa.create_engine(f"sqlite:///{self.db}")
        try:
            with engine.begin() as conn:
                for table, values in by_table.items():
                    conn.execute(sa.insert(table), values)
        finally:
            engine.dispose()
        return time.monotonic() - t0

    def load_community(self) -> None:
        places, people = self.community()
        if self.plan.refdata:  # everything through JetStream and notify's projection
            cpu0 = proc_cpu_s(self.notify.proc.pid)
            res = self.project(places + people, self.plan.residents)
            res["cpu_ms_per_row"] = round(1000 * (res.pop("_cpu") - cpu0) / res["rows"], 2)
            res["what"] = "the whole community"
            self.results["projection"] = res
            self.say(f"notify has the community after {res['projected_s']}s")
            self.restart_notify()
            return
        sample = self.sample(self.plan.sample)
        cpu0 = proc_cpu_s(self.notify.proc.pid)
        res = self.project(places + sample, self.plan.sample)
        res["cpu_ms_per_row"] = round(1000 * (res.pop("_cpu") - cpu0) / res["rows"], 2)
        res["what"] = f"the community's places and channel and {self.plan.sample:,} residents"
        self.results["projection"] = res
        self.say(
            f"projection: {res['rows']} rows published, in notify's store after "
            f"{res['projected_s']}s ({res['rows_per_s']:.0f} rows/s, "
            f"{res['cpu_ms_per_row']} ms of notify's CPU per row)"
        )
        self.notify.stop(wait_s=30.0)
        took = self.seed(people)
        self.results["seeded"] = {"rows": len(people), "seconds": round(took, 1)}
        self.say(f"wrote {len(people)} households and residents into notify's store in {took:.1f}s")
        self.start_notify()

    def restart_notify(self) -> None:
        """Notify reads the providers' caps when it gets ready (then every 30 s): a restart
        makes the channel's cap apply from the first message."""
        self.notify.stop(wait_s=30.0)
        self.start_notify()

    # --- raw posting ------------------------------------------------------------------------
    def run_raw(self, name: str) -> None:
        p = self.plan
        cmd = [PY, __file__, "--raw-post", self.sms_url("uncapped"), "--count", str(p.raw_count)]
        cmd += ["--inflight", str(p.raw_inflight), "--warmup", str(p.raw_warmup)]
        cmd += ["--text", f"【社区通知】{self.sms_text}（Office）"]
        proc = self.popen(cmd, self.logs / f"{name}.log", stdout=subprocess.PIPE)
        snaps, res = [], None
        try:
            for line in proc.stdout:
                event = json.loads(line)
                if event.get("event") in ("start", "end"):
                    snaps.append(snapshot(self.pids(raw=proc.pid)))
                elif "per_s" in event:
                    res = event
            proc.wait(30)
        finally:
            self.stop_popen(proc, 5.0)
        if res is None or len(snaps) != 2:
            raise RuntimeError(f"{name}: the raw poster failed; see {self.logs / f'{name}.log'}")
        res["cpu"] = cpu_cores(*snaps)
        self.results[name] = res
        self.say(
            f"{name}: {res['per_s']:.0f} posts/s ({res['posts']} in {res['seconds']}s, "
            f"{res['inflight']} in flight, {res['cpu_us_per_post']} µs CPU per post, "
            f"errors {res['errors']})"
        )

    # --- a broadcast --------------------------------------------------------------------------
    async def _broadcast(self, name: str, port: str, urgent: bool) -> dict:
        import nats

        from gridcare.contracts.notify import NotificationRequested, ToPerson, ToResidents
        from gridcare.shared.envelope import Envelope

        p = self.plan
        nc = await nats.connect(self.nats.url, name=f"notify-bench-{name}")
        js = nc.jetstream()
        request_id = f"bench-{name}-{self.tag}"
        ev = NotificationRequested(
            request_id=request_id,
            recipient=ToResidents(place="compound", place_id="C-NB"),
            template="notice.text",
            params={"text": self.sms_text, "from_name": "Office"},
            priority="normal",
            requested_by="notify-bench",
        )
        env = Envelope.wrap(ev, source="notify-bench")
        before = self.provider_stats()
        metrics0 = await asyncio.to_thread(read_metrics, self.notify.http_port)
        snaps = [snapshot(self.pids())]
        t0 = time.monotonic()
        await js.publish(ev.subject(), env.to_bytes(), headers=env.headers(), timeout=10)
        sent_urgent: dict[int, float] = {}
        wall_urgent: dict[int, float] = {}
        done = asyncio.Event()

        async def alerts() -> None:
            n = 0
            next_at = t0 + 0.5  # after the broadcast's request
            while not done.is_set():
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                if done.is_set():
                    return
                n += 1
                who = self.residents[(n * 7919) % len(self.residents)]
                alert = NotificationRequested(
                    request_id=f"bench-urgent-{self.tag}-{n}",
                    recipient=ToPerson(person_id=who),
                    template="notice.text",
                    params={
                        "text": f"{URGENT_MARK}{n:06d} gas leak in building 3, stay inside",
                        "from_name": "Duty office",
                    },
                    priority="urgent",
                    requested_by="notify-bench",
                )
                e = Envelope.wrap(alert, source="notify-bench")
                sent_urgent[n] = time.monotonic()
                wall_urgent[n] = time.time()
                await js.publish(alert.subject(), e.to_bytes(), headers=e.headers(), timeout=10)
                next_at += p.urgent_every_s

        task = asyncio.create_task(alerts()) if urgent else None
        budget = max(60.0, 3 * p.allowed_s) if port == "capped" else 120.0
        deadline = t0 + budget
        progress_at = t0 + 10
        got = 0
        try:
            while True:
                await asyncio.sleep(0.2)
                stats = await asyncio.to_thread(self.provider_stats)
                got = stats[port] - before[port]
                if got >= p.residents:
                    break
                if time.monotonic() > deadline or not self.notify.alive:
                    self.failures.append(
                        f"{name}: {got}/{p.residents} delivered after "
                        f"{time.monotonic() - t0:.0f}s"
                        + ("" if self.notify.alive else " (notify exited)")
                    )
                    break
                if time.monotonic() >= progress_at:
                    progress_at += 10
                    self.say(f"{name}: {got} delivered after {time.monotonic() - t0:.0f}s")
        finally:
            done.set()
            if task:
                await task
        t_end = time.monotonic()
        snaps.append(snapshot(self.pids()))
        outbox_at_end = await asyncio.to_thread(self.outbox_backlog)
        metrics1 = await asyncio.to_thread(read_metrics, self.notify.http_port)
        provider = f'provider="http://127.0.0.1:{self.ports[port]}"'
        inside = {
            "provider_call": hist(metrics0, metrics1, "provider_duration_seconds", provider),
            "urgent_handler": hist(
                metrics0, metrics1, "handler_duration_seconds", 'consumer="notify-requests-urgent"'
            ),
            "broadcast_handler": hist(
                metrics0, metrics1, "handler_duration_seconds", 'consumer="notify-requests"'
            ),
            "urgent_request_to_provider": hist(
                metrics0, metrics1, "request_to_provider_seconds", 'priority="urgent"'
            ),
            "normal_request_to_provider": hist(
                metrics0, metrics1, "request_to_provider_seconds", 'priority="normal"'
            ),
        }
        if urgent:  # the last alerts' arrival (bounded)
            limit = time.monotonic() + 5
            while time.monotonic() < limit:
                stats = await asyncio.to_thread(self.provider_stats)
                if stats["urgent"] - before["urgent"] >= len(sent_urgent):
                    break
                await asyncio.sleep(0.1)
        await nc.close()
        return {
            "request_id": request_id,
            "t0": t0,
            "t_end": t_end,
            "cpu": cpu_cores(*snaps),
            "sent_urgent": sent_urgent,
            "wall_urgent": wall_urgent,
            "mono_to_wall": time.time() - time.monotonic(),
            "delivered_seen": got,
            "outbox_at_end": outbox_at_end,
            "inside": inside,
        }

    def run_broadcast(self, name: str, port: str, urgent: bool) -> None:
        through = f"gateway capped at {self.plan.rate:g}/s" if port == "capped" else "gateway"
        self.say(
            f"{name}: broadcast to {self.plan.residents} residents through the {through}"
            + (f", an urgent alert every {self.plan.urgent_every_s:g}s" if urgent else "")
        )
        raw = asyncio.run(self._broadcast(name, port, urgent))
        # let the outcomes be committed, then look at the store
        time.sleep(1.0)
        records = self.provider_records()
        res = self.analyse(name, port, raw, records)
        self.results[name] = res
        line = (
            f"{name}: {res['delivered']} delivered in {res['duration_s']:.2f}s "
            f"({res['per_s']:.0f}/s; steady {res['steady_per_s']:.0f}/s), "
            f"first after {res['first_s']:.2f}s"
        )
        if urgent:
            u = res["urgent"]
            line += (
                f"; urgent {u['arrived']}/{u['sent']}, p50 {u['p50_ms']} p99 {u['p99_ms']} "
                f"max {u['max_ms']} ms"
            )
        self.say(line)

    def analyse(self, name: str, port: str, raw: dict, records: list[list]) -> dict:
        p = self.plan
        t0 = raw["t0"]
        mine = [r for r in records if r[1] == port and r[2] == port and r[0] >= t0]
        times = sorted(r[0] - t0 for r in mine)
        keys = [r[3] for r in mine]
        n = len(times)
        res: dict = {"delivered": n, "expected": p.residents}
        res["duplicates"] = n - len(set(keys))
        res["recipients"] = len({r[4] for r in mine})
        if n:
            res["first_s"] = round(times[0], 3)
            res["duration_s"] = round(times[-1], 3)
            res["per_s"] = round(n / times[-1], 1)
            lo, hi = times[n // 10], times[(9 * n) // 10]
            res["steady_per_s"] = round((9 * n // 10 - n // 10) / (hi - lo), 1) if hi > lo else 0
            per_second: dict[int, int] = {}
            for t in times:
                per_second[int(t - times[0])] = per_second.get(int(t - times[0]), 0) + 1
            full = [v for k, v in per_second.items() if k < int(times[-1] - times[0])]
            res["max_in_1s"] = max(full) if full else n
            res["min_in_1s"] = min(full) if full else n
            # the most in any sliding one-second window (a gateway's cap is per second)
            j, best = 0, 0
            for i in range(n):
                while times[i] - times[j] >= 1.0:
                    j += 1
                best = max(best, i - j + 1)
            res["max_in_any_1s_window"] = best
            res["per_second"] = [per_second.get(k, 0) for k in range(int(times[-1] - times[0]) + 1)]
        else:
            res.update(first_s=None, duration_s=None, per_s=0.0, steady_per_s=0.0)
        res["cpu"] = raw["cpu"]
        wall = raw["t_end"] - t0
        res["cpu_us_per_message"] = {
            k: round(1e6 * v * wall / n, 0) if n and v is not None else None
            for k, v in raw["cpu"].items()
            if k in ("notify", "nats", "provider")
        }
        sent = raw["sent_urgent"]
        if sent:
            arrived = {r[5]: r[0] for r in records if r[2] == "urgent" and r[5] in sent}
            lat = [1000 * (arrived[i] - sent[i]) for i in sent if i in arrived]
            res["urgent"] = {
                "sent": len(sent),
                "arrived": len(lat),
                "p50_ms": round(pct(lat, 50), 1) if lat else None,
                "p90_ms": round(pct(lat, 90), 1) if lat else None,
                "p99_ms": round(pct(lat, 99), 1) if lat else None,
                "max_ms": round(max(lat), 1) if lat else None,
                "over_250ms": sum(1 for x in lat if x > TARGET_URGENT_P99_MS),
                "during_broadcast": sum(
                    1 for i in sent if raw["t0"] <= sent[i] <= t0 + (times[-1] if times else 0)
                ),
            }
            res["urgent"]["stages"] = self.urgent_stages(raw, arrived)
            res["urgent"]["by_time"] = {
                label: _summary(
                    [
                        1000 * (arrived[i] - sent[i])
                        for i in sent
                        if i in arrived and lo <= sent[i] - t0 < hi
                    ]
                )
                for label, lo, hi in (("0-5 s", 0, 5), ("5-20 s", 5, 20), ("20 s-end", 20, 1e9))
            }
        # notify's own view of what it did
        rid = raw["request_id"].replace("'", "''")
        res["store"] = {
            "sent": sqlite_scalar(
                self.db,
                f"SELECT COUNT(*) FROM messages WHERE request_id='{rid}' AND status='sent'",
            ),
            "messages": sqlite_scalar(
                self.db, f"SELECT COUNT(*) FROM messages WHERE request_id='{rid}'"
            ),
            "request_status": sqlite_scalar(
                self.db, f"SELECT status FROM requests WHERE request_id='{rid}'", None
            ),
        }
        res["rss"] = self.rss_figures(t0, raw["t_end"])
        res["batches"] = self.batches(raw["request_id"])
        res["outbox_at_end"] = raw["outbox_at_end"]
        res["inside"] = raw["inside"]
        res["t0"], res["t_end"] = t0, raw["t_end"]
        return res

    def batches(self, request_id: str) -> dict:
        """How the broadcast's messages were claimed and settled: notify writes one history
        entry per message per claim round ("sending") and per outcome batch ("sent"), each
        with the round's time, so the entries sharing a time are one transaction."""
        out = {}
        for status, label in (("sending", "claims"), ("sent", "settles")):
            n = sqlite_scalar(
                self.db,
                "SELECT COUNT(DISTINCT h.at) FROM message_history h JOIN messages m "
                "ON m.message_id = h.message_id "
                f"WHERE m.request_id = '{request_id}' AND h.status = '{status}'",
                0,
            )
            out[label] = n
            out[f"messages_per_{label[:-1]}"] = round(self.plan.residents / n, 1) if n else None
        return out

    def outbox_backlog(self) -> int:
        """notify's events not yet published (NotificationDelivered, one per message)."""
        return sqlite_scalar(
            self.db, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND parked_at IS NULL"
        )

    def drain(self, name: str, limit_s: float = 30.0) -> None:
        """Wait (bounded) until notify has published the events of what it delivered, so the
        next phase starts from an idle notify."""
        t0 = time.monotonic()
        before = pending = self.outbox_backlog()
        while pending > 0 and time.monotonic() - t0 < limit_s and self.notify.alive:
            time.sleep(0.25)
            pending = self.outbox_backlog()
        waited = time.monotonic() - t0
        self.results[name]["outbox_drain"] = {
            "before": before,
            "after": pending,
            "waited_s": round(waited, 1),
        }
        if before:
            self.say(f"{name}: notify's outbox {before} -> {pending} unsent after {waited:.1f}s")

    def urgent_stages(self, raw: dict, arrived: dict[int, float]) -> dict:
        """Where an urgent alert's time goes, from notify's history of each message (its
        wall clock, UTC): publish → the request handled (its "queued" entry: the handler's
        start, after JetStream and the consumer), → claimed for sending ("sending"), →
        at the gateway (the token, the HTTP post)."""
        offset = raw["mono_to_wall"]
        ids = {f"bench-urgent-{self.tag}-{n}": n for n in raw["wall_urgent"]}
        stages: dict[str, list[float]] = {"to_handler": [], "to_claim": [], "to_gateway": []}
        try:
            con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
            q = (
                "SELECT m.request_id, h.status, h.at FROM messages m JOIN message_history h "
                "ON h.message_id = m.message_id WHERE m.request_id LIKE ? "
                "AND h.status IN ('queued', 'sending') ORDER BY h.id"
            )
            rows = con.execute(q, (f"bench-urgent-{self.tag}-%",)).fetchall()
            con.close()
        except sqlite3.Error:
            return {}
        at: dict[int, dict[str, float]] = {}
        for rid, status, when in rows:
            n = ids.get(rid)
            if n is None:
                continue
            parsed = datetime.fromisoformat(str(when))
            t = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
            at.setdefault(n, {}).setdefault(status, t)  # the first of each
        for n, marks in at.items():
            if "queued" not in marks or "sending" not in marks or n not in arrived:
                continue
            stages["to_handler"].append(1000 * (marks["queued"] - raw["wall_urgent"][n]))
            stages["to_claim"].append(1000 * (marks["sending"] - marks["queued"]))
            stages["to_gateway"].append(1000 * (arrived[n] + offset - marks["sending"]))
        return {k: _summary(v) for k, v in stages.items()}

    def rss_figures(self, t0: float, t1: float) -> dict:
        s = self.rss.between(t0, t1) if self.rss else []
        if not s:
            return {}
        vals = [v for _, v in s]
        half = [v for t, v in s if t >= t0 + (t1 - t0) / 2]
        mid = [v for t, v in s if abs(t - (t0 + (t1 - t0) / 2)) <= 1.0]
        last = [v for t, v in s if t >= t1 - 2.0]
        out = {
            "start_mb": round(vals[0], 1),
            "peak_mb": round(max(vals), 1),
            "end_mb": round(vals[-1], 1),
            "samples": len(vals),
        }
        if len(half) >= 4:
            out["second_half_growth_mb"] = round(
                statistics.median(last) - statistics.median(mid or half[:4]), 1
            )
            ts = [t for t, v in s if t >= t0 + (t1 - t0) / 2]
            out["second_half_slope_mb_per_min"] = round(60 * _slope(ts, half), 2)
        return out

    # --- the whole run ----------------------------------------------------------------------
    def run(self) -> None:
        self.start_nats()
        self.start_provider()
        self.start_notify()
        self.load_community()
        time.sleep(1.0)
        self.rss = RssSampler(self.notify.proc.pid)
        self.rss.start()
        t_idle = time.monotonic()
        self.run_raw("raw")
        self.results["rss_idle_mb"] = round(rss_mb(self.notify.proc.pid) or 0, 1)
        self.run_broadcast("capped", "capped", urgent=True)
        self.drain("capped")
        self.say("pointing the channel at the uncapped port")
        self.publish([self.channel("uncapped")])
        deadline = time.monotonic() + 30
        want = self.sms_url("uncapped")
        while sqlite_scalar(self.db, "SELECT url FROM channels", "") != want:
            if time.monotonic() > deadline:
                raise RuntimeError("notify did not take the uncapped channel within 30 s")
            time.sleep(0.1)
        time.sleep(0.5)
        self.run_broadcast("uncapped", "uncapped", urgent=False)
        self.drain("uncapped")
        self.run_raw("raw_again")
        t_end = time.monotonic()
        self.rss.stop()
        self.results["rss_run"] = {
            "idle_before_mb": self.results["rss_idle_mb"],
            "peak_mb": round(max(v for t, v in self.rss.between(t_idle, t_end)), 1),
            "end_mb": round(self.rss.samples[-1][1], 1),
        }
        self.results["rss_series"] = [
            (round(t - t_idle, 2), round(v, 1)) for t, v in self.rss.samples
        ]
        self.results["notify_errors"] = log_problems(self.logs / "notify.log")


def _summary(ms: list[float]) -> dict:
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50": round(pct(ms, 50), 1),
        "p90": round(pct(ms, 90), 1),
        "p99": round(pct(ms, 99), 1),
        "max": round(max(ms), 1),
    }


def _slope(xs: list[float], ys: list[float]) -> float:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


HISTOGRAMS = (
    "request_to_provider_seconds",
    "handler_duration_seconds",
    "provider_duration_seconds",
)


def read_metrics(port: int) -> dict[str, float]:
    """notify's histograms (their samples by full name and labels) from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not any(h in line for h in HISTOGRAMS):
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out


def hist(a: dict[str, float], b: dict[str, float], metric: str, label: str) -> dict:
    """One series of a histogram between two readings: count, mean and bucket bounds of
    the p50 and p99 (the upper bound of the bucket each falls in)."""
    d = {k: v - a.get(k, 0.0) for k, v in b.items() if metric in k and label in k}
    count = next((v for k, v in d.items() if "_count" in k), 0.0)
    total = next((v for k, v in d.items() if "_sum" in k), 0.0)
    buckets = sorted(
        (float(k.split('le="', 1)[1].split('"', 1)[0]), v) for k, v in d.items() if "_bucket" in k
    )
    if not count:
        return {"count": 0}

    def bound(q: float) -> float | None:
        for le, n in buckets:
            if n >= q * count:
                return le
        return None

    return {
        "count": int(count),
        "mean_ms": round(1000 * total / count, 1),
        "p50_le_ms": None if bound(0.5) is None else round(1000 * bound(0.5), 1),
        "p99_le_ms": None if bound(0.99) is None else round(1000 * bound(0.99), 1),
        "within_250ms": next((int(n) for le, n in buckets if le == 0.25), None),
    }


def log_problems(path: Path, limit: int = 5) -> dict:
    """Warnings and errors notify logged during the run (counted, a few kept)."""
    counts: dict[str, int] = {}
    samples: list[str] = []
    try:
        for line in path.read_text(errors="replace").splitlines():
            low = line.lower()
            for level in ("error", "warning", "traceback"):
                if f'"level": "{level}"' in low or f" {level} " in low or low.startswith(level):
                    counts[level] = counts.get(level, 0) + 1
                    if len(samples) < limit:
                        samples.append(line[:300])
                    break
    except OSError:
        pass
    return {"counts": counts, "samples": samples}


# --- the report -----------------------------------------------------------------------------
def derive(results: dict, plan: Plan) -> tuple[list[dict], list[str], list[str]]:
    """The target checks, the notes, the disturbed phases."""
    checks: list[dict] = []
    notes: list[str] = []
    capped, uncapped = results.get("capped", {}), results.get("uncapped", {})
    raws = [results[k]["per_s"] for k in ("raw", "raw_again") if k in results]
    raw = statistics.fmean(raws) if raws else None
    results["raw_mean_per_s"] = raw
    limit = plan.allowed_s * (1 + TARGET_CAP_SLACK)
    d = capped.get("duration_s")
    complete = capped.get("delivered") == plan.residents
    alerts = (capped.get("urgent") or {}).get("arrived", 0)
    # the bucket starts full (a burst of a twentieth of a second's rate)
    least = (plan.residents + alerts - plan.rate / 20) / plan.rate
    checks.append(
        {
            "check": f"capped broadcast: request to the last of {plan.residents:,} at the gateway",
            "shown": f"{d:.2f} s ({d / plan.allowed_s:.3f} × {plan.allowed_s:g} s; the "
            f"{alerts} urgent alerts share the bucket: its own minimum is {least:.2f} s)"
            if d and complete
            else f"{capped.get('delivered', 0)} of {plan.residents} delivered",
            "target": f"≤ {limit:.1f} s (≤ {plan.allowed_s:g} s + 5%)",
            "pass": bool(d and complete and d <= limit),
        }
    )
    u = capped.get("urgent") or {}
    p99 = u.get("p99_ms")
    checks.append(
        {
            "check": "urgent alert during it: publish to the gateway, p99",
            "shown": f"{p99:.1f} ms ({u['arrived']} of {u['sent']} alerts)"
            if p99 is not None
            else "-",
            "target": f"≤ {TARGET_URGENT_P99_MS:g} ms",
            "pass": p99 is not None
            and p99 <= TARGET_URGENT_P99_MS
            and u.get("arrived") == u.get("sent"),
        }
    )
    rss = capped.get("rss") or {}
    growth = rss.get("second_half_growth_mb")
    checks.append(
        {
            "check": "notify's RSS during it: growth over its second half",
            "shown": f"{growth:+.1f} MB (start {rss.get('start_mb')}, peak "
            f"{rss.get('peak_mb')}, end {rss.get('end_mb')} MB)"
            if growth is not None
            else "-",
            "target": f"flat: ≤ {RSS_FLAT_MB:g} MB",
            "pass": growth is not None and growth <= RSS_FLAT_MB,
        }
    )
    ratio = None
    if uncapped.get("per_s") and raw:
        ratio = uncapped["per_s"] / raw
        results["uncapped_over_raw"] = round(ratio, 3)
        results["uncapped_steady_over_raw"] = round(uncapped["steady_per_s"] / raw, 3)
    checks.append(
        {
            "check": "uncapped broadcast: messages/s delivered ÷ raw HTTP posting",
            "shown": f"{uncapped['per_s']:.0f}/s ÷ {raw:.0f}/s = {ratio:.3f}"
            if ratio is not None
            else "-",
            "target": "reported (no target)",
            "pass": None,
        }
    )
    if len(raws) == 2 and raw:
        drift = abs(raws[1] - raws[0]) / raw
        results["raw_drift"] = round(drift, 3)
        if drift > 0.15:
            notes.append(
                f"the raw posting rate moved {drift:.0%} between the start and the end of the "
                f"run: the machine's load changed meanwhile; read the ratio as ±{drift:.0%}."
            )
    disturbed = []
    for name in ("raw", "capped", "uncapped", "raw_again"):
        c = (results.get(name) or {}).get("cpu")
        if c and (c.get("other") or 0) >= DISTURBED_CORES:
            disturbed.append(f"{name} ({c['other']:.2f} cores)")
    for name in ("capped", "uncapped"):
        r = results.get(name) or {}
        if r.get("duplicates"):
            notes.append(f"{name}: {r['duplicates']} messages reached the gateway twice.")
        if r.get("recipients") is not None and r["recipients"] != plan.residents:
            notes.append(
                f"{name}: {r['recipients']} distinct phones reached, {plan.residents} expected."
            )
        st = r.get("store") or {}
        if st and st.get("sent") != plan.residents:
            notes.append(
                f"{name}: notify's store has {st.get('sent')} of its {st.get('messages')} "
                f"messages sent a second after the last delivery (status "
                f"{st.get('request_status')})."
            )
    if capped.get("max_in_any_1s_window"):
        cap = plan.rate
        w = capped["max_in_any_1s_window"]
        if w > 1.06 * cap + 5:  # the burst of the bucket, plus the urgent ones
            notes.append(
                f"capped: the gateway got {w} broadcast messages in one second, more than its "
                f"cap of {cap:g}/s allows (with a burst of {cap / 20:g})."
            )
    return checks, notes, disturbed


def render(report: dict) -> str:
    plan, m, r = report["plan"], report["machine"], report["results"]
    cap, unc = r.get("capped", {}), r.get("uncapped", {})
    proj = r.get("projection", {})
    lines = [
        f"# Notify benchmark, {report['started_utc']}",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, {m['platform']}  ",
        "Load average at start / end: {} / {}; CPU busy in the second before the start: "
        "{} cores  ".format(
            " ".join(f"{x:.2f}" for x in m["loadavg_start"]),
            " ".join(f"{x:.2f}" for x in m.get("loadavg_end", ())),
            m["busy_cores_before_start"],
        ),
        "fsync of a 4 KiB write at the start: p50 {p50} ms, p99 {p99} ms  ".format(**m["fsync_ms"]),
        "Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + "  ",
        f"Notify measured: sha256 {report['source']['sha256']} of {report['source']['files']} "
        f"files of services/notify/src and shared/src, newest {report['source']['newest_utc']}"
        + (" (edited again while it ran)" if report.get("source_changed") else "")
        + "  ",
        f"Duration: {report['duration_s']:.0f} s{' (--quick)' if plan['quick'] else ''}",
        "",
        f"A compound of {plan['residents']:,} residents ({plan['per_household']} per household, "
        "SMS only), the broadcasts' recipients. "
        + (
            "The whole community was published as reference data and projected by notify; "
            if plan["refdata"]
            else "Its community, places and SMS channel, and another compound of "
            f"{plan['sample']:,} residents, were published as reference data and projected by "
            "notify (timed: see the checks); the broadcast compound's households and residents "
            "were written straight into notify's store, in one transaction, with notify's own "
            "tables (its projection takes one transaction per row: for these "
            f"{plan['residents'] * 5 // 4:,} rows, one to two and a half minutes here; "
            "`--refdata` takes that road); "
        )
        + "then notify (SQLite, synchronous FULL, uvloop) was started afresh (it reads the "
        "providers' caps when it gets ready). The SMS gateway is a local asyncio server in its "
        f"own process. Capped: the channel's rate_per_s = {plan['rate']:g}, so "
        f"{plan['residents']:,} messages take {plan['residents'] / plan['rate']:g} s; an urgent "
        f"alert (ToPerson, notice.text) every {plan['urgent_every_s']:g} s meanwhile, timed "
        "from just before its publish to its arrival at the gateway (CLOCK_MONOTONIC of one "
        "machine). Uncapped: the same broadcast after the channel is pointed at the gateway's "
        "second port (no cap). Raw: one process, one aiohttp session on uvloop, "
        f"{plan['raw_inflight']} in flight, {plan['raw_count']:,} posts of the same JSON "
        f"after {plan['raw_warmup']} warm-up, to the uncapped port; before and after the "
        "broadcasts.",
        "",
        "## Targets",
        "",
        "| check | value | target | result |",
        "|---|---:|---:|---|",
    ]
    for c in report["checks"]:
        verdict = "PASS" if c["pass"] else ("reported" if c["pass"] is None else "FAIL")
        lines.append(f"| {c['check']} | {c['shown']} | {c['target']} | {verdict} |")
    if report["disturbed"]:
        lines += [
            "",
            "**Disturbed run**: other work on the machine used CPU (busy + steal beyond the "
            "benchmark's own processes) during " + ", ".join(report["disturbed"]) + ": run "
            "again when the machine is quiet.",
        ]
    else:
        lines += ["", "No phase was disturbed by other work on the machine (≥ 0.3 cores)."]
    lines += [
        "",
        "## Broadcasts",
        "",
        "| broadcast | delivered | to the last | first after | msgs/s (whole) | msgs/s "
        "(10th-90th %) | most in 1 s | dupl. | in the store: sent | CPU µs per message: "
        "notify / nats / gateway | CPU cores: notify (its event loop + its other threads) / "
        "nats / gateway / harness / machine busy / other |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, res in (("capped", cap), ("uncapped", unc)):
        if not res:
            continue
        c = res["cpu"]
        us = res["cpu_us_per_message"]
        lines.append(
            f"| {name} | {res['delivered']:,} | {fmt(res['duration_s'])} s | "
            f"{fmt(res['first_s'])} s | {res['per_s']:.0f} | {res['steady_per_s']:.0f} | "
            f"{res.get('max_in_any_1s_window', '-')} | {res['duplicates']} | "
            f"{res['store']['sent']} | "
            + " / ".join(fmt(us.get(k), 0) for k in ("notify", "nats", "provider"))
            + f" | {fmt(c.get('notify'))} ({fmt(c.get('notify_loop'))} + "
            f"{fmt(c.get('notify_threads'))}) / "
            + " / ".join(
                fmt(c.get(k)) for k in ("nats", "provider", "harness", "machine_busy", "other")
            )
            + " |"
        )
    raw_us = [r[k]["cpu_us_per_post"] for k in ("raw", "raw_again") if k in r]
    if raw_us:
        per_post = statistics.fmean(raw_us)
        parts = [
            f"{name} {res['cpu_us_per_message']['notify'] / per_post:.1f}×"
            for name, res in (("capped", cap), ("uncapped", unc))
            if res and res.get("cpu_us_per_message", {}).get("notify")
        ]
        lines += [
            "",
            "notify's CPU per message over the raw poster's CPU per post "
            f"({per_post:.0f} µs, mean of its two runs): " + ", ".join(parts) + ". The raw "
            "poster does the HTTP post and nothing else; notify also writes each message "
            "(expansion, claim, outcome, history), publishes its NotificationDelivered and "
            "takes the requests. The ratio hardly depends on how fast the host is in this run; "
            "the µs do (the raw poster's were 390 µs per post on a quiet hour here, "
            "2026-12-03, and 550-970 µs when the host was slower).",
        ]
    u = cap.get("urgent")
    if u:
        lines += [
            "",
            "## Urgent alerts during the capped broadcast",
            "",
            "| alerts | arrived | p50 ms | p90 ms | p99 ms | max ms | over 250 ms |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {u['sent']} | {u['arrived']} | {fmt(u['p50_ms'], 1)} | {fmt(u['p90_ms'], 1)} | "
            f"{fmt(u['p99_ms'], 1)} | {fmt(u['max_ms'], 1)} | {u['over_250ms']} |",
        ]
        st = u.get("stages") or {}
        if st.get("to_handler", {}).get("n"):
            lines += [
                "",
                "Where an alert's time goes, from notify's history of each message (its wall "
                "clock): **publish → handled** (JetStream and the urgent consumer, up to the "
                "start of the request's handler: the `queued` entry's time), **→ claim round** "
                "(the request's transactions, then waiting for a claim round of the sender: "
                "the `sending` entry's time, taken when the round starts), **→ at the "
                "gateway** (the claim's own transaction, the provider's token, the HTTP post):",
                "",
                "| stage | alerts | p50 ms | p90 ms | p99 ms | max ms |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for key, label in (
                ("to_handler", "publish → handled"),
                ("to_claim", "handled → claim round"),
                ("to_gateway", "claim round → at the gateway"),
            ):
                x = st[key]
                lines.append(
                    f"| {label} | {x['n']} | {x['p50']} | {x['p90']} | {x['p99']} | {x['max']} |"
                )
        bt = u.get("by_time") or {}
        if bt:
            lines += [
                "",
                "By when the alert was published (seconds after the broadcast's request): "
                + "; ".join(
                    f"{label}: {x['n']} alerts, p50 {x.get('p50', '-')} p99 {x.get('p99', '-')} ms"
                    for label, x in bt.items()
                    if x.get("n")
                )
                + ".",
            ]
        ins = cap.get("inside") or {}
        h, c, rp = (
            ins.get("urgent_handler", {}),
            ins.get("provider_call", {}),
            ins.get("urgent_request_to_provider", {}),
        )
        if h.get("count") or c.get("count"):
            lines += [
                "",
                "notify's own histograms over the capped broadcast (bucket bounds): the urgent "
                f"consumer's handler took {h.get('mean_ms', '-')} ms on average "
                f"(p50 ≤ {h.get('p50_le_ms', '-')}, p99 ≤ {h.get('p99_le_ms', '-')} ms, "
                f"{h.get('count', 0)} requests); an urgent message went from its creation to "
                f"the gateway's acceptance in {rp.get('mean_ms', '-')} ms on average "
                f"({rp.get('within_250ms', '-')} of {rp.get('count', 0)} within 250 ms); a call "
                "to the gateway (`provider_duration_seconds`: from after the token, so with the "
                "wait for one of the provider's connections, to the reply) took "
                f"{c.get('mean_ms', '-')} ms on average (p99 ≤ {c.get('p99_le_ms', '-')} ms, "
                f"{c.get('count', 0)} calls) while the gateway itself answers at once.",
            ]
    lines += [
        "",
        "## Raw HTTP posting (one process, the same gateway)",
        "",
        "| run | posts/s | posts | in flight | CPU µs per post | errors | CPU cores: raw / "
        "gateway / notify (idle) / machine busy / other |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name in ("raw", "raw_again"):
        res = r.get(name)
        if not res:
            continue
        c = res["cpu"]
        lines.append(
            f"| {name} | {res['per_s']:.0f} | {res['posts']:,} | {res['inflight']} | "
            f"{res['cpu_us_per_post']} | {res['errors']} | "
            + " / ".join(
                fmt(c.get(k)) for k in ("raw", "provider", "notify", "machine_busy", "other")
            )
            + " |"
        )
    if r.get("raw_mean_per_s"):
        lines += [
            "",
            f"Raw ceiling for the ratio: {r['raw_mean_per_s']:.0f} posts/s (mean of the two"
            + (f"; drift {r['raw_drift']:.0%}" if "raw_drift" in r else "")
            + "). Uncapped ÷ raw: "
            f"{r.get('uncapped_over_raw', '-')} over the whole broadcast, "
            f"{r.get('uncapped_steady_over_raw', '-')} in its steady part (10th to 90th "
            "percentile of arrivals).",
        ]
    lines += ["", "## notify's memory (VmRSS)", ""]
    lines += [
        "| phase | start MB | peak MB | end MB | growth over the second half MB | slope over "
        "the second half MB/min |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, res in (("capped", cap), ("uncapped", unc)):
        rs = res.get("rss") if res else None
        if rs:
            lines.append(
                f"| {name} | {rs['start_mb']} | {rs['peak_mb']} | {rs['end_mb']} | "
                f"{fmt(rs.get('second_half_growth_mb'), 1)} | "
                f"{fmt(rs.get('second_half_slope_mb_per_min'), 2)} |"
            )
    run = r.get("rss_run")
    if run:
        lines += [
            "",
            f"Whole run: {run['idle_before_mb']} MB idle after the restart (the community "
            f"loaded), peak {run['peak_mb']} MB, {run['end_mb']} MB at the end (after both "
            "broadcasts and the second raw run). Flat means the RSS does not grow with time "
            "while messages go out: the growth from the middle of the capped broadcast to its "
            f"end (medians of the samples within 1 s of the middle and of its last 2 s) at most "
            f"{RSS_FLAT_MB:g} MB; the second broadcast (another {plan['residents']:,} messages) "
            "shows whether memory grows per message.",
        ]
    lines += ["", "## Checks on the measurement", ""]
    if proj:
        lines.append(
            f"- reference data ({proj['what']}): {proj['rows']:,} rows published in "
            f"{proj['publish_s']} s, all in notify's store after {proj['projected_s']} s "
            f"({proj['rows_per_s']:.0f} rows/s, {proj['cpu_ms_per_row']} ms of notify's CPU per "
            "row)"
            + (
                f"; the broadcast compound's {r['seeded']['rows']:,} rows written into its store "
                f"in {r['seeded']['seconds']} s"
                if r.get("seeded")
                else ""
            )
        )
    for name, res in (("capped", cap), ("uncapped", unc)):
        if not res:
            continue
        lines.append(
            f"- {name}: {res['recipients']:,} distinct phones reached, {res['duplicates']} "
            f"keys twice; the store: {res['store']['sent']} of {res['store']['messages']} "
            f"messages sent, request {res['store']['request_status']}; most in any one-second "
            f"window {res.get('max_in_any_1s_window')}, fewest in a whole second "
            f"{res.get('min_in_1s')}"
            + (
                f"; {res['batches']['claims']} claim rounds "
                f"({res['batches']['messages_per_claim']} messages each on average) and "
                f"{res['batches']['settles']} outcome commits "
                f"({res['batches']['messages_per_settle']} each)"
                if res.get("batches", {}).get("claims")
                else ""
            )
            + (
                "; the broadcast request's handler (its expansion into messages) took "
                f"{res['inside']['broadcast_handler']['mean_ms'] / 1000:.2f} s"
                if res.get("inside", {}).get("broadcast_handler", {}).get("count")
                else ""
            )
            + (
                f"; notify's outbox (its NotificationDelivered events) "
                f"{res['outbox_at_end']} unsent at the last delivery, "
                f"{res['outbox_drain']['before']} a second later, "
                f"{res['outbox_drain']['after']} after {res['outbox_drain']['waited_s']} s more"
                if res.get("outbox_drain")
                else ""
            )
        )
    errs = r.get("notify_errors") or {}
    if errs.get("counts"):
        lines.append(
            "- notify logged: "
            + ", ".join(f"{v} {k}" for k, v in errs["counts"].items())
            + (f" (e.g. `{errs['samples'][0][:200]}`)" if errs.get("samples") else "")
        )
    else:
        lines.append("- notify logged no warning or error")
    if report["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report["notes"]]
    if report["failures"]:
        lines += ["", "## Harness failures", ""] + [f"- {f}" for f in report["failures"]]
    lines += [
        "",
        "Every figure comes from this one run; the machine is shared: compare the ratios, "
        "not absolute numbers across runs. See bench/README.md.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4,000 residents (under a minute)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, store)")
    ap.add_argument(
        "--refdata",
        action="store_true",
        help="publish the whole community through JetStream and wait for notify's\n"
        "projection (about 150 rows/s here: over 2 minutes more)",
    )
    ap.add_argument("--serve-provider", metavar="OUT", help=argparse.SUPPRESS)
    ap.add_argument("--raw-post", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=5000, help=argparse.SUPPRESS)
    ap.add_argument("--inflight", type=int, default=4, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=int, default=300, help=argparse.SUPPRESS)
    ap.add_argument("--text", default="notice", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_provider:
        serve_provider(Path(args.serve_provider))
        return 0
    if args.raw_post:
        raw_post(args.raw_post, args.count, args.inflight, args.warmup, args.text)
        return 0

    plan = Plan.make(args.quick)
    plan.refdata = args.refdata
    dropped = sorted(k for k in os.environ if k.startswith("GRIDCARE_") or k == "NATS_URL")
    for k in dropped:
        del os.environ[k]

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    started = datetime.now(UTC)
    report: dict = {
        "started_utc": started.strftime("%Y-%m-%d %H:%M:%SZ"),
        "command": " ".join(shlex.quote(a) for a in [os.path.relpath(PY, ROOT), *sys.argv]),
        "plan": {**plan.__dict__},
        "machine": machine_info(
            ("nats-py", "faststream", "aiohttp", "uvloop", "sqlalchemy", "aiosqlite")
        ),
        "dropped_env": dropped,
        "source": source_fingerprint("notify"),
    }
    tmp = Path(tempfile.mkdtemp(prefix="notify_bench-"))
    bench = Bench(plan, tmp)
    bench.say(
        f"notify_bench: temp dir {tmp}{' (dropped ' + ', '.join(dropped) + ')' if dropped else ''}"
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
        bench.cleanup()
    if code == 130:
        print(f"logs kept in {tmp}")
        return code
    report["machine"]["loadavg_end"] = os.getloadavg()
    report["duration_s"] = (datetime.now(UTC) - started).total_seconds()
    report["source_changed"] = source_fingerprint("notify")["sha256"] != report["source"]["sha256"]
    report["results"] = bench.results
    report["checks"], report["notes"], report["disturbed"] = derive(bench.results, plan)
    report["failures"] = bench.failures
    report["temp_dir"] = str(tmp)
    RESULTS.mkdir(parents=True, exist_ok=True)
    md = render(report)
    (RESULTS / "notify.md").write_text(md, encoding="utf-8")
    (RESULTS / "notify.json").write_text(json.dumps(report, indent=1, default=str), "utf-8")
    print()
    print(md)
    print("written: bench/results/notify.md (and notify.json)")
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
