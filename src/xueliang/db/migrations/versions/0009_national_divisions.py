"""The national division list: divisions learn where they come from (source), whether a later
list retired them (historical) and a grid's boundary; division_lists records each list loaded.

The list itself is data, not schema: `xueliang db upgrade` and start-up load it after the
migrations (registry/divisions.py), and again whenever a newer list ships.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("divisions") as b:
        b.add_column(sa.Column("source", sa.String(length=16), server_default="local", nullable=False))
        b.add_column(sa.Column("historical", sa.Boolean(), server_default="0", nullable=False))
        b.add_column(sa.Column("boundary", sa.Text(), nullable=True))
    op.create_table(
        "division_lists",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("renamed", sa.Integer(), nullable=False),
        sa.Column("retired", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_division_lists")),
    )


def downgrade() -> None:
    op.drop_table("division_lists")
    with op.batch_alter_table("divisions") as b:
        b.drop_column("boundary")
        b.drop_column("historical")
        b.drop_column("source")
