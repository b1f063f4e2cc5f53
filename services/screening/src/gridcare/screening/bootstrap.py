"""The one place that wires screening together."""

from __future__ import annotations

from faststream import FastStream

from gridcare.contracts import STREAMS
from gridcare.contracts.screening import (
    CASE_OPENED,
    PERSON_STATUS_CHANGED,
    CaseOpened,
    PersonStatusChanged,
)
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings

from .adapters import tables
from .entrypoints import api, events
from .unit_of_work import SqlUnitOfWork

NAME = "screening"
HTTP_PORT = 9102


def build(settings: Settings | None = None) -> Service:
    svc = Service(
        NAME,
        metadata=tables.metadata,
        migrations=tables.MIGRATIONS,
        streams=STREAMS,
        unit_of_work=SqlUnitOfWork,
        http_port=HTTP_PORT,
        settings=settings,
        description="The health registry: cases, health statuses (which hold a person at "
        "the gate).",
    )
    svc.include(events.router(svc.settings))
    svc.include(api.router(NAME))
    svc.publishes(CaseOpened, CASE_OPENED)
    svc.publishes(PersonStatusChanged, PERSON_STATUS_CHANGED)
    return svc


def asyncapi() -> FastStream:
    """The service as ``faststream docs gen --factory`` reads it (nothing is started)."""
    return build(Settings.for_documents()).app
