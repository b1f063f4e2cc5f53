"""The one place that wires the checkpoint together."""

from __future__ import annotations

import gc

from faststream import FastStream

from gridcare.contracts import STREAMS, checkpoint, edge, notify
from gridcare.shared.envelope import utcnow
from gridcare.shared.lease import Lease
from gridcare.shared.service import Service

from . import handlers
from .adapters import sql, tables
from .config import CheckpointSettings
from .domain.health import GateHealth
from .domain.scan import ScanRequest
from .domain.state import GateState
from .entrypoints import DEVICES, HEALTH, STATE, api, events, heartbeats
from .entrypoints.devices import Devices
from .entrypoints.scans import ScanResponder
from .unit_of_work import SqlUnitOfWork

NAME = "checkpoint"
HTTP_PORT = 9101


def build(settings: CheckpointSettings | None = None) -> Service:
    settings = settings or CheckpointSettings()
    svc = Service(
        NAME,
        metadata=tables.metadata,
        migrations=tables.MIGRATIONS,
        streams=STREAMS,
        unit_of_work=SqlUnitOfWork,
        http_port=HTTP_PORT,
        settings=settings,
        description="Gate verdicts, the entry/exit register, permits, levels, door sensors, "
        "gate health. The gate scan itself (gate.*.scan, request/reply, the edge contract "
        "§1) is answered by nats-py directly; see entrypoints/scans.py.",
    )
    state = GateState()
    health = GateHealth(started_at=utcnow())
    dirty: set[str] = set()  # gates whose last heartbeat is not saved yet
    devices = Devices(
        svc.metrics, settings.bad_input_per_minute, settings.bad_input_alert_interval_s
    )
    scans = ScanResponder(svc, state, devices)
    lease = Lease(svc.store, NAME, settings.lease_ttl_s, on_lost=svc.request_stop)
    m = svc.metrics
    heartbeats_total = m.counter("heartbeats_total", "Gate heartbeats, by outcome", ["outcome"])
    offline = m.gauge("gates_offline", "Gates silent for 3 heartbeat intervals")

    svc.provide(STATE, state)
    svc.provide(HEALTH, health)
    svc.provide(DEVICES, devices)
    svc.include(events.router(settings, state))
    svc.include(heartbeats.router(dirty, heartbeats_total))
    svc.include(api.router(NAME))
    for event, subject in (
        (checkpoint.FeverDetected, checkpoint.FEVER_DETECTED),
        (checkpoint.QuarantineBreachAttempted, checkpoint.QUARANTINE_BREACH),
        (checkpoint.PermitIssued, checkpoint.PERMIT_ISSUED),
        (checkpoint.PermitOverdue, checkpoint.PERMIT_OVERDUE),
        (checkpoint.OverrideRecorded, checkpoint.OVERRIDE_RECORDED),
        (checkpoint.ControlLevelSet, checkpoint.LEVEL_SET),
        (checkpoint.GateWentOffline, checkpoint.GATE_OFFLINE),
        (checkpoint.GateCameOnline, checkpoint.GATE_ONLINE),
        (notify.NotificationRequested, notify.NOTIFICATION_REQUESTED),
        (checkpoint.GateSendingBadInput, checkpoint.GATE_BAD_INPUT),
    ):
        svc.publishes(event, subject)

    @svc.on_start
    async def load() -> None:
        await lease.acquire()  # one checkpoint per store: refuses to start otherwise
        async with svc.store.sessions() as s:
            await sql.load_state(s, state)
        await scans.load_recent()
        await handlers.load_gate_health(health, svc.unit_of_work())
        # What was loaded lives as long as the process: keep it out of the collector's
        # full passes, which would otherwise stall the scan path for tens of ms.
        gc.freeze()

    async def save_heartbeats() -> None:
        saving = set(dirty)
        dirty.difference_update(saving)
        await handlers.save_gate_health(saving, health, svc.unit_of_work())

    async def watch_gates() -> None:
        await handlers.check_gates(health, svc.unit_of_work(), state)
        await save_heartbeats()
        offline.set(sum(1 for g in state.gate_compound if health.online.get(g) is False))

    async def overdue() -> None:
        await handlers.alert_overdue(svc.unit_of_work(), state)

    async def retention() -> None:
        await handlers.purge_register(settings.register_retention_days, svc.unit_of_work(), state)

    svc.every(settings.gate_check_interval_s, watch_gates)
    svc.housekeeping(overdue)
    svc.housekeeping(retention)
    svc.on_ready(scans.subscribe)
    svc.on_stop(scans.drain)  # requests already taken are written and answered
    svc.on_stop(save_heartbeats)
    svc.on_closed(lease.release)
    # for tests and tools in the same process
    svc.components.update(
        state=state,
        scans=scans,
        health=health,
        lease=lease,
        watch_gates=watch_gates,
        devices=devices,
    )
    return svc


def asyncapi() -> FastStream:
    """The service as ``faststream docs gen --factory`` reads it (nothing is started), with
    the gate scan documented: it is answered by nats-py (``entrypoints/scans.py``), so it
    is declared here, on a broker that never starts."""
    app = build(CheckpointSettings.for_documents()).app
    scans_doc = app.broker.subscriber(  # type: ignore[union-attr]
        edge.GATE_SCAN_ALL,
        title="checkpoint:gate.*.scan",
        description="A gate scan (the edge contract §1), request/reply: the reply is the "
        "verdict, or {error: {code: invalid_scan | unavailable, detail}}.",
    )

    @scans_doc
    async def gate_scan(scan: ScanRequest) -> None:  # pragma: no cover - never called
        """The schema of a scan request, for the document (the broker never starts)."""

    return app
