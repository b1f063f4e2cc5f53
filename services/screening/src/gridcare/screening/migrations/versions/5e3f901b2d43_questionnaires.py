"""questionnaires: PHQ-9 and GAD-7 submissions

Revision ID: 5e3f901b2d43
Revises: 4d2e8f0a1c32
Create Date: 2026-12-04 17:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '5e3f901b2d43'
down_revision: Union[str, Sequence[str], None] = '4d2e8f0a1c32'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    # the resident's phone, for the community doctor who calls them back
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=32), nullable=True))
    # the numbers a reply names: the community's policy (screening's part)
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('emergency_number', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('crisis_hotline', sa.String(length=24), nullable=True))
    op.create_table(
        'questionnaire_submissions',
        sa.Column('person_id', sa.String(length=64), nullable=False),
        sa.Column('submission_id', sa.String(length=64), nullable=False),
        sa.Column('instrument', sa.String(length=8), nullable=False),
        sa.Column('answers', sa.JSON(), nullable=False),
        sa.Column('score', sa.Integer(), nullable=False),
        sa.Column('severity', sa.String(length=24), nullable=False),
        sa.Column('follow_up', sa.String(length=24), nullable=False),
        sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reported_by', sa.String(length=64), nullable=True),
        sa.Column('message', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint(
            'person_id', 'submission_id', name=op.f('pk_questionnaire_submissions')
        ),
    )
    with op.batch_alter_table('questionnaire_submissions', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_questionnaire_submissions_received_at'), ['received_at'], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('questionnaire_submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_questionnaire_submissions_received_at'))
    op.drop_table('questionnaire_submissions')
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.drop_column('crisis_hotline')
        batch_op.drop_column('emergency_number')
    with op.batch_alter_table('residents', schema=None) as batch_op:
        batch_op.drop_column('phone')
