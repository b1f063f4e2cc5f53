"""Screening's own tables (and its copy of the reference data it needs)."""

from pathlib import Path

import sqlalchemy as sa

from gridcare.shared.store import new_metadata

MIGRATIONS = Path(__file__).parents[1] / "migrations"
metadata = new_metadata()

# --- reference data: where a person lives, and the community's clock ---------------------
residents = sa.Table(
    "residents",
    metadata,
    sa.Column("resident_id", sa.String(64), primary_key=True),
    sa.Column("household_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=True),  # for reminders (check-ins)
    sa.Column("phone", sa.String(32), nullable=True),  # whom a call-back rings (questionnaires)
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
    sa.Column("compound_id", sa.String(64), nullable=False),
    sa.Column("grid_id", sa.String(64), nullable=True),  # whose grid worker (close contacts)
)
compounds = sa.Table(
    "compounds",
    metadata,
    sa.Column("compound_id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), nullable=False),
    sa.Column("control_level", sa.String(16), nullable=True),  # compounds.csv's (compounds)
)
communities = sa.Table(
    "communities",
    metadata,
    sa.Column("community_id", sa.String(64), primary_key=True),
    sa.Column("time_zone", sa.String(64), nullable=False),
)
# Who may decide a person's health status from the office, in which role (the status
# machine): staff.csv's members and each grid's worker (a grid_worker).
staff = sa.Table(
    "staff",
    metadata,
    sa.Column("staff_id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
)
grids = sa.Table(
    "grids",
    metadata,
    sa.Column("grid_id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), nullable=False),
    sa.Column("worker_id", sa.String(64), nullable=False, index=True),
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

# --- questionnaires (handlers/questionnaires.py): each PHQ-9 / GAD-7 answered, as scored --
# The key is the person's app's submission id: a repeat finds the row and gets its reply.
questionnaire_submissions = sa.Table(
    "questionnaire_submissions",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("submission_id", sa.String(64), primary_key=True),
    sa.Column("instrument", sa.String(8), nullable=False),  # phq9 | gad7
    sa.Column("answers", sa.JSON, nullable=False),  # [0-3, ...] in item order
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("severity", sa.String(24), nullable=False),
    sa.Column("follow_up", sa.String(24), nullable=False),  # none | call_back | urgent_...
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),  # the app's
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("reported_by", sa.String(64), nullable=True),  # a grid worker, for them
    sa.Column("message", sa.JSON, nullable=False),  # the reply's {zh, en}, as first sent
)

# Each person's health status in force, and every decision that led there.
person_status = sa.Table(
    "person_status",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("set_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("role", sa.String(32), nullable=False, server_default=""),  # the machine's Role
    sa.Column("previous_status", sa.String(32), nullable=True),  # the status it changed
    sa.Column("source", sa.String(200), nullable=False, server_default=""),  # what caused it
)
status_history = sa.Table(
    "status_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("person_id", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("set_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("role", sa.String(32), nullable=False, server_default=""),  # the machine's Role
    sa.Column("previous_status", sa.String(32), nullable=True),  # the status it changed
    sa.Column("source", sa.String(200), nullable=False, server_default=""),  # what caused it
)

# --- close contacts and compounds (handlers/contacts.py, handlers/compounds.py) -----------
# A close-contact candidate of a confirmed case, proposed to a grid worker: one row per
# (case, candidate), so a redelivered event never proposes anyone twice.
contact_proposals = sa.Table(
    "contact_proposals",
    metadata,
    sa.Column("case_person_id", sa.String(64), primary_key=True),
    sa.Column("candidate_id", sa.String(64), primary_key=True),
    sa.Column("household_id", sa.String(64), nullable=False),
    sa.Column("grid_id", sa.String(64), nullable=True, index=True),
    sa.Index("ix_contact_proposals_candidate", "candidate_id"),  # a resident's timeline
    sa.Column("kind", sa.String(16), nullable=False),  # household | gate
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("gate_id", sa.String(64), nullable=True),
    sa.Column("passed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # proposed | confirmed | rejected
    sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_by", sa.String(200), nullable=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("decision_reason", sa.Text, nullable=True),
)
# Each compound's control level as screening decided it, its last new confirmed case and
# since when it is epidemic-free (无疫小区).
compound_levels = sa.Table(
    "compound_levels",
    metadata,
    sa.Column("compound_id", sa.String(64), primary_key=True),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("set_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_case_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_case_person_id", sa.String(64), nullable=True),
    sa.Column("epidemic_free_since", sa.DateTime(timezone=True), nullable=True),
)

# --- quarantine: households at home, central sites and their rooms -----------------------
# A household's home quarantine (one active at a time; ended ones kept).
household_quarantines = sa.Table(
    "household_quarantines",
    metadata,
    sa.Column("household_id", sa.String(64), primary_key=True),
    sa.Column("started_at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # active | ended
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ended_by", sa.String(200), nullable=True),
    sa.Column("end_reason", sa.Text, nullable=True),
)
# One active quarantine a household, whatever two writers read (the handlers also lock the
# household first: ``HouseholdQuarantines.lock``)
sa.Index(
    "uq_household_quarantines_active",
    household_quarantines.c.household_id,
    unique=True,
    sqlite_where=household_quarantines.c.status == "active",
    postgresql_where=household_quarantines.c.status == "active",
)
# A central quarantine site (a requisitioned hotel) and its rooms: one person a room.
quarantine_sites = sa.Table(
    "quarantine_sites",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("address", sa.String(500), nullable=False),
    sa.Column("community_id", sa.String(64), nullable=False),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("added_by", sa.String(200), nullable=False),
)
quarantine_rooms = sa.Table(
    "quarantine_rooms",
    metadata,
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("room_id", sa.String(64), primary_key=True),
)
# Who is in which room now: a room holds one person (the unique key keeps two intakes at
# once from filling it twice), a person is in one room.
quarantine_occupants = sa.Table(
    "quarantine_occupants",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("room_id", sa.String(64), nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("intake_id", sa.String(64), nullable=True),
    sa.UniqueConstraint("site_id", "room_id"),
    sa.ForeignKeyConstraint(
        ["site_id", "room_id"], ["quarantine_rooms.site_id", "quarantine_rooms.room_id"]
    ),
)
# Every stay, ended or not (a person's timeline).
quarantine_stays = sa.Table(
    "quarantine_stays",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("person_id", sa.String(64), nullable=False, index=True),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("room_id", sa.String(64), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("end_reason", sa.Text, nullable=True),
    sa.Column("intake_id", sa.String(64), nullable=True),
)
# Each intake once (its id makes a repeat change nothing).
quarantine_intakes = sa.Table(
    "quarantine_intakes",
    metadata,
    sa.Column("intake_id", sa.String(64), primary_key=True),
    sa.Column("site_id", sa.String(64), nullable=False),
    sa.Column("people", sa.JSON, nullable=False),
    sa.Column("by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

# --- check-ins, door visits, follow-up, reminders (handlers/checkins.py, followup.py) -----
# Screening's part of each community's policy (CommunityPolicy; None: the default).
policies = sa.Table(
    "policies",
    metadata,
    sa.Column("community_id", sa.String(64), primary_key=True),
    sa.Column("fever_c", sa.Float, nullable=True),
    sa.Column("checkin_reminder_at", sa.String(5), nullable=True),
    sa.Column("missed_days_for_visit", sa.Integer, nullable=True),
    sa.Column("follow_up_days", sa.Integer, nullable=True),
    sa.Column("release_symptom_free_days", sa.Integer, nullable=True),
    sa.Column("release_needs_negative_test", sa.Boolean, nullable=True),
    sa.Column("contact_window_minutes", sa.Float, nullable=True),  # close contacts ...
    sa.Column("contact_lookback_days", sa.Integer, nullable=True),
    sa.Column("contacts_quarantine", sa.Boolean, nullable=True),
    sa.Column("seal_on_confirmed", sa.String(16), nullable=True),  # ... and compounds
    sa.Column("epidemic_free_days", sa.Integer, nullable=True),
    sa.Column("epidemic_free_level", sa.String(16), nullable=True),
    sa.Column("emergency_number", sa.String(24), nullable=True),  # ... and questionnaires
    sa.Column("crisis_hotline", sa.String(24), nullable=True),
)
# The check-in in force for each resident and local day (a later one replaces it).
checkins = sa.Table(
    "checkins",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("checkin_id", sa.String(200), nullable=False),
    sa.Column("temperature_c", sa.Float, nullable=True),
    sa.Column("symptoms", sa.JSON, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("reported_by", sa.String(64), nullable=True),
    sa.Column("source", sa.String(16), nullable=False),  # resident | visit
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("follow_up", sa.Boolean, nullable=False),
    sa.Index("ix_checkins_day", "day"),
)
# Every check-in received, by its id: a repeat gets the reply the first one got.
checkin_requests = sa.Table(
    "checkin_requests",
    metadata,
    sa.Column("checkin_id", sa.String(200), primary_key=True),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # recorded | replaced
    sa.Column("follow_up", sa.Boolean, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)
# A grid worker's door-to-door visit to a household (each once, by its id).
door_visits = sa.Table(
    "door_visits",
    metadata,
    sa.Column("visit_id", sa.String(64), primary_key=True),
    sa.Column("household_id", sa.String(64), nullable=False, index=True),
    sa.Column("worker_id", sa.String(64), nullable=False),
    sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("members", sa.JSON, nullable=False),  # each member's result
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)
# A follow-up period of a person (open, or released by the policy's rule).
follow_ups = sa.Table(
    "follow_ups",
    metadata,
    sa.Column("follow_up_id", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.String(64), nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("started_on", sa.Date, nullable=False),
    sa.Column("ends_on", sa.Date, nullable=False),  # planned: extended by a new exposure
    sa.Column("status", sa.String(16), nullable=False),  # open | released
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_symptom_day", sa.Date, nullable=True),
    sa.Column("last_test_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_test_negative", sa.Boolean, nullable=True),
    sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("release_reason", sa.Text, nullable=True),
)
# One record per person and local day of a follow-up (the key: a redelivery makes no two).
follow_up_days = sa.Table(
    "follow_up_days",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("follow_up_id", sa.String(64), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # checkin | visit
    sa.Column("source_ref", sa.String(200), nullable=False),
    sa.Column("temperature_c", sa.Float, nullable=True),
    sa.Column("symptoms", sa.JSON, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)
# A reminder sent to a resident for a local day (one per person and day).
checkin_reminders = sa.Table(
    "checkin_reminders",
    metadata,
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_checkin_reminders_day", "day"),
)
# A door visit asked for after missed days (one per person and run of missed days).
door_visit_requests = sa.Table(
    "door_visit_requests",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.String(64), nullable=False, index=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("missed_days", sa.Integer, nullable=False),
    sa.Column("last_checkin_day", sa.Date, nullable=True),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
)

# --- test campaigns (handlers/campaigns.py) -----------------------------------------------
# A nucleic-acid campaign of one compound or building.
test_campaigns = sa.Table(
    "test_campaigns",
    metadata,
    sa.Column("campaign_id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), nullable=False),
    sa.Column("place_kind", sa.String(16), nullable=False),  # compound | building
    sa.Column("place_id", sa.String(64), nullable=False),
    sa.Column("place_name", sa.String(200), nullable=False),
    sa.Column("site", sa.String(200), nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("door_call_after_min", sa.Integer, nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
# Its people: every resident of the place at the start (due, or excluded by status), and
# those who moved in later and were tested (joined late).
campaign_people = sa.Table(
    "campaign_people",
    metadata,
    sa.Column("campaign_id", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.String(64), primary_key=True),
    sa.Column("household_id", sa.String(64), nullable=False),
    sa.Column("building_id", sa.String(64), nullable=False),
    sa.Column("excluded", sa.String(32), nullable=False),  # "" due, else the status
    sa.Column("joined", sa.String(8), nullable=False),  # start | late
)
# Every sample's result, once (the sample id is the key: a file imported twice is once).
campaign_results = sa.Table(
    "campaign_results",
    metadata,
    sa.Column("sample_id", sa.String(64), primary_key=True),
    sa.Column("campaign_id", sa.String(64), nullable=False),
    sa.Column("person_id", sa.String(64), nullable=False),
    sa.Column("result", sa.String(16), nullable=False),  # positive | negative | invalid
    sa.Column("tested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("lab", sa.String(200), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_campaign_results_campaign_person", "campaign_id", "person_id"),
    sa.Index("ix_campaign_results_person", "person_id"),  # a resident's timeline
)
# The reminder rounds done: 1 the residents, 2 the grid workers' door calls.
campaign_rounds = sa.Table(
    "campaign_rounds",
    metadata,
    sa.Column("campaign_id", sa.String(64), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("people", sa.Integer, nullable=False),
)
# A large CSV file sent in parts (one NATS message is at most 1 MB): kept until imported.
campaign_uploads = sa.Table(
    "campaign_uploads",
    metadata,
    sa.Column("upload_id", sa.String(64), primary_key=True),
    sa.Column("part", sa.Integer, primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)
