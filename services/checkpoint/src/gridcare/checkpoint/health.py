"""Gate health (CONTRACT.md §2): heartbeats on ``gate.<gate_id>.heartbeat``.

A gate silent for 3 of its community's heartbeat intervals is reported offline
(``GateWentOffline``, metric ``gridcare_checkpoint_gates_offline``); its next heartbeat
reports it back (``GateCameOnline``). A malformed or unknown-gate heartbeat is recorded as a
dead letter with the reason. Last-seen times are kept in ``gate_health`` so a restart does
not forget a gate that was already silent.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gridcare.shared import outbox
from gridcare.shared.aio import stop_task
from gridcare.shared.consumer import record_dead_letter
from gridcare.shared.envelope import Envelope, stable_id, utcnow
from gridcare.shared.events import GateCameOnline, GateWentOffline, Timestamp, Token
from gridcare.shared.service import Service
from gridcare.shared.store import as_utc, upsert_row

from . import tables as T
from .state import GateState

log = logging.getLogger(__name__)
MISSED = 3  # intervals of silence before a gate is offline


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    gate_id: Token
    sent_at: Timestamp
    firmware: str = Field("", max_length=100)


class GateHealth:
    def __init__(self, svc: Service, state: GateState) -> None:
        self.svc = svc
        self.state = state
        self.last_seen: dict[str, datetime] = {}
        self.firmware: dict[str, str] = {}
        self.online: dict[str, bool] = {}
        self.started_at = utcnow()
        self._dirty: set[str] = set()
        self._sub = None
        self._task: asyncio.Task | None = None
        m = svc.metrics
        self.offline_gauge = m.gauge("gates_offline", "Gates silent for 3 heartbeat intervals")
        self.heartbeats = m.counter("heartbeats_total", "Gate heartbeats, by outcome", ["outcome"])

    async def load(self) -> None:
        async with self.svc.store.sessions() as s:
            for gate, seen, fw, online in await s.execute(
                sa.select(
                    T.gate_health.c.gate_id,
                    T.gate_health.c.last_seen_at,
                    T.gate_health.c.firmware,
                    T.gate_health.c.online,
                )
            ):
                if seen is not None:
                    self.last_seen[gate] = as_utc(seen)
                self.firmware[gate] = fw or ""
                self.online[gate] = online

    async def start(self) -> None:
        self._sub = await self.svc.nc.subscribe("gate.*.heartbeat", cb=self._on_msg)
        await self.svc.nc.flush()
        self._task = asyncio.create_task(self._watch(), name="gate-health")

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
        await stop_task(self._task)
        self._task = None
        try:
            await self._persist()
        except Exception:
            log.warning("gate health not saved on stop", exc_info=True)

    async def _on_msg(self, msg) -> None:
        parts = msg.subject.split(".")
        subject_gate = parts[1] if len(parts) == 3 else ""
        try:
            hb = Heartbeat.model_validate_json(msg.data)
            problem = None
            if hb.gate_id != subject_gate:
                problem = f"gate_id {hb.gate_id!r} does not match the subject's {subject_gate!r}"
            elif hb.gate_id not in self.state.gate_compound:
                problem = f"unknown gate {hb.gate_id!r}"
        except ValidationError as exc:
            problem = f"invalid heartbeat: {exc}"
        if problem:
            self.heartbeats.labels("invalid").inc()
            await self._dead_letter(msg, problem)
            return
        self.heartbeats.labels("ok").inc()
        self.last_seen[hb.gate_id] = utcnow()  # our clock, not the device's
        self.firmware[hb.gate_id] = hb.firmware
        self._dirty.add(hb.gate_id)
        if self.online.get(hb.gate_id) is False:
            await self._report(hb.gate_id, online=True)

    async def _dead_letter(self, msg, reason: str) -> None:
        try:
            await record_dead_letter(
                self.svc,
                consumer="checkpoint-heartbeats",
                subject=msg.subject,
                payload=msg.data,
                reason=reason,
            )
        except Exception:
            log.exception("could not record a bad heartbeat")

    def interval(self, gate: str) -> float:
        cp = self.state.community_policy_of(self.state.gate_compound.get(gate, ""))
        return cp.heartbeat_interval_s if cp else 30.0

    async def check(self) -> None:
        """Report every gate that has gone silent (and was not reported yet)."""
        now = utcnow()
        for gate in list(self.state.gate_compound):
            last = self.last_seen.get(gate, self.started_at)
            silent = (now - max(last, self.started_at)).total_seconds()
            if silent > MISSED * self.interval(gate) and self.online.get(gate, True):
                await self._report(gate, online=False, silent_s=silent)
        self.offline_gauge.set(
            sum(1 for g in self.state.gate_compound if self.online.get(g) is False)
        )

    async def _report(self, gate: str, online: bool, silent_s: float = 0.0) -> None:
        compound = self.state.gate_compound.get(gate, "")
        now = utcnow()
        if online:
            ev = GateCameOnline(gate_id=gate, compound_id=compound, at=now)
        else:
            ev = GateWentOffline(
                gate_id=gate,
                compound_id=compound,
                last_seen_at=self.last_seen.get(gate),
                silent_s=silent_s,
            )
        env = Envelope.wrap(
            ev, source="checkpoint", event_id=stable_id(ev.TYPE, gate, now.isoformat())
        )
        async with self.svc.store.transaction() as s:
            await upsert_row(
                s,
                T.gate_health,
                {
                    "gate_id": gate,
                    "last_seen_at": self.last_seen.get(gate),
                    "firmware": self.firmware.get(gate),
                    "online": online,
                },
            )
            await outbox.add(s, self.svc.store, env, ev.subject())
        self.online[gate] = online
        self.svc.relay.wake()
        log.warning("gate %s is %s", gate, "back online" if online else "offline")

    async def _persist(self) -> None:
        dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        async with self.svc.store.transaction() as s:
            for gate in dirty:
                await upsert_row(
                    s,
                    T.gate_health,
                    {
                        "gate_id": gate,
                        "last_seen_at": self.last_seen.get(gate),
                        "firmware": self.firmware.get(gate),
                        "online": self.online.get(gate, True),
                    },
                )

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.svc.settings.gate_check_interval_s)
            try:
                await self.check()
                await self._persist()
            except Exception:
                log.exception("gate health check failed")
