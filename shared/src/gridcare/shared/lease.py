"""A lease on a store: one process at a time may run as its writer.

A service that keeps state in memory beside its store (to answer from memory) must be the
only one writing that store: a second instance would decide from a view the first one no
longer updates. At start it takes the lease (a row of the ``leases``
table: holder, expiry), renews it while it runs and gives it up when it stops. A second
instance started on the same store meanwhile refuses to start with :class:`LeaseHeld`,
naming the holder. A holder killed without giving it up: its lease runs out after ``ttl_s``
(a holder on this host whose process is gone is replaced at once).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from .aio import stop_task
from .envelope import new_id, utcnow
from .localtime import as_utc
from .store import Store

log = logging.getLogger(__name__)


def lease_table(md: sa.MetaData) -> sa.Table:
    if "leases" in md.tables:
        return md.tables["leases"]
    return sa.Table(
        "leases",
        md,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),  # host:pid:uuid
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


class LeaseHeld(RuntimeError):
    """Another instance holds the store: this one must not start (the message says who)."""


def _alive_here(holder: str) -> bool | None:
    """Whether the holder's process runs (``None``: it is on another host)."""
    host, _, rest = holder.partition(":")
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(rest.partition(":")[0]), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Lease:
    store: Store
    name: str
    ttl_s: float = 30.0
    holder: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{new_id()[:8]}"
    )
    #: called if the lease is found taken by another holder (this one was away longer than
    #: its ttl): the service must stop, its view of the store is no longer the only one
    on_lost: Callable[[], None] = lambda: None
    _task: asyncio.Task | None = None

    @property
    def table(self) -> sa.Table:
        return lease_table(self.store.metadata)

    async def acquire(self) -> None:
        """Take the lease, or raise :class:`LeaseHeld` naming who has it."""
        t = self.table
        now = utcnow()
        async with self.store.transaction() as s:
            row = (await s.execute(sa.select(t).where(t.c.name == self.name))).first()
            if row is not None and row.holder != self.holder:
                expires = as_utc(row.expires_at)
                if expires > now and _alive_here(row.holder) is not False:
                    raise LeaseHeld(
                        f"another instance ({row.holder}) runs on this store: its lease "
                        f"{self.name!r} holds until {expires.isoformat()}. One instance per "
                        "store: stop the other, or give this one its own store."
                    )
                log.warning("taking over the lease of %s (expired or gone)", row.holder)
            values = {"holder": self.holder, "expires_at": now + timedelta(seconds=self.ttl_s)}
            if row is None:
                await s.execute(sa.insert(t).values(name=self.name, **values))
            else:
                await s.execute(sa.update(t).where(t.c.name == self.name).values(**values))
        self._task = asyncio.create_task(self._renew(), name=f"lease {self.name}")

    async def _renew(self) -> None:
        t = self.table
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                async with self.store.transaction() as s:
                    renewed = await s.execute(
                        sa.update(t)
                        .where(t.c.name == self.name, t.c.holder == self.holder)
                        .values(expires_at=utcnow() + timedelta(seconds=self.ttl_s))
                    )
            except Exception:
                log.exception("could not renew the lease %s", self.name)
                continue
            if renewed.rowcount == 0:
                log.critical("the lease %s was taken by another instance: stopping", self.name)
                self.on_lost()
                return

    async def release(self) -> None:
        await stop_task(self._task)
        self._task = None
        t = self.table
        async with self.store.transaction() as s:
            await s.execute(sa.delete(t).where(t.c.name == self.name, t.c.holder == self.holder))

    async def holder_of(self) -> tuple[str, datetime] | None:
        t = self.table
        async with self.store.sessions() as s:
            row = (await s.execute(sa.select(t).where(t.c.name == self.name))).first()
        return None if row is None else (row.holder, as_utc(row.expires_at))
