"""test campaigns: nucleic-acid campaigns, their people and results

Revision ID: 7051b23d4f65
Revises: 6f40a12c3e54
Create Date: 2026-12-04 17:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '7051b23d4f65'
down_revision: Union[str, Sequence[str], None] = '6f40a12c3e54'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "test_campaigns",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("community_id", sa.String(length=64), nullable=False),
        sa.Column("place_kind", sa.String(length=16), nullable=False),
        sa.Column("place_id", sa.String(length=64), nullable=False),
        sa.Column("place_name", sa.String(length=200), nullable=False),
        sa.Column("site", sa.String(length=200), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("door_call_after_min", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_test_campaigns")),
    )
    op.create_table(
        "campaign_people",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("building_id", sa.String(length=64), nullable=False),
        sa.Column("excluded", sa.String(length=32), nullable=False),
        sa.Column("joined", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "person_id", name=op.f("pk_campaign_people")),
    )
    op.create_table(
        "campaign_results",
        sa.Column("sample_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("tested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lab", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sample_id", name=op.f("pk_campaign_results")),
    )
    op.create_index(
        "ix_campaign_results_campaign_person",
        "campaign_results",
        ["campaign_id", "person_id"],
        unique=False,
    )
    op.create_index(
        "ix_campaign_results_person", "campaign_results", ["person_id"], unique=False
    )
    op.create_table(
        "campaign_rounds",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "round", name=op.f("pk_campaign_rounds")),
    )
    op.create_table(
        "campaign_uploads",
        sa.Column("upload_id", sa.String(length=64), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("upload_id", "part", name=op.f("pk_campaign_uploads")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("campaign_uploads")
    op.drop_table("campaign_rounds")
    op.drop_index("ix_campaign_results_person", table_name="campaign_results")
    op.drop_index("ix_campaign_results_campaign_person", table_name="campaign_results")
    op.drop_table("campaign_results")
    op.drop_table("campaign_people")
    op.drop_table("test_campaigns")
