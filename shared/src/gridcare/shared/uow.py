"""The unit of work: one transaction around one step of a handler.

A handler of the service layer loads through the unit of work's repositories, calls the
domain, and commits::

    async with uow:
        case = await uow.cases.open_case_of(person)
        ...
        uow.emit(CaseOpened(...))
        await uow.commit()

On commit, in the same transaction as the changes:

- every emitted event is written to the outbox (``outbox.py``), in an envelope caused by the
  message being handled (correlation and causation carried on);
- the message being handled (``Inbound``) is written to the inbox (``processed_messages``):
  entering a unit of work for a message already there raises :class:`AlreadyHandled`, so a
  redelivered message never has its effect twice.

Leaving the block without a commit rolls back. :class:`SqlUnitOfWork` is the store's;
:class:`FakeUnitOfWork` keeps everything in memory, so a handler's test takes
milliseconds and needs no database or broker. Each service subclasses both with its own
repositories (``<service>/unit_of_work.py``).

A long step that reads much and writes much (a batch of the morning reminder pass) can
read first and build its events before it takes the writer, so that other writers (the
check-ins) wait only for its writes: ``async with uow.reading():`` gives the repositories
for reads, outside any write transaction (on SQLite without the store's write lock); events
emitted meanwhile, or between the two blocks, are wrapped at once and go with the next
block's commit::

    async with uow.reading():
        targets = await uow.checkins.to_remind(...)
    for t in targets:
        uow.emit(Reminder(...))
    async with uow:
        await uow.checkins.reminded(...)
        await uow.commit()

What was read may have changed by the time the block writes: only for steps where that
is harmless (a reminder to someone who checked in a moment before).
"""

from __future__ import annotations

import abc
import copy
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from . import outbox
from .envelope import Envelope, Event, utcnow
from .store import BulkInsert, Store


@dataclass(frozen=True)
class Inbound:
    """The message a unit of work handles: the inbox key, and what its events inherit."""

    consumer: str  # the durable consumer (one inbox per consumer)
    event_id: str  # the message's idempotency key
    correlation_id: str  # the whole story the message belongs to
    type: str = ""


class AlreadyHandled(Exception):
    """The message is in the inbox already (a redelivery): its effect is committed."""


