"""Incident centre (issue 16).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 09:15:00
"""

from alembic import op  # noqa: F401  (the tables land with their issue's work)

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
