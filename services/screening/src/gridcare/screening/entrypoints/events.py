"""The streams screening consumes (durable consumers under the reliable policy)."""

from __future__ import annotations

from faststream import Depends

from gridcare.contracts import checkpoint, refdata
from gridcare.contracts.checkpoint import FeverDetected
from gridcare.shared.consumers import ConsumerRouter, message_uow
from gridcare.shared.envelope import Envelope
from gridcare.shared.settings import Settings

from ..handlers import cases
from ..handlers import refdata as reference
from ..unit_of_work import ScreeningUnitOfWork


def router(settings: Settings) -> ConsumerRouter:
    r = ConsumerRouter(settings)

    r.projection(
        refdata.ALL,
        durable="screening-refdata",
        stream=refdata.STREAM,
        types=refdata.TYPES,
        handle=reference.reference_data_changed,
        description="Where residents live and their community's clock.",
    )

    @r.consumer(
        checkpoint.FEVER_DETECTED.format(gate_id="*"),
        durable="screening-fever",
        stream=checkpoint.STREAM,
        description="A fever at a gate opens (or feeds) the person's fever case.",
    )
    async def fever_detected(
        env: Envelope[FeverDetected], uow: ScreeningUnitOfWork = Depends(message_uow)
    ) -> None:
        await cases.fever_detected(env.data, uow)

    return r
