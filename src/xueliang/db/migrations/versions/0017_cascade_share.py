"""Cascade shares and upstream sessions (issue 15).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 09:15:00
"""

from alembic import op  # noqa: F401  (the tables land with their issue's work)

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
