"""Audit checkpoints are append-only too: triggers refuse UPDATE and DELETE (and TRUNCATE on
PostgreSQL) on `audit_checkpoints`, as 0002 did for `audit_records`; on PostgreSQL, PUBLIC loses
UPDATE, DELETE and TRUNCATE on both audit tables (the service's own role should hold only
SELECT and INSERT there: docs/operations.md). A guard, not the proof: whoever owns the tables
(or holds the SQLite file) can drop triggers; verification checks the signed heads kept outside
the database.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 06:00:00
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_SQLITE = [
    """CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
       BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END""",
    """CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
       BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END""",
]
_PG = [
    """CREATE FUNCTION audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit checkpoints are append-only'; END $$""",
    """CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
       FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_append_only()""",
    """CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
       FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_append_only()""",
    "REVOKE UPDATE, DELETE, TRUNCATE ON audit_records, audit_checkpoints FROM PUBLIC",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for sql in _SQLITE if dialect == "sqlite" else _PG if dialect == "postgresql" else []:
        op.execute(sql)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_no_delete")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_no_change ON audit_checkpoints")
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoints_no_truncate ON audit_checkpoints")
        op.execute("DROP FUNCTION IF EXISTS audit_checkpoints_append_only()")
