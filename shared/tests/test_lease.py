"""One writer per store: a second instance is refused, naming the holder; a holder that
died on this host is replaced at once."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gridcare.shared.lease import Lease, LeaseHeld, lease_table
from gridcare.shared.store import Store, new_metadata


@pytest.fixture
async def store(database_url):
    md = new_metadata()
    lease_table(md)
    s = Store(database_url, md)
    await s.migrate(None)
    yield s
    await s.dispose()


async def test_a_second_holder_is_refused_until_the_first_lets_go(store):
    first, second = Lease(store, "checkpoint"), Lease(store, "checkpoint")
    await first.acquire()
    with pytest.raises(LeaseHeld, match="another instance") as refused:
        await second.acquire()
    assert first.holder in str(refused.value)
    await first.release()
    await second.acquire()
    assert (await second.holder_of())[0] == second.holder
    await second.release()


async def test_a_holder_that_died_on_this_host_is_replaced(store):
    code = "import os; print(os.getpid())"
    dead = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)  # noqa: ASYNC221
    pid = int(dead.stdout)  # a process that has exited
    t = lease_table(store.metadata)
    async with store.transaction() as s:
        await s.execute(
            sa.insert(t).values(
                name="checkpoint",
                holder=f"{socket.gethostname()}:{pid}:deadbeef",
                expires_at=datetime.now(UTC) + timedelta(minutes=5),
            )
        )
    lease = Lease(store, "checkpoint")
    await lease.acquire()
    assert (await lease.holder_of())[0].startswith(f"{socket.gethostname()}:{os.getpid()}:")
    await lease.release()


async def test_a_holder_on_another_host_holds_until_it_expires(store):
    t = lease_table(store.metadata)
    async with store.transaction() as s:
        await s.execute(
            sa.insert(t).values(
                name="checkpoint",
                holder="elsewhere:1:cafe",
                expires_at=datetime.now(UTC) + timedelta(minutes=5),
            )
        )
    with pytest.raises(LeaseHeld, match="elsewhere"):
        await Lease(store, "checkpoint").acquire()
    async with store.transaction() as s:
        await s.execute(sa.update(t).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    lease = Lease(store, "checkpoint")
    await lease.acquire()
    await lease.release()


async def test_a_holder_that_finds_its_lease_taken_is_told(store):
    lost = []
    lease = Lease(store, "checkpoint", ttl_s=0.3, on_lost=lambda: lost.append(1))
    await lease.acquire()
    t = lease_table(store.metadata)
    async with store.transaction() as s:  # it was away too long: another took it over
        await s.execute(sa.update(t).values(holder="elsewhere:1:cafe"))
    for _ in range(50):
        if lost:
            break
        await asyncio.sleep(0.05)
    assert lost == [1]
    await lease.release()  # its own lease only: the other's stays
    assert (await lease.holder_of())[0] == "elsewhere:1:cafe"