class UnitOfWork(abc.ABC):
    """What every unit of work does; a service's subclass adds its repositories."""

    def __init__(self, source: str, inbound: Inbound | None = None) -> None:
        self.source = source  # the service: the envelopes' source
        self.inbound = inbound
        #: something urgent waits on this transaction: it goes before ordinary writers
        #: waiting for the store (SQLite's one writer; see ``Store.write_lock``)
        self.urgent = False
        #: on SQLite, run the transaction on the store's blocking connection, right on the
        #: loop's thread (``Store.blocking_session``): for short, hot transactions (a batch
        #: of check-ins, a decision the gates wait on), where aiosqlite's thread hop per
        #: statement costs most of the time. It blocks the loop for the transaction (the
        #: commit's fsync included). Nothing on PostgreSQL or in memory.
        self.blocking = False
        self._events: list[tuple[str, Envelope]] = []  # (subject, envelope) to commit
        self._after_commit: list[Callable[[], None]] = []
        self._open = False
        #: the envelopes committed so far by this unit of work (for tests and logs)
        self.committed: list[Envelope] = []

    # --- what handlers call ------------------------------------------------------------------
    def emit(self, event: Event, *, event_id: str | None = None) -> None:
        """Publish ``event`` once this transaction commits (through the outbox). A stable
        ``event_id`` makes a fact announced twice one message. The envelope is made now;
        emitted outside a block (see :meth:`reading`), it goes with the next block's commit,
        and a block left without a commit drops it."""
        self._events.append((event.subject(), self._wrap(event, event_id)))

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once this transaction has committed (e.g. update an in-memory view)."""
        self._after_commit.append(fn)

    async def commit(self, *, handled: bool = True) -> None:
        """Commit the changes, their events, and (unless ``handled=False``: a step that goes
        on outside the transaction, such as a call to a provider) the inbox record."""
        items = list(self._events)
        await self._commit(items, self.inbound if handled else None)
        self._events.clear()
        self.committed.extend(env for _, env in items)
        hooks, self._after_commit = self._after_commit, []
        for fn in hooks:
            fn()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[Self]:
        """The repositories for reads only, outside any write transaction (nothing written
        here is kept): see the module's doc. Events emitted stay for the next block."""
        if self._open:
            raise RuntimeError("a unit of work is not re-entrant")
        await self._begin_reading()
        self._open = True
        try:
            yield self
        finally:
            self._open = False
            await self._end()

    # --- the context -------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        if self._open:
            raise RuntimeError("a unit of work is not re-entrant")
        self._after_commit.clear()
        await self._begin()
        self._open = True
        if self.inbound is not None and await self._seen(self.inbound):
            await self.__aexit__(None, None, None)
            raise AlreadyHandled(f"{self.inbound.consumer}: {self.inbound.event_id}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._open = False
        self._events.clear()
        self._after_commit.clear()
        await self._end()

    def _wrap(self, event: Event, event_id: str | None) -> Envelope:
        inbound = self.inbound
        return Envelope.wrap(
            event,
            source=self.source,
            event_id=event_id,
            correlation_id=inbound.correlation_id if inbound else None,
            causation_id=inbound.event_id if inbound else None,
        )

    # --- what an implementation provides -----------------------------------------------------
    @abc.abstractmethod
    async def _begin(self) -> None: ...

    @abc.abstractmethod
    async def _begin_reading(self) -> None: ...

    @abc.abstractmethod
    async def _seen(self, inbound: Inbound) -> bool: ...

    @abc.abstractmethod
    async def _commit(self, items: list[tuple[str, Envelope]], inbound: Inbound | None) -> None:
        """Write ``items`` (subject, envelope) to the outbox and ``inbound`` to the inbox,
        with the changes, in one commit."""

    @abc.abstractmethod
    async def _end(self) -> None:
        """Roll back what is not committed and release the transaction."""


class SqlUnitOfWork(UnitOfWork):
    """A transaction of the service's store. Subclasses make their repositories from
    ``self.session`` in :meth:`repositories`."""

    def __init__(
        self,
        store: Store,
        source: str,
        inbound: Inbound | None = None,
        on_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(source, inbound)
        self.store = store
        self.on_outbox = on_outbox  # the relay's wake-up
        self.session: AsyncSession
        self._stack: AsyncExitStack | None = None

    def repositories(self) -> None:
        """Create the repositories on ``self.session`` (overridden by each service)."""

    async def _begin(self) -> None:
        stack = AsyncExitStack()
        if self.blocking and self.store.is_sqlite:
            session: Any = await stack.enter_async_context(self.store.blocking_session(self.urgent))
        else:
            await stack.enter_async_context(self.store.write_lock(self.urgent))
            session = await stack.enter_async_context(self.store.sessions())
        self.session = session
        await self.session.begin()
        self._stack = stack
        self.repositories()

    async def _begin_reading(self) -> None:
        stack = AsyncExitStack()
        self.session = await stack.enter_async_context(self.store.sessions())  # no write lock
        await self.session.begin()
        self._stack = stack
        self.repositories()

    async def _seen(self, inbound: Inbound) -> bool:
        t = self.store.tables.processed
        found = await self.session.scalar(
            sa.select(sa.literal(1)).where(
                t.c.consumer == inbound.consumer, t.c.event_id == inbound.event_id
            )
        )
        return bool(found)

    async def _commit(self, items: list[tuple[str, Envelope]], inbound: Inbound | None) -> None:
        now = utcnow()
        if items:
            await _outbox_insert(self.store.tables.outbox).into(
                self.session, [outbox.row(env, subject, now) for subject, env in items]
            )
        if inbound is not None:
            await self.session.execute(
                sa.insert(self.store.tables.processed).values(
                    consumer=inbound.consumer, event_id=inbound.event_id, processed_at=now
                )
            )
        await self.session.commit()
        if items:
            self.after_commit(self.on_outbox)
        await self.session.begin()  # the block may go on (and roll back what follows)

    async def _end(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()  # closing the session rolls back what is not committed


@functools.cache
def _outbox_insert(table: sa.Table) -> BulkInsert:
    return BulkInsert(table, outbox.COLUMNS)


class FakeUnitOfWork(UnitOfWork):
    """In memory, for handler tests. Subclasses keep their repositories' data in plain
    containers listed by :meth:`state`; a block left without a commit restores them."""

    def __init__(self, source: str = "test", inbound: Inbound | None = None) -> None:
        super().__init__(source, inbound)
        self.inbox: set[tuple[str, str]] = set()
        self.outbox: list[tuple[str, Envelope]] = []  # (subject, envelope) committed, in order
        self.commits = 0
        self._snapshot: dict[str, Any] | None = None

    def state(self) -> dict[str, Any]:
        """The repositories' data (overridden by each service): copied at the start of a
        block, put back when it ends without a commit."""
        return {}

    def handling(self, inbound: Inbound | None) -> Self:
        """The same store, now handling ``inbound`` (as the next message would)."""
        self.inbound = inbound
        return self

    def events(self, kind: type[Event] | None = None) -> list[dict[str, Any]]:
        """The data of the committed events (of one kind)."""
        return [e.data for _, e in self.outbox if kind is None or e.type == kind.TYPE]

    async def _begin(self) -> None:
        self._snapshot = copy.deepcopy(self.state())

    _begin_reading = _begin  # what a read wrote is not kept

    async def _seen(self, inbound: Inbound) -> bool:
        return (inbound.consumer, inbound.event_id) in self.inbox

    async def _commit(self, items: list[tuple[str, Envelope]], inbound: Inbound | None) -> None:
        self.outbox.extend(items)
        if inbound is not None:
            self.inbox.add((inbound.consumer, inbound.event_id))
        self.commits += 1
        self._snapshot = copy.deepcopy(self.state())

    async def _end(self) -> None:
        if self._snapshot is not None:
            current = self.state()
            for name, saved in self._snapshot.items():
                data = current[name]
                if isinstance(data, dict):
                    data.clear()
                    data.update(saved)
                elif isinstance(data, list):
                    data[:] = saved
                elif isinstance(data, set):
                    data.clear()
                    data.update(saved)
        self._snapshot = None
