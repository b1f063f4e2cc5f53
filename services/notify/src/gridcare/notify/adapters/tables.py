"""Notify's own tables (and its copy of the reference data it needs)."""

from pathlib import Path

import sqlalchemy as sa

from gridcare.shared.store import new_metadata

MIGRATIONS = Path(__file__).parents[1] / "migrations"
metadata = new_metadata()

# --- the registry: notify's copy of the reference data ----------------------------------------
communities = sa.Table(
    "communities",
    metadata,
    sa.Column("community_id", sa.String(64), primary_key=True),
    sa.Column("time_zone", sa.String(64), nullable=False),
)
compounds = sa.Table(
    "compounds",
    metadata,
    sa.Column("compound_id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
)
# Grid workers: their grid's chat group is their chat.
grids = sa.Table(
    "grids",
    metadata,
    sa.Column("grid_id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), nullable=False, server_default=""),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("worker_id", sa.String(64), nullable=False, index=True),
    sa.Column("worker_name", sa.String(200), nullable=False),
    sa.Column("worker_phone", sa.String(32), nullable=False),
    sa.Column("worker_email", sa.String(254), nullable=True),
    sa.Column("worker_language", sa.String(16), nullable=False),
    sa.Column("worker_channels", sa.JSON, nullable=True),
    sa.Column("chat_url", sa.String(1000), nullable=False),
)
buildings = sa.Table(
    "buildings",
    metadata,
    sa.Column("building_id", sa.String(64), primary_key=True),
    sa.Column("compound_id", sa.String(64), nullable=False, index=True),
    sa.Column("grid_id", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
)
households = sa.Table(
    "households",
    metadata,
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("building_id", sa.String(64), nullable=False, index=True),
)
residents = sa.Table(
    "residents",
    metadata,
    sa.Column("resident_id", sa.String(64), primary_key=True),
    sa.Column("household_id", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("phone", sa.String(32), nullable=True),
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("language", sa.String(16), nullable=False, server_default="zh"),
    sa.Column("channels", sa.JSON, nullable=True),
)
# Gates: reached through the people on duty there, else their duty chat.
gates = sa.Table(
    "gates",
    metadata,
    sa.Column("gate_id", sa.String(64), primary_key=True),
    sa.Column("compound_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("duty_chat_url", sa.String(1000), nullable=False),
)
staff = sa.Table(
    "staff",
    metadata,
    sa.Column("staff_id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("phone", sa.String(32), nullable=True),
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("language", sa.String(16), nullable=False, server_default="zh"),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("gates", sa.JSON, nullable=True),
    sa.Column("channels", sa.JSON, nullable=True),
    sa.Column("chat_url", sa.String(1000), nullable=False, server_default=""),
)
volunteers = sa.Table(
    "volunteers",
    metadata,
    sa.Column("volunteer_id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("phone", sa.String(32), nullable=True),
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("language", sa.String(16), nullable=False, server_default="zh"),
    sa.Column("channels", sa.JSON, nullable=True),
    sa.Column("chat_url", sa.String(1000), nullable=False, server_default=""),
)
chat_groups = sa.Table(
    "chat_groups",
    metadata,
    sa.Column("group_id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), nullable=False),
    sa.Column("place", sa.String(16), nullable=False),
    sa.Column("place_id", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("url", sa.String(1000), nullable=False),
)
# A community's provider of a kind of channel (sms, email).
channels = sa.Table(
    "channels",
    metadata,
    sa.Column("channel_id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("url", sa.String(1000), nullable=False),
    sa.Column("rate_per_s", sa.Float, nullable=True),
    sa.Column("max_segments", sa.Integer, nullable=True),
)
# A community's policy, of which notify reads its own fields.
policies = sa.Table(
    "policies",
    metadata,
    sa.Column("community_id", sa.String(64), primary_key=True),
    sa.Column("quiet_hours", sa.String(16), nullable=True),
    sa.Column("hourly_cap", sa.Integer, nullable=True),
    sa.Column("digest_minutes", sa.Integer, nullable=True),
    sa.Column("escalations", sa.JSON, nullable=True),
)

# --- what notify does ---------------------------------------------------------------------------
# One row per request: its expansion to recipients is resumable (a broadcast's, say).
requests = sa.Table(
    "requests",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("template", sa.String(64), nullable=False),
    sa.Column("priority", sa.String(8), nullable=False),
    sa.Column("recipient", sa.JSON, nullable=False),
    sa.Column("requested_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False),  # expanding|expanded|cancelled
    sa.Column("recipients", sa.Integer, nullable=False, server_default="0"),
    sa.Column("alert_id", sa.String(16), nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
)
# One row per (request, recipient): the message, its route and state. Written before any
# provider is called; the unit of "exactly once" as a recipient sees it.
messages = sa.Table(
    "messages",
    metadata,
    sa.Column("message_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),  # the order within its request
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("recipient_id", sa.String(128), nullable=False, index=True),
    sa.Column("recipient_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("community_id", sa.String(64), nullable=True),
    sa.Column("time_zone", sa.String(64), nullable=True),
    sa.Column("template", sa.String(64), nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("sms", sa.Text, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),  # 0 urgent, 1 normal, 2 bulk
    sa.Column("alert_id", sa.String(16), nullable=True, index=True),
    sa.Column("digest", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("routes", sa.JSON, nullable=False),  # [[channel, url, to], ...] in preference order
    sa.Column("route", sa.Integer, nullable=False, server_default="0"),  # the one tried now
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("route_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("give_up_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("delivery_key", sa.String(64), nullable=True, index=True),
    sa.Column("provider_ref", sa.String(200), nullable=True, index=True),
    sa.Column("sent_channel", sa.String(16), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    # the sender's question, in its order: waiting, most urgent, due first, in request order
    sa.Index("ix_messages_due", "status", "priority", "next_attempt_at", "seq"),
)
# Every change of a message's state, with when and how (the receipts' history, say).
history = sa.Table(
    "message_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(64), nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(16), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
)
# Alerts that need a person: who had them, where the chain is, who took them.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String(16), primary_key=True),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("template", sa.String(64), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("places", sa.JSON, nullable=False),
    sa.Column("community_id", sa.String(64), nullable=True),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open|acknowledged|unacknowledged
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=True, index=True),
    sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("acknowledged_by", sa.String(64), nullable=True),
    sa.Column("acknowledged_name", sa.String(200), nullable=True),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
)
alert_recipients = sa.Table(
    "alert_recipients",
    metadata,
    sa.Column("alert_id", sa.String(16), primary_key=True),
    sa.Column("person_id", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("language", sa.String(16), nullable=False, server_default="zh"),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("notified_at", sa.DateTime(timezone=True), nullable=False),
)
