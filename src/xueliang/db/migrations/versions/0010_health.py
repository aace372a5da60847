"""Usable at all times: state intervals, daily rows, maintenance teams, fault tickets, the
notification outbox, reports and the scheduler's job progress.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:55:15
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "health_daily_groups",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("division_code", sa.String(length=20), nullable=False),
        sa.Column("point_class", sa.Integer(), nullable=True),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("online_s", sa.BigInteger(), nullable=False),
        sa.Column("fault_s", sa.BigInteger(), nullable=False),
        sa.Column("offline_s", sa.BigInteger(), nullable=False),
        sa.Column("unknown_s", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("pictures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_daily_groups")),
    )
    with op.batch_alter_table("health_daily_groups", schema=None) as batch_op:
        batch_op.create_index("ix_health_daily_groups_day_div", ["day", "division_code"], unique=False)
    op.create_table('health_daily',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('channel_id', sa.String(length=20), nullable=False),
    sa.Column('division_code', sa.String(length=20), nullable=False),
    sa.Column('point_class', sa.Integer(), nullable=True),
    sa.Column('department', sa.String(length=200), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('online_s', sa.Integer(), nullable=False),
    sa.Column('fault_s', sa.Integer(), nullable=False),
    sa.Column('offline_s', sa.Integer(), nullable=False),
    sa.Column('unknown_s', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('pictures', sa.Integer(), nullable=False),
    sa.Column('rolled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'channel_id', name=op.f('pk_health_daily'))
    )
    with op.batch_alter_table('health_daily', schema=None) as batch_op:
        batch_op.create_index('ix_health_daily_day_div', ['day', 'division_code'], unique=False)
        batch_op.create_index('ix_health_daily_team_day', ['team_id', 'day'], unique=False)

    op.create_table('health_intervals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('subject', sa.String(length=20), nullable=False),
    sa.Column('subject_kind', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('detail', sa.String(length=32), nullable=True),
    sa.Column('start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('since', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_intervals')),
    sa.UniqueConstraint('subject', 'start', name='uq_health_intervals_subject_start')
    )
    with op.batch_alter_table('health_intervals', schema=None) as batch_op:
        batch_op.create_index('ix_health_intervals_end', ['end'], unique=False)

    op.create_table('health_reports',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('fmt', sa.String(length=4), nullable=False),
    sa.Column('path', sa.String(length=400), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_reports')),
    sa.UniqueConstraint('kind', 'period_start', 'fmt', name='uq_health_reports_kind_period_fmt')
    )
    op.create_table('health_tickets',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('channel_id', sa.String(length=20), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.String(length=400), nullable=True),
    sa.Column('point_class', sa.Integer(), nullable=True),
    sa.Column('fault_since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_by', sa.String(length=64), nullable=True),
    sa.Column('ack_due', sa.DateTime(timezone=True), nullable=False),
    sa.Column('repair_due', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('repairing_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('photo', sa.String(length=100), nullable=True),
    sa.Column('reopened', sa.Integer(), nullable=False),
    sa.Column('repeat', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_tickets'))
    )
    with op.batch_alter_table('health_tickets', schema=None) as batch_op:
        batch_op.create_index('ix_health_tickets_channel_opened', ['channel_id', 'opened_at'], unique=False)
        batch_op.create_index('ix_health_tickets_status_team', ['status', 'team_id'], unique=False)

    op.create_table('maintenance_teams',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('company', sa.String(length=200), nullable=False),
    sa.Column('contacts', sa.JSON(), nullable=True),
    sa.Column('supervisor_email', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=200), nullable=True),
    sa.Column('webhook_url', sa.String(length=1000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_teams')),
    sa.UniqueConstraint('name', name=op.f('uq_maintenance_teams_name'))
    )
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=1000), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('subject', sa.String(length=400), nullable=False),
    sa.Column('body', sa.JSON(), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=400), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('key', name=op.f('uq_notifications_key'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_status_next', ['status', 'next_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notifications_team_id'), ['team_id'], unique=False)

    op.create_table('scheduler_jobs',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('done_until', sa.String(length=32), nullable=True),
    sa.Column('last_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=400), nullable=True),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_jobs'))
    )
    op.create_table('health_ticket_steps',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('step', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['health_tickets.id'], name=op.f('fk_health_ticket_steps_ticket_id_health_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_ticket_steps'))
    )
    with op.batch_alter_table('health_ticket_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_health_ticket_steps_ticket_id'), ['ticket_id'], unique=False)

    op.create_table('maintenance_duties',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ref', sa.String(length=20), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['maintenance_teams.id'], name=op.f('fk_maintenance_duties_team_id_maintenance_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_duties')),
    sa.UniqueConstraint('kind', 'ref', name='uq_maintenance_duties_kind_ref')
    )
    with op.batch_alter_table('maintenance_duties', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maintenance_duties_team_id'), ['team_id'], unique=False)

    op.create_table('maintenance_members',
    sa.Column('team_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['maintenance_teams.id'], name=op.f('fk_maintenance_members_team_id_maintenance_teams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_maintenance_members_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('team_id', 'user_id', name=op.f('pk_maintenance_members'))
    )
    with op.batch_alter_table('maintenance_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_maintenance_members_user_id'), ['user_id'], unique=False)



def downgrade() -> None:
    op.drop_table("health_daily_groups")
    with op.batch_alter_table('maintenance_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maintenance_members_user_id'))

    op.drop_table('maintenance_members')
    with op.batch_alter_table('maintenance_duties', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_maintenance_duties_team_id'))

    op.drop_table('maintenance_duties')
    with op.batch_alter_table('health_ticket_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_health_ticket_steps_ticket_id'))

    op.drop_table('health_ticket_steps')
    op.drop_table('scheduler_jobs')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_team_id'))
        batch_op.drop_index('ix_notifications_status_next')

    op.drop_table('notifications')
    op.drop_table('maintenance_teams')
    with op.batch_alter_table('health_tickets', schema=None) as batch_op:
        batch_op.drop_index('ix_health_tickets_status_team')
        batch_op.drop_index('ix_health_tickets_channel_opened')

    op.drop_table('health_tickets')
    op.drop_table('health_reports')
    with op.batch_alter_table('health_intervals', schema=None) as batch_op:
        batch_op.drop_index('ix_health_intervals_end')

    op.drop_table('health_intervals')
    with op.batch_alter_table('health_daily', schema=None) as batch_op:
        batch_op.drop_index('ix_health_daily_team_day')
        batch_op.drop_index('ix_health_daily_day_div')

    op.drop_table('health_daily')
