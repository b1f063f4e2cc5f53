"""The "naive FastStream" responder on ``gate.*.scan``: the write-before-reply baseline.

    python bench/naive_responder.py --url nats://127.0.0.1:PORT --db /tmp/x/naive.db

The straightforward FastStream 0.7 service, default settings throughout: a ``NatsBroker``
subscriber (queue group) whose handler takes the scan as a pydantic model, applies the
body-only rules (fever, mask, health code), writes the scan to SQLite through SQLAlchemy
async (aiosqlite; WAL, synchronous=FULL) in its own transaction - one commit per scan -
and returns the reply. No reference data, no outbox, no idempotency lookup: strictly less
work per scan than gridcare's checkpoint, with the same durability per scan.
FastStream handles SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from faststream import FastStream
from faststream.nats import NatsBroker
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine


class Scan(BaseModel):
    scan_id: str
    gate_id: str
    direction: Literal["in", "out"]
    person_id: str
    scanned_at: datetime
    temperature_c: float | None = None
    mask: bool
    health_code: Literal["green", "yellow", "red"] | None = None


metadata = sa.MetaData()
scans = sa.Table(
    "scans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("gate_id", sa.String(64), nullable=False),
    sa.Column("scan_id", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("direction", sa.String(3), nullable=False),
    sa.Column("temperature_c", sa.Float, nullable=True),
    sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("verdict", sa.String(8), nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("gate_id", "scan_id"),
)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def verdict_for(scan: Scan) -> tuple[str, list[str]]:
    reasons = []
    if scan.temperature_c is None:
        reasons.append("no_temperature")
    elif scan.temperature_c >= 37.3:
        reasons.append("fever")
    if not scan.mask:
        reasons.append("no_mask")
    if scan.health_code in ("red", "yellow"):
        reasons.append(f"code_{scan.health_code}")
    return ("deny" if reasons else "allow"), reasons


async def run(url: str, db: str) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{db}")
    sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    broker = NatsBroker(url)

    @broker.subscriber("gate.*.scan", queue="bench-naive")
    async def on_scan(scan: Scan) -> dict:
        verdict, reasons = verdict_for(scan)
        decided_at = datetime.now(UTC)
        async with sessions.begin() as s:  # one transaction, one commit (fsync) per scan
            await s.execute(
                sa.insert(scans).values(
                    gate_id=scan.gate_id,
                    scan_id=scan.scan_id,
                    person_id=scan.person_id,
                    direction=scan.direction,
                    temperature_c=scan.temperature_c,
                    scanned_at=scan.scanned_at,
                    verdict=verdict,
                    reasons=reasons,
                    decided_at=decided_at,
                )
            )
        message = {"zh": "请通行", "en": "Please pass"} if not reasons else {"zh": "…", "en": "…"}
        return {
            "scan_id": scan.scan_id,
            "verdict": verdict,
            "reasons": reasons,
            "message": message,
            "decided_at": decided_at.isoformat(),
        }

    def ready() -> None:
        print("ready", flush=True)

    await FastStream(broker, after_startup=[ready]).run()
    await engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", required=True)
    p.add_argument("--db", required=True, help="SQLite file")
    a = p.parse_args()
    asyncio.run(run(a.url, a.db))


if __name__ == "__main__":
    main()
