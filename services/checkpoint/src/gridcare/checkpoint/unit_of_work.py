"""The checkpoint's unit of work: the repositories a handler loads through, on the store
(:class:`SqlUnitOfWork`) or in memory (:class:`FakeUnitOfWork`, for handler tests).

The repositories' interface is the SQL one (``adapters/sql.py``); ``adapters/memory.py``
has the same methods over plain containers.
"""

from __future__ import annotations

from typing import Any

from gridcare.shared import uow
from gridcare.shared.projection import MemoryReferenceData, ReferenceCopy, SqlReferenceData

from .adapters import memory, sql


class CheckpointUnitOfWork(uow.UnitOfWork):
    places: ReferenceCopy
    policies: sql.Policies | memory.Policies
    controls: sql.Controls | memory.Controls
    holds: sql.Holds | memory.Holds
    permits: sql.Permits | memory.Permits
    register: sql.Register | memory.Register
    gate_health: sql.GateHealthRows | memory.GateHealthRows


class SqlUnitOfWork(uow.SqlUnitOfWork, CheckpointUnitOfWork):
    def repositories(self) -> None:
        s = self.session
        self.places = ReferenceCopy(SqlReferenceData(s, sql.REFERENCE_TABLES))
        self.policies = sql.Policies(s)
        self.controls = sql.Controls(s)
        self.holds = sql.Holds(s)
        self.permits = sql.Permits(s)
        self.register = sql.Register(s)
        self.gate_health = sql.GateHealthRows(s)


class FakeUnitOfWork(uow.FakeUnitOfWork, CheckpointUnitOfWork):
    def __init__(self, source: str = "checkpoint", inbound: uow.Inbound | None = None) -> None:
        super().__init__(source, inbound)
        self.refdata = MemoryReferenceData(sql.REFERENCE_TABLES)
        self.places = ReferenceCopy(self.refdata)
        self.policies = memory.Policies()
        self.controls = memory.Controls()
        self.holds = memory.Holds()
        self.permits = memory.Permits()
        self.register = memory.Register()
        self.gate_health = memory.GateHealthRows()

    def state(self) -> dict[str, Any]:
        return {
            **{f"ref:{k}": v for k, v in self.refdata.rows.items()},
            "policies": self.policies.rows,
            "controls": self.controls.rows,
            "holds": self.holds.rows,
            "permits": self.permits.rows,
            "passages": self.register.passages,
            "overrides": self.register.overrides,
            "doors": self.register.doors,
            "gate_health": self.gate_health.rows,
        }
