"""What the benchmarks share: CPU and memory readings from /proc, the disk's fsync, the
machine and the code that ran (for each report's header), and number formatting."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float | None:
    """CPU seconds a process has used (user + system), or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    except (OSError, IndexError, ValueError):
        return None


def machine_cpu_s() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / TICK, steal / TICK


def fsync_ms(n: int = 100) -> dict[str, float]:
    """p50/p99 of an fsync after a 4 KiB write, in the temp dir the stores use: every
    durable commit and JetStream write pays one, so a slow disk slows every latency here."""
    fd, path = tempfile.mkstemp(prefix="fsync-probe-")
    times = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 4096)
            t0 = time.perf_counter()
            os.fsync(fd)
            times.append(1000 * (time.perf_counter() - t0))
    finally:
        os.close(fd)
        os.unlink(path)
    q = statistics.quantiles(times, n=100)
    return {"p50": round(q[49], 2), "p99": round(q[98], 2)}


def machine_info(packages: Iterable[str]) -> dict:
    """The machine, how busy it is, its disk, and the versions of ``packages``."""

    def version(pkg: str) -> str:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    try:
        nats_server = subprocess.run(
            [str(Path(sys.executable).parent / "nats-server"), "--version"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        nats_server = "?"
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    b0, s0 = machine_cpu_s()
    time.sleep(1.0)
    b1, s1 = machine_cpu_s()
    return {
        "nproc": os.cpu_count(),
        "busy_cores_before_start": round(b1 - b0 + s1 - s0, 2),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
        "fsync_ms": fsync_ms(),
        "versions": {
            "nats-server": nats_server.replace("nats-server: ", ""),
            **{p: version(p) for p in packages},
        },
    }


def source_fingerprint(service: str) -> dict:
    """Which code ran: a hash of the service's and the shared library's source (it may be
    edited while a benchmark runs) and the newest file's time."""
    h = hashlib.sha256()
    newest = 0.0
    files = sorted(
        [
            *(ROOT / "services" / service / "src").rglob("*.py"),
            *(ROOT / "shared" / "src").rglob("*.py"),
        ]
    )
    for f in files:
        try:
            h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes())
            newest = max(newest, f.stat().st_mtime)
        except OSError:
            pass
    return {
        "sha256": h.hexdigest()[:12],
        "files": len(files),
        "newest_utc": datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
    }


def fmt(v, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)
