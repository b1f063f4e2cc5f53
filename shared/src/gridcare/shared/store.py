"""The per-service store: SQLAlchemy 2 (async), SQLite by default, PostgreSQL by URL.

Each service owns its tables and declares them on its own ``MetaData``; the three
messaging tables every service needs (outbox, processed messages, dead letters) are added
to it by :func:`messaging_tables`. Schema changes go through Alembic: each service keeps
its revisions in ``gridcare/<service>/migrations`` and :func:`migrate` runs them at start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import (
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:  # alembic is imported when migrations run, not by every import
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext

T = TypeVar("T")
log = logging.getLogger(__name__)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> sa.MetaData:
    """A service's MetaData, with the messaging tables already on it."""
    md = sa.MetaData(naming_convention=NAMING)
    messaging_tables(md)
    return md


@dataclass(frozen=True)
class MessagingTables:
    outbox: sa.Table
    processed: sa.Table
    dead_letters: sa.Table


def messaging_tables(md: sa.MetaData) -> MessagingTables:
    if "outbox" in md.tables:
        t = md.tables
        return MessagingTables(t["outbox"], t["processed_messages"], t["dead_letters"])
    outbox = sa.Table(
        "outbox",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(128), nullable=False, unique=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("last_error", sa.Text, nullable=True),
        # a row whose publish failed is tried again from this time on (backoff) ...
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        # ... and set aside once it cannot be published (``last_error`` says why)
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("ix_outbox_pending", "sent_at", "id"),
    )
    processed = sa.Table(
        "processed_messages",
        md,
        sa.Column("consumer", sa.String(128), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )
    dead = sa.Table(
        "dead_letters",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=True),
        sa.Column("stream_seq", sa.BigInteger, nullable=True),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("headers", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
    )
    return MessagingTables(outbox, processed, dead)


def _sqlite_pragmas(synchronous: str) -> Callable:
    def on_connect(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed row survives a power cut; NORMAL: it survives a crash of the
        # service, and a power cut loses at most the commits since the last checkpoint
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        # SQLite's own automatic checkpoint stays on (every 1000 pages, by the committing
        # writer): the store's checkpointer thread (below) normally leaves it nothing to do.
        cur.close()

    return on_connect


class WalCheckpointer:
    """Copies an SQLite store's WAL back into the database, in a thread of its own.

    Left to itself, SQLite does this inside the commit that takes the WAL past 1000 pages:
    that commit (on the gate path, the event loop's thread, replies waiting) then takes
    several milliseconds instead of a fraction of one. Here, after commits, a thread runs
    PASSIVE checkpoints on its own connection at most every ``interval_s``: they copy what
    is committed without taking the write lock or waiting for anyone, and pysqlite releases
    the GIL meanwhile, so the copying runs on another core while the loop goes on. Once a
    pass has copied everything, the next commit starts the WAL again from its beginning, so
    it stays small. (An earlier checkpointer also made one pass under the store's write lock
    to be sure to complete; after a throughput burst that pass had the whole WAL to copy,
    and writers waited up to half a second. There is no such pass: if the thread cannot
    catch up, SQLite's automatic checkpoint still bounds the WAL.)
    """

    def __init__(self, path: str, interval_s: float = 0.02) -> None:
        self.path = path
        self.interval_s = interval_s
        self._dirty = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.last: tuple[int, int, int] | None = None  # (busy, WAL pages, pages copied)

    def committed(self) -> None:
        """A write was committed: checkpoint soon."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"wal-checkpoint {Path(self.path).name}", daemon=True
            )
            self._thread.start()
        self._dirty.set()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping = True
            self._dirty.set()
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            while not self._stopping:
                if not self._dirty.wait(timeout=0.5):
                    continue
                time.sleep(self.interval_s)  # let a few commits pile up
                self._dirty.clear()
                try:
                    self.last = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    log.warning("WAL checkpoint of %s failed", self.path, exc_info=True)
        finally:
            conn.close()


class WriteLock:
    """An asyncio lock whose urgent waiters go first: SQLite's single writer, taken in
    order of arrival but for a write that something urgent waits on (an alert to a person
    while a broadcast is being written), which goes before every ordinary one waiting.
    ``async with lock`` takes it as an ordinary writer; ``async with lock.hold(urgent=True)``
    as an urgent one. The lock is handed straight to the next waiter on release, so a
    newcomer never slips in ahead of those queued."""

    def __init__(self) -> None:
        self._held = False
        self._queues: tuple[deque[asyncio.Future], deque[asyncio.Future]] = (deque(), deque())

    def locked(self) -> bool:
        return self._held

    async def acquire(self, urgent: bool = False) -> None:
        if not self._held and not (self._queues[0] or self._queues[1]):
            self._held = True
            return
        waiter = asyncio.get_running_loop().create_future()
        queue = self._queues[0 if urgent else 1]
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed over just as we were cancelled: pass it on
            else:
                queue.remove(waiter)
            raise

    def release(self) -> None:
        if not self._held:
            raise RuntimeError("the write lock is not held")
        for queue in self._queues:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # still held: now by that waiter
                    return
        self._held = False

    @asynccontextmanager
    async def hold(self, urgent: bool = False) -> AsyncIterator[None]:
        await self.acquire(urgent)
        try:
            yield
        finally:
            self.release()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class Store:
    """Engine and sessions of one service's database."""

    def __init__(
        self,
        url: str,
        metadata: sa.MetaData,
        *,
        echo: bool = False,
        sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        self.url = url
        self.metadata = metadata
        self.tables = messaging_tables(metadata)
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict = {"echo": echo}
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            self._pragmas = _sqlite_pragmas(sqlite_synchronous)
            event.listen(self.engine.sync_engine, "connect", self._pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        # SQLite allows one writer; serialising writers in-process avoids busy retries.
        self._write_lock = WriteLock() if self.is_sqlite else None
        self._sync_engine: sa.Engine | None = None
        self._writer_conn: sa.Connection | None = None
        self._reader_conn: sa.Connection | None = None
        database = sa.make_url(url).database
        self.checkpointer = (
            WalCheckpointer(database)
            if self.is_sqlite and database and database != ":memory:"
            else None
        )

    @property
    def sync_engine(self) -> sa.Engine:
        """A blocking engine (pysqlite) on the same SQLite file, for :meth:`blocking_write`."""
        if not self.is_sqlite:
            raise RuntimeError("a blocking engine is only used on SQLite")
        if self._sync_engine is None:
            url = sa.make_url(self.url).set(drivername="sqlite+pysqlite")
            self._sync_engine = sa.create_engine(url)
            event.listen(self._sync_engine, "connect", self._pragmas)
        return self._sync_engine

    @property
    def integrity_errors(self) -> tuple[type[Exception], ...]:
        """What a constraint violation raises here: SQLAlchemy's, and the driver's own
        (what :class:`BulkInsert`, which bypasses SQLAlchemy's wrapping, lets through)."""
        dialect = self.sync_engine.dialect if self.is_sqlite else self.engine.dialect
        return (sa.exc.IntegrityError, dialect.loaded_dbapi.IntegrityError)

    async def blocking_write(self, fn: Callable[[sa.Connection], T]) -> T:
        """``fn(conn)`` in a transaction, committed on success. On SQLite it runs on the
        blocking engine right here on the loop's thread (under the write lock): a short
        write costs a fraction of a millisecond that way, where aiosqlite pays a thread hop
        per statement and keeps the write lock meanwhile. On PostgreSQL it runs through
        the async engine (``run_sync``) and does not block the loop."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)
        async with self._blocking_writer() as conn:
            with conn.begin():
                result = fn(conn)
        if self.checkpointer is not None:
            self.checkpointer.committed()
        return result

    @asynccontextmanager
    async def blocking_session(self, urgent: bool = False) -> AsyncIterator[BlockingSession]:
        """The blocking connection (SQLite only) behind the few ``AsyncSession`` methods a
        unit of work's repositories call, under the write lock: a transaction whose
        statements run right on the loop's thread and never yield to it (see
        :meth:`blocking_write`; ``SqlUnitOfWork.blocking``). What is not committed when the
        block ends is rolled back."""
        async with self._blocking_writer(urgent) as conn:
            session = BlockingSession(conn, self.checkpointer)
            try:
                yield session
            finally:
                session.close()

    async def blocking_read(self, fn: Callable[[sa.Connection], T]) -> T:
        """``fn(conn)`` in a read transaction. On SQLite on a reader connection of the
        blocking engine, kept open, right on the loop's thread (a short indexed read costs
        tens of µs that way, where aiosqlite pays a pool checkout and a thread hop a
        statement); WAL readers never wait for the writer. On PostgreSQL through the async
        engine (``run_sync``)."""
        if not self.is_sqlite:
            async with self.engine.connect() as conn:
                return await conn.run_sync(fn)
        if self._reader_conn is None:
            self._reader_conn = self.sync_engine.connect()
        conn = self._reader_conn
        try:
            with conn.begin():  # ends the read snapshot when done
                return fn(conn)
        finally:
            if conn.invalidated:
                self._reader_conn = None
                conn.close()

    @asynccontextmanager
    async def _blocking_writer(self, urgent: bool = False) -> AsyncIterator[sa.Connection]:
        """The blocking writer's connection under the write lock; one that failed (a
        connection invalidated) is closed, and the next writer gets a new one."""
        async with self.write_lock(urgent):
            conn = self._writer()
            try:
                yield conn
            finally:
                if conn.invalidated:
                    self._writer_conn = None
                    conn.close()

    def _writer(self) -> sa.Connection:
        """The blocking writer's connection, kept open: a pool checkout and a new
        ``Connection`` for every commit cost about 10 µs, which a register that commits
        hundreds of times a second feels."""
        if self._writer_conn is None:
            self._writer_conn = self.sync_engine.connect()
        return self._writer_conn

    def write_lock(self, urgent: bool = False) -> AbstractAsyncContextManager:
        """Held around a write transaction: SQLite has one writer, and serialising writers
        in-process means no writer ever waits in SQLite's busy handler. An ``urgent``
        writer goes before the ordinary ones waiting (:class:`WriteLock`). (Nothing on
        PostgreSQL, whose writers do not wait for one another.)"""
        if self._write_lock is None:
            return nullcontext()
        return self._write_lock.hold(urgent)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error."""
        if self._write_lock is not None:
            async with self._write_lock, self.sessions() as session, session.begin():
                yield session
        else:
            async with self.sessions() as session, session.begin():
                yield session

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[sa.ext.asyncio.AsyncConnection]:
        """A Core connection in a transaction (no ORM session): for bulk writes on hot
        paths. Committed on success, rolled back on error; serialised like
        :meth:`transaction` on SQLite."""
        if self._write_lock is not None:
            async with self._write_lock, self.engine.begin() as conn:
                yield conn
        else:
            async with self.engine.begin() as conn:
                yield conn

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def migrate(self, migrations_dir: Path | None) -> None:
        """Run the service's Alembic migrations. ``None`` (library tests only): create the
        tables straight from the metadata."""
        async with self.engine.begin() as conn:
            if migrations_dir is None:
                await conn.run_sync(self.metadata.create_all)
            else:
                await conn.run_sync(_upgrade, migrations_dir, self.metadata)

    async def dispose(self) -> None:
        await self.engine.dispose()
        for conn in (self._writer_conn, self._reader_conn):
            if conn is not None:
                conn.close()
        self._writer_conn = self._reader_conn = None
        if self._sync_engine is not None:
            self._sync_engine.dispose()
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)


