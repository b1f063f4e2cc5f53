"""A tiny service built on the library, for testing the messaging machinery itself
(importable from tests: pytest's ``pythonpath`` includes this folder). It knows no
gridcare service: its own stream, its own event, its own table."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from faststream import Depends

from gridcare.shared.api import ApiError, ApiRouter, Request, unit_of_work
from gridcare.shared.consumers import ConsumerRouter, Permanent, message_uow
from gridcare.shared.envelope import Envelope, Event
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings
from gridcare.shared.store import new_metadata
from gridcare.shared.streams import DEADLETTER, StreamSpec
from gridcare.shared.uow import SqlUnitOfWork

TESTS = StreamSpec("TESTS", ("test.>",), "The library's tests")


class Ping(Event):
    """A test event (``test.<topic>``)."""

    TYPE = "test.Ping"
    topic: str
    n: int

    def subject(self) -> str:
        return f"test.{self.topic}"


@dataclass
class Behaviour:
    fail_times: dict[int, int] = field(default_factory=dict)  # n -> failures before success
    permanent: set[int] = field(default_factory=set)
    calls: dict[int, int] = field(default_factory=dict)
    fail_until: dict[int, float] = field(default_factory=dict)  # n -> time.monotonic()


md = new_metadata()
effects = sa.Table(
    "effects",
    md,
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)


class TestUnitOfWork(SqlUnitOfWork):
    __test__ = False

    async def add_effect(self, event_id: str, n: int) -> None:
        await self.session.execute(sa.insert(effects).values(event_id=event_id, n=n))


class Echo(Request):
    n: int


class Blob(Request):
    size: int


@dataclass
class TestService:
    __test__ = False
    svc: Service
    topic: str
    durable: str
    behaviour: Behaviour

    async def effect_count(self) -> int:
        async with self.svc.store.sessions() as s:
            return await s.scalar(sa.select(sa.func.count()).select_from(effects))


def make_service(nats_url: str, database_url: str, tmp_path, **overrides) -> TestService:
    topic = uuid.uuid4().hex[:8]
    defaults = {
        "retry_base_delay_s": 0.05,
        "retry_max_delay_s": 0.2,
        "retry_horizon_s": 0.1,  # 3 attempts (max_attempts)
        "ack_wait_s": 5,
        "outbox_poll_s": 0.1,
    }
    settings = Settings(
        nats_url=nats_url, database_url=database_url, var_dir=tmp_path, **(defaults | overrides)
    )
    svc = Service(
        "testsvc",
        metadata=md,
        migrations=None,
        streams=(TESTS, DEADLETTER),
        unit_of_work=TestUnitOfWork,
        http_port=0,
        settings=settings,
    )
    behaviour = Behaviour()
    durable = f"testsvc-{topic}"
    consumers = ConsumerRouter(settings)

    @consumers.consumer(f"test.{topic}", durable=durable, stream=TESTS)
    async def on_ping(env: Envelope[Ping], uow: TestUnitOfWork = Depends(message_uow)) -> None:
        ev = env.data
        behaviour.calls[ev.n] = behaviour.calls.get(ev.n, 0) + 1
        async with uow:
            await uow.add_effect(env.event_id, ev.n)
            if ev.n in behaviour.permanent:
                raise RuntimeError(f"boom {ev.n}")
            if behaviour.calls[ev.n] <= behaviour.fail_times.get(ev.n, 0):
                raise RuntimeError(f"transient {ev.n}")
            if time.monotonic() < behaviour.fail_until.get(ev.n, 0):
                raise RuntimeError(f"not yet {ev.n}")  # e.g. the data it needs is on its way
            if ev.n < 0:
                raise Permanent("negative numbers are never valid")
            await uow.commit()

    api = ApiRouter("testsvc")

    @api.op("echo")
    async def echo(req: Echo, uow: TestUnitOfWork = Depends(unit_of_work)) -> dict:
        if req.n == 13:
            raise ApiError("unlucky", "13 is refused", "n")
        if req.n == 0:
            raise ZeroDivisionError("a bug")
        async with uow:
            await uow.add_effect(f"echo-{req.n}", req.n)
            uow.emit(Ping(topic=f"echo-{topic}", n=req.n))
            await uow.commit()
        return {"n": req.n * 2}

    @api.op("blob")
    async def blob(req: Blob) -> dict:
        return {"blob": "x" * req.size}

    svc.include(consumers)
    svc.include(api)
    return TestService(svc, topic, durable, behaviour)
