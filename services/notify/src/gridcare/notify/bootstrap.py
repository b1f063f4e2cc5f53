"""The one place that wires notify together."""

from __future__ import annotations

from faststream import FastStream

from gridcare.contracts import STREAMS
from gridcare.contracts.notify import NOTIFICATION_DELIVERED, NotificationDelivered
from gridcare.shared.service import Service
from gridcare.shared.settings import Settings

from .adapters import tables
from .adapters.chat import AppriseChat, Chat
from .entrypoints import api, events
from .unit_of_work import SqlUnitOfWork

NAME = "notify"
HTTP_PORT = 9104


def build(settings: Settings | None = None, chat: Chat | None = None) -> Service:
    svc = Service(
        NAME,
        metadata=tables.metadata,
        migrations=tables.MIGRATIONS,
        streams=STREAMS,
        unit_of_work=SqlUnitOfWork,
        http_port=HTTP_PORT,
        settings=settings,
        description="Delivery: tasks to grid workers' chats, gate alerts to duty chats.",
    )
    svc.provide(events.CHAT, chat or AppriseChat())
    svc.include(events.router(svc.settings))
    svc.include(api.router(NAME))
    svc.publishes(NotificationDelivered, NOTIFICATION_DELIVERED)
    return svc


def asyncapi() -> FastStream:
    """The service as ``faststream docs gen --factory`` reads it (nothing is started)."""
    return build(Settings.for_documents()).app
