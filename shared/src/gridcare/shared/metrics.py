"""Prometheus metrics of one service: ``gridcare_<service>_<what>_<unit>``.

Each service process has its own registry (so tests can run several in one process); the
common messaging metrics are created here, service-specific ones with :meth:`Metrics.counter`
and friends.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.messages = self.counter(
            "messages_total",
            "Stream messages handled, by consumer and outcome",
            ["consumer", "outcome"],
        )
        self.handler_seconds = self.histogram(
            "handler_duration_seconds", "Time to handle one stream message", ["consumer"]
        )
        self.dead_letters = self.counter(
            "dead_letters_total", "Messages given up on and recorded as dead letters", ["consumer"]
        )
        self.outbox_pending = self.gauge("outbox_pending_events", "Outbox rows not yet published")
        self.outbox_published = self.counter(
            "outbox_published_total", "Outbox rows published and acknowledged by the stream"
        )
        self.outbox_publish_errors = self.counter(
            "outbox_publish_errors_total", "Outbox publish attempts that failed"
        )
        self.outbox_parked = self.counter(
            "outbox_parked_total", "Outbox rows set aside as unpublishable (listed, replayable)"
        )
        self.api_requests = self.counter(
            "api_requests_total", "API requests answered, by subject and outcome", ["op", "outcome"]
        )
        self.api_seconds = self.histogram(
            "api_request_duration_seconds", "Time to answer one API request", ["op"]
        )

    def _name(self, what: str) -> str:
        return f"gridcare_{self.service}_{what}"

    def counter(self, what: str, doc: str, labels: list[str] | None = None) -> Counter:
        return Counter(self._name(what), doc, labels or [], registry=self.registry)

    def gauge(self, what: str, doc: str, labels: list[str] | None = None) -> Gauge:
        return Gauge(self._name(what), doc, labels or [], registry=self.registry)

    def histogram(
        self, what: str, doc: str, labels: list[str] | None = None, buckets: tuple | None = None
    ) -> Histogram:
        kw = {"buckets": buckets} if buckets else {}
        return Histogram(self._name(what), doc, labels or [], registry=self.registry, **kw)
