"""Phone reports are idempotent (issue 16, section 5): the phone's own reference of a report
(kept in ``external_ref``) is unique per reporter, so a report its offline queue sends again
after a lost answer is taken in once.

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-04 12:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0019'
branch_labels = None
depends_on = None

_PHONE_REPORT = sa.text("link_id IS NULL AND source IN ('grid', 'resident')")


def upgrade() -> None:
    op.create_index("uq_incidents_phone_ref", "incidents", ["created_by", "external_ref"], unique=True,
                    postgresql_where=_PHONE_REPORT, sqlite_where=_PHONE_REPORT)


def downgrade() -> None:
    op.drop_index("uq_incidents_phone_ref", table_name="incidents")
