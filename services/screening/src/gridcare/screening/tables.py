"""Screening's own tables."""

from pathlib import Path

import sqlalchemy as sa

from gridcare.shared.store import new_metadata

MIGRATIONS = Path(__file__).parent / "migrations"
metadata = new_metadata()

residents = sa.Table(
    "residents",
    metadata,
    sa.Column("resident_id", sa.String(64), primary_key=True),
    sa.Column("household_id", sa.String(64), nullable=False),
)

# A case: a person screening follows (a fever at the gate, later the four categories).
cases = sa.Table(
    "cases",
    metadata,
    sa.Column("case_id", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open | closed
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("source_ref", sa.String(200), nullable=False),
)

# Every reading that fed a case (the first one opens it; later ones are appended).
observations = sa.Table(
    "observations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(64), nullable=False, index=True),
    sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("source_ref", sa.String(200), nullable=False),
)
