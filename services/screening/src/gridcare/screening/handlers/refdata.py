"""Reference data: screening keeps its own copy of the kinds it needs."""

from __future__ import annotations

from typing import Any

from gridcare.shared import projection

from ..unit_of_work import ScreeningUnitOfWork


async def reference_data_changed(entity: Any, uow: ScreeningUnitOfWork) -> None:
    """Keep screening's copy of a row of reference data (the kinds it needs)."""
    await projection.keep(entity, uow)
