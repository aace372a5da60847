"""The phone app (issue 16, section 5): residents' invitation codes, grid members' last
positions, and the resident-visible flag of channels.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 10:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channels") as b:
        b.add_column(sa.Column("resident_visible", sa.Boolean(), server_default="0", nullable=False))
    op.create_table(
        "resident_codes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("division_code", sa.String(length=20), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_resident_codes_code_hash")),
    )
    op.create_table(
        "grid_positions",
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("division_code", sa.String(length=20), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_grid_positions")),
    )


def downgrade() -> None:
    op.drop_table("grid_positions")
    op.drop_table("resident_codes")
    with op.batch_alter_table("channels") as b:
        b.drop_column("resident_visible")
