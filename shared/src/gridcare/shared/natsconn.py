"""Connecting to NATS: reconnect forever, credentials and TLS from settings; streams.

Every gridcare process connects through :func:`connect_options`, so credentials, TLS, the
reconnect policy and the ping that notices a dead connection are the same everywhere. What
a service waits for at start (NATS itself, then JetStream: :func:`ensure_streams`) is
waited for with :class:`Waiting`: growing pauses, and a log line now and then that says
what it waits for, where (the URL without credentials), for how long already and why.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import APIError, BadRequestError, NotFoundError, ServiceUnavailableError

from .settings import Settings
from .streams import StreamSpec

log = logging.getLogger(__name__)

# JetStream API errors that mean "not ready yet" (a cluster forming, a leader being
# elected, JetStream still starting), by the server's error code: a service waits them out.
JETSTREAM_NOT_READY = {
    10005,  # no suitable peers for placement (too few servers up for the replicas)
    10006,  # JetStream not in clustered mode (yet)
    10007,  # JetStream cluster not assigned to this server
    10008,  # JetStream system temporarily unavailable (no meta leader)
    10009,  # JetStream cluster can not handle request (not the leader)
    10023,  # insufficient resources
    10039,  # JetStream not enabled
    10041,  # raft error
    10076,  # JetStream not enabled for account
}


def connect_options(settings: Settings, name: str) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` / ``NatsBroker``."""
    opts: dict[str, Any] = {
        "servers": server_urls(settings),
        "name": name,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,  # forever: a service never gives up on NATS
        "reconnect_time_wait": settings.nats_reconnect_wait_s,
        "connect_timeout": 5,
        # a PING every interval; this many unanswered and the connection is taken for dead
        # (a half-open TCP connection: the server gone without a FIN) and reconnected
        "ping_interval": settings.nats_ping_interval_s,
        "max_outstanding_pings": settings.nats_max_outstanding_pings,
    }
    if settings.nats_creds_file:
        opts["user_credentials"] = settings.nats_creds_file
    if settings.nats_nkey_seed_file:
        opts["nkeys_seed"] = settings.nats_nkey_seed_file
    if settings.nats_user:
        opts["user"] = settings.nats_user
        opts["password"] = settings.nats_password
    if settings.nats_token:
        opts["token"] = settings.nats_token
    if settings.nats_tls_ca_file or settings.nats_tls_cert_file:
        ctx = ssl.create_default_context(cafile=settings.nats_tls_ca_file)
        if settings.nats_tls_cert_file:
            ctx.load_cert_chain(settings.nats_tls_cert_file, settings.nats_tls_key_file)
        opts["tls"] = ctx
    return opts


def server_urls(settings: Settings) -> list[str]:
    return [s.strip() for s in settings.nats_url.split(",") if s.strip()]


def display_urls(settings: Settings) -> str:
    """The NATS URLs as a log line may show them: without user, password or token."""
    shown = []
    for url in server_urls(settings):
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        host = parts.hostname or ""
        if ":" in host:  # IPv6
            host = f"[{host}]"
        try:
            port = parts.port
        except ValueError:
            port = None
        netloc = f"{host}:{port}" if port else host
        shown.append(urlunsplit((parts.scheme, netloc, parts.path, "", "")))
    return ",".join(shown)


