"""Gate health (the edge contract §2): a gate silent for ``MISSED`` of its community's
heartbeat intervals is offline; its next heartbeat brings it back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from gridcare.contracts.edge import Heartbeat

from .badinput import describe

MISSED = 3  # intervals of silence before a gate is offline


class BadHeartbeat(Exception):
    pass


def parse_heartbeat(raw: bytes, subject_gate: str, known_gates: set[str] | dict) -> Heartbeat:
    """A heartbeat for a known gate, on its own subject; else :class:`BadHeartbeat`."""
    try:
        hb = Heartbeat.model_validate_json(raw)
    except ValidationError as exc:
        raise BadHeartbeat(f"invalid heartbeat: {describe(exc)}") from None
    if hb.gate_id != subject_gate:
        raise BadHeartbeat(f"gate_id {hb.gate_id!r} does not match the subject's {subject_gate!r}")
    if hb.gate_id not in known_gates:
        raise BadHeartbeat(f"unknown gate {hb.gate_id!r}")
    return hb


@dataclass
class GateHealth:
    """Last-seen times (our clock, not the device's), firmware, and who is reported
    offline. Loaded from the store at start, saved as it changes."""

    started_at: datetime
    last_seen: dict[str, datetime] = field(default_factory=dict)
    firmware: dict[str, str] = field(default_factory=dict)
    online: dict[str, bool] = field(default_factory=dict)

    def seen(self, gate: str, at: datetime, firmware: str) -> bool:
        """A heartbeat; whether the gate was reported offline (it is back now)."""
        self.last_seen[gate] = at
        self.firmware[gate] = firmware
        return self.online.get(gate) is False

    def silent_for(self, gate: str, now: datetime) -> float:
        last = max(self.last_seen.get(gate, self.started_at), self.started_at)
        return (now - last).total_seconds()

    def gone_silent(self, gate: str, now: datetime, interval_s: float) -> bool:
        """Silent for MISSED intervals and not reported yet."""
        return self.silent_for(gate, now) > MISSED * interval_s and self.online.get(gate, True)
