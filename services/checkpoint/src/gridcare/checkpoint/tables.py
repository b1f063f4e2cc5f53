"""The checkpoint's own tables (and its copy of the reference data it needs)."""

from pathlib import Path

import sqlalchemy as sa

from gridcare.shared.store import new_metadata

MIGRATIONS = Path(__file__).parent / "migrations"
metadata = new_metadata()

gates = sa.Table(
    "gates",
    metadata,
    sa.Column("gate_id", sa.String(64), primary_key=True),
    sa.Column("compound_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
)
compounds = sa.Table(
    "compounds",
    metadata,
    sa.Column("compound_id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), nullable=False),
    sa.Column("control_level", sa.String(16), nullable=False),
)
buildings = sa.Table(
    "buildings",
    metadata,
    sa.Column("building_id", sa.String(64), primary_key=True),
    sa.Column("compound_id", sa.String(64), nullable=False),
)
households = sa.Table(
    "households",
    metadata,
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("building_id", sa.String(64), nullable=False),
)
residents = sa.Table(
    "residents",
    metadata,
    sa.Column("resident_id", sa.String(64), primary_key=True),
    sa.Column("household_id", sa.String(64), nullable=False),
)

# The entry/exit register: every scan that got a verdict, once per (gate, scan_id).
passages = sa.Table(
    "passages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("gate_id", sa.String(64), nullable=False),
    sa.Column("scan_id", sa.String(64), nullable=False),
    sa.Column("compound_id", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("direction", sa.String(3), nullable=False),
    sa.Column("verdict", sa.String(8), nullable=False),
    sa.Column("reasons", sa.JSON, nullable=False),
    sa.Column("temperature_c", sa.Float, nullable=True),
    sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reply", sa.JSON, nullable=False),
    sa.UniqueConstraint("gate_id", "scan_id", name="uq_passages_gate_scan"),
    sa.Index("ix_passages_scanned_at", "scanned_at"),
)
