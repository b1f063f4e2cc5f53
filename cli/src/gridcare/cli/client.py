"""Talking to the services' APIs (``api.<service>.<op>``), the way ``make run`` finds NATS."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import nats
import nats.errors

from gridcare.shared.api import API
from gridcare.shared.natsconn import connect_options
from gridcare.shared.settings import Settings

TIMEOUT_S = 10.0


def nats_url() -> str:
    """``GRIDCARE_NATS_URL``, else ``NATS_URL``, else the embedded server of ``make run``."""
    return (
        os.environ.get("GRIDCARE_NATS_URL")
        or os.environ.get("NATS_URL")
        or Settings.model_fields["nats_url"].default
    )


def settings() -> Settings:
    return Settings(nats_url=nats_url())


class Refused(Exception):
    """The service answered with an error."""

    def __init__(self, code: str, detail: list[dict[str, str]]) -> None:
        super().__init__(code)
        self.code, self.detail = code, detail


class NoAnswer(Exception):
    pass


async def connect(name: str = "gridcare-cli") -> nats.NATS:
    opts = {**connect_options(settings(), name), "max_reconnect_attempts": 1}
    try:
        return await nats.connect(**opts)
    except Exception as exc:
        raise NoAnswer(f"cannot reach NATS at {nats_url()}: {exc}") from None


async def request(nc: nats.NATS, subject: str, body: bytes, wait_s: float = TIMEOUT_S) -> bytes:
    try:
        return (await nc.request(subject, body, timeout=wait_s)).data
    except nats.errors.NoRespondersError:
        raise NoAnswer(f"nobody answers {subject}: is the service running?") from None
    except nats.errors.TimeoutError:
        raise NoAnswer(f"no answer on {subject} within {wait_s:g} s") from None


async def call_async(service: str, op: str, body: dict[str, Any] | None = None) -> Any:
    nc = await connect()
    try:
        raw = await request(nc, API.format(service=service, op=op), json.dumps(body or {}).encode())
    finally:
        await nc.close()
    reply = json.loads(raw)
    if "error" in reply:
        raise Refused(reply["error"]["code"], reply["error"].get("detail") or [])
    return reply.get("result")


def call(service: str, op: str, body: dict[str, Any] | None = None) -> Any:
    """The result of one API operation; raises :class:`Refused` or :class:`NoAnswer`."""
    return asyncio.run(call_async(service, op, body))
