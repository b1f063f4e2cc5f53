"""The checkpoint's entry/exit register, as screening reads it: its API over NATS
request/reply (``api.checkpoint.passages``, ``api.checkpoint.trace``), and an in-memory
twin for handler tests.

Never called inside a transaction. A register that does not answer (no checkpoint running,
a timeout, an error reply) raises :class:`RegisterUnavailable`: the caller's message is
retried (the consumer's retry policy), never handled as if nobody had passed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from gridcare.shared.localtime import as_utc

from ..domain.contacts import Passage

#: The context key of the register (``Context(REGISTER)`` in an entry point).
REGISTER = "screening_register"
PASSAGES = "api.checkpoint.passages"
TRACE = "api.checkpoint.trace"
#: The most passages of one person the register is asked for (its ``passages`` limit).
MAX_OWN = 1000
#: Passages per page of a trace.
PAGE = 1000


class RegisterUnavailable(Exception):
    """The checkpoint's register did not answer (or answered with an error)."""


class Register(Protocol):
    async def passages_of(self, person_id: str, since: datetime) -> list[Passage]:
        """The person's passages at any gate since ``since`` (oldest first)."""
        ...

    async def around(self, passage: Passage, minutes: float) -> list[Passage]:
        """Every passage at the same gate within ±minutes of ``passage``."""
        ...


def _passage(row: dict[str, Any]) -> Passage:
    return Passage(
        gate_id=row["gate_id"],
        scan_id=row["scan_id"],
        person_id=row.get("person_id"),
        scanned_at=as_utc(datetime.fromisoformat(row["scanned_at"])),  # type: ignore[arg-type]
        direction=row.get("direction"),
        verdict=row.get("verdict"),
        reasons=tuple(row.get("reasons") or ()),
    )


class NatsRegister:
    """The register over NATS: ``connection()`` is the service's nats-py connection."""

    def __init__(
        self, connection: Callable[[], Any], timeout_s: float = 5.0, page: int = PAGE
    ) -> None:
        self.connection = connection
        self.timeout_s = timeout_s
        self.page = page  # passages per page of a trace

    async def _ask(self, subject: str, body: dict[str, Any]) -> Any:
        try:
            msg = await self.connection().request(
                subject, json.dumps(body).encode(), timeout=self.timeout_s
            )
            reply = json.loads(msg.data)
        except Exception as exc:  # no responders, a timeout, a closed connection, garbage
            raise RegisterUnavailable(f"{subject}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(reply, dict) or "result" not in reply:
            raise RegisterUnavailable(f"{subject} answered {reply!r:.300}")
        return reply["result"]

    async def passages_of(self, person_id: str, since: datetime) -> list[Passage]:
        result = await self._ask(PASSAGES, {"person_id": person_id, "limit": MAX_OWN})
        found = [_passage(r) for r in result["passages"]]
        return sorted((p for p in found if p.scanned_at >= since), key=lambda p: p.scanned_at)

    async def around(self, passage: Passage, minutes: float) -> list[Passage]:
        found: list[Passage] = []
        after: str | None = None
        while True:
            body: dict[str, Any] = {
                "gate_id": passage.gate_id,
                "scan_id": passage.scan_id,
                "minutes": minutes,
                "limit": self.page,
            }
            if after:
                body["after"] = after
            result = await self._ask(TRACE, body)
            found.extend(_passage(r) for r in result["passages"])
            after = result.get("next")
            if not after:
                return found


class MemoryRegister:
    """The register's in-memory twin: passages the test adds; ``down`` makes it fail as
    a checkpoint that does not answer would."""

    def __init__(self, passages: Iterable[Passage] = ()) -> None:
        self.rows: list[Passage] = list(passages)
        self.down = False
        self.asked: list[tuple[str, Any]] = []

    def add(
        self,
        gate_id: str,
        person_id: str,
        at: datetime,
        scan_id: str | None = None,
        direction: str | None = None,
        verdict: str | None = None,
    ) -> None:
        scan_id = scan_id or f"{gate_id}-{len(self.rows) + 1}"
        self.rows.append(Passage(gate_id, scan_id, person_id, at, direction, verdict))

    def _check(self) -> None:
        if self.down:
            raise RegisterUnavailable("the checkpoint does not answer")

    async def passages_of(self, person_id: str, since: datetime) -> list[Passage]:
        self._check()
        self.asked.append(("passages", person_id))
        mine = [p for p in self.rows if p.person_id == person_id and p.scanned_at >= since]
        return sorted(mine, key=lambda p: p.scanned_at)

    async def around(self, passage: Passage, minutes: float) -> list[Passage]:
        self._check()
        self.asked.append(("trace", passage.scan_id))
        window = timedelta(minutes=minutes)
        near = [
            p
            for p in self.rows
            if p.gate_id == passage.gate_id and abs(p.scanned_at - passage.scanned_at) <= window
        ]
        return sorted(near, key=lambda p: p.scanned_at)
