"""Connecting to NATS: the ping that notices a dead connection."""

from __future__ import annotations

import asyncio
import contextlib
import time

import nats
import pytest

from gridcare.shared.natsconn import connect_options
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings
from gridcare.shared.store import new_metadata
from gridcare.shared.uow import SqlUnitOfWork


# --- the ping --------------------------------------------------------------------------------
def test_connect_options_carry_the_ping(monkeypatch, tmp_path):
    opts = connect_options(Settings(), "gridcare-x")
    assert opts["ping_interval"] == 2.0 and opts["max_outstanding_pings"] == 2
    # from the environment, as a service reads them, down to the broker's connection
    monkeypatch.setenv("GRIDCARE_NATS_PING_INTERVAL_S", "1.5")
    monkeypatch.setenv("GRIDCARE_NATS_MAX_OUTSTANDING_PINGS", "3")
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert (settings.nats_ping_interval_s, settings.nats_max_outstanding_pings) == (1.5, 3)
    svc = Service(
        "x",
        metadata=new_metadata(),
        migrations=None,
        streams=(),
        unit_of_work=SqlUnitOfWork,
        http_port=0,
        settings=settings,
    )
    kwargs = svc.broker._connection_kwargs
    assert kwargs["ping_interval"] == 1.5 and kwargs["max_outstanding_pings"] == 3


def test_a_bad_ping_setting_is_refused():
    with pytest.raises(ValueError, match="nats_ping_interval_s"):
        Settings(nats_ping_interval_s=0)
    with pytest.raises(ValueError, match="nats_max_outstanding_pings"):
        Settings(nats_max_outstanding_pings=0)


class Blackhole:
    """A TCP proxy to a NATS server that can stop forwarding without closing anything: to
    the client, a half-open connection (the server's host or the network gone silent)."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.silent = False
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _client(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        self.writers += [writer, up_writer]

        async def pipe(src, dst) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if not self.silent:
                        dst.write(data)
                        await dst.drain()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def close(self) -> None:
        for w in self.writers:
            w.close()
        if self.server:
            self.server.close()


async def test_a_half_open_connection_is_noticed_within_seconds(nats_server):
    proxy = Blackhole(nats_server.port)
    port = await proxy.start()
    settings = Settings(
        nats_url=f"nats://127.0.0.1:{port}", nats_ping_interval_s=0.5, nats_max_outstanding_pings=2
    )
    lost = asyncio.Event()

    async def disconnected() -> None:
        lost.set()

    nc = await nats.connect(**connect_options(settings, "half-open"), disconnected_cb=disconnected)
    try:
        await nc.flush(timeout=2)
        proxy.silent = True  # nothing gets through any more; no FIN, no RST
        t0 = time.monotonic()
        await asyncio.wait_for(lost.wait(), 5)
        noticed = time.monotonic() - t0
        # (max_outstanding_pings + 1) pings of 0.5 s, give or take one
        assert noticed < 2.5, noticed
    finally:
        await nc.close()
        await proxy.close()
