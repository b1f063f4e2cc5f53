"""The one place that wires dispatch together."""

from __future__ import annotations

from faststream import FastStream

from gridcare.contracts import STREAMS
from gridcare.contracts.dispatch import TASK_CLOSED, TASK_CREATED, TaskClosed, TaskCreated
from gridcare.contracts.notify import NOTIFICATION_REQUESTED, NotificationRequested
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings

from .adapters import tables
from .entrypoints import api, events
from .unit_of_work import SqlUnitOfWork

NAME = "dispatch"
HTTP_PORT = 9103


def build(settings: Settings | None = None) -> Service:
    svc = Service(
        NAME,
        metadata=tables.metadata,
        migrations=tables.MIGRATIONS,
        streams=STREAMS,
        unit_of_work=SqlUnitOfWork,
        http_port=HTTP_PORT,
        settings=settings,
        description="Field tasks for grid workers: fever follow-ups, quarantine breaches, "
        "overdue returns, door visits, quarantine support, transfers.",
    )
    svc.include(events.router(svc.settings))
    svc.include(api.router(NAME))
    svc.publishes(TaskCreated, TASK_CREATED)
    svc.publishes(TaskClosed, TASK_CLOSED)
    svc.publishes(NotificationRequested, NOTIFICATION_REQUESTED)
    return svc


def asyncapi() -> FastStream:
    """The service as ``faststream docs gen --factory`` reads it (nothing is started)."""
    return build(Settings.for_documents()).app
