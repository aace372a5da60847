"""Recording storage tiers (issue 14): where a segment lives (local disk, or the object store
after ``recording.tier_after_days``), its object key and the SHA-256 checked when it moved.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 09:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("object_key", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("sha256", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_recordings_tier_end", ["tier", "end"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_recordings_tier_end")
        batch_op.drop_column("sha256")
        batch_op.drop_column("object_key")
