"""The streams dispatch consumes (durable consumers under the reliable policy)."""

from __future__ import annotations

from faststream import Depends

from gridcare.contracts import checkpoint, refdata, screening
from gridcare.contracts.checkpoint import PermitOverdue, QuarantineBreachAttempted
from gridcare.contracts.screening import CaseOpened, DoorVisitRequested, PersonStatusChanged
from gridcare.shared.consumers import ConsumerRouter, message_uow
from gridcare.shared.envelope import Envelope
from gridcare.shared.settings import Settings

from .. import handlers
from ..unit_of_work import DispatchUnitOfWork


def router(settings: Settings) -> ConsumerRouter:
    r = ConsumerRouter(settings)

    r.projection(
        refdata.ALL,
        durable="dispatch-refdata",
        stream=refdata.STREAM,
        types=refdata.TYPES,
        handle=handlers.reference_data_changed,
        description="Who the grid worker of each household is, and the community's clock.",
    )

    @r.consumer(
        screening.CASE_OPENED.format(kind="*"),
        durable="dispatch-cases",
        stream=screening.STREAM,
        description="A new fever case: a follow-up task for the grid worker.",
    )
    async def case_opened(
        env: Envelope[CaseOpened], uow: DispatchUnitOfWork = Depends(message_uow)
    ) -> None:
        await handlers.case_opened(env.data, uow)

    @r.consumer(
        screening.DOOR_VISIT_REQUESTED.format(grid_id="*"),
        durable="dispatch-visits",
        stream=screening.STREAM,
        description="A resident not heard from: a door-visit task (screening tells the worker).",
    )
    async def door_visit_requested(
        env: Envelope[DoorVisitRequested], uow: DispatchUnitOfWork = Depends(message_uow)
    ) -> None:
        await handlers.door_visit_requested(env.data, uow)

    @r.consumer(
        screening.PERSON_STATUS_CHANGED.format(person_id="*"),
        durable="dispatch-statuses",
        stream=screening.STREAM,
        description="Screening's decisions: quarantine support for a household held at home, "
        "a transfer for a confirmed case.",
    )
    async def person_status_changed(
        env: Envelope[PersonStatusChanged], uow: DispatchUnitOfWork = Depends(message_uow)
    ) -> None:
        await handlers.person_status_changed(env.data, uow)

    # Precise filters: the CHECKPOINT stream carries more than dispatch takes.
    @r.consumer(
        checkpoint.QUARANTINE_BREACH.format(compound_id="*"),
        durable="dispatch-breaches",
        stream=checkpoint.STREAM,
        description="A held person at the gate, or a quarantined door: an urgent task.",
    )
    async def quarantine_breach(
        env: Envelope[QuarantineBreachAttempted], uow: DispatchUnitOfWork = Depends(message_uow)
    ) -> None:
        await handlers.quarantine_breach(env.data, uow)

    @r.consumer(
        checkpoint.PERMIT_OVERDUE.format(compound_id="*"),
        durable="dispatch-overdue",
        stream=checkpoint.STREAM,
        description="A resident not back from an outing permit: a task for the worker.",
    )
    async def permit_overdue(
        env: Envelope[PermitOverdue], uow: DispatchUnitOfWork = Depends(message_uow)
    ) -> None:
        await handlers.permit_overdue(env.data, uow)

    return r
