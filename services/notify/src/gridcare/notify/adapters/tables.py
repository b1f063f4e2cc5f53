"""Notify's own tables (and its copy of the reference data it needs)."""

from pathlib import Path

import sqlalchemy as sa

from gridcare.shared.store import new_metadata

MIGRATIONS = Path(__file__).parents[1] / "migrations"
metadata = new_metadata()

# Grid workers are reached through their grid's chat group.
grids = sa.Table(
    "grids",
    metadata,
    sa.Column("grid_id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("worker_id", sa.String(64), nullable=False),
    sa.Column("worker_name", sa.String(200), nullable=False),
    sa.Column("worker_phone", sa.String(32), nullable=False),
    sa.Column("worker_language", sa.String(16), nullable=False),
    sa.Column("chat_url", sa.String(1000), nullable=False),
)

# Gates are reached through their duty staff's chat (offline / back online alerts).
gates = sa.Table(
    "gates",
    metadata,
    sa.Column("gate_id", sa.String(64), primary_key=True),
    sa.Column("compound_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("duty_chat_url", sa.String(1000), nullable=False),
)
# The community's clock, for what people read.
compounds = sa.Table(
    "compounds",
    metadata,
    sa.Column("compound_id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), nullable=False),
)
communities = sa.Table(
    "communities",
    metadata,
    sa.Column("community_id", sa.String(64), primary_key=True),
    sa.Column("time_zone", sa.String(64), nullable=False),
)

# One row per notification: written (pending) before the provider is called, its outcome
# after; the guard against sending twice.
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("notification_id", sa.String(64), primary_key=True),
    # A worker id, or "duty:<gate_id>" for a gate's duty staff.
    sa.Column("recipient_id", sa.String(128), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("cause_event_id", sa.String(128), nullable=False),
    sa.Column("cause_type", sa.String(64), nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="sent"),  # pending|sent
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("time_zone", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
)
