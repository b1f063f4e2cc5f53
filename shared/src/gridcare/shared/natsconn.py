"""Connecting to NATS: reconnect forever, credentials and TLS from settings; streams.

Every gridcare process connects through :func:`connect_options`, so credentials, TLS, the
reconnect policy and the ping that notices a dead connection are the same everywhere.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError

from .settings import Settings
from .streams import StreamSpec

log = logging.getLogger(__name__)


def connect_options(settings: Settings, name: str) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` / ``NatsBroker``."""
    opts: dict[str, Any] = {
        "servers": [s.strip() for s in settings.nats_url.split(",") if s.strip()],
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


async def ensure_streams(
    js: JetStreamContext, settings: Settings, specs: Sequence[StreamSpec]
) -> None:
    """Create every stream, or bring an existing one's limits up to date. Idempotent."""
    for spec in specs:
        cfg = spec.config(settings)
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            try:
                await js.add_stream(cfg)
                log.info("stream created: %s", spec.name)
                continue
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
