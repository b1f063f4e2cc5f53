"""A service's copy of reference data: one table per kind it keeps, upserted by entity id.

Reference data arrives compacted (the newest message per entity) and may be replayed at
any time, so keeping a copy is an upsert of the columns the service's table has (a subset
of the entity's fields; the first primary-key column is the entity id). Each service names
its tables by entity type; what it asks of them (who is the grid worker of this person?)
lives in its own repositories. :class:`MemoryReferenceData` is the same for handler tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from .store import upsert_row


def _row(table: sa.Table, entity: Any) -> dict[str, Any]:
    """The table's columns of ``entity`` (nested models as plain data, for JSON columns;
    a column the entity does not have, from an older producer, is None)."""
    values = entity.model_dump()
    return {c.name: values.get(c.name) for c in table.columns}


class SqlReferenceData:
    def __init__(self, session: AsyncSession, tables: Mapping[str, sa.Table]) -> None:
        self.session = session
        self.tables = tables  # entity TYPE -> table

    def keeps(self, entity: Any) -> bool:
        return entity.TYPE in self.tables

    async def put(self, entity: Any) -> None:
        table = self.tables[entity.TYPE]
        await upsert_row(self.session, table, _row(table, entity))

    async def get(self, entity_type: str, entity_id: str) -> dict[str, Any] | None:
        table = self.tables[entity_type]
        key = next(iter(table.primary_key.columns))
        row = (await self.session.execute(sa.select(table).where(key == entity_id))).first()
        return None if row is None else dict(row._mapping)

    async def find(self, entity_type: str, **where: Any) -> list[dict[str, Any]]:
        """The rows whose columns equal the values given (a list or a set: any of them),
        in the order of their ids."""
        table = self.tables[entity_type]
        q = sa.select(table).order_by(*table.primary_key.columns)
        for column, value in where.items():
            c = table.c[column]
            q = q.where(c.in_(list(value)) if isinstance(value, list | set | tuple) else c == value)
        return [dict(r._mapping) for r in await self.session.execute(q)]


class MemoryReferenceData:
    def __init__(self, tables: Mapping[str, sa.Table]) -> None:
        self.tables = tables
        self.rows: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in tables}

    def keeps(self, entity: Any) -> bool:
        return entity.TYPE in self.tables

    async def put(self, entity: Any) -> None:
        table = self.tables[entity.TYPE]
        row = _row(table, entity)
        key = next(iter(table.primary_key.columns)).name
        self.rows[entity.TYPE][row[key]] = row

    async def get(self, entity_type: str, entity_id: str) -> dict[str, Any] | None:
        return self.rows[entity_type].get(entity_id)

    async def find(self, entity_type: str, **where: Any) -> list[dict[str, Any]]:
        def match(row: dict[str, Any]) -> bool:
            return all(
                row.get(c) in v if isinstance(v, list | set | tuple) else row.get(c) == v
                for c, v in where.items()
            )

        rows = self.rows[entity_type]
        return [rows[k] for k in sorted(rows) if match(rows[k])]


class ReferenceCopy:
    """Base of a service's view of its reference data (``Places``): on the store or in
    memory alike, with the service's own questions added by the subclass."""

    def __init__(self, refdata: SqlReferenceData | MemoryReferenceData) -> None:
        self.refdata = refdata

    def keeps(self, entity: Any) -> bool:
        return self.refdata.keeps(entity)

    async def put(self, entity: Any) -> None:
        await self.refdata.put(entity)


async def keep(entity: Any, uow: Any, after: Callable[[], None] | None = None) -> None:
    """The handler of a row of reference data: kept (``uow.places``) if the service keeps
    that kind; ``after`` runs once it is committed (e.g. to update what is in memory)."""
    async with uow:
        if uow.places.keeps(entity):
            await uow.places.put(entity)
            if after is not None:
                uow.after_commit(after)
            await uow.commit()
