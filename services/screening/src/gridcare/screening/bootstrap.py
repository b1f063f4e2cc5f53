"""The one place that wires screening together."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from faststream import FastStream

from gridcare.contracts import STREAMS
from gridcare.contracts.notify import NOTIFICATION_REQUESTED, NotificationRequested
from gridcare.contracts.screening import (
    CASE_OPENED,
    COMPOUND_LEVEL_CHANGED,
    DOOR_VISIT_REQUESTED,
    PERSON_STATUS_CHANGED,
    CaseOpened,
    CompoundLevelChanged,
    DoorVisitRequested,
    PersonStatusChanged,
)
from gridcare.shared.envelope import utcnow
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings

from .adapters import tables
from .adapters.register import REGISTER, NatsRegister
from .config import ScreeningSettings
from .entrypoints import CLOCK, api, events, questionnaires, residents
from .handlers import checkins, compounds, followup, missed
from .handlers.campaigns import door_calls_due
from .unit_of_work import SqlUnitOfWork

NAME = "screening"
HTTP_PORT = 9102
#: How often compounds are checked for 14 days without a new case (epidemic-free).
COMPOUND_TICK_S = 60.0


def build(settings: Settings | None = None, clock: Callable[[], datetime] = utcnow) -> Service:
    """Screening, wired. ``clock`` is what "now" is for its rules (a local day, a 14-day
    follow-up, a reminder's hour): tests move it instead of waiting days."""
    svc = Service(
        NAME,
        metadata=tables.metadata,
        migrations=tables.MIGRATIONS,
        streams=STREAMS,
        unit_of_work=SqlUnitOfWork,
        http_port=HTTP_PORT,
        settings=settings if settings is not None else ScreeningSettings(),
        description="The health registry: cases, health statuses (which hold a person at "
        "the gate).",
    )
    svc.provide(CLOCK, clock)
    svc.components.update(clock=clock)

    async def campaign_tick() -> None:  # test campaigns: door calls due, stale uploads
        await door_calls_due(svc.unit_of_work, now=clock())

    svc.every(60.0, campaign_tick)
    svc.components.update(campaign_tick=campaign_tick)

    svc.include(events.router(svc.settings))
    svc.include(api.router(NAME))
    svc.provide(REGISTER, NatsRegister(lambda: svc.nc))  # the checkpoint's, over NATS
    svc.publishes(CompoundLevelChanged, COMPOUND_LEVEL_CHANGED)  # sealed, epidemic-free

    async def compound_tick() -> None:
        await compounds.tick(svc.unit_of_work(), clock())

    tick_s = getattr(settings, "screening_compound_tick_s", COMPOUND_TICK_S)
    svc.every(tick_s, compound_tick)
    svc.components.update(compound_tick=compound_tick)
    svc.publishes(CaseOpened, CASE_OPENED)
    svc.publishes(PersonStatusChanged, PERSON_STATUS_CHANGED)
    svc.publishes(NotificationRequested, NOTIFICATION_REQUESTED)  # call-backs, reminders
    # check-ins (edge §4.1), door visits, reminders, follow-up (handlers/checkins.py)
    # resident.*.checkin: by nats-py, group commit (entrypoints/residents.py)
    cfg = settings if isinstance(settings, ScreeningSettings) else ScreeningSettings()
    checkin_edge = residents.CheckinEdge(svc, clock, linger_s=cfg.screening_checkin_linger_s)
    svc.on_ready(checkin_edge.subscribe)
    svc.on_stop(checkin_edge.drain)  # check-ins received are written and answered
    svc.components.update(checkin_edge=checkin_edge)
    svc.include(questionnaires.router())  # resident.*.questionnaire (edge §4.3)
    svc.publishes(DoorVisitRequested, DOOR_VISIT_REQUESTED)

    async def checkin_tick() -> dict[str, int]:
        now = clock()
        # a missed follow-up day first: its door visit stands for the 2-day rule's
        escalated = await missed.escalate(svc.unit_of_work, now, cfg.screening_reminder_batch)
        done = await checkins.remind(svc.unit_of_work, now, cfg.screening_reminder_batch)
        done["follow_up_missed"] = escalated
        done["released"] = await followup.release_due(svc.unit_of_work(), now)
        return done

    svc.every(cfg.screening_checkin_tick_s, checkin_tick)
    svc.components.update(checkin_tick=checkin_tick)
    return svc


def asyncapi() -> FastStream:
    """The service as ``faststream docs gen --factory`` reads it (nothing is started), with
    the check-in documented: it is answered by nats-py (``residents.CheckinEdge``), so its
    FastStream subscriber is declared here, on a broker that never starts."""
    app = build(Settings.for_documents()).app
    app.broker.include_router(residents.router())  # type: ignore[union-attr]
    return app
