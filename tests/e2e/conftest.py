"""Fixtures for the cross-service tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from system import System

from gridcare.cli.devrun import SERVICES


@pytest.fixture
def service_db_urls(db_backend, request, tmp_path) -> dict[str, str]:
    if db_backend == "sqlite":
        return {s: f"sqlite+aiosqlite:///{tmp_path / f'{s}.db'}" for s in SERVICES}
    pg = request.getfixturevalue("pg_databases")
    return {s: pg.create(s) for s in SERVICES}


@pytest.fixture
def system(tmp_path, service_db_urls, sink) -> Iterator[System]:
    s = System(tmp_path, service_db_urls, sink)
    try:
        s.start()
        yield s
    finally:
        s.stop()  # also what did start when another service did not
