"""The streams the checkpoint consumes (durable consumers under the reliable policy)."""

from __future__ import annotations

from typing import Any

from faststream import Context, Depends
from faststream.nats.annotations import NatsMessage

from gridcare.contracts import edge, refdata, screening
from gridcare.contracts.edge import DoorOpened
from gridcare.contracts.refdata import CommunityPolicy
from gridcare.contracts.screening import CompoundLevelChanged, PersonStatusChanged
from gridcare.shared.consumers import ConsumerRouter, device_uow
from gridcare.shared.settings import Settings

from .. import handlers
from ..domain.state import GateState
from ..unit_of_work import CheckpointUnitOfWork
from . import STATE


def router(settings: Settings, state: GateState) -> ConsumerRouter:
    """``state``: what the gate path knows, brought up to date after each commit."""
    r = ConsumerRouter(settings)

    async def reference_data(entity: Any, uow: CheckpointUnitOfWork) -> None:
        if isinstance(entity, CommunityPolicy):
            await handlers.policy_set(entity, uow, state)
        else:
            await handlers.reference_data_changed(entity, uow, state)

    async def decision(ev: Any, uow: CheckpointUnitOfWork) -> None:
        if isinstance(ev, PersonStatusChanged):
            await handlers.person_status_changed(ev, uow, state)
        else:
            await handlers.compound_level_changed(ev, uow, state)

    r.projection(
        refdata.ALL,
        durable="checkpoint-refdata",
        stream=refdata.STREAM,
        types=refdata.TYPES,
        handle=reference_data,
        description="Gates, compounds, residents, communities, and each community's policy.",
    )
    # Screening's decisions take effect at the gates at once, in order: one at a time.
    r.projection(
        screening.DECISIONS_ALL,
        durable="checkpoint-decisions",
        stream=screening.STREAM,
        types={e.TYPE: e for e in (PersonStatusChanged, CompoundLevelChanged)},
        handle=decision,
        workers=1,
        description="Screening's holds on people and its compound levels, enforced at once.",
    )

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
