"""What screening's integration tests share: clocks the tests move, a poll with a deadline,
counting rows, reading a stream, and the settings of a screening run by a test."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from nats.js.errors import NotFoundError

from gridcare.cli.devrun import free_port
from gridcare.screening.config import ScreeningSettings
from gridcare.shared.envelope import Envelope


class MovedClock:
    """Screening's now: the real time plus however far the test has moved it."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


class SetClock:
    """Screening's now, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def at(day: date, hh: int, mm: int = 0) -> datetime:
    """``hh:mm`` of a local day in Shanghai, as UTC."""
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC) - timedelta(hours=8)


async def until(check, timeout: float = 20.0, what: str = ""):
    """Poll ``check`` (async) until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline, f"not within {timeout}s: {what or check.__name__}"
        await asyncio.sleep(0.05)
    return result


async def count(svc, table: sa.Table, *where) -> int:
    async with svc.store.sessions() as s:
        q = sa.select(sa.func.count()).select_from(table)
        return await s.scalar(q.where(*where) if where else q)


async def stream(nc, name: str, subject: str = ">") -> list[Envelope]:
    """Every message a JetStream stream holds on ``subject`` (wildcards allowed; all of them
    by default), as envelopes: read by sequence, so no consumer and no fetch that times
    out."""
    js = nc.jetstream()
    out: list[Envelope] = []
    seq = 1
    while True:
        try:
            msg = await js.get_msg(name, seq, subject=subject, next=True)
        except NotFoundError:
            return out
        out.append(Envelope.from_bytes(msg.data))
        seq = msg.seq + 1


def checkin_settings(server, database_url, tmp_path) -> ScreeningSettings:
    """A screening whose reminder tick the test runs itself."""
    return ScreeningSettings(
        nats_url=server.url,
        database_url=database_url,
        var_dir=tmp_path,
        http_port=free_port(),
        outbox_poll_s=0.05,
        screening_checkin_tick_s=3600,  # the test runs the pass itself
    )