class BlockingSession:
    """``AsyncSession``'s ``begin``, ``execute``, ``scalar``, ``scalars``, ``get_bind`` and
    ``commit`` on a blocking (pysqlite) connection: coroutines that finish without ever
    suspending, so the repositories written for an ``AsyncSession`` run unchanged, with no
    thread hop or greenlet switch per statement (:meth:`Store.blocking_session`). Core
    statements only (the repositories use no ORM identity map)."""

    def __init__(self, conn: sa.Connection, checkpointer: WalCheckpointer | None) -> None:
        self.conn = conn
        self.checkpointer = checkpointer
        self._tx: sa.RootTransaction | None = None

    async def begin(self) -> None:
        self._tx = self.conn.begin()

    async def execute(self, statement: Any, params: Any = None) -> sa.CursorResult:
        return self.conn.execute(statement, params)

    async def scalar(self, statement: Any, params: Any = None) -> Any:
        return self.conn.scalar(statement, params)

    async def scalars(self, statement: Any, params: Any = None) -> sa.ScalarResult:
        return self.conn.scalars(statement, params)

    def get_bind(self) -> sa.Connection:
        return self.conn

    async def commit(self) -> None:
        tx, self._tx = self._tx, None
        if tx is not None:
            tx.commit()
            if self.checkpointer is not None:
                self.checkpointer.committed()

    def close(self) -> None:
        """Roll back what is not committed."""
        tx, self._tx = self._tx, None
        if tx is not None and tx.is_active:
            tx.rollback()


