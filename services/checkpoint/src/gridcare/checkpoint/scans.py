"""The gate scan responder (CONTRACT.md §1): nats-py directly, verdicts from memory.

This is gridcare's hottest path (a district's morning rush), so it bypasses FastStream,
whose per-message overhead would cost most of the throughput (see ``bench/``), and does
no per-scan task or future: the subscription callback validates and decides from
``GateState`` synchronously and queues the passage for the register's group commit, whose
writer sends every reply of a batch once it is durable. A device's retry (same gate and
``scan_id``) is answered from a cache of recent scans, or from the register: never decided
twice.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import sqlalchemy as sa

from gridcare.shared import subjects
from gridcare.shared.envelope import Envelope, Event, stable_id, utcnow
from gridcare.shared.events import FeverDetected, QuarantineBreachAttempted
from gridcare.shared.service import Service

from . import tables as T
from .domain import (
    InvalidScan,
    PermitView,
    ScanRequest,
    Situation,
    Verdict,
    evaluate,
    parse_scan,
)
from .register import Entry, Register
from .state import GateState

log = logging.getLogger(__name__)
QUEUE_GROUP = "gridcare-checkpoint"
NAME = "checkpoint"
RECENT_SCANS = 200_000  # replies kept in memory for device retries
RECENT_WINDOW = timedelta(minutes=15)  # ... and loaded back from the register at start


UNAVAILABLE = {
    "error": {
        "code": "unavailable",
        "detail": [{"field": "(service)", "error": "could not record the scan; retry"}],
    }
}


def reply_body(reply: dict[str, Any]) -> bytes:
    return json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode()


UNAVAILABLE_BODY = reply_body(UNAVAILABLE)


@functools.cache
def _message(verdict: Verdict) -> dict[str, str]:
    """``verdict.message()``, built once per verdict (read only: it is shared)."""
    return verdict.message()


@functools.cache
def _verdict_middle(verdict: Verdict) -> str:
    """The part of a verdict reply that depends on the verdict alone (JSON)."""
    whole = {"verdict": verdict.verdict, "reasons": list(verdict.reasons)}
    whole["message"] = _message(verdict)
    return json.dumps(whole, ensure_ascii=False, separators=(",", ":"))[1:-1]


def verdict_body(scan_id: str, verdict: Verdict, decided_iso: str) -> bytes:
    """``reply_body`` of a verdict, from cached pieces: the same JSON, a few times faster.
    ``scan_id`` (a Token) and an ISO time never need escaping."""
    return (
        f'{{"scan_id":"{scan_id}",{_verdict_middle(verdict)},"decided_at":"{decided_iso}"}}'
    ).encode()


def verdict_of(body: bytes) -> str:
    """The metric label of a stored reply (a retry's)."""
    return json.loads(body).get("verdict", "invalid")


class ScanResponder:
    def __init__(
        self,
        svc: Service,
        state: GateState,
        on_commit: Callable[[int, int, list[dict[str, Any]]], None] = lambda *_: None,
    ) -> None:
        self.svc = svc
        self.state = state
        self.register = Register(
            svc,
            settle=self._settle,
            linger_s=svc.settings.register_linger_s,
            on_commit=on_commit,
        )
        self.max_future = timedelta(seconds=svc.settings.scan_max_future_s)
        self._sub = None
        self._nc: Any = None  # svc.nc, looked up once (it goes through FastStream's config)
        # (gate, scan_id) -> the reply, or the Entry still being written (retries wait on it)
        self._recent: OrderedDict[tuple[str, str], Entry | bytes] = OrderedDict()
        m = svc.metrics
        self.verdicts = m.counter("scans_total", "Gate scans answered, by verdict", ["verdict"])
        self._verdicts = {
            v: self.verdicts.labels(v) for v in ("allow", "deny", "refer", "invalid", "error")
        }
        self.latency = m.histogram(
            "scan_duration_seconds",
            "Time from request to reply",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )

    async def load_recent(self) -> None:
        p = T.passages.c
        since = utcnow() - RECENT_WINDOW
        async with self.svc.store.sessions() as s:
            rows = await s.execute(
                sa.select(p.gate_id, p.scan_id, p.reply).where(p.scanned_at >= since).order_by(p.id)
            )
            for gate, scan_id, reply in rows:
                self._remember((gate, scan_id), reply_body(reply))

    async def subscribe(self) -> None:
        self.register.start()
        self._nc = self.svc.nc
        self._sub = await self._nc.subscribe(
            subjects.GATE_SCAN_ALL,
            queue=QUEUE_GROUP,
            cb=self._on_msg,
            pending_msgs_limit=200_000,
        )
        await self._nc.flush()  # the server has the subscription before we say ready

    async def drain(self) -> None:
        """Stop taking scans; write and answer the ones already taken."""
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        await self.register.stop()

    # --- the path of one scan --------------------------------------------------------------
    async def _on_msg(self, msg) -> None:
        t0 = time.perf_counter()
        try:
            outcome = self.prepare(msg.subject, msg.data)
        except InvalidScan as exc:
            await self._send(msg, reply_body(exc.reply()), "invalid", t0)
            return
        except Exception:
            log.exception("scan failed")
            await self._send(msg, UNAVAILABLE_BODY, "error", t0)
            return
        if isinstance(outcome, bytes):  # a retry of a scan already answered
            await self._send(msg, outcome, verdict_of(outcome), t0)
        else:
            outcome.waiters.append((msg, t0))
            if len(outcome.waiters) == 1:  # not a retry of a scan still being written
                self.register.submit(outcome)

    def prepare(self, subject: str, body: bytes) -> Entry | bytes:
        """Validate and decide; the reply (JSON) of an earlier identical scan, or the new
        Entry. Raises :class:`InvalidScan`."""
        parts = subject.split(".")
        subject_gate = parts[1] if len(parts) == 3 else ""
        gate_compound = self.state.gate_compound.get(subject_gate, "")
        scan = parse_scan(
            body, subject_gate, utcnow(), self.max_future, self.state.policy(gate_compound)
        )
        if not gate_compound:
            raise InvalidScan([{"field": "gate_id", "error": f"unknown gate {scan.gate_id!r}"}])
        key = (scan.gate_id, scan.scan_id)
        seen = self._recent.get(key)
        if seen is not None:  # the device retried
            return seen
        entry = self._decide(scan, gate_compound)
        self._remember(key, entry)
        return entry

    async def _settle(self, entry: Entry, reply: dict[str, Any] | None, written: bool) -> None:
        """The register wrote ``entry`` (or found it there already, or failed): answer."""
        if not written:
            for fn in entry.undo:
                fn()
        if reply is None:
            self._recent.pop(entry.key, None)
            body, label = UNAVAILABLE_BODY, "error"
        else:
            body = entry.reply_body if written else reply_body(reply)
            self._recent[entry.key] = body  # bytes: the collector never walks the cache
            label = reply.get("verdict", "invalid")
            if written and label == "allow":
                p = entry.passage
                self.state.passed(
                    p["compound_id"], p["person_id"], p["gate_id"], p["direction"], p["scanned_at"]
                )
        for msg, t0 in entry.waiters:
            await self._send(msg, body, label, t0)

    async def _send(self, msg, body: bytes, label: str, t0: float) -> None:
        self._verdicts[label].inc()
        self.latency.observe(time.perf_counter() - t0)
        if isinstance(msg, _FutureReply):
            msg.fut.set_result(json.loads(body))
            return
        if not msg.reply:
            return
        try:
            await self._nc.publish(msg.reply, body)
        except Exception:  # the connection went away: the device will retry
            log.warning("could not send a scan reply", exc_info=True)

    async def handle(self, subject: str, body: bytes) -> dict[str, Any]:
        """One scan, awaited (for tools and tests; the subscription does not use this)."""
        try:
            outcome = self.prepare(subject, body)
        except InvalidScan as exc:
            return exc.reply()
        if isinstance(outcome, bytes):
            return json.loads(outcome)
        fut = asyncio.get_running_loop().create_future()
        outcome.waiters.append((_FutureReply(fut), time.perf_counter()))
        if len(outcome.waiters) == 1:
            self.register.submit(outcome)
        return await fut

    def _remember(self, key: tuple[str, str], value: Entry | bytes) -> None:
        self._recent[key] = value
        self._recent.move_to_end(key)
        while len(self._recent) > RECENT_SCANS:
            self._recent.popitem(last=False)

    def _decide(self, scan: ScanRequest, compound: str) -> Entry:
        st = self.state
        home = st.home_compound(scan.person_id)
        held = st.held.get(scan.person_id)
        is_resident = home == compound
        who = Situation(
            compound_id=compound,
            control_level=st.level(compound),
            is_resident=is_resident,
            is_known=home is not None,
            held=held[0] if held else None,
            permits=st.permits_of(scan.person_id) if is_resident else (),
        )
        decision = evaluate(scan, who, st.policy(compound))
        verdict = decision.verdict
        decided_at = utcnow()
        decided_iso = decided_at.isoformat()
        reasons = list(verdict.reasons)
        reply = {
            "scan_id": scan.scan_id,
            "verdict": verdict.verdict,
            "reasons": reasons,
            "message": _message(verdict),
            "decided_at": decided_iso,
        }
        # Permit effects are applied to memory now (so a second exit cannot use the same
        # last use) and written with the passage; undone if the passage is not written.
        effects, undo, permit_id = [], [], None
        for before, after in self._permit_changes(decision, scan):
            effects.append(
                sa.update(T.permits)
                .where(T.permits.c.permit_id == after.permit_id)
                .values(
                    uses_left=after.uses_left,
                    state=after.state,
                    return_by=after.return_by,
                    exited_at=scan.scanned_at if after.state == "out" else T.permits.c.exited_at,
                )
            )
            undo.append(partial(st.put_permit, scan.person_id, before))
            permit_id = after.permit_id
        passage = {
            "gate_id": scan.gate_id,
            "scan_id": scan.scan_id,
            "compound_id": compound,
            "person_id": scan.person_id,
            "direction": scan.direction,
            "verdict": verdict.verdict,
            "reasons": reasons,
            "temperature_c": scan.temperature_c,
            "scanned_at": scan.scanned_at,
            "decided_at": decided_at,
            "reply": reply,
            "permit_id": permit_id,
        }
        entry = Entry(passage, self._events(scan, who, reasons, held), effects, undo)
        entry.reply_body = verdict_body(scan.scan_id, verdict, decided_iso)
        return entry

    def _permit_changes(self, decision, scan: ScanRequest):
        changes: list[tuple[PermitView, PermitView]] = []
        if decision.uses_permit is not None:
            p = decision.uses_permit
            changes.append((p, self.state.use_permit(p, scan.scanned_at)))
        if decision.closes_permit is not None:
            p = decision.closes_permit
            changes.append((p, self.state.close_permit(p)))
        return changes

    def _events(
        self, scan: ScanRequest, who: Situation, reasons: list[str], held: tuple | None
    ) -> list[tuple[str, Envelope]]:
        """The scan's own events (rare); the passage goes out with its batch."""
        events: list[Event] = []
        if "fever" in reasons and scan.temperature_c is not None:
            events.append(
                FeverDetected(
                    scan_id=scan.scan_id,
                    gate_id=scan.gate_id,
                    compound_id=who.compound_id,
                    person_id=scan.person_id,
                    is_resident=who.is_resident,
                    temperature_c=scan.temperature_c,
                    scanned_at=scan.scanned_at,
                )
            )
        if "quarantine" in reasons and held:
            events.append(
                QuarantineBreachAttempted(
                    via="gate",
                    compound_id=who.compound_id,
                    person_id=scan.person_id,
                    household_id=held[1],
                    status=held[0],
                    gate_id=scan.gate_id,
                    ref=f"scan:{scan.gate_id}:{scan.scan_id}",
                    at=scan.scanned_at,
                )
            )
        if not events:
            return []
        correlation = stable_id("scan", scan.gate_id, scan.scan_id)
        return [
            (
                ev.subject(),
                Envelope.wrap(
                    ev,
                    source=NAME,
                    event_id=stable_id(ev.TYPE, scan.gate_id, scan.scan_id),
                    correlation_id=correlation,
                ),
            )
            for ev in events
        ]


class _FutureReply:
    """A waiter for :meth:`ScanResponder.handle`: looks like a message with no reply
    subject, and resolves a future instead."""

    reply = ""

    def __init__(self, fut: asyncio.Future) -> None:
        self.fut = fut
