"""Picture diagnosis: inspection results and each camera's calibration.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "diagnoses",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("channel_id", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("picture", sa.Boolean(), nullable=False),
        sa.Column("faults", sa.JSON(), nullable=False),
        sa.Column("confirmed", sa.JSON(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("profile", sa.String(length=8), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=400), nullable=True),
        sa.Column("home_preset", sa.Boolean(), nullable=True),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnoses")),
    )
    with op.batch_alter_table("diagnoses", schema=None) as batch_op:
        batch_op.create_index("ix_diagnoses_channel_at", ["channel_id", "at"], unique=False)
    op.create_table(
        "diagnosis_channels",
        sa.Column("channel_id", sa.String(length=20), nullable=False),
        sa.Column("reference_key", sa.String(length=200), nullable=True),
        sa.Column("reference_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reference_by", sa.String(length=64), nullable=True),
        sa.Column("thresholds", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_diagnosis_channels")),
    )


def downgrade() -> None:
    op.drop_table("diagnosis_channels")
    with op.batch_alter_table("diagnoses", schema=None) as batch_op:
        batch_op.drop_index("ix_diagnoses_channel_at")
    op.drop_table("diagnoses")
