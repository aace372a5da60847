"""Alarm acknowledgements: who on duty took an alarm, when, with what note.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 10:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alarm_acks",
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=400), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_alarm_acks_event_id_events"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_alarm_acks_user_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_alarm_acks")),
    )


def downgrade() -> None:
    op.drop_table("alarm_acks")
