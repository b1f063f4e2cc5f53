"""drop ix_passages_compound_person: who is out is kept in memory

Every register commit had to update this index at a random page per scan (about 4 of the
10 WAL pages a gate commit wrote); its one reader, the who-is-out query, now reads
``GateState.last_passed``, loaded from the register at start.

Revision ID: 7e4b1f0c9d2a
Revises: 5c2d9e7a41f0
Create Date: 2026-11-29 19:40:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "7e4b1f0c9d2a"
down_revision: str | Sequence[str] | None = "5c2d9e7a41f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_passages_compound_person", table_name="passages")


def downgrade() -> None:
    op.create_index(
        "ix_passages_compound_person",
        "passages",
        ["compound_id", "person_id", "scanned_at"],
        unique=False,
    )
