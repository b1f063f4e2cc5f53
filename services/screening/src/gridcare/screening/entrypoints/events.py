"""The streams screening consumes (durable consumers under the reliable policy)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from faststream import Context, Depends

from gridcare.contracts import checkpoint, refdata, screening
from gridcare.contracts.checkpoint import FeverDetected
from gridcare.contracts.screening import PersonStatusChanged
from gridcare.shared.consumers import ConsumerRouter, short_message_uow
from gridcare.shared.envelope import Envelope
from gridcare.shared.settings import Settings

from ..adapters.register import REGISTER, Register
from ..handlers import cases, compounds, contacts, followup
from ..handlers import refdata as reference
from ..unit_of_work import ScreeningUnitOfWork
from . import CLOCK


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
        env: Envelope[FeverDetected], uow: ScreeningUnitOfWork = Depends(short_message_uow)
    ) -> None:
        await cases.fever_detected(env.data, uow)

    @r.consumer(
        screening.PERSON_STATUS_CHANGED.format(person_id="*"),
        durable="screening-contacts",
        stream=screening.STREAM,
        description="A person confirmed: their close-contact candidates proposed (household, "
        "the same gate within the policy's window, from the checkpoint's register).",
    )
    async def propose_contacts(
        env: Envelope[PersonStatusChanged],
        uow: ScreeningUnitOfWork = Depends(short_message_uow),
        checkpoint_register: Register = Context(REGISTER),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> None:
        await contacts.person_status_changed(env.data, uow, checkpoint_register, clock())

    @r.consumer(
        screening.PERSON_STATUS_CHANGED.format(person_id="*"),
        durable="screening-compounds",
        stream=screening.STREAM,
        description="A person confirmed: a new case in their compound, sealed by policy.",
    )
    async def compound_case(
        env: Envelope[PersonStatusChanged],
        uow: ScreeningUnitOfWork = Depends(short_message_uow),
        clock: Callable[[], datetime] = Context(CLOCK),
    ) -> None:
        await compounds.person_status_changed(env.data, uow, clock())

    @r.consumer(
        screening.PERSON_STATUS_CHANGED.format(person_id="*"),
        durable="screening-followup",
        stream=screening.STREAM,
        description="A person into a followed status (the four categories, home quarantine, "
        "symptoms): their follow-up opens or is extended; staff ending it close it.",
    )
    async def follow_up(
        env: Envelope[PersonStatusChanged], uow: ScreeningUnitOfWork = Depends(short_message_uow)
    ) -> None:
        await followup.status_changed(env.data, uow)

    return r
