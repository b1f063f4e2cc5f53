"""Gate heartbeats (the edge contract §2, core NATS publishes): recorded in memory (our
clock, not the device's); a gate that was offline is reported back. A bad heartbeat is a
dead letter with the reason, within its gate's bound (``domain/badinput.py``); beyond it,
only counted, and the gate's duty staff are alerted once."""

from __future__ import annotations

from typing import Any

from faststream import Context
from faststream.nats import NatsRouter
from faststream.nats.annotations import NatsMessage
from prometheus_client import Counter

from gridcare.contracts.edge import GATE_HEARTBEAT_ALL, Heartbeat
from gridcare.shared.consumers import RUNTIME
from gridcare.shared.envelope import utcnow

from .. import handlers
from ..domain.health import BadHeartbeat, GateHealth, parse_heartbeat
from ..domain.state import GateState
from . import DEVICES, HEALTH, STATE
from .devices import Devices


def router(dirty: set[str], counted: Counter) -> NatsRouter:
    """``dirty``: the gates whose last-seen time changed since it was last saved;
    ``counted``: the heartbeats metric, by outcome."""
    r = NatsRouter()

    @r.subscriber(
        GATE_HEARTBEAT_ALL,
        title="checkpoint:gate.*.heartbeat",
        description="Heartbeats from gates; a gate silent for 3 intervals is offline.",
    )
    async def heartbeat(
        body: Heartbeat | Any,
        msg: NatsMessage,
        rt: Any = Context(RUNTIME),
        state: GateState = Context(STATE),
        health: GateHealth = Context(HEALTH),
        devices: Devices = Context(DEVICES),
    ) -> None:
        raw = msg.raw_message
        parts = raw.subject.split(".")
        subject_gate = parts[1] if len(parts) == 3 else ""
        try:
            hb = parse_heartbeat(raw.data, subject_gate, state.gate_compound)
        except BadHeartbeat as exc:
            counted.labels("invalid").inc()
            gate = devices.device(subject_gate, state.gate_compound)
            outcome = devices.bad("heartbeat", gate)
            if outcome.record:
                await rt.dead_letters.record(
                    consumer="checkpoint-heartbeats",
                    subject=raw.subject,
                    payload=bytes(raw.data),
                    reason=str(exc),
                )
            if outcome.alert:
                await handlers.gate_sends_bad_input(
                    gate, "heartbeat", str(exc), devices.bound.per_minute, rt.unit_of_work(), state
                )
            return
        counted.labels("ok").inc()
        dirty.add(hb.gate_id)
        if health.seen(hb.gate_id, utcnow(), hb.firmware):
            await handlers.gate_came_back(hb.gate_id, health, rt.unit_of_work(), state)

    return r
