"""checkins and follow-up: daily check-ins, door visits, follow-up days, reminders

Revision ID: 4d2e8f0a1c32
Revises: 3c1d7e9a0b21
Create Date: 2026-12-04 17:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '4d2e8f0a1c32'
down_revision: Union[str, Sequence[str], None] = '3c1d7e9a0b21'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=200), nullable=True))

    op.create_table('policies',
    sa.Column('community_id', sa.String(length=64), nullable=False),
    sa.Column('fever_c', sa.Float(), nullable=True),
    sa.Column('checkin_reminder_at', sa.String(length=5), nullable=True),
    sa.Column('missed_days_for_visit', sa.Integer(), nullable=True),
    sa.Column('follow_up_days', sa.Integer(), nullable=True),
    sa.Column('release_symptom_free_days', sa.Integer(), nullable=True),
    sa.Column('release_needs_negative_test', sa.Boolean(), nullable=True),
    sa.PrimaryKeyConstraint('community_id', name=op.f('pk_policies'))
    )
    op.create_table('checkins',
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('checkin_id', sa.String(length=200), nullable=False),
    sa.Column('temperature_c', sa.Float(), nullable=True),
    sa.Column('symptoms', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('reported_by', sa.String(length=64), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('follow_up', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('person_id', 'day', name=op.f('pk_checkins'))
    )
    op.create_index('ix_checkins_day', 'checkins', ['day'], unique=False)
    op.create_table('checkin_requests',
    sa.Column('checkin_id', sa.String(length=200), nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('follow_up', sa.Boolean(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('checkin_id', name=op.f('pk_checkin_requests'))
    )
    op.create_table('door_visits',
    sa.Column('visit_id', sa.String(length=64), nullable=False),
    sa.Column('household_id', sa.String(length=64), nullable=False),
    sa.Column('worker_id', sa.String(length=64), nullable=False),
    sa.Column('visited_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('members', sa.JSON(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('visit_id', name=op.f('pk_door_visits'))
    )
    op.create_index(op.f('ix_door_visits_household_id'), 'door_visits', ['household_id'], unique=False)
    op.create_table('follow_ups',
    sa.Column('follow_up_id', sa.String(length=64), nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('started_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_symptom_day', sa.Date(), nullable=True),
    sa.Column('last_test_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_test_negative', sa.Boolean(), nullable=True),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('release_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('follow_up_id', name=op.f('pk_follow_ups'))
    )
    op.create_index(op.f('ix_follow_ups_person_id'), 'follow_ups', ['person_id'], unique=False)
    op.create_table('follow_up_days',
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('follow_up_id', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_ref', sa.String(length=200), nullable=False),
    sa.Column('temperature_c', sa.Float(), nullable=True),
    sa.Column('symptoms', sa.JSON(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('person_id', 'day', name=op.f('pk_follow_up_days'))
    )
    op.create_table('checkin_reminders',
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('person_id', 'day', name=op.f('pk_checkin_reminders'))
    )
    op.create_index('ix_checkin_reminders_day', 'checkin_reminders', ['day'], unique=False)
    op.create_table('door_visit_requests',
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('missed_days', sa.Integer(), nullable=False),
    sa.Column('last_checkin_day', sa.Date(), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_door_visit_requests'))
    )
    op.create_index(op.f('ix_door_visit_requests_person_id'), 'door_visit_requests', ['person_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_door_visit_requests_person_id'), table_name='door_visit_requests')
    op.drop_table('door_visit_requests')
    op.drop_index('ix_checkin_reminders_day', table_name='checkin_reminders')
    op.drop_table('checkin_reminders')
    op.drop_table('follow_up_days')
    op.drop_index(op.f('ix_follow_ups_person_id'), table_name='follow_ups')
    op.drop_table('follow_ups')
    op.drop_index(op.f('ix_door_visits_household_id'), table_name='door_visits')
    op.drop_table('door_visits')
    op.drop_table('checkin_requests')
    op.drop_index('ix_checkins_day', table_name='checkins')
    op.drop_table('checkins')
    op.drop_table('policies')
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_column('name')
