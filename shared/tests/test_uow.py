"""The unit of work on a real store (SQLite and PostgreSQL): effect, events and inbox in
one commit; nothing without a commit; a redelivered message is known."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from testkit import Ping, TestUnitOfWork, effects, md

from gridcare.shared.store import Store
from gridcare.shared.uow import AlreadyHandled, FakeUnitOfWork, Inbound


@pytest.fixture
async def store(database_url):
    s = Store(database_url, md)
    await s.migrate(None)
    yield s
    await s.dispose()


async def count(store: Store, table: sa.Table) -> int:
    async with store.sessions() as s:
        return await s.scalar(sa.select(sa.func.count()).select_from(table))


async def test_effect_events_and_inbox_commit_together(store):
    woken = []
    msg = Inbound("c", "e-1", "story-1")
    uow = TestUnitOfWork(store, "testsvc", msg, on_outbox=lambda: woken.append(1))
    async with uow:
        await uow.add_effect("x", 1)
        uow.emit(Ping(topic="t", n=1))
        await uow.commit()
    assert await count(store, effects) == 1
    assert await count(store, store.tables.outbox) == 1
    assert await count(store, store.tables.processed) == 1
    [env] = uow.committed
    assert (env.correlation_id, env.causation_id, env.source) == ("story-1", "e-1", "testsvc")
    assert woken == [1]  # the relay is told once it is committed
    with pytest.raises(AlreadyHandled):
        async with TestUnitOfWork(store, "testsvc", msg):
            pass


async def test_nothing_without_a_commit(store):
    uow = TestUnitOfWork(store, "testsvc", Inbound("c", "e-2", "e-2"))
    with pytest.raises(RuntimeError):
        async with uow:
            await uow.add_effect("y", 2)
            uow.emit(Ping(topic="t", n=2))
            raise RuntimeError("the handler failed")
    assert await count(store, effects) == 0
    assert await count(store, store.tables.outbox) == 0
    assert await count(store, store.tables.processed) == 0


async def test_a_step_committed_without_the_message(store):
    msg = Inbound("c", "e-3", "e-3")
    uow = TestUnitOfWork(store, "testsvc", msg)
    async with uow:
        await uow.add_effect("z", 3)
        await uow.commit(handled=False)  # the intent, before a call outside the transaction
    async with uow:  # the message is not handled yet: the next step may run
        await uow.commit()
    assert await count(store, effects) == 1
    assert await count(store, store.tables.processed) == 1


async def test_the_fake_behaves_the_same():
    class Fake(FakeUnitOfWork):
        def __init__(self):
            super().__init__("testsvc")
            self.rows: dict[str, int] = {}

        def state(self):
            return {"rows": self.rows}

    uow = Fake().handling(Inbound("c", "e-1", "story"))
    with pytest.raises(RuntimeError):
        async with uow:
            uow.rows["a"] = 1
            uow.emit(Ping(topic="t", n=1))
            raise RuntimeError
    assert uow.rows == {} and uow.outbox == []
    async with uow:
        uow.rows["a"] = 1
        uow.emit(Ping(topic="t", n=1))
        await uow.commit()
    assert uow.rows == {"a": 1} and uow.events(Ping) == [{"topic": "t", "n": 1}]
    with pytest.raises(AlreadyHandled):
        async with uow:
            pass
