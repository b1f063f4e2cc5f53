"""A tiny service built on the library, for testing the messaging machinery itself
(importable from tests: pytest's ``pythonpath`` includes this folder)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa

from gridcare.shared import subjects
from gridcare.shared.consumer import HandlerContext, Permanent
from gridcare.shared.envelope import Event
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings
from gridcare.shared.store import new_metadata


class Ping(Event):
    """A test event on the DISPATCH stream (``dispatch.test.<topic>``)."""

    TYPE = "test.Ping"
    topic: str
    n: int

    def subject(self) -> str:
        return f"dispatch.test.{self.topic}"


@dataclass
class Behaviour:
    fail_times: dict[int, int] = field(default_factory=dict)  # n -> failures before success
    permanent: set[int] = field(default_factory=set)
    calls: dict[int, int] = field(default_factory=dict)
    fail_until: dict[int, float] = field(default_factory=dict)  # n -> time.monotonic()


@dataclass
class TestService:
    __test__ = False
    svc: Service
    topic: str
    durable: str
    effects: sa.Table
    behaviour: Behaviour

    async def effect_count(self) -> int:
        async with self.svc.store.sessions() as s:
            return await s.scalar(sa.select(sa.func.count()).select_from(self.effects))


def make_service(nats_url: str, database_url: str, tmp_path, **overrides) -> TestService:
    topic = uuid.uuid4().hex[:8]
    md = new_metadata()
    effects = sa.Table(
        "effects",
        md,
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
    )
    settings = Settings(
        nats_url=nats_url,
        database_url=database_url,
        var_dir=tmp_path,
        retry_base_delay_s=0.05,
        retry_max_delay_s=0.2,
        max_deliveries=3,
        ack_wait_s=5,
        outbox_poll_s=0.1,
        **overrides,
    )
    svc = Service("testsvc", md, None, settings)
    behaviour = Behaviour()
    durable = f"testsvc-{topic}"

    async def on_ping(ctx: HandlerContext, ev: Ping) -> None:
        behaviour.calls[ev.n] = behaviour.calls.get(ev.n, 0) + 1
        await ctx.session.execute(sa.insert(effects).values(event_id=ctx.envelope.event_id, n=ev.n))
        if ev.n in behaviour.permanent:
            raise RuntimeError(f"boom {ev.n}")
        if behaviour.calls[ev.n] <= behaviour.fail_times.get(ev.n, 0):
            raise RuntimeError(f"transient {ev.n}")
        if time.monotonic() < behaviour.fail_until.get(ev.n, 0):
            raise RuntimeError(f"not yet {ev.n}")  # e.g. the data it needs is on its way
        if ev.n < 0:
            raise Permanent("negative numbers are never valid")

    svc.handles(Ping, durable=durable, subject=f"dispatch.test.{topic}", stream=subjects.DISPATCH)(
        on_ping
    )
    return TestService(svc, topic, durable, effects, behaviour)
