"""Settings from environment variables, all with the ``GRIDCARE_`` prefix.

Every service reads :class:`Settings` (a service with settings of its own extends it, e.g.
its own ``config.py``); each process is told which service it is by the entry
point it was started from. See ``docs/configuration.md`` for the full list.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "GRIDCARE_"

#: Where ``make run`` keeps its data (NATS, SQLite stores, logs) unless told otherwise.
DEFAULT_VAR_DIR = Path("var")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # --- NATS -------------------------------------------------------------------------------
    # The default is the embedded server that `make run` starts; set it for any other.
    nats_url: str = "nats://127.0.0.1:14222"
    nats_creds_file: str | None = None  # a .creds file (JWT + nkey seed) for this service
    nats_nkey_seed_file: str | None = None
    nats_user: str | None = None
    nats_password: str | None = None
    nats_token: str | None = None
    nats_tls_ca_file: str | None = None
    nats_tls_cert_file: str | None = None
    nats_tls_key_file: str | None = None
    nats_reconnect_wait_s: float = 2.0
    # A PING every interval; more than this many unanswered and the connection is taken
    # for dead and reconnected: a half-open one (the server or the network gone without a
    # word) is noticed within (max_outstanding_pings + 1) * interval (docs/operations.md).
    nats_ping_interval_s: float = Field(2.0, gt=0)
    nats_max_outstanding_pings: int = Field(2, ge=1)

    # --- streams ----------------------------------------------------------------------------
    stream_replicas: int = Field(1, ge=1, le=5)  # 3 on a cluster
    stream_duplicate_window_s: float = Field(120.0, gt=0)
    stream_max_age_days: float = Field(30.0, gt=0)
    stream_max_bytes: int = 1024**3  # per stream; -1 for unlimited

    # --- store ------------------------------------------------------------------------------
    # Empty means "SQLite file var/<service>.db"; otherwise any SQLAlchemy async URL, e.g.
    # postgresql+asyncpg://user@host/db (plain postgresql:// is accepted and upgraded).
    # GRIDCARE_<SERVICE>_DATABASE_URL (the service by its name, upper-cased) wins for that
    # service, so one environment can describe all four stores.
    database_url: str = ""
    var_dir: Path = DEFAULT_VAR_DIR

    # --- reliable consumers -----------------------------------------------------------------
    # A failing message is retried with a delay that doubles from the base up to the max,
    # each one stretched by a random part (up to ``retry_jitter`` of it, so that the
    # messages of one outage do not come back all at once), and dead-lettered once it has
    # been retried for the horizon: an outage of a provider or a database shorter than the
    # horizon loses nothing and needs nobody.
    retry_base_delay_s: float = Field(1.0, ge=0)  # NACK delay doubles each attempt ...
    retry_max_delay_s: float = Field(300.0, ge=0)  # ... up to this
    retry_jitter: float = Field(0.2, ge=0, le=1)
    retry_horizon_s: float = Field(3600.0, ge=0)  # how long a failing message is retried
    ack_wait_s: float = Field(30.0, gt=0)

    # --- outbox relay -----------------------------------------------------------------------
    outbox_poll_s: float = Field(0.5, gt=0)
    outbox_batch: int = Field(500, ge=1)
    # a row the stream refuses this many times (with the retry delays between) is set aside
    outbox_max_attempts: int = Field(20, ge=1)
    # after a wake-up the relay waits this long so one pass takes many commits' rows
    outbox_linger_s: float = Field(0.02, ge=0)

    # SQLite stores: FULL survives a power cut; NORMAL a crash of the service (docs/operations.md)
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # the event loop of a service process: uvloop (libuv) or Python's own asyncio loop
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    # --- HTTP (metrics, health) -------------------------------------------------------------
    http_host: str = "127.0.0.1"
    http_port: int | None = None  # default: the service's own (9101-9104)

    # --- logs -------------------------------------------------------------------------------
    log_level: str = "INFO"

    # --- periodic work ----------------------------------------------------------------------
    housekeeping_interval_s: float = Field(60.0, gt=0)  # purges, overdue checks, ...

    @classmethod
    def for_documents(cls) -> Self:
        """The defaults alone (the environment ignored) and no store: what a service is
        built with for its AsyncAPI document, so the document does not depend on where it
        was generated."""
        return cls.model_construct(database_url="sqlite+aiosqlite://")

    def resolved_database_url(self, service: str) -> str:
        """``GRIDCARE_<SERVICE>_DATABASE_URL``, else ``GRIDCARE_DATABASE_URL``, else SQLite."""
        url = os.environ.get(f"{ENV_PREFIX}{service.upper()}_DATABASE_URL", "").strip()
        url = url or self.database_url.strip()
        if not url:
            self.var_dir.mkdir(parents=True, exist_ok=True)
            return f"sqlite+aiosqlite:///{(self.var_dir / f'{service}.db').resolve()}"
        return normalise_database_url(url)

    def resolved_http_port(self, default: int) -> int:
        return self.http_port if self.http_port is not None else default


def normalise_database_url(url: str) -> str:
    """Accept the URLs operators write and pick the async driver for them."""
    for plain, async_ in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite:///", "sqlite+aiosqlite:///"),
    ):
        if url.startswith(plain):
            return async_ + url[len(plain) :]
    return url
