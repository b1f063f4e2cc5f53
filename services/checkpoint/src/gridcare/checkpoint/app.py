"""Checkpoint entry points: the gate scan responder and the reference-data projections.

The scan path is the hottest in gridcare (a district's morning rush), so it bypasses
FastStream and answers with nats-py directly from memory (``state.py``); FastStream's
per-message overhead there would cost most of the throughput (``bench/``). The register
is still written before the reply (``register.py``), so a verdict a device has seen is
never lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import timedelta
from typing import Any

from gridcare.shared import subjects
from gridcare.shared.envelope import Envelope, stable_id, utcnow
from gridcare.shared.events import (
    Building,
    Compound,
    FeverDetected,
    Gate,
    Household,
    PassageRecorded,
    Resident,
)
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings

from . import tables as T
from .domain import InvalidScan, Policy, ScanRequest, Situation, decide, parse_scan
from .register import Entry, Register
from .state import GateState

log = logging.getLogger(__name__)
NAME = "checkpoint"
QUEUE_GROUP = "gridcare-checkpoint"


def build(settings: Settings | None = None, policy: Policy | None = None) -> Service:
    svc = Service(NAME, T.metadata, T.MIGRATIONS, settings)
    state = GateState()
    for model, table in (
        (Gate, T.gates),
        (Compound, T.compounds),
        (Building, T.buildings),
        (Household, T.households),
        (Resident, T.residents),
    ):
        svc.project(model, table, after=state.apply)
    register = Register(svc)
    scans = ScanResponder(svc, state, register, policy or Policy())

    @svc.on_start
    async def load_state() -> None:
        async with svc.store.sessions() as s:
            await state.load(s)
        register.start()

    svc.on_ready(scans.subscribe)
    svc.on_stop(scans.drain)
    svc.on_stop(register.stop)
    return svc


class ScanResponder:
    def __init__(self, svc: Service, state: GateState, register: Register, policy: Policy):
        self.svc = svc
        self.state = state
        self.register = register
        self.policy = policy
        self.max_future = timedelta(seconds=svc.settings.scan_max_future_s)
        self._sub = None
        self._inflight: set[asyncio.Task] = set()
        m = svc.metrics
        self.verdicts = m.counter("scans_total", "Gate scans answered, by verdict", ["verdict"])
        self.latency = m.histogram(
            "scan_duration_seconds",
            "Time from request to reply",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )

    async def subscribe(self) -> None:
        self._sub = await self.svc.nc.subscribe(
            subjects.GATE_SCAN_ALL,
            queue=QUEUE_GROUP,
            cb=self._on_msg,
            pending_msgs_limit=200_000,
        )

    async def drain(self) -> None:
        """Stop taking scans; answer the ones already taken."""
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=10)

    async def _on_msg(self, msg) -> None:
        # nats-py runs one callback at a time per subscription: hand each scan to its own
        # task so that many wait on the same register commit.
        task = asyncio.create_task(self._answer(msg))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _answer(self, msg) -> None:
        reply = await self.handle(msg.subject, msg.data)
        if msg.reply:
            try:
                await msg.respond(json.dumps(reply, ensure_ascii=False).encode())
            except Exception:  # the connection went away: the device will retry
                log.warning("could not send a scan reply", exc_info=True)

    async def handle(self, subject: str, body: bytes) -> dict[str, Any]:
        """Never raises: every request gets a reply (CONTRACT.md §1)."""
        t0 = time.perf_counter()
        try:
            reply = await self._handle(subject, body)
            self.verdicts.labels(reply.get("verdict", "invalid")).inc()
        except InvalidScan as exc:
            self.verdicts.labels("invalid").inc()
            reply = exc.reply()
        except Exception:
            log.exception("scan failed")
            self.verdicts.labels("error").inc()
            reply = {
                "error": {
                    "code": "unavailable",
                    "detail": [{"field": "(service)", "error": "could not record the scan; retry"}],
                }
            }
        self.latency.observe(time.perf_counter() - t0)
        return reply

    async def _handle(self, subject: str, body: bytes) -> dict[str, Any]:
        parts = subject.split(".")
        scan = parse_scan(
            body, parts[1] if len(parts) == 3 else "", utcnow(), self.max_future, self.policy
        )
        compound = self.state.gate_compound.get(scan.gate_id)
        if compound is None:
            raise InvalidScan([{"field": "gate_id", "error": f"unknown gate {scan.gate_id!r}"}])
        home = self.state.home_compound(scan.person_id)
        who = Situation(
            compound_id=compound,
            control_level=self.state.level(compound),
            is_resident=home == compound,
            is_known=home is not None,
        )
        return await self.register.record(self._entry(scan, who))

    def _entry(self, scan: ScanRequest, who: Situation) -> Entry:
        verdict = decide(scan, who, self.policy)
        decided_at = utcnow()
        reasons = list(verdict.reasons)
        reply = {
            "scan_id": scan.scan_id,
            "verdict": verdict.verdict,
            "reasons": reasons,
            "message": verdict.message(),
            "decided_at": decided_at.isoformat(),
        }
        passage = {
            "gate_id": scan.gate_id,
            "scan_id": scan.scan_id,
            "compound_id": who.compound_id,
            "person_id": scan.person_id,
            "direction": scan.direction,
            "verdict": verdict.verdict,
            "reasons": reasons,
            "temperature_c": scan.temperature_c,
            "scanned_at": scan.scanned_at,
            "decided_at": decided_at,
            "reply": reply,
        }
        events: list = [
            PassageRecorded(
                scan_id=scan.scan_id,
                gate_id=scan.gate_id,
                compound_id=who.compound_id,
                person_id=scan.person_id,
                direction=scan.direction,
                verdict=verdict.verdict,
                reasons=reasons,
                temperature_c=scan.temperature_c,
                scanned_at=scan.scanned_at,
                decided_at=decided_at,
            )
        ]
        if "fever" in verdict.reasons and scan.temperature_c is not None:
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
        correlation = stable_id("scan", scan.gate_id, scan.scan_id)
        return Entry(
            passage,
            [
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
            ],
        )
