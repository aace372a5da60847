"""Upper platforms: the platforms xueliang registers to as a lower platform (cascade).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 07:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upper_platforms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("sip_id", sa.String(length=20), nullable=False),
        sa.Column("domain", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(length=8), nullable=False),
        sa.Column("password", sa.String(length=255), nullable=False),
        sa.Column("register_expires", sa.Integer(), nullable=False),
        sa.Column("keepalive_interval", sa.Integer(), nullable=False),
        sa.Column("keepalive_max_missed", sa.Integer(), nullable=False),
        sa.Column("local_sip_id", sa.String(length=20), nullable=True),
        sa.Column("charset", sa.String(length=8), nullable=False),
        sa.Column("rtp_transport", sa.String(length=16), nullable=False),
        sa.Column("announce_host", sa.String(length=255), nullable=True),
        sa.Column("announce_port", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upper_platforms")),
        sa.UniqueConstraint("name", name=op.f("uq_upper_platforms_name")),
    )


def downgrade() -> None:
    op.drop_table("upper_platforms")
