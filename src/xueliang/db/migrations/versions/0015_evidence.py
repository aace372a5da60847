"""Evidence exports and holds (issue 14).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 09:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_exports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=False),
        sa.Column("requester", sa.String(length=64), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("channel_ids", sa.JSON(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("purpose", sa.String(length=1000), nullable=False),
        sa.Column("case_number", sa.String(length=100), nullable=False),
        sa.Column("watermark", sa.Boolean(), nullable=False),
        sa.Column("approval_id", sa.Integer(), nullable=True),
        sa.Column("approver", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("files", sa.JSON(), nullable=True),
        sa.Column("hold_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("runner", sa.String(length=64), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_exports")),
    )
    with op.batch_alter_table("evidence_exports", schema=None) as batch_op:
        batch_op.create_index("ix_evidence_exports_requester_id", ["requester_id", "id"], unique=False)
        batch_op.create_index("ix_evidence_exports_state", ["state"], unique=False)
    op.create_table(
        "evidence_holds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_number", sa.String(length=100), nullable=False),
        sa.Column("channel_ids", sa.JSON(), nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("export_id", sa.Integer(), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.Column("release_note", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_holds")),
    )
    with op.batch_alter_table("evidence_holds", schema=None) as batch_op:
        batch_op.create_index("ix_evidence_holds_released_at", ["released_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("evidence_holds", schema=None) as batch_op:
        batch_op.drop_index("ix_evidence_holds_released_at")
    op.drop_table("evidence_holds")
    with op.batch_alter_table("evidence_exports", schema=None) as batch_op:
        batch_op.drop_index("ix_evidence_exports_state")
        batch_op.drop_index("ix_evidence_exports_requester_id")
    op.drop_table("evidence_exports")
