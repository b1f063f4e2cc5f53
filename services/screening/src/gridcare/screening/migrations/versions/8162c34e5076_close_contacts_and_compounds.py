"""close contacts and compounds: close-contact proposals, compound levels

Revision ID: 8162c34e5076
Revises: 7051b23d4f65
Create Date: 2026-12-04 17:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '8162c34e5076'
down_revision: Union[str, Sequence[str], None] = '7051b23d4f65'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("buildings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grid_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("compounds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("control_level", sa.String(length=16), nullable=True))
    with op.batch_alter_table("policies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_window_minutes", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("contact_lookback_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("contacts_quarantine", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("seal_on_confirmed", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("epidemic_free_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("epidemic_free_level", sa.String(length=16), nullable=True))
    op.create_table(
        "contact_proposals",
        sa.Column("case_person_id", sa.String(length=64), nullable=False),
        sa.Column("candidate_id", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("grid_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("gate_id", sa.String(length=64), nullable=True),
        sa.Column("passed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "case_person_id", "candidate_id", name=op.f("pk_contact_proposals")
        ),
    )
    with op.batch_alter_table("contact_proposals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contact_proposals_grid_id"), ["grid_id"], unique=False
        )
        batch_op.create_index("ix_contact_proposals_candidate", ["candidate_id"], unique=False)
    op.create_table(
        "compound_levels",
        sa.Column("compound_id", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_case_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_case_person_id", sa.String(length=64), nullable=True),
        sa.Column("epidemic_free_since", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("compound_id", name=op.f("pk_compound_levels")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("compound_levels")
    with op.batch_alter_table("contact_proposals", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_proposals_candidate")
        batch_op.drop_index(batch_op.f("ix_contact_proposals_grid_id"))
    op.drop_table("contact_proposals")
    with op.batch_alter_table("policies", schema=None) as batch_op:
        for column in (
            "epidemic_free_level",
            "epidemic_free_days",
            "seal_on_confirmed",
            "contacts_quarantine",
            "contact_lookback_days",
            "contact_window_minutes",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("compounds", schema=None) as batch_op:
        batch_op.drop_column("control_level")
    with op.batch_alter_table("buildings", schema=None) as batch_op:
        batch_op.drop_column("grid_id")
