"""The checkpoint service, wired: what it consumes, serves and runs.

- ``scans.py``        gate scans (CONTRACT.md §1): verdicts from memory, register by group commit
- ``feed.py``         ``PassagesRecorded``: the register's passages, announced in order
- ``health.py``       gate heartbeats (§2) and offline reports
- ``api.py``          permits, overrides, who is out, contact tracing (request/reply)
- ``housekeeping.py`` overdue permits, retention
- here                reference data, policies, control levels, screening's decisions, door
                      sensors (§3): each kept in the store and in ``GateState``
"""

from __future__ import annotations

import gc
from datetime import timedelta

import sqlalchemy as sa

from gridcare.shared import subjects
from gridcare.shared.consumer import HandlerContext, Permanent
from gridcare.shared.envelope import utcnow
from gridcare.shared.events import (
    Building,
    CommunityPolicy,
    Compound,
    CompoundLevelChanged,
    ControlLevel,
    ControlLevelSet,
    Gate,
    Household,
    PersonStatusChanged,
    QuarantineBreachAttempted,
    Resident,
)
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings
from gridcare.shared.store import as_utc, upsert_row

from . import tables as T
from .api import Api
from .domain import DoorOpened
from .feed import PassageFeed
from .health import GateHealth
from .housekeeping import alert_overdue, purge_register
from .scans import NAME, ScanResponder
from .state import GateState


def build(settings: Settings | None = None) -> Service:
    svc = Service(NAME, T.metadata, T.MIGRATIONS, settings)
    state = GateState()
    feed = PassageFeed(svc, batch=svc.settings.outbox_batch, linger_s=svc.settings.outbox_linger_s)
    scans = ScanResponder(svc, state, on_commit=feed.committed)
    health = GateHealth(svc, state)
    api = Api(svc, state)

    for model, table in (
        (Gate, T.gates),
        (Compound, T.compounds),
        (Building, T.buildings),
        (Household, T.households),
        (Resident, T.residents),
    ):
        svc.project(model, table, after=state.apply)
    refdata = {
        "durable": f"{NAME}-refdata",
        "subject": subjects.REFDATA_ALL,
        "stream": subjects.REFDATA,
    }
    # Screening's decisions take effect at the gates at once: fetched one at a time.
    decisions = {
        "durable": f"{NAME}-decisions",
        "subject": "screening.>",
        "stream": subjects.SCREENING,
        "batch": 1,
    }

    @svc.handles(CommunityPolicy, **refdata)
    async def on_policy(ctx: HandlerContext, p: CommunityPolicy) -> None:
        await upsert_row(
            ctx.session,
            T.policies,
            {"community_id": p.community_id, "policy": p.model_dump(mode="json")},
        )
        ctx.after_commit(lambda: state.set_policy(p))

    async def set_level(
        ctx: HandlerContext, compound: str, level: ControlLevel, by: str, reason: str, at
    ) -> None:
        c = T.compound_controls.c
        current = await ctx.session.scalar(sa.select(c.set_at).where(c.compound_id == compound))
        if current is not None and as_utc(current) >= at:
            return  # an older decision arriving late
        await upsert_row(
            ctx.session,
            T.compound_controls,
            {
                "compound_id": compound,
                "level": level.value,
                "set_by": by,
                "reason": reason,
                "set_at": at,
            },
        )
        ctx.after_commit(lambda: state.set_control(compound, level, at))

    @svc.handles(ControlLevelSet, **refdata)
    async def on_level_set(ctx: HandlerContext, ev: ControlLevelSet) -> None:
        await set_level(ctx, ev.compound_id, ev.level, ev.set_by, ev.reason, ev.set_at)

    @svc.handles(CompoundLevelChanged, **decisions)
    async def on_level_changed(ctx: HandlerContext, ev: CompoundLevelChanged) -> None:
        await set_level(ctx, ev.compound_id, ev.level, "screening", ev.reason, ev.decided_at)

    @svc.handles(PersonStatusChanged, **decisions)
    async def on_status(ctx: HandlerContext, ev: PersonStatusChanged) -> None:
        c = T.person_status.c
        current = await ctx.session.scalar(
            sa.select(c.decided_at).where(c.person_id == ev.person_id)
        )
        if current is not None and as_utc(current) >= ev.decided_at:
            return
        await upsert_row(
            ctx.session,
            T.person_status,
            {
                "person_id": ev.person_id,
                "status": ev.status,
                "household_id": ev.household_id,
                "until": ev.until,
                "decided_at": ev.decided_at,
            },
        )
        ctx.after_commit(
            lambda: state.set_status(ev.person_id, ev.status, ev.household_id, ev.decided_at)
        )

    @svc.handles(
        DoorOpened,
        durable=f"{NAME}-doors",
        subject="door.*.opened",
        stream=subjects.EDGE,
        batch=1,
        edge_id="event_id",
    )
    async def on_door(ctx: HandlerContext, ev: DoorOpened) -> None:
        """A quarantined household's door alerts its grid worker; any other is recorded."""
        if ctx.subject.split(".")[1] != ev.household_id:
            raise Permanent(f"household_id {ev.household_id!r} does not match the subject")
        holders = [(pid, h) for pid, h in state.held.items() if h[1] == ev.household_id]
        quarantined = ev.household_id in state.quarantined_households
        await ctx.session.execute(
            sa.insert(T.door_events).values(
                event_id=ev.event_id,
                household_id=ev.household_id,
                opened_at=ev.opened_at,
                quarantined=quarantined,
            )
        )
        if quarantined:
            building = state.household_building.get(ev.household_id, "")
            await ctx.emit(
                QuarantineBreachAttempted(
                    via="door",
                    compound_id=state.building_compound.get(building, ""),
                    person_id=None,
                    household_id=ev.household_id,
                    status=holders[0][1][0] if holders else "home_quarantine",
                    ref=f"door:{ev.event_id}",
                    at=ev.opened_at,
                )
            )

    @svc.on_start
    async def load() -> None:
        async with svc.store.sessions() as s:
            await state.load(s)
        await scans.load_recent()
        await health.load()
        # What was loaded lives as long as the process: keep it out of the collector's
        # full passes, which would otherwise stall the scan path for tens of ms.
        gc.freeze()

    @svc.housekeeping
    async def overdue() -> None:
        await alert_overdue(svc, state)
        state.forget_permits_before(utcnow() - timedelta(days=1))

    @svc.housekeeping
    async def retention() -> None:
        state.forget_passages_before(await purge_register(svc))

    svc.on_ready(feed.start)
    svc.on_ready(scans.subscribe)
    svc.on_ready(health.start)
    svc.on_ready(api.start)
    svc.on_stop(api.stop)
    svc.on_stop(scans.drain)
    svc.on_stop(feed.stop)  # after the last scans are written
    svc.on_stop(health.stop)
    # for tests and tools in the same process
    svc.components = {
        "state": state,
        "scans": scans,
        "health": health,
        "api": api,
        "register": scans.register,
        "feed": feed,
    }
    return svc