class Waiting:
    """Waiting for something that is not there yet: a warning at the first failed try and
    then at most every ``log_every_s`` (what, where, for how long, the last error); and,
    for a caller that makes the tries itself, a pause that doubles from ``first_s`` up to
    ``max_s`` after each one (:meth:`failed`)."""

    def __init__(
        self,
        what: str,
        where: str,
        first_s: float = 0.5,
        max_s: float = 5.0,
        log_every_s: float = 15.0,
    ) -> None:
        self.what = what
        self.where = where
        self.delay = first_s
        self.max_s = max_s
        self.log_every_s = log_every_s
        self.since = time.monotonic()
        self.tries = 0
        self.last_error: BaseException | str | None = None
        self._logged_at: float | None = None

    @property
    def waited_s(self) -> float:
        return time.monotonic() - self.since

    def note(self, error: BaseException | str, level: int = logging.WARNING) -> None:
        """One more try failed with ``error``: log it if it is time to."""
        self.tries += 1
        self.last_error = error
        now = time.monotonic()
        if self._logged_at is not None and now - self._logged_at < self.log_every_s:
            return
        self._logged_at = now
        log.log(
            level,
            "waiting for %s at %s (%.0fs so far; try %d failed: %s)",
            self.what,
            self.where,
            self.waited_s,
            self.tries,
            describe(error),
            extra={
                "waiting_for": self.what,
                "nats_url": self.where,
                "waited_s": round(self.waited_s, 1),
            },
        )

    async def failed(self, error: BaseException | str, level: int = logging.WARNING) -> None:
        """One more try failed with ``error``: log it if it is time to, then pause."""
        if error is not self.last_error:
            self.note(error, level)
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.max_s)

    def done(self) -> None:
        if self.tries:
            log.info(
                "%s at %s is there after %.1fs",
                self.what,
                self.where,
                self.waited_s,
                extra={"waited_for": self.what, "nats_url": self.where},
            )


def describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    if isinstance(error, ServiceUnavailableError) and not error.description:
        return "no answer from JetStream (503: not enabled, or not ready)"
    if isinstance(error, APIError):
        code = error.err_code or error.code
        text = error.description or type(error).__name__
        return f"{text} (code {code})" if code else text
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def jetstream_not_ready(exc: BaseException) -> bool:
    """Whether ``exc`` from a JetStream API request means only "not ready yet"."""
    if isinstance(
        exc,
        nats.errors.TimeoutError
        | nats.errors.NoRespondersError
        | nats.errors.ConnectionClosedError
        | nats.errors.ConnectionReconnectingError
        | ServiceUnavailableError
        | asyncio.TimeoutError,
    ):
        return True
    if isinstance(exc, APIError):
        return exc.code == 503 or exc.err_code in JETSTREAM_NOT_READY
    return False


async def ensure_streams(
    js: JetStreamContext,
    settings: Settings,
    specs: Sequence[StreamSpec],
    *,
    wait_s: float | None = 30.0,
) -> None:
    """Create every stream, or bring an existing one's limits up to date. Idempotent.

    JetStream that is not ready (not enabled yet, a cluster still forming: no meta leader,
    too few servers for the replicas, requests timing out) is waited for, with a log line
    now and then; so is any other refusal (a stream the server will not change), logged as
    an error. Up to ``wait_s`` seconds, then the last error is raised; ``None``: until it
    succeeds or the caller cancels (a service, until it is asked to stop)."""
    waiting = Waiting("JetStream", display_urls(settings))
    for spec in specs:
        while True:
            try:
                await _ensure_stream(js, spec, settings)
                break
            except Exception as exc:
                if wait_s is not None and waiting.waited_s >= wait_s:
                    raise
                if jetstream_not_ready(exc):
                    await waiting.failed(f"stream {spec.name}: {describe(exc)}")
                else:
                    await waiting.failed(
                        f"stream {spec.name} refused: {describe(exc)}", logging.ERROR
                    )
    waiting.done()


async def _ensure_stream(js: JetStreamContext, spec: StreamSpec, settings: Settings) -> None:
    cfg = spec.config(settings)
    try:
        await js.stream_info(spec.name)
    except NotFoundError:
        try:
            await js.add_stream(cfg)
            log.info("stream created: %s", spec.name)
            return
        except BadRequestError as exc:  # another service created it a moment ago
            if "already in use" not in str(exc):
                raise
    await js.update_stream(cfg)


async def missing_streams(js: JetStreamContext, specs: Sequence[StreamSpec]) -> list[str]:
    missing = []
    for spec in specs:
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            missing.append(spec.name)
    return missing
