"""An index on channels.updated_at: the console asks what changed since a moment.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:15:00
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_channels_updated_at", "channels", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_channels_updated_at", table_name="channels")
