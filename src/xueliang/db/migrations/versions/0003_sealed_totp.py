"""TOTP secrets sealed at rest: users.totp_secret widened to hold "v1:" + AES-GCM text.

Existing plain secrets keep working and are sealed at their next accepted code
(access/users.py).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _widen(old: int, new: int) -> None:
    # SQLite does not enforce VARCHAR lengths, and rebuilding its users table (batch mode)
    # would drop and recreate a table other tables point at: leave it be.
    if op.get_bind().dialect.name == "sqlite":
        return
    op.alter_column("users", "totp_secret", existing_type=sa.String(length=old), type_=sa.String(length=new),
                    existing_nullable=True)


def upgrade() -> None:
    _widen(64, 128)


def downgrade() -> None:
    _widen(128, 64)
