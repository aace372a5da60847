"""Recording plans per channel and defaults (issue 14).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 09:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recording_plans",
        sa.Column("channel_id", sa.String(length=20), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=True),
        sa.Column("pre_seconds", sa.Float(), nullable=True),
        sa.Column("post_seconds", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], name=op.f("fk_recording_plans_channel_id_channels"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_recording_plans")),
    )


def downgrade() -> None:
    op.drop_table("recording_plans")
