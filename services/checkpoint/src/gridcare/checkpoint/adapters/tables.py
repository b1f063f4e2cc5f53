"""The checkpoint's own tables (and its copy of the reference data it needs)."""

from pathlib import Path

import sqlalchemy as sa

from gridcare.shared.lease import lease_table
from gridcare.shared.store import new_metadata

MIGRATIONS = Path(__file__).parents[1] / "migrations"
metadata = new_metadata()
leases = lease_table(metadata)  # one checkpoint per store (bootstrap.py)

communities = sa.Table(
    "communities",
    metadata,
    sa.Column("community_id", sa.String(64), primary_key=True),
    sa.Column("time_zone", sa.String(64), nullable=False),
)
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
    sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),  # the device's
    # when the checkpoint decided it (our clock): how long it is kept counts from this
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reply", sa.JSON, nullable=False),
    sa.Column("permit_id", sa.String(64), nullable=True),  # the permit this passage used
    # what the device said (domain.scan.fingerprint): a retry that says otherwise is a
    # reused scan_id (answered as recorded, and counted); null in rows older than it
    sa.Column("fingerprint", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("gate_id", "scan_id", name="uq_passages_gate_scan"),
    sa.Index("ix_passages_scanned_at", "scanned_at"),  # trace: when it happened
    # (No index on decided_at: ids grow with it, so the purge finds its end by id.)
    # No index by compound and person: every commit of the gate path would update it (a
    # random page per scan); who is out is kept in memory (state.GateState.last_passed).
)

# Each community's policy (the whole CommunityPolicy as JSON).
policies = sa.Table(
    "policies",
    metadata,
    sa.Column("community_id", sa.String(64), primary_key=True),
    sa.Column("policy", sa.JSON, nullable=False),
)
# A compound's control level as set by ops or screening; wins over compounds.control_level.
compound_controls = sa.Table(
    "compound_controls",
    metadata,
    sa.Column("compound_id", sa.String(64), primary_key=True),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("set_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
)
# Screening's latest decision about a person (whether it holds them is screening's call).
person_status = sa.Table(
    "person_status",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("holds_at_gate", sa.Boolean, nullable=False, server_default=sa.true()),
    # confined at home: their household's door alerts (screening's call, too)
    sa.Column("holds_at_home", sa.Boolean, nullable=False),
    sa.Column("status_label", sa.JSON, nullable=True),
    sa.Column("household_id", sa.String(64), nullable=True),
    sa.Column("until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
)
permits = sa.Table(
    "permits",
    metadata,
    sa.Column("permit_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # outing | emergency | medical
    sa.Column("holder_id", sa.String(64), nullable=False, index=True),
    sa.Column("household_id", sa.String(64), nullable=False, index=True),
    sa.Column("compound_id", sa.String(64), nullable=False),
    sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
    sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("uses_left", sa.Integer, nullable=False),
    sa.Column("return_within_h", sa.Float, nullable=True),
    sa.Column("issued_by", sa.String(200), nullable=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # issued | out | closed
    sa.Column("exited_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("return_by", sa.DateTime(timezone=True), nullable=True),
    sa.Column("overdue_alerted_at", sa.DateTime(timezone=True), nullable=True),
)
overrides = sa.Table(
    "overrides",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("gate_id", sa.String(64), nullable=False),
    sa.Column("scan_id", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("staff_id", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("gate_id", "scan_id", name="uq_overrides_gate_scan"),
)
gate_health = sa.Table(
    "gate_health",
    metadata,
    sa.Column("gate_id", sa.String(64), primary_key=True),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("firmware", sa.String(100), nullable=True),
    sa.Column("online", sa.Boolean, nullable=False),
)
door_events = sa.Table(
    "door_events",
    metadata,
    # a sensor's event id is unique to its household (§3), not across households
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(64), primary_key=True),
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),  # the device's
    sa.Column("quarantined", sa.Boolean, nullable=False),
    # when the checkpoint got it (our clock): how long it is kept counts from this
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
)
