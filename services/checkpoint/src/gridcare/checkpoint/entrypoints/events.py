"""The streams the checkpoint consumes (durable consumers under the reliable policy)."""

from __future__ import annotations

from typing import Any

from faststream import Context, Depends
from faststream.nats.annotations import NatsMessage

from gridcare.contracts import edge, refdata, screening
from gridcare.contracts.edge import DoorOpened
from gridcare.contracts.refdata import CommunityPolicy
from gridcare.contracts.screening import CompoundLevelChanged, PersonStatusChanged
from gridcare.shared.consumers import ConsumerRouter, device_uow, message_uow
from gridcare.shared.envelope import Envelope
from gridcare.shared.settings import Settings

from .. import handlers
from ..domain.state import GateState
from ..unit_of_work import CheckpointUnitOfWork
from . import STATE


def router(settings: Settings) -> ConsumerRouter:
    r = ConsumerRouter(settings)

    @r.consumer(
        refdata.ALL,
        durable="checkpoint-refdata",
        stream=refdata.STREAM,
        description="Gates, compounds, residents, communities, and each community's policy.",
    )
    async def reference_data(
        env: Envelope[dict[str, Any]],
        uow: CheckpointUnitOfWork = Depends(message_uow),
        state: GateState = Context(STATE),
    ) -> None:
        if env.type == CommunityPolicy.TYPE:
            await handlers.policy_set(CommunityPolicy.model_validate(env.data), uow, state)
        elif (kind := refdata.TYPES.get(env.type)) is not None:
            await handlers.reference_data_changed(kind.model_validate(env.data), uow, state)

    # Screening's decisions take effect at the gates at once, in order: one at a time.
    @r.consumer(
        screening.DECISIONS_ALL,
        durable="checkpoint-decisions",
        stream=screening.STREAM,
        workers=1,
        description="Screening's holds on people and its compound levels, enforced at once.",
    )
    async def decisions(
        env: Envelope[dict[str, Any]],
        uow: CheckpointUnitOfWork = Depends(message_uow),
        state: GateState = Context(STATE),
    ) -> None:
        if env.type == PersonStatusChanged.TYPE:
            ev = PersonStatusChanged.model_validate(env.data)
            await handlers.person_status_changed(ev, uow, state)
        elif env.type == CompoundLevelChanged.TYPE:
            level = CompoundLevelChanged.model_validate(env.data)
            await handlers.compound_level_changed(level, uow, state)

    @r.consumer(
        edge.DOOR_OPENED_ALL,
        durable="checkpoint-doors",
        stream=edge.STREAM,
        workers=1,
        description="Door sensors (§3): a quarantined household's door alerts its worker.",
    )
    async def door_opened(
        ev: DoorOpened,
        msg: NatsMessage,
        uow: CheckpointUnitOfWork = Depends(device_uow("event_id")),
        state: GateState = Context(STATE),
    ) -> None:
        subject_household = msg.raw_message.subject.split(".")[1]
        await handlers.door_opened(ev, subject_household, uow, state)

    return r
