"""Device SIP passwords sealed at rest: devices.password widened to hold "v1:" + AES-GCM text.

Existing clear passwords keep working and are sealed when signalling next starts
(gb28181/credentials.py); the key is not in the database, so this migration cannot seal them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 06:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _widen(old: int, new: int) -> None:
    # SQLite does not enforce VARCHAR lengths, and rebuilding its devices table (batch mode)
    # would drop and recreate a table channels point at: leave it be (as 0003 did for users).
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column("devices", "password", existing_type=sa.String(length=old), type_=sa.String(length=new),
                    existing_nullable=True)


def upgrade() -> None:
    _widen(128, 256)


def downgrade() -> None:
    _widen(256, 128)
