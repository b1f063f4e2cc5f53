"""one active quarantine a household: a partial unique index

Revision ID: 9273d45e6187
Revises: 8162c34e5076
Create Date: 2026-12-04 21:20:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '9273d45e6187'
down_revision: Union[str, Sequence[str], None] = '8162c34e5076'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    active = sa.text("status = 'active'")
    op.create_index(
        "uq_household_quarantines_active",
        "household_quarantines",
        ["household_id"],
        unique=True,
        sqlite_where=active,
        postgresql_where=active,
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("uq_household_quarantines_active", table_name="household_quarantines")
