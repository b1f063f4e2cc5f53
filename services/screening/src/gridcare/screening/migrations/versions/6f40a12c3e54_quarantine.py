"""quarantine: home quarantine of households, central quarantine sites and their rooms

Revision ID: 6f40a12c3e54
Revises: 5e3f901b2d43
Create Date: 2026-12-04 17:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '6f40a12c3e54'
down_revision: Union[str, Sequence[str], None] = '5e3f901b2d43'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('household_quarantines',
    sa.Column('household_id', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_by', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_by', sa.String(length=200), nullable=True),
    sa.Column('end_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('household_id', 'started_at', name=op.f('pk_household_quarantines'))
    )
    with op.batch_alter_table('household_quarantines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_household_quarantines_status'), ['status'], unique=False)

    op.create_table('quarantine_sites',
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=False),
    sa.Column('community_id', sa.String(length=64), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('added_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('site_id', name=op.f('pk_quarantine_sites'))
    )
    op.create_table('quarantine_rooms',
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('room_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('site_id', 'room_id', name=op.f('pk_quarantine_rooms'))
    )
    op.create_table('quarantine_occupants',
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('room_id', sa.String(length=64), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('intake_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['site_id', 'room_id'], ['quarantine_rooms.site_id', 'quarantine_rooms.room_id'], name=op.f('fk_quarantine_occupants_site_id_quarantine_rooms')),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_quarantine_occupants')),
    sa.UniqueConstraint('site_id', 'room_id', name=op.f('uq_quarantine_occupants_site_id'))
    )
    op.create_table('quarantine_stays',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.String(length=64), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('room_id', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.Text(), nullable=True),
    sa.Column('intake_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantine_stays'))
    )
    with op.batch_alter_table('quarantine_stays', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantine_stays_person_id'), ['person_id'], unique=False)

    op.create_table('quarantine_intakes',
    sa.Column('intake_id', sa.String(length=64), nullable=False),
    sa.Column('site_id', sa.String(length=64), nullable=False),
    sa.Column('people', sa.JSON(), nullable=False),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('intake_id', name=op.f('pk_quarantine_intakes'))
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('quarantine_intakes')
    with op.batch_alter_table('quarantine_stays', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantine_stays_person_id'))

    op.drop_table('quarantine_stays')
    op.drop_table('quarantine_occupants')
    op.drop_table('quarantine_rooms')
    op.drop_table('quarantine_sites')
    with op.batch_alter_table('household_quarantines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_household_quarantines_status'))

    op.drop_table('household_quarantines')
