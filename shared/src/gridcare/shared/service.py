"""The runtime of one gridcare service process.

A service's ``bootstrap.py`` makes a :class:`Service`, includes its FastStream routers
(stream consumers, its API), adds its own start and stop steps, and calls
:meth:`Service.main`. The service is a FastStream application (``Service.app``, which is
also what ``faststream docs gen`` reads for the AsyncAPI document). Starting it: JSON logs,
the store migrated, the service's own start steps (load what it keeps in memory), NATS
connected (waiting as long as it takes), the streams declared (waiting for JetStream as
long as it takes: a cluster may still be forming), the broker's subscribers started, the
outbox relay, the ready steps; ``/metrics``, ``/healthz`` and ``/readyz`` are served
throughout. On SIGTERM/SIGINT it stops in the reverse order: in-flight messages finish and
are acked, the outbox is flushed, the store closed. A stop asked for while it still waits
for NATS or JetStream ends the wait: the process exits at once, cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
import uvicorn
import uvloop
from faststream import AsyncAPI, FastStream
from faststream.context import ContextRepo
from faststream.nats import NatsBroker, NatsRouter
from nats.js import JetStreamContext
from nats.js.api import PubAck
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import logs
from .aio import stop_task
from .api import common_api
from .consumers import RUNTIME, backoff
from .deadletters import DeadLetters
from .envelope import Envelope, Event, utcnow
from .lease import LeaseHeld
from .metrics import Metrics
from .natsconn import Waiting, connect_options, display_urls, ensure_streams, missing_streams
from .outbox import Relay
from .settings import Settings
from .store import Store, write_revision
from .streams import StreamSpec, stream_for
from .uow import Inbound, UnitOfWork

log = logging.getLogger(__name__)

T = TypeVar("T")
Hook = Callable[[], Awaitable[Any]]
UnitOfWorkFactory = Callable[[Store, str, Inbound | None, Callable[[], None]], UnitOfWork]
VERSION = "0.1.0"


class StopRequested(Exception):
    """A stop was asked for (SIGTERM, :meth:`Service.request_stop`) while the service was
    still starting: what it was waiting for is given up, and it stops cleanly."""


class Service:
    def __init__(
        self,
        name: str,
        *,
        metadata: sa.MetaData,
        migrations: Path | None,
        streams: Sequence[StreamSpec],
        unit_of_work: UnitOfWorkFactory,
        http_port: int,
        settings: Settings | None = None,
        description: str = "",
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
        self.streams = tuple(streams)
        self.http_port = self.settings.resolved_http_port(http_port)
        self._unit_of_work = unit_of_work
        self.broker = NatsBroker(
            **connect_options(self.settings, f"gridcare-{name}"),
            error_cb=self._nats_error,
            graceful_timeout=15.0,
            logger=logging.getLogger(f"gridcare.{name}.broker"),
            log_level=logging.DEBUG,  # one line per message is for debugging only
        )
        self.relay = Relay(
            self.store,
            self.publish_to_stream,
            self.metrics,
            batch=self.settings.outbox_batch,
            poll_s=self.settings.outbox_poll_s,
            linger_s=self.settings.outbox_linger_s,
            max_attempts=self.settings.outbox_max_attempts,
            retry_after=lambda attempt: backoff(self.settings, attempt),
            max_payload=self.max_payload,
            connected=self._nats_connected,
        )
        self.dead_letters = DeadLetters(self.store, name, self.metrics, self.relay.wake)
        self.app = FastStream(
            self.broker,
            context=ContextRepo({RUNTIME: self}),
            on_startup=[self._prepare],
            after_startup=[self._begin],
            on_shutdown=[self._end],
            after_shutdown=[self._close],
            specification=AsyncAPI(
                self.broker,
                title=f"gridcare {name}",
                version=VERSION,
                description=description,
            ),
        )
        self.include(common_api(name))
        self.js: JetStreamContext | None = None
        #: the service's own parts, by name, for tests and tools in the same process
        self.components: dict[str, Any] = {}
        self.consuming_since = time.monotonic()
        self.started_at = utcnow()
        self._on_start: list[Hook] = []
        self._on_ready: list[Hook] = []
        self._on_stop: list[Hook] = []
        self._housekeeping: list[Hook] = [self.purge_messaging]
        self._periodic: list[tuple[float, Hook]] = []
        self._on_closed: list[Hook] = []
        self._tasks: list[asyncio.Task] = []
        self._routes: list[tuple[str, Callable[..., Awaitable[None]]]] = []
        self._stopping = asyncio.Event()
        self._started = False
        self._waiting_for_nats: Waiting | None = None  # during the first connect

    # --- wiring -----------------------------------------------------------------------------
    def include(self, router: NatsRouter) -> None:
        self.broker.include_router(router)

    def provide(self, key: str, value: Any) -> None:
        """Make ``value`` a dependency handlers can take (``Context(key)``)."""
        self.app.context.set_global(key, value)

    def request_stop(self) -> None:
        """Stop as on SIGTERM (a running ``run()`` returns after a clean stop)."""
        self._stopping.set()

    def unit_of_work(self, inbound: Inbound | None = None) -> UnitOfWork:
        """A unit of work on this service's store (handling ``inbound``, if given)."""
        return self._unit_of_work(self.store, self.name, inbound, self.relay.wake)

    def publishes(self, event: type[Event], subject: str, description: str = "") -> None:
        """Document that this service publishes ``event`` on ``subject`` (through its outbox):
        it appears in the AsyncAPI document; the outbox relay does the publishing."""
        self.broker.publisher(
            subject,
            schema=Envelope[event],  # type: ignore[valid-type]
            title=f"{self.name}:{event.TYPE}",
            description=description or (event.__doc__ or "").strip(),
        )

    def on_start(self, fn: Hook) -> Hook:
        """An async callable run after the store is migrated, before NATS (load state)."""
        self._on_start.append(fn)
        return fn

    def on_ready(self, fn: Hook) -> Hook:
        """An async callable run once the broker's consumers run."""
        self._on_ready.append(fn)
        return fn

    def on_stop(self, fn: Hook) -> Hook:
        """An async callable run first on stop (stop taking requests, flush)."""
        self._on_stop.append(fn)
        return fn

    def on_closed(self, fn: Hook) -> Hook:
        """An async callable run last on stop, before the store is closed."""
        self._on_closed.append(fn)
        return fn

    def housekeeping(self, fn: Hook) -> Hook:
        """An async callable run every ``housekeeping_interval_s``."""
        self._housekeeping.append(fn)
        return fn

    def every(self, seconds: float, fn: Hook) -> Hook:
        """An async callable run every ``seconds`` while the service runs (an error is
        logged, and the next round runs as usual)."""
        self._periodic.append((seconds, fn))
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
        for fn in self._housekeeping:
            try:
                await fn()
            except Exception:
                log.exception("housekeeping %s failed", getattr(fn, "__name__", fn))

    @staticmethod
    async def _repeat(seconds: float, fn: Hook) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await fn()
            except Exception:
                log.exception("%s failed", getattr(fn, "__name__", fn))

    @property
    def nc(self) -> Any:
        """The nats-py connection (for the hot paths that bypass FastStream)."""
        return self.broker.connection

    async def publish_to_stream(
        self, subject: str, payload: bytes, headers: dict[str, str]
    ) -> PubAck:
        """One message (an outbox row, say) to its stream, awaiting the PubAck, through
        nats-py's JetStream context (the relay publishes many per pass; FastStream's publish
        path costs more per message and adds nothing the outbox needs). Only for what was
        made durable first (outbox, dead letters being replayed)."""
        assert self.js is not None, "not connected"
        stream = stream_for(subject, self.streams).name
        return await self.js.publish(subject, payload, timeout=5.0, stream=stream, headers=headers)

    def max_payload(self) -> int | None:
        """The largest message the server takes (from its INFO), once connected."""
        try:
            return int(self.broker.connection.max_payload)
        except Exception:
            return None

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        await self.app.start()

    async def stop(self) -> None:
        await self.app.stop()

    async def _prepare(self) -> None:
        await self.store.migrate(self.migrations)
        for fn in self._on_start:
            await fn()
        await self._connect()
        self.js = self.broker.connection.jetstream()
        # JetStream may not be ready yet (a cluster's first start: no meta leader, too few
        # servers for the replicas): wait for it, as long as it takes, unless told to stop
        declared = ensure_streams(self.js, self.settings, self.streams, wait_s=None)
        await self._unless_stopped(declared)

    async def _unless_stopped(self, work: Coroutine[Any, Any, T]) -> T:
        """``await work``, unless a stop is requested first: then ``work`` is cancelled
        and :class:`StopRequested` raised (a service waiting for NATS obeys SIGTERM)."""
        if self._stopping.is_set():
            work.close()
            raise StopRequested
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                await stop_task(task)
            await stop_task(stop)
        if task.cancelled():  # the stop came first
            raise StopRequested
        return task.result()

    async def _begin(self) -> None:
        self.consuming_since = time.monotonic()  # the grace for a predecessor's messages
        self.relay.start()
        for fn in self._on_ready:
            await fn()
        rounds = [(self.settings.housekeeping_interval_s, self._housekeep), *self._periodic]
        self._tasks = [
            asyncio.create_task(self._repeat(s, fn), name=getattr(fn, "__name__", "periodic"))
            for s, fn in rounds
        ]
        self._started = True
        log.info("service started", extra={"database": _safe_url(self.store.url)})

    async def _end(self) -> None:
        for task in self._tasks:
            await stop_task(task)
        self._tasks = []
        for fn in self._on_stop:
            try:
                await fn()
            except Exception:
                log.exception("stop hook failed")
        # The stop hooks above ran first, on an open connection (the scan path drains its
        # subscription there: every request already received is answered). In-flight
        # messages finish and are acked (each subscriber waits for its handlers), then the
        # outbox gets a last pass while NATS is still connected: a clean stop leaves
        # nothing behind. The broker's own stop then drains and closes the connection.
        for sub in self.broker.subscribers:
            await sub.stop()
        await self.relay.stop()
        if self._started and self._nats_connected():
            try:
                await asyncio.wait_for(self.relay.relay_once(), 5.0)
            except Exception:
                log.warning("outbox not flushed on stop; it will be on the next start")

    async def _close(self) -> None:
        for fn in self._on_closed:
            try:
                await fn()
            except Exception:
                log.exception("stop hook failed")
        await self.store.dispose()
        log.info("service stopped")

    async def _connect(self) -> None:
        """The first connect, until it succeeds or a stop is requested. nats-py tries the
        servers again and again by itself (``max_reconnect_attempts=-1``; each failed try
        reaches :meth:`_nats_error`, which says that the service waits); an error it does
        not retry (an authorization violation) is retried here."""
        waiting = self._waiting_for_nats = Waiting("NATS", display_urls(self.settings))
        try:
            while True:
                try:
                    await self._unless_stopped(self.broker.connect())
                    waiting.done()
                    return
                except StopRequested:
                    raise
                except Exception as exc:
                    await self._unless_stopped(waiting.failed(exc))
        finally:
            self._waiting_for_nats = None

    async def _nats_error(self, exc: Exception) -> None:
        """nats-py's error callback (FastStream logs those of a connection once made)."""
        if self._waiting_for_nats is not None:
            self._waiting_for_nats.note(exc)

    def _nats_connected(self) -> bool:
        try:
            return bool(self.broker.connection.is_connected)
        except Exception:
            return False

    async def readiness(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        checks["nats"] = "ok" if self._nats_connected() else "not connected"
        if checks["nats"] == "ok" and self.js is not None:
            try:
                missing = await asyncio.wait_for(missing_streams(self.js, self.streams), 2.0)
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

    async def health(self) -> dict[str, Any]:
        """The summary ``api.<service>.health`` answers."""
        checks = await self.readiness()
        total, pending = await self.dead_letters.count()
        return {
            "service": self.name,
            "ready": all(v == "ok" for v in checks.values()),
            "checks": checks,
            "started_at": self.started_at.isoformat(),
            "uptime_s": round((utcnow() - self.started_at).total_seconds(), 1),
            "outbox_pending": await self.relay.pending(),
            "outbox_parked": await self.relay.count_parked(),
            "dead_letters": total,
            "dead_letters_not_replayed": pending,
        }

    # --- HTTP -------------------------------------------------------------------------------
    def http_route(self, prefix: str, app: Callable[..., Awaitable[None]]) -> None:
        """Serve the paths starting with ``prefix`` on the service's HTTP port with the
        ASGI app ``app`` (a service's own endpoints: notify's receipts, say)."""
        self._routes.append((prefix, app))

    def _route(self, path: str) -> Callable[..., Awaitable[None]] | None:
        return next((app for prefix, app in self._routes if path.startswith(prefix)), None)

    async def asgi(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/metrics":
            status, ctype, body = 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)
        elif path == "/healthz":
            status, ctype, body = 200, "application/json", b'{"status":"ok"}'
        elif (route := self._route(path)) is not None:
            await route(scope, receive, send)
            return
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
        server = _QuietServer(
            uvicorn.Config(
                self.asgi,
                host=self.settings.http_host,
                port=self.http_port,
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
            try:
                await self.start()
            except StopRequested:
                log.info("asked to stop while starting: stopping")
                return
            log.info(
                "ready; metrics on http://%s:%d/metrics", self.settings.http_host, self.http_port
            )
            # What is loaded by now (modules, the store's and broker's state) lives as long
            # as the process: out of the collector's full passes, which otherwise scan it
            # all and stall the loop for up to 100 ms (a check-in's p99; bench/)
            gc.collect()
            gc.freeze()
            await self._stopping.wait()
        finally:
            log.info("stopping")
            server.should_exit = True
            await self.stop()
            await http

    def main(self, argv: Sequence[str] | None = None) -> None:
        """The service's command: ``run`` (the default), ``migrate`` (bring the store to the
        newest schema and stop), ``revision -m MESSAGE`` (developers: write a migration for
        what the tables declare and the migrations do not yet have)."""
        parser = argparse.ArgumentParser(prog=f"gridcare-{self.name}")
        sub = parser.add_subparsers(dest="command")
        sub.add_parser("run", help="run the service (the default)")
        sub.add_parser("migrate", help="migrate the store to the newest schema, then exit")
        rev = sub.add_parser("revision", help="(developers) write a new migration")
        rev.add_argument("-m", "--message", required=True)
        args = parser.parse_args(argv)
        logs.configure(self.name, self.settings.log_level)
        if args.command == "migrate":
            asyncio.run(self._migrate_only())
        elif args.command == "revision":
            write_revision(self.migrations, self.store.metadata, args.message)
        else:
            try:
                (uvloop.run if self.settings.event_loop == "uvloop" else asyncio.run)(self.run())
            except LeaseHeld as exc:  # a clear message, not a traceback
                log.error("refusing to start: %s", exc)
                sys.exit(3)

    async def _migrate_only(self) -> None:
        try:
            await self.store.migrate(self.migrations)
        finally:
            await self.store.dispose()
        log.info("store migrated", extra={"database": _safe_url(self.store.url)})


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service owns SIGTERM/SIGINT."""

    @contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield


def _safe_url(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)
