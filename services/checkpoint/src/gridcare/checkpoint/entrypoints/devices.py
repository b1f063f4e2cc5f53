"""What the entry points of devices share: the bound on each device's bad input and the
metrics of what devices send wrong (``domain/badinput.py`` is the rule): bad messages, and
ids reused for other content."""

from __future__ import annotations

import logging
from collections.abc import Container

from prometheus_client import Counter

from gridcare.shared.metrics import Metrics

from ..domain.badinput import BadInputBound, Outcome, device_of

log = logging.getLogger(__name__)


class Devices:
    """Per device (a known gate's or household's id, else ``unknown``): bad messages
    counted (``bad_input_total{kind, device, outcome}``), recorded at a bounded rate, and
    ids reused for other content counted (``id_conflicts_total{device, kind}``)."""

    def __init__(self, metrics: Metrics, per_minute: int, alert_every_s: float) -> None:
        self.bound = BadInputBound(per_minute, alert_every_s)
        self.bad_input: Counter = metrics.counter(
            "bad_input_total",
            "Bad messages from devices, by kind, device (a known gate or household, else "
            "unknown) and outcome: recorded (a dead letter), suppressed (over the device's "
            "bound: counted only), refused (an invalid scan, answered)",
            ["kind", "device", "outcome"],
        )
        self.id_conflicts: Counter = metrics.counter(
            "id_conflicts_total",
            "Messages whose idempotency key was seen before with other content (answered or "
            "acked as the first; the new content ignored), by device and kind (scan, door)",
            ["device", "kind"],
        )

    @staticmethod
    def device(name: str, known: Container[str]) -> str:
        return device_of(name, known)

    def bad(self, kind: str, device: str) -> Outcome:
        """A bad message of ``kind`` from ``device``: counted; whether to record it (a dead
        letter) and whether to alert its duty staff now."""
        outcome = self.bound.take(kind, device)
        self.bad_input.labels(kind, device, "recorded" if outcome.record else "suppressed").inc()
        return outcome

    def refused(self, kind: str, device: str) -> None:
        """A bad request answered as such (an invalid scan: the device is told, nothing is
        recorded): counted."""
        self.bad_input.labels(kind, device, "refused").inc()

    def conflict(self, kind: str, device: str, what: str) -> None:
        """``what`` (e.g. ``gate g1: scan_id 'g1-000123'``, never the content: it may carry
        a phone number) came again from ``device`` with other content than was recorded:
        counted; logged within the device's bound, so that a device whose ids started
        again from zero cannot flood the log either."""
        self.id_conflicts.labels(device, kind).inc()
        if self.bound.take(f"{kind}-conflict", device).record:
            log.warning(
                "%s was seen before with other content: answered as the first was, the new "
                "content ignored (an id reused?)",
                what,
            )
