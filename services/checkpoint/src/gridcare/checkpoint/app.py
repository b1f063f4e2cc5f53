"""Checkpoint entry points: the gate scan responder and the reference-data projections.

The scan path answers a core NATS request (``gate.<gate_id>.scan``). The passage is
written to the register, with its events in the outbox, in one transaction *before* the
reply, so a verdict a device has seen is never lost.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from faststream.nats.annotations import NatsMessage
from sqlalchemy.exc import IntegrityError

from gridcare.shared import outbox, subjects
from gridcare.shared.envelope import Envelope, stable_id, utcnow
from gridcare.shared.events import (
    Building,
    Compound,
    ControlLevel,
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

log = logging.getLogger(__name__)
NAME = "checkpoint"


def build(settings: Settings | None = None, policy: Policy | None = None) -> Service:
    svc = Service(NAME, T.metadata, T.MIGRATIONS, settings)
    for model, table in (
        (Gate, T.gates),
        (Compound, T.compounds),
        (Building, T.buildings),
        (Household, T.households),
        (Resident, T.residents),
    ):
        svc.project(model, table)
    scans = Scans(svc, policy or Policy())

    @svc.broker.subscriber(
        subjects.GATE_SCAN_ALL, queue="gridcare-checkpoint", title="gate scan (CONTRACT.md §1)"
    )
    async def on_scan(msg: NatsMessage) -> dict[str, Any]:
        return await scans.handle(msg.raw_message.subject, msg.body)

    return svc


class Scans:
    def __init__(self, svc: Service, policy: Policy) -> None:
        self.svc = svc
        self.policy = policy
        self.max_future = timedelta(seconds=svc.settings.scan_max_future_s)
        m = svc.metrics
        self.verdicts = m.counter("scans_total", "Gate scans answered, by verdict", ["verdict"])
        self.latency = m.histogram(
            "scan_duration_seconds",
            "Time from request to reply",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )

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
        try:
            return await self._record(scan)
        except IntegrityError:  # the same scan_id raced us from another instance
            async with self.svc.store.sessions() as s:
                reply = await self._previous(s, scan)
            if reply is None:
                raise
            return reply

    async def _previous(self, s, scan: ScanRequest) -> dict[str, Any] | None:
        p = T.passages.c
        return await s.scalar(
            sa.select(p.reply).where(p.gate_id == scan.gate_id, p.scan_id == scan.scan_id)
        )

    async def _record(self, scan: ScanRequest) -> dict[str, Any]:
        store = self.svc.store
        async with store.transaction() as s:
            previous = await self._previous(s, scan)
            if previous is not None:  # the device retried: same verdict, recorded once
                return previous
            who = await self._situation(s, scan)
            verdict = decide(scan, who, self.policy)
            decided_at = utcnow()
            reply = {
                "scan_id": scan.scan_id,
                "verdict": verdict.verdict,
                "reasons": list(verdict.reasons),
                "message": verdict.message(),
                "decided_at": decided_at.isoformat(),
            }
            await s.execute(
                sa.insert(T.passages).values(
                    gate_id=scan.gate_id,
                    scan_id=scan.scan_id,
                    compound_id=who.compound_id,
                    person_id=scan.person_id,
                    direction=scan.direction,
                    verdict=verdict.verdict,
                    reasons=list(verdict.reasons),
                    temperature_c=scan.temperature_c,
                    scanned_at=scan.scanned_at,
                    decided_at=decided_at,
                    reply=reply,
                )
            )
            events = [
                PassageRecorded(
                    scan_id=scan.scan_id,
                    gate_id=scan.gate_id,
                    compound_id=who.compound_id,
                    person_id=scan.person_id,
                    direction=scan.direction,
                    verdict=verdict.verdict,
                    reasons=list(verdict.reasons),
                    temperature_c=scan.temperature_c,
                    scanned_at=scan.scanned_at,
                    decided_at=decided_at,
                )
            ]
            if "fever" in verdict.reasons:
                assert scan.temperature_c is not None
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
            for ev in events:
                env = Envelope.wrap(
                    ev,
                    source=NAME,
                    event_id=stable_id(ev.TYPE, scan.gate_id, scan.scan_id),
                    correlation_id=stable_id("scan", scan.gate_id, scan.scan_id),
                )
                await outbox.add(s, store, env, ev.subject())
        self.svc.relay.wake()
        return reply

    async def _situation(self, s, scan: ScanRequest) -> Situation:
        gate = (
            await s.execute(
                sa.select(T.gates.c.compound_id, T.compounds.c.control_level)
                .select_from(
                    T.gates.outerjoin(
                        T.compounds, T.compounds.c.compound_id == T.gates.c.compound_id
                    )
                )
                .where(T.gates.c.gate_id == scan.gate_id)
            )
        ).first()
        if gate is None:
            raise InvalidScan([{"field": "gate_id", "error": f"unknown gate {scan.gate_id!r}"}])
        is_resident = bool(
            await s.scalar(
                sa.select(sa.literal(1)).where(T.residents.c.resident_id == scan.person_id)
            )
        )
        return Situation(
            compound_id=gate.compound_id,
            control_level=ControlLevel(gate.control_level or ControlLevel.PRECAUTION),
            is_resident=is_resident,
        )
