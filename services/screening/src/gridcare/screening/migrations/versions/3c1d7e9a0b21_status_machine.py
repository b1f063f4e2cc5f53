"""status machine: the health status state machine: who set each step, in what role, and why

Revision ID: 3c1d7e9a0b21
Revises: 580227eac8df
Create Date: 2026-12-04 17:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '3c1d7e9a0b21'
down_revision: Union[str, Sequence[str], None] = '580227eac8df'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('staff',
    sa.Column('staff_id', sa.String(length=64), nullable=False),
    sa.Column('community_id', sa.String(length=64), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('staff_id', name=op.f('pk_staff'))
    )
    op.create_table('grids',
    sa.Column('grid_id', sa.String(length=64), nullable=False),
    sa.Column('community_id', sa.String(length=64), nullable=False),
    sa.Column('worker_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('grid_id', name=op.f('pk_grids'))
    )
    with op.batch_alter_table('grids', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grids_worker_id'), ['worker_id'], unique=False)

    for table in ('person_status', 'status_history'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('role', sa.String(length=32), server_default='', nullable=False))
            batch_op.add_column(sa.Column('previous_status', sa.String(length=32), nullable=True))
            batch_op.add_column(sa.Column('source', sa.String(length=200), server_default='', nullable=False))


def downgrade() -> None:
    """Downgrade schema."""
    for table in ('status_history', 'person_status'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('source')
            batch_op.drop_column('previous_status')
            batch_op.drop_column('role')

    with op.batch_alter_table('grids', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grids_worker_id'))

    op.drop_table('grids')
    op.drop_table('staff')
