"""Alembic environment: the shared one (gridcare.shared.store.run_alembic_env)."""

from alembic import context

from gridcare.shared.store import run_alembic_env

run_alembic_env(context)
