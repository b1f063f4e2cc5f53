"""Connecting to NATS: the ping that notices a dead connection, URLs in logs without
credentials, and streams declared while JetStream is not ready yet."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial

import nats
import pytest
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from gridcare.shared import natsconn
from gridcare.shared.natsconn import connect_options, display_urls, ensure_streams
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings
from gridcare.shared.store import new_metadata
from gridcare.shared.streams import StreamSpec
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


# --- what the logs show ----------------------------------------------------------------------
def test_display_urls_hide_credentials():
    s = Settings(
        nats_url="nats://gridcare:s3cret@nats-1.example:4222, tls://tok3n@nats-2.example,"
        "nats://[::1]:4223,127.0.0.1:4224"
    )
    shown = display_urls(s)
    assert shown == (
        "nats://nats-1.example:4222,tls://nats-2.example,nats://[::1]:4223,nats://127.0.0.1:4224"
    )
    assert "s3cret" not in shown and "tok3n" not in shown and "gridcare" not in shown


# --- JetStream not ready yet -----------------------------------------------------------------
SPEC = StreamSpec("WAITS", ("waits.>",), "a stream declared while JetStream is not ready")


class NotReadyYet:
    """A JetStream context that answers like a cluster forming: each error in turn, then
    as JetStream does."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = list(errors)
        self.created: list = []

    async def stream_info(self, name: str):
        if self.errors:
            raise self.errors.pop(0)
        raise NotFoundError

    async def add_stream(self, cfg):
        self.created.append(cfg)

    async def update_stream(self, cfg):  # pragma: no cover - the stream is new here
        raise AssertionError("not expected")


@pytest.fixture
def quick(monkeypatch):
    """Waits of milliseconds, not seconds."""
    monkeypatch.setattr(natsconn, "Waiting", partial(natsconn.Waiting, first_s=0.01, max_s=0.02))


async def test_ensure_streams_waits_for_jetstream(quick, caplog):
    js = NotReadyYet(
        [
            nats.errors.TimeoutError(),  # alone in a cluster: no answer at all
            ServiceUnavailableError(),  # no meta leader yet
            APIError(code=503, err_code=10023, description="insufficient resources"),
            nats.errors.NoRespondersError(),
        ]
    )
    settings = Settings(nats_url="nats://u:pw@127.0.0.1:4222", stream_replicas=3)
    with caplog.at_level(logging.INFO, logger="gridcare.shared.natsconn"):
        await ensure_streams(js, settings, (SPEC,), wait_s=None)
    assert [c.num_replicas for c in js.created] == [3]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == (
        "waiting for JetStream at nats://127.0.0.1:4222 (0s so far; try 1 failed: "
        "stream WAITS: TimeoutError: nats: timeout)"
    )
    assert any("JetStream at nats://127.0.0.1:4222 is there after" in m for m in lines)
    assert not any("pw" in m for m in lines)


async def test_ensure_streams_gives_up_after_its_wait(quick):
    js = NotReadyYet([ServiceUnavailableError()] * 1000)
    t0 = time.monotonic()
    with pytest.raises(ServiceUnavailableError):
        await ensure_streams(js, Settings(), (SPEC,), wait_s=0.1)
    assert time.monotonic() - t0 < 1


async def test_ensure_streams_logs_a_refusal_as_an_error_and_keeps_trying(quick, caplog):
    refused = APIError(code=400, err_code=10052, description="stream configuration invalid")
    js = NotReadyYet([refused])
    with caplog.at_level(logging.INFO, logger="gridcare.shared.natsconn"):
        await ensure_streams(js, Settings(), (SPEC,), wait_s=None)
    assert caplog.records[0].levelno == logging.ERROR
    assert "stream WAITS refused: stream configuration invalid" in caplog.records[0].getMessage()
    assert len(js.created) == 1
