"""Fixtures for the library's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from testkit import TestService, make_service


@pytest.fixture
async def test_service(nats_server, database_url, tmp_path) -> AsyncIterator[TestService]:
    ts = make_service(nats_server.url, database_url, tmp_path)
    await ts.svc.start()
    yield ts
    await ts.svc.stop()


@pytest.fixture
def eventually() -> Callable:
    import asyncio
    import time

    async def wait(check, timeout: float = 15.0, interval: float = 0.05):
        deadline = time.monotonic() + timeout
        while True:
            result = await check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"not true within {timeout}s: {check.__name__}")
            await asyncio.sleep(interval)

    return wait
