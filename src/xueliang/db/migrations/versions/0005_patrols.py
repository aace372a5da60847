"""Patrols (轮巡) kept by the platform, shared within a department.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 10:25:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patrols",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("layout", sa.Integer(), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("channel_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_patrols_owner_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrols")),
    )
    op.create_index("ix_patrols_owner", "patrols", ["owner_id"])
    op.create_index("ix_patrols_dept", "patrols", ["department"])


def downgrade() -> None:
    op.drop_index("ix_patrols_dept", table_name="patrols")
    op.drop_index("ix_patrols_owner", table_name="patrols")
    op.drop_table("patrols")
