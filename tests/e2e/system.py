"""The whole system in a test: a fresh nats-server, the four services as real processes,
each with its own store (SQLite files or PostgreSQL databases), and a webhook sink."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from gridcare.cli.devrun import SERVICES, NatsServer, ServiceProcess, WebhookSink, free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "community"


def write_community(folder: Path, sink: WebhookSink, extra_residents: int = 0) -> list[str]:
    """The sample community, every chat URL (grids, gates, staff, groups) pointing at
    ``sink``; plus N residents.
    Returns every resident id."""
    folder.mkdir(parents=True, exist_ok=True)
    for src in EXAMPLES.glob("*.csv"):
        rows = list(csv.DictReader(src.open(encoding="utf-8")))
        if src.name == "grids.csv":
            for r in rows:
                r["chat_url"] = sink.url(f"/hooks/{r['grid_id']}")
        if src.name == "gates.csv":
            for r in rows:
                r["duty_chat_url"] = sink.url(f"/hooks/duty-{r['gate_id']}")
        if src.name == "staff.csv":
            for r in rows:
                if r["chat_url"]:
                    r["chat_url"] = sink.url(f"/hooks/staff-{r['staff_id']}")
        if src.name == "chat_groups.csv":
            for r in rows:
                r["url"] = sink.url(f"/hooks/{r['place']}-{r['place_id']}")
        if src.name == "residents.csv":
            households = ["H-0101", "H-0102", "H-0201", "H-0301"]
            for i in range(extra_residents):
                rows.append(
                    {
                        "resident_id": f"R-9{i:03d}",
                        "household_id": households[i % 4],
                        "name": f"Test {i}",
                        "phone": f"+86 139 1000 {i:04d}",
                        "language": "zh" if i % 2 else "en",
                        "vulnerabilities": "",
                    }
                )
        with (folder / src.name).open("w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)
    with (folder / "residents.csv").open(encoding="utf-8") as f:
        return [r["resident_id"] for r in csv.DictReader(f)]


def fever_scan(scan_id: str, person: str, gate: str = "g1", temp: float = 38.2) -> dict:
    return {
        "scan_id": scan_id,
        "gate_id": gate,
        "direction": "in",
        "person_id": person,
        "scanned_at": datetime.now(UTC).isoformat(),
        "temperature_c": temp,
        "mask": True,
        "health_code": "green",
    }


@dataclass
class System:
    root: Path
    db_urls: dict[str, str]
    sink: WebhookSink
    nats: NatsServer | None = None
    procs: dict[str, ServiceProcess] = field(default_factory=dict)
    # the last error of count() per (service, table), kept for a failing test's message
    count_errors: dict[tuple[str, str], str] = field(default_factory=dict)
    residents: int = 0  # in the last community imported: what wait_projected waits for
    # more environment for one service's process, by service name (e.g. screening's
    # GRIDCARE_SCREENING_CLOCK_OFFSET_FILE: see ``move_clock``)
    env: dict[str, dict[str, str]] = field(default_factory=dict)

    def start(self) -> System:
        self.nats = NatsServer(store_dir=self.root / "nats").start()
        env = {
            "GRIDCARE_NATS_URL": self.nats.url,
            "GRIDCARE_VAR_DIR": str(self.root),
            "GRIDCARE_RETRY_BASE_DELAY_S": "0.2",
            "GRIDCARE_RETRY_MAX_DELAY_S": "2",
            "GRIDCARE_ACK_WAIT_S": "10",
            "GRIDCARE_OUTBOX_POLL_S": "0.2",
        }
        for name in SERVICES:
            penv = {**env, "GRIDCARE_DATABASE_URL": self.db_urls[name], **self.env.get(name, {})}
            self.procs[name] = ServiceProcess(
                name, penv, self.root / "log" / f"{name}.log", free_port()
            )
        for p in self.procs.values():
            p.start()
        for p in self.procs.values():
            p.wait_ready(90)
        return self

    def stop(self) -> None:
        for p in self.procs.values():
            p.stop()
        if self.nats:
            self.nats.stop()

    def kill(self, name: str) -> None:
        self.procs[name].stop(kill=True)

    def restart(self, name: str) -> None:
        self.procs[name].start().wait_ready(90)

    def move_clock(self, name: str, ahead_s: float) -> None:
        """Move a service's clock ``ahead_s`` seconds ahead of the real time: the file its
        ``GRIDCARE_<NAME>_CLOCK_OFFSET_FILE`` names (set in ``env`` before ``start``),
        replaced at once so the service never reads half of it."""
        path = Path(self.env[name][f"GRIDCARE_{name.upper()}_CLOCK_OFFSET_FILE"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{ahead_s}\n")
        os.replace(tmp, path)

    def logs(self) -> str:
        return "\n".join(
            f"--- {n}\n{p.log_file.read_text()[-3000:]}"
            for n, p in self.procs.items()
            if p.log_file.exists()
        )

    def import_refdata(self, folder: Path) -> subprocess.CompletedProcess:
        with (folder / "residents.csv").open(encoding="utf-8") as f:
            self.residents = sum(1 for _ in csv.DictReader(f))
        env = {**os.environ, "GRIDCARE_NATS_URL": self.nats.url}
        gridcare = Path(sys.executable).parent / "gridcare"
        return subprocess.run(
            [str(gridcare), "import", str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    async def request(self, subject: str, body: bytes | dict, timeout: float = 5) -> dict:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        nc = await nats.connect(self.nats.url)
        try:
            return json.loads((await nc.request(subject, data, timeout=timeout)).data)
        finally:
            await nc.close()

    async def rows(self, service: str, table: str, where: str = "") -> list[Any]:
        engine = create_async_engine(self.db_urls[service])
        try:
            async with engine.connect() as conn:
                q = f"SELECT * FROM {table}" + (f" WHERE {where}" if where else "")
                return (await conn.execute(sa.text(q))).all()
        finally:
            await engine.dispose()

    async def count(self, service: str, table: str, where: str = "") -> int:
        try:
            return len(await self.rows(service, table, where))
        except Exception as exc:  # the table may not exist yet while a service migrates
            self.count_errors[service, table] = repr(exc)[:300]
            return -1

    async def wait_for(self, check, timeout: float = 60.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = await check()
            if last:
                return last
            await asyncio.sleep(0.2)
        raise AssertionError(
            f"timed out waiting for {what or check.__name__} (last: {last!r})\n{self.logs()}"
        )

    async def wait_projected(self) -> None:
        """Until every store holds the whole community last imported: a test that kills a
        service mid-import tests something else (a redelivery after the ack wait)."""

        async def projected() -> bool:
            return (
                await self.count("checkpoint", "gates") == 3
                and await self.count("checkpoint", "residents") == self.residents
                and await self.count("dispatch", "grids") == 2
                and await self.count("dispatch", "residents") == self.residents
                and await self.count("notify", "grids") == 2
                and await self.count("screening", "residents") == self.residents
            )

        await self.wait_for(projected, what="reference data in every store")
