"""The unit of work on a real store (SQLite and PostgreSQL): effect, events and inbox in
one commit; nothing without a commit; a redelivered message is known. Each as well with
``blocking`` (on SQLite: the store's blocking connection on the loop's thread)."""

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


@pytest.fixture(params=[False, True], ids=["async", "blocking"])
def blocking(request) -> bool:
    return request.param


def uow_of(store: Store, msg: Inbound, blocking: bool, **kw) -> TestUnitOfWork:
    uow = TestUnitOfWork(store, "testsvc", msg, **kw)
    uow.blocking = blocking
    return uow


async def count(store: Store, table: sa.Table) -> int:
    async with store.sessions() as s:
        return await s.scalar(sa.select(sa.func.count()).select_from(table))


async def test_effect_events_and_inbox_commit_together(store, blocking):
    woken = []
    msg = Inbound("c", "e-1", "story-1")
    uow = uow_of(store, msg, blocking, on_outbox=lambda: woken.append(1))
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
        async with uow_of(store, msg, blocking):
            pass


async def test_nothing_without_a_commit(store, blocking):
    uow = uow_of(store, Inbound("c", "e-2", "e-2"), blocking)
    with pytest.raises(RuntimeError):
        async with uow:
            await uow.add_effect("y", 2)
            uow.emit(Ping(topic="t", n=2))
            raise RuntimeError("the handler failed")
    assert await count(store, effects) == 0
    assert await count(store, store.tables.outbox) == 0
    assert await count(store, store.tables.processed) == 0


async def test_a_step_committed_without_the_message(store, blocking):
    msg = Inbound("c", "e-3", "e-3")
    uow = uow_of(store, msg, blocking)
    async with uow:
        await uow.add_effect("z", 3)
        await uow.commit(handled=False)  # the intent, before a call outside the transaction
    async with uow:  # the message is not handled yet: the next step may run
        await uow.commit()
    assert await count(store, effects) == 1
    assert await count(store, store.tables.processed) == 1


async def test_a_blocking_unit_of_work_holds_the_write_lock_and_shows_only_commits(store):
    """While a blocking unit of work is open (it waits for something, say), an ordinary
    writer waits for it, and a reader sees only what it has committed."""
    import asyncio

    uow = uow_of(store, Inbound("c", "e-4", "e-4"), True)
    order: list[str] = []

    async def writer() -> None:
        async with TestUnitOfWork(store, "testsvc") as other:
            await other.add_effect("w", 5)
            await other.commit()
        order.append("writer")

    async def seen(event_id: str = "b") -> int:
        q = sa.select(sa.func.count()).select_from(effects).where(effects.c.event_id == event_id)
        return await store.blocking_read(lambda c: c.scalar(q))

    async with uow:
        await uow.add_effect("b", 4)
        task = asyncio.create_task(writer())
        await asyncio.sleep(0.05)
        assert await seen() == 0  # not committed yet
        if store.is_sqlite:
            assert order == []  # SQLite's one writer: waiting for the lock
        await uow.commit()
        order.append("blocking")
        assert await seen() == 1
    await task
    assert await seen("w") == 1
    if store.is_sqlite:
        assert order == ["blocking", "writer"]


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


async def test_reading_takes_no_writer_and_its_events_go_with_the_next_commit(store, blocking):
    """``reading()``: reads while a writer holds the store (SQLite's write lock included),
    keeps nothing written there, and what is emitted meanwhile or before the block goes
    with the block's commit; a block left without a commit drops it."""
    import asyncio

    async with TestUnitOfWork(store, "testsvc") as first:
        await first.add_effect("r0", 0)
        await first.commit()
    uow = uow_of(store, None, blocking)  # a periodic pass: no message
    q = sa.select(sa.func.count()).select_from(effects)
    async with store.write_lock():  # another writer's transaction is under way
        async with asyncio.timeout(5):
            async with uow.reading():
                assert await uow.session.scalar(q) == 1
                await uow.add_effect("r1", 1)  # not kept
                uow.emit(Ping(topic="t", n=1))
        uow.emit(Ping(topic="t", n=2))
    async with uow:
        await uow.commit()
    assert [e.data["n"] for e in uow.committed] == [1, 2]
    assert await count(store, effects) == 1
    assert await count(store, store.tables.outbox) == 2
    uow.emit(Ping(topic="t", n=3))
    with pytest.raises(RuntimeError):
        async with uow:
            uow.emit(Ping(topic="t", n=4))
            raise RuntimeError("the step failed")
    async with uow:
        await uow.commit()
    assert await count(store, store.tables.outbox) == 2  # the dropped ones never went


async def test_the_fake_reads_the_same_way():
    class Fake(FakeUnitOfWork):
        def __init__(self):
            super().__init__("testsvc")
            self.rows: dict[str, int] = {"a": 1}

        def state(self):
            return {"rows": self.rows}

    uow = Fake()
    async with uow.reading():
        assert uow.rows == {"a": 1}
        uow.rows["b"] = 2  # not kept
        uow.emit(Ping(topic="t", n=1))
    assert uow.rows == {"a": 1}
    async with uow:
        await uow.commit()
    assert uow.events(Ping) == [{"topic": "t", "n": 1}]
    with pytest.raises(RuntimeError):
        async with uow:
            async with uow.reading():
                pass
