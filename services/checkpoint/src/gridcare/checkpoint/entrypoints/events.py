"""The streams the checkpoint consumes (durable consumers under the reliable policy)."""

from __future__ import annotations

from typing import Any

from faststream import Context, Depends
from faststream.nats.annotations import NatsMessage

from gridcare.contracts import edge, refdata, screening
from gridcare.contracts.edge import DoorOpened
from gridcare.contracts.refdata import CommunityPolicy
from gridcare.contracts.screening import CompoundLevelChanged, PersonStatusChanged
from gridcare.shared.consumers import RUNTIME, ConsumerRouter, device_uow
from gridcare.shared.errors import Permanent
from gridcare.shared.settings import Settings
from gridcare.shared.uow import AlreadyHandled

from .. import handlers
from ..domain.holds import BadDoorEvent, parse_door
from ..domain.state import GateState
from ..unit_of_work import CheckpointUnitOfWork
from . import DEVICES, STATE
from .devices import Devices


def router(settings: Settings, state: GateState) -> ConsumerRouter:
    """``state``: what the gate path knows, brought up to date after each commit."""
    r = ConsumerRouter(settings)

    async def reference_data(entity: Any, uow: CheckpointUnitOfWork) -> None:
        if isinstance(entity, CommunityPolicy):
            await handlers.policy_set(entity, uow, state)
        else:
            await handlers.reference_data_changed(entity, uow, state)

    async def decision(ev: Any, uow: CheckpointUnitOfWork) -> None:
        # the gates wait on it: before the register's ordinary commits, and on SQLite on
        # the loop's thread (one short transaction, no thread hop per statement)
        uow.urgent = uow.blocking = True
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
        body: DoorOpened | Any,  # the schema, for the documents: validated below, bounded
        msg: NatsMessage,
        uow: CheckpointUnitOfWork = Depends(device_uow("event_id")),
        state: GateState = Context(STATE),
        devices: Devices = Context(DEVICES),
        rt: Any = Context(RUNTIME),
    ) -> None:
        raw = msg.raw_message
        subject_household = raw.subject.split(".")[1]
        household = devices.device(subject_household, state.household_building)
        try:
            ev = parse_door(raw.data, subject_household)
        except BadDoorEvent as exc:
            # a dead letter within the sensor's bound; beyond it only counted (and acked)
            if devices.bad("door", household).record:
                raise Permanent(str(exc)) from None
            return
        try:
            await handlers.door_opened(ev, subject_household, uow, state)
        except AlreadyHandled:  # a repeat: the same event, or its id reused for another?
            if await handlers.door_repeated(ev, rt.unit_of_work()):
                what = f"household {subject_household}: door event_id {ev.event_id!r}"
                devices.conflict("door", household, what)
            raise

    return r
