"""Dispatch's own tables (and its copy of the reference data it needs)."""

from pathlib import Path

import sqlalchemy as sa

from gridcare.shared.store import new_metadata

MIGRATIONS = Path(__file__).parents[1] / "migrations"
metadata = new_metadata()

residents = sa.Table(
    "residents",
    metadata,
    sa.Column("resident_id", sa.String(64), primary_key=True),
    sa.Column("household_id", sa.String(64), nullable=False),
)
households = sa.Table(
    "households",
    metadata,
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("building_id", sa.String(64), nullable=False),
)
buildings = sa.Table(
    "buildings",
    metadata,
    sa.Column("building_id", sa.String(64), primary_key=True),
    sa.Column("grid_id", sa.String(64), nullable=False),
)
grids = sa.Table(
    "grids",
    metadata,
    sa.Column("grid_id", sa.String(64), primary_key=True),
    sa.Column("worker_id", sa.String(64), nullable=False),
    sa.Column("community_id", sa.String(64), nullable=False, server_default=""),
)
communities = sa.Table(
    "communities",
    metadata,
    sa.Column("community_id", sa.String(64), primary_key=True),
    sa.Column("time_zone", sa.String(64), nullable=False),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("task_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    # None for a task about a household (a quarantined household's door opened).
    sa.Column("person_id", sa.String(64), nullable=True, index=True),
    sa.Column("household_id", sa.String(64), nullable=True),
    sa.Column("case_id", sa.String(64), nullable=True),
    # The fact a checkpoint alert reported (e.g. "gate:g1:<scan_id>"): one task per fact.
    sa.Column("source_ref", sa.String(255), nullable=True),
    sa.Column("urgent", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("grid_id", sa.String(64), nullable=False),
    sa.Column("assignee_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),  # open | done | cancelled
    sa.Column("due_by", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    sa.UniqueConstraint("kind", "case_id", name="uq_tasks_kind_case"),
    sa.UniqueConstraint("kind", "source_ref", name="uq_tasks_kind_source"),
    sa.Index("ix_tasks_kind_household_status", "kind", "household_id", "status"),
)

# Each person's latest decision from screening (PersonStatusChanged), as far as dispatch
# needs it: whether they are confined at home, and when it was decided (later wins).
holds = sa.Table(
    "holds",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("household_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(64), nullable=False),
    sa.Column("at_home", sa.Boolean, nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
)

# One row per household whose members' decisions dispatch has taken: each such transaction
# updates it first, so that on PostgreSQL two decisions about one household are taken one
# after the other (one support task opened, the last release seen) and not side by side.
household_locks = sa.Table(
    "household_locks",
    metadata,
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)
