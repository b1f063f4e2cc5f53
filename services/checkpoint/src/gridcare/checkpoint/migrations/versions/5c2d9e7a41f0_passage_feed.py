"""passage feed: PassagesRecorded from the register itself, not through the outbox

Revision ID: 5c2d9e7a41f0
Revises: 3a1ebb6b2b73
Create Date: 2026-11-25 18:05:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c2d9e7a41f0"
down_revision: str | Sequence[str] | None = "3a1ebb6b2b73"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "passage_feed",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("sent_to", sa.BigInteger(), nullable=False),
        sa.Column("pending_to", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_passage_feed")),
    )


def downgrade() -> None:
    op.drop_table("passage_feed")
