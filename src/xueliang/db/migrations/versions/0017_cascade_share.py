"""Cascade shares (issue 15): what each upper platform is shown of our catalog, as JSON on its
row (``upper_platforms.share``: all, or divisions/classes/departments/channels, the 215/216 tree
it is shown under, the IDs mapped to its numbering, and whether it may control).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 09:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upper_platforms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("share", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("upper_platforms", schema=None) as batch_op:
        batch_op.drop_column("share")
