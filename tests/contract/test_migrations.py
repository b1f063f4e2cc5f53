"""Each service's migrations build exactly the tables its code declares: a column added to
a table (or to the library's messaging tables) without a migration fails here, not at a
deployment's first start."""

from __future__ import annotations

import importlib

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from gridcare.shared.store import _upgrade, alembic_config

SERVICES = ("checkpoint", "screening", "dispatch", "notify")


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_tables_declared(service):
    tables = importlib.import_module(f"gridcare.{service}.adapters.tables")
    script = ScriptDirectory.from_config(alembic_config(tables.MIGRATIONS, tables.metadata))
    assert len(script.get_heads()) == 1, f"{service} has several migration heads"
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        _upgrade(conn, tables.MIGRATIONS, tables.metadata)
        diff = compare_metadata(MigrationContext.configure(conn), tables.metadata)
    assert diff == [], f"{service}: the tables differ from the migrations: {diff}"