class BulkInsert:
    """An INSERT of many rows straight through the DBAPI cursor, for hot paths.

    The SQL is written in the driver's parameter style, and each value gets the conversion
    SQLAlchemy itself would apply (datetimes as text on SQLite, JSON serialised), so the
    rows read back through SQLAlchemy exactly as if it had written them; what is skipped is
    SQLAlchemy's per-statement work (caching, compiling, result set-up). Columns named in
    ``json_text`` take their JSON already serialised (text), e.g. a reply that was encoded
    once to be sent. Run it inside a transaction of a blocking connection (or of
    :meth:`Store.blocking_write`).
    """

    MARKS: ClassVar[dict[str, Callable[[int], str]]] = {
        "qmark": lambda i: "?",
        "format": lambda i: "%s",
        "pyformat": lambda i: "%s",
        "numeric": lambda i: f":{i}",
        "numeric_dollar": lambda i: f"${i}",
    }

    def __init__(
        self, table: sa.Table, columns: Sequence[str], json_text: Collection[str] = ()
    ) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.json_text = frozenset(json_text)
        self._by_dialect: dict[str, tuple[str, list[tuple[int, Callable]]]] = {}

    def _prepared(self, dialect: sa.Dialect) -> tuple[str, list[tuple[int, Callable]]]:
        key = f"{dialect.name}+{dialect.driver}"
        if key not in self._by_dialect:
            mark = self.MARKS[dialect.paramstyle]
            sql = (
                f"INSERT INTO {self.table.name} ({', '.join(self.columns)}) "
                f"VALUES ({', '.join(mark(i + 1) for i in range(len(self.columns)))})"
            )
            convert = []
            for i, name in enumerate(self.columns):
                if name in self.json_text:
                    continue
                col_type = self.table.c[name].type
                proc = col_type.dialect_impl(dialect).bind_processor(dialect)
                if proc is not None:
                    convert.append((i, proc))
            self._by_dialect[key] = (sql, convert)
        return self._by_dialect[key]

    async def into(self, session: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows`` in a unit of work's session: straight through the DBAPI cursor on
        a :class:`BlockingSession`, as an ordinary SQLAlchemy ``executemany`` on any other
        (an ``AsyncSession``: PostgreSQL, or SQLite through aiosqlite)."""
        if not rows:
            return
        if isinstance(session, BlockingSession):
            self.execute(session.conn, rows)
            return
        if self.json_text:  # SQLAlchemy serialises JSON itself: give it the values
            rows = [
                {**r, **{c: json.loads(r[c]) for c in self.json_text if r.get(c) is not None}}
                for r in rows
            ]
        await session.execute(sa.insert(self.table), list(rows))

    def execute(self, conn: sa.Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        """Insert ``rows`` (mappings by column name) in ``conn``'s transaction."""
        sql, convert = self._prepared(conn.dialect)
        columns = self.columns
        values = []
        for row in rows:
            v = [row[c] for c in columns]
            for i, proc in convert:
                v[i] = proc(v[i])
            values.append(tuple(v))
        if values:
            conn.connection.cursor().executemany(sql, values)


async def upsert_row(session: AsyncSession, table: sa.Table, row: dict) -> None:
    """Insert ``row`` or update the existing row with the same primary key (portable)."""
    pk = list(table.primary_key.columns)
    where = sa.and_(*(c == row[c.name] for c in pk))
    exists = await session.scalar(sa.select(sa.literal(1)).select_from(table).where(where))
    if exists:
        values = {k: v for k, v in row.items() if k not in {c.name for c in pk}}
        if values:
            await session.execute(sa.update(table).where(where).values(**values))
    else:
        await session.execute(sa.insert(table).values(**row))


def alembic_config(migrations_dir: Path, metadata: sa.MetaData) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["target_metadata"] = metadata
    return cfg


def _upgrade(sync_conn: sa.Connection, migrations_dir: Path, metadata: sa.MetaData) -> None:
    from alembic import command

    cfg = alembic_config(migrations_dir, metadata)
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


def write_revision(migrations_dir: Path | None, metadata: sa.MetaData, message: str) -> None:
    """Write a migration for the difference between ``metadata`` and the migrations so far
    (autogenerated against an empty in-memory SQLite brought to the newest revision)."""
    from alembic import command

    if migrations_dir is None:
        raise ValueError("this service has no migrations")
    cfg = alembic_config(migrations_dir, metadata)
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        command.revision(cfg, message=message, autogenerate=True)


def run_alembic_env(context: EnvironmentContext) -> None:
    """The body of every service's ``migrations/env.py``.

    At service start the connection comes in ``config.attributes``; from the command line
    (``gridcare-<service> revision``) an in-memory SQLite connection is used for autogenerate.
    """
    cfg = context.config
    metadata = cfg.attributes["target_metadata"]
    conn = cfg.attributes.get("connection")
    if conn is None:
        engine = sa.create_engine(cfg.get_main_option("sqlalchemy.url") or "sqlite://")
        with engine.connect() as c:
            context.configure(connection=c, target_metadata=metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()
        return
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
