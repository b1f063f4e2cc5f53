"""The store's fast write paths against real SQLite and PostgreSQL: what ``BulkInsert`` and
``blocking_write`` write reads back through SQLAlchemy as if SQLAlchemy had written it, and
SQLite's WAL is checkpointed by the store (so it stays small while writes never stop)."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gridcare.shared.store import BulkInsert, Store, WriteLock, new_metadata

md = new_metadata()
things = sa.Table(
    "things",
    md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=True),
    sa.Column("weight", sa.Float, nullable=True),
)
COLUMNS = ("name", "at", "tags", "doc", "blob", "weight")


@pytest.fixture
async def store(database_url):
    s = Store(database_url, md)
    await s.migrate(None)
    yield s
    await s.dispose()


def rows(n: int, prefix: str = "t") -> list[dict]:
    at = datetime(2026, 3, 12, 7, 31, 5, 123456, tzinfo=UTC)
    return [
        {
            "name": f"{prefix}{i}",
            "at": at + timedelta(seconds=i),
            "tags": ["发热", "quarantine"] if i % 2 else [],
            "doc": f'{{"n": {i}, "zh": "请通行"}}',  # given as JSON text (json_text)
            "blob": bytes([i % 256]) * 3,
            "weight": None if i % 3 == 0 else 36.5 + i,
        }
        for i in range(n)
    ]


async def test_bulk_insert_reads_back_like_sqlalchemy_wrote_it(store):
    bulk = BulkInsert(things, COLUMNS, json_text={"doc"})
    data = rows(50)
    await store.blocking_write(lambda conn: bulk.execute(conn, data))
    async with store.sessions() as s:
        got = (await s.execute(sa.select(things).order_by(things.c.id))).mappings().all()
        # a range query on the datetime column sees the same order as Python's
        later = (
            await s.execute(sa.select(sa.func.count()).where(things.c.at > data[24]["at"]))
        ).scalar_one()
    assert later == 25
    assert [r["name"] for r in got] == [d["name"] for d in data]
    for r, d in zip(got, data, strict=True):
        at = r["at"] if r["at"].tzinfo else r["at"].replace(tzinfo=UTC)
        assert at == d["at"]
        assert r["tags"] == d["tags"]
        assert r["doc"] == {"n": int(d["name"][1:]), "zh": "请通行"}
        assert r["blob"] == d["blob"]
        assert r["weight"] == d["weight"]


async def test_bulk_insert_raises_the_drivers_integrity_error_and_writes_nothing(store):
    bulk = BulkInsert(things, COLUMNS, json_text={"doc"})
    await store.blocking_write(lambda conn: bulk.execute(conn, rows(3)))
    with pytest.raises(store.integrity_errors):
        await store.blocking_write(lambda conn: bulk.execute(conn, rows(5, "u") + rows(1)))
    async with store.sessions() as s:
        n = (await s.execute(sa.select(sa.func.count()).select_from(things))).scalar_one()
    assert n == 3  # the failed transaction left nothing behind


async def test_blocking_write_rolls_back_on_error(store):
    def fail(conn: sa.Connection) -> None:
        conn.execute(sa.insert(things), _plain(rows(1)))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await store.blocking_write(fail)
    async with store.sessions() as s:
        n = (await s.execute(sa.select(sa.func.count()).select_from(things))).scalar_one()
    assert n == 0
    # the writer goes on after a failed transaction (on SQLite it keeps its connection)
    await store.blocking_write(lambda conn: conn.execute(sa.insert(things), _plain(rows(2))))
    async with store.sessions() as s:
        n = (await s.execute(sa.select(sa.func.count()).select_from(things))).scalar_one()
    assert n == 2


def _plain(data: list[dict]) -> list[dict]:
    """Rows for a SQLAlchemy insert (JSON as objects, not text)."""
    return [{**d, "doc": {"n": 0}} for d in data]


def size_of(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


async def test_sqlite_wal_stays_small_under_constant_writes(tmp_path):
    """Commit after commit, as a busy register does: SQLite's automatic checkpoint (every
    1000 pages, by the committing writer, which holds our write lock) completes each time,
    so the WAL restarts instead of growing with everything ever written."""
    path = tmp_path / "wal.db"
    store = Store(f"sqlite+aiosqlite:///{path}", md)
    await store.migrate(None)
    wal = f"{path}-wal"
    bulk = BulkInsert(things, COLUMNS, json_text={"doc"})
    largest = 0
    try:
        for i in range(1500):
            await store.blocking_write(lambda conn, i=i: bulk.execute(conn, rows(5, f"w{i}-")))
            largest = max(largest, size_of(wal))
        async with store.sessions() as s:
            n = (await s.execute(sa.select(sa.func.count()).select_from(things))).scalar_one()
    finally:
        await store.dispose()
    assert n == 7500
    written = 1500 * 2 * 4096  # at least two pages per commit went through the WAL
    assert largest < min(written / 2, 6_000_000), (largest, written)
    assert size_of(wal) == 0  # checkpointed and removed when the last connection closed


async def test_sqlite_checkpointer_copies_the_wal_beside_the_writers(tmp_path):
    """A few commits, far below SQLite's automatic checkpoint (1000 pages): shortly after,
    the store's checkpointer thread has copied all of the WAL into the database, while
    writes went on, and no commit waited for it."""
    path = tmp_path / "ckpt.db"
    store = Store(f"sqlite+aiosqlite:///{path}", md)
    await store.migrate(None)
    bulk = BulkInsert(things, COLUMNS, json_text={"doc"})
    ckpt = store.checkpointer
    assert ckpt is not None and ckpt.last is None
    try:
        for i in range(50):
            await store.blocking_write(lambda conn, i=i: bulk.execute(conn, rows(5, f"c{i}-")))
            await asyncio.sleep(0.002)

        def all_copied() -> bool:
            return ckpt.last is not None and ckpt.last[1] == ckpt.last[2] > 0

        deadline = time.monotonic() + 5
        while not all_copied() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert all_copied(), ckpt.last
        assert ckpt.last[1] < 1000  # SQLite's own checkpoint had not come into it
    finally:
        await store.dispose()
    assert ckpt._thread is None  # stopped with the store


@pytest.mark.parametrize(("setting", "level"), [("FULL", 2), ("NORMAL", 1)])
async def test_sqlite_synchronous_setting_reaches_every_connection(tmp_path, setting, level):
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 's.db'}", md, sqlite_synchronous=setting)
    await store.migrate(None)
    try:
        blocking = await store.blocking_write(
            lambda conn: conn.exec_driver_sql("PRAGMA synchronous").scalar()
        )
        async with store.engine.connect() as conn:
            pooled = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
    finally:
        await store.dispose()
    assert blocking == pooled == level


async def test_an_urgent_writer_goes_before_the_ordinary_ones_waiting():
    lock = WriteLock()
    order: list[str] = []

    async def writer(name: str, urgent: bool) -> None:
        async with lock.hold(urgent):
            order.append(name)
            await asyncio.sleep(0)

    await lock.acquire()  # held: everyone below queues
    tasks = [asyncio.create_task(writer(f"bulk{i}", False)) for i in range(3)]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(writer("alert", True)))
    await asyncio.sleep(0)
    lock.release()
    await asyncio.gather(*tasks)
    assert order == ["alert", "bulk0", "bulk1", "bulk2"]
    assert not lock.locked()


async def test_a_writer_cancelled_while_waiting_or_as_it_is_handed_the_lock_loses_nothing():
    lock = WriteLock()
    await lock.acquire()
    waiting = asyncio.create_task(lock.acquire())
    handed = asyncio.create_task(lock.acquire(urgent=True))
    after = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0)
    waiting.cancel()  # still queued: simply leaves the queue
    await asyncio.sleep(0)
    lock.release()  # handed to the urgent one ...
    handed.cancel()  # ... which is cancelled before it runs: passed on to the next
    for t in (waiting, handed):
        with pytest.raises(asyncio.CancelledError):
            await t
    await asyncio.wait_for(after, 1)
    assert lock.locked()
    lock.release()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()


async def test_bulk_insert_into_a_unit_of_works_session_reads_back_the_same(store):
    """``BulkInsert.into``: through the DBAPI cursor on a blocking session, through
    SQLAlchemy on an ``AsyncSession``; the rows read back alike either way."""
    bulk = BulkInsert(things, COLUMNS, json_text={"doc"})
    async with store.sessions() as s, s.begin():
        await bulk.into(s, rows(4, "a"))
    if store.is_sqlite:
        async with store.blocking_session() as s:
            await s.begin()
            await bulk.into(s, rows(4, "b"))
            await s.commit()
    async with store.sessions() as s:
        got = (await s.execute(sa.select(things).order_by(things.c.id))).mappings().all()
    by_prefix: dict[str, list] = {}
    for r in got:
        at = r["at"] if r["at"].tzinfo else r["at"].replace(tzinfo=UTC)
        by_prefix.setdefault(r["name"][0], []).append(
            (r["name"][1:], at, r["tags"], r["doc"], r["blob"], r["weight"])
        )
    assert by_prefix["a"][0][3] == {"n": 0, "zh": "请通行"}
    assert len(by_prefix["a"]) == 4
    if store.is_sqlite:
        assert by_prefix["b"] == by_prefix["a"]
