"""The runtime of one gridcare service process.

A service module builds a :class:`Service`, registers its consumers and request handlers,
and calls :meth:`Service.main`. The runtime then: configures JSON logs, migrates the store,
connects to NATS (retrying forever), declares the streams, starts the subscribers and the
outbox relay, and serves ``/metrics``, ``/healthz`` and ``/readyz`` until SIGTERM/SIGINT,
when it stops in the reverse order (in-flight messages finish and are acked first).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
import uvicorn
import uvloop
from faststream.nats import NatsBroker
from nats.js.api import PubAck
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import logs
from .aio import stop_task
from .consumer import Handler, HandlerContext, ReliableConsumer
from .envelope import Event, utcnow
from .events import RefEntity
from .metrics import Metrics
from .natsconn import connect_options, ensure_streams, missing_streams
from .outbox import Relay
from .settings import Settings
from .store import Store, upsert_row
from .subjects import REFDATA, REFDATA_ALL, StreamSpec, stream_for

log = logging.getLogger(__name__)


class Service:
    def __init__(
        self,
        name: str,
        metadata: sa.MetaData,
        migrations: Path | None,
        settings: Settings | None = None,
    ) -> None:
        self.name = name
        self.settings = settings or Settings()
        self.metrics = Metrics(name)
        self.store = Store(
            self.settings.resolved_database_url(name),
            metadata,
            sqlite_synchronous=self.settings.sqlite_synchronous,
        )
        self.migrations = migrations
        self.broker = NatsBroker(
            **connect_options(self.settings, f"gridcare-{name}"),
            graceful_timeout=15.0,
            logger=logging.getLogger(f"gridcare.{name}.broker"),
        )
        self.relay = Relay(
            self.store,
            self.publish_to_stream,
            self.metrics,
            batch=self.settings.outbox_batch,
            poll_s=self.settings.outbox_poll_s,
            linger_s=self.settings.outbox_linger_s,
        )
        self._consumers: dict[str, ReliableConsumer] = {}
        self._on_start: list[Callable] = []
        self._on_ready: list[Callable] = []
        self._on_stop: list[Callable] = []
        self._housekeeping: list[Callable] = [self.purge_messaging]
        self._housekeeper: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        self._started = False

    # --- wiring -----------------------------------------------------------------------------
    def handles(
        self,
        model: type[Event],
        *,
        durable: str,
        subject: str,
        stream: StreamSpec,
        batch: int = 16,
        edge_id: str | None = None,
    ):
        """Decorator: ``fn(ctx, event)`` handles ``model`` events from a durable consumer.

        Several event types can share one durable consumer (same ``durable`` and
        ``subject``); a message of a type nobody here handles is acked and skipped.
        ``batch=1`` fetches one message at a time: lowest latency, for decisions that must
        take effect at once. ``edge_id`` makes it a consumer of a device's bare payloads
        (``model``), idempotent on that field of the payload.
        """

        def deco(fn: Handler) -> Handler:
            consumer = self._consumers.get(durable)
            if consumer is None:
                consumer = ReliableConsumer(
                    self,
                    durable,
                    subject,
                    stream,
                    batch=batch,
                    edge=(model, edge_id) if edge_id else None,
                )
                self._consumers[durable] = consumer
            elif consumer.subject != subject:
                raise ValueError(f"consumer {durable} already filters {consumer.subject}")
            consumer.on(model, fn)
            return fn

        return deco

    def project(
        self,
        model: type[RefEntity],
        table: sa.Table,
        after: Callable[[RefEntity], None] | None = None,
    ) -> None:
        """Keep ``table`` as this service's copy of one kind of reference data.

        The table's columns are a subset of the entity's fields; the first primary key
        column is the entity id. Replays and repeats are harmless (an upsert). ``after`` is
        called with the entity once the row is committed (to refresh an in-memory view).
        """

        async def upsert(ctx: HandlerContext, entity: RefEntity) -> None:
            row = {c.name: getattr(entity, c.name) for c in table.columns}
            await upsert_row(ctx.session, table, row)
            if after is not None:
                ctx.after_commit(lambda: after(entity))

        self.handles(model, durable=f"{self.name}-refdata", subject=REFDATA_ALL, stream=REFDATA)(
            upsert
        )

    def on_start(self, fn: Callable) -> Callable:
        """Decorator: an async callable run after the store is migrated, before consuming."""
        self._on_start.append(fn)
        return fn

    def on_ready(self, fn: Callable) -> Callable:
        """Decorator: an async callable run once NATS is connected and consumers run."""
        self._on_ready.append(fn)
        return fn

    def on_stop(self, fn: Callable) -> Callable:
        """Decorator: an async callable run first on stop (stop taking requests, flush)."""
        self._on_stop.append(fn)
        return fn

    def housekeeping(self, fn: Callable) -> Callable:
        """Decorator: an async callable run every ``housekeeping_interval_s``."""
        self._housekeeping.append(fn)
        return fn

    async def purge_messaging(self) -> None:
        """Forget what can no longer matter: published outbox rows after a day, processed
        message ids once their messages have aged out of the streams."""
        t = self.store.tables
        now = utcnow()
        async with self.store.transaction() as s:
            await s.execute(
                sa.delete(t.outbox).where(
                    t.outbox.c.sent_at.is_not(None), t.outbox.c.sent_at < now - timedelta(days=1)
                )
            )
            await s.execute(
                sa.delete(t.processed).where(
                    t.processed.c.processed_at
                    < now - timedelta(days=self.settings.stream_max_age_days + 1)
                )
            )

    async def _housekeep(self) -> None:
        while True:
            await asyncio.sleep(self.settings.housekeeping_interval_s)
            for fn in self._housekeeping:
                try:
                    await fn()
                except Exception:
                    log.exception("housekeeping %s failed", getattr(fn, "__name__", fn))

    @property
    def nc(self):
        """The raw nats-py connection (for hot paths that bypass FastStream)."""
        return self.broker.config.connection_state.connection

    async def publish_to_stream(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> PubAck:
        """One message (an outbox row, say) to its stream, awaiting the PubAck, through
        nats-py's JetStream context directly (the relay publishes many per pass; the
        broker's publish path costs several times more per message and adds nothing the
        outbox needs). Only for what was made durable first (outbox, register)."""
        js = self.broker.config.connection_state.stream
        return await js.publish(
            subject, payload, timeout=5.0, stream=stream_for(subject).name, headers=headers
        )

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        await self.store.migrate(self.migrations)
        for fn in self._on_start:
            await fn()
        for consumer in self._consumers.values():
            consumer.register()
        await self._connect()
        await ensure_streams(self.broker.config.connection_state.stream, self.settings)
        await self.broker.start()
        for consumer in self._consumers.values():
            consumer.started = time.monotonic()  # the grace for a predecessor's messages
        self.relay.start()
        for fn in self._on_ready:
            await fn()
        self._housekeeper = asyncio.create_task(self._housekeep(), name="housekeeping")
        self._started = True
        log.info("service started", extra={"database": _safe_url(self.store.url)})

    async def _connect(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.broker.connect()
                return
            except Exception as exc:  # the first connect; afterwards nats-py reconnects
                log.warning(
                    "cannot reach NATS at %s (%s); retrying in %.1fs",
                    self.settings.nats_url,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def stop(self) -> None:
        await stop_task(self._housekeeper)
        self._housekeeper = None
        for fn in self._on_stop:
            try:
                await fn()
            except Exception:
                log.exception("stop hook failed")
        await self.broker.stop()  # waits for in-flight handlers (graceful_timeout)
        await self.relay.stop()
        if self._nats_connected():
            try:  # a last pass, so a clean stop leaves nothing behind in the outbox
                await asyncio.wait_for(self.relay.relay_once(), 5.0)
            except Exception:
                log.warning("outbox not flushed on stop; it will be on the next start")
        await self.store.dispose()
        log.info("service stopped")

    def _nats_connected(self) -> bool:
        try:
            conn = self.broker.config.connection_state.connection
            return bool(conn and conn.is_connected)
        except Exception:
            return False

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        checks["nats"] = "ok" if self._nats_connected() else "not connected"
        if checks["nats"] == "ok":
            try:
                missing = await asyncio.wait_for(
                    missing_streams(self.broker.config.connection_state.stream), 2.0
                )
                checks["streams"] = "ok" if not missing else "missing " + ",".join(missing)
            except Exception as exc:
                checks["streams"] = f"error: {exc}"
        else:
            checks["streams"] = "unknown"
        try:
            await asyncio.wait_for(self.store.ping(), 2.0)
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"error: {exc}"
        if not self._started:
            checks["service"] = "starting"
        return checks

    # --- HTTP -------------------------------------------------------------------------------
    async def asgi(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/metrics":
            status, ctype, body = 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)
        elif path == "/healthz":
            status, ctype, body = 200, "application/json", b'{"status":"ok"}'
        elif path == "/readyz":
            checks = await self.readiness()
            ok = all(v == "ok" for v in checks.values())
            status, ctype = (200 if ok else 503), "application/json"
            body = json.dumps({"ready": ok, "checks": checks}).encode()
        else:
            status, ctype, body = 404, "text/plain", b"not found"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", ctype.encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def run(self) -> None:
        port = self.settings.resolved_http_port(self.name)
        server = _QuietServer(
            uvicorn.Config(
                self.asgi,
                host=self.settings.http_host,
                port=port,
                lifespan="off",
                log_config=None,
                access_log=False,
                interface="asgi3",
            )
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        http = asyncio.create_task(server.serve(), name="http")
        try:
            await self.start()
            log.info("ready; metrics on http://%s:%d/metrics", self.settings.http_host, port)
            await self._stopping.wait()
        finally:
            log.info("stopping")
            server.should_exit = True
            await self.stop()
            await http

    def main(self) -> None:
        logs.configure(self.name, self.settings.log_level)
        if self.settings.event_loop == "uvloop":
            uvloop.run(self.run())
        else:
            asyncio.run(self.run())


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGTERM/SIGINT."""

    @contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield


def _safe_url(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)
