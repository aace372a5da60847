"""Incident centre (issue 16): cases, their dispatches to departments, steps, attachments, the
rules that open cases from alarms, the links to emergency systems; cameras by coordinates.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 09:15:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "incident_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("secret", sa.String(length=255), nullable=False),
        sa.Column("webhook_url", sa.String(length=1000), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_links")),
        sa.UniqueConstraint("key_id", name=op.f("uq_incident_links_key_id")),
        sa.UniqueConstraint("name", name=op.f("uq_incident_links_name")),
    )
    op.create_table(
        "incident_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("alarm_types", sa.JSON(), nullable=True),
        sa.Column("division", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_incident_rules_name")),
    )
    op.create_table(
        "incidents",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("address", sa.String(length=400), nullable=True),
        sa.Column("division_code", sa.String(length=20), nullable=True),
        sa.Column("division_basis", sa.String(length=16), nullable=False),
        sa.Column("reporter_name", sa.String(length=64), nullable=True),
        sa.Column("reporter_phone", sa.String(length=32), nullable=True),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("alarm_event_id", sa.BigInteger(), nullable=True),
        sa.Column("alarm_channel_id", sa.String(length=20), nullable=True),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("external_ref", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        _at("created_at"),
        _at("dispatched_at", True),
        _at("closed_at", True),
        sa.Column("close_seconds", sa.Integer(), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        _at("escalated_at", True),
        sa.Column("merged_into", sa.BigInteger(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("rating_note", sa.String(length=400), nullable=True),
        _at("rated_at", True),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
        sa.UniqueConstraint("alarm_event_id", name=op.f("uq_incidents_alarm_event_id")),
        sa.UniqueConstraint("link_id", "external_ref", name="uq_incidents_link_ref"),
    )
    op.create_index("ix_incidents_cat_id", "incidents", ["category", "id"], unique=False)
    op.create_index("ix_incidents_created_at", "incidents", ["created_at"], unique=False)
    op.create_index("ix_incidents_div_id", "incidents", ["division_code", "id"], unique=False)
    op.create_index("ix_incidents_status_id", "incidents", ["status", "id"], unique=False)
    open_case = sa.text("status IN ('received', 'dispatched', 'handling', 'fed_back')")
    op.create_index("ix_incidents_open_id", "incidents", ["id"], unique=False, postgresql_where=open_case,
                    sqlite_where=open_case)
    op.create_index("ix_incidents_flagged_id", "incidents", ["id"], unique=False, postgresql_where=sa.text("flagged"),
                    sqlite_where=sa.text("flagged"))
    op.create_table(
        "incident_attachments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.String(length=20), nullable=True),
        _at("at"),
        sa.Column("by", sa.String(length=64), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_incident_attachments_incident_id_incidents"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_attachments")),
        sa.UniqueConstraint("key", name=op.f("uq_incident_attachments_key")),
    )
    op.create_index(op.f("ix_incident_attachments_incident_id"), "incident_attachments", ["incident_id"],
                    unique=False)
    op.create_table(
        "incident_dispatches",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("incident_id", _ID, nullable=False),
        sa.Column("department", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("deadline"),
        _at("dispatched_at"),
        sa.Column("dispatched_by", sa.String(length=64), nullable=False),
        _at("acknowledged_at", True),
        _at("fed_back_at", True),
        sa.Column("feedback", sa.Text(), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        _at("escalated_at", True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_incident_dispatches_incident_id_incidents"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_dispatches")),
    )
    op.create_index("ix_incident_dispatches_dept_incident", "incident_dispatches", ["department", "incident_id"],
                    unique=False)
    op.create_index(op.f("ix_incident_dispatches_incident_id"), "incident_dispatches", ["incident_id"],
                    unique=False)
    op.create_index("ix_incident_dispatches_status_deadline", "incident_dispatches", ["status", "deadline"],
                    unique=False)
    op.create_table(
        "incident_steps",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("incident_id", _ID, nullable=False),
        sa.Column("dispatch_id", sa.BigInteger(), nullable=True),
        _at("at"),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("department", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("attachments", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"],
                                name=op.f("fk_incident_steps_incident_id_incidents"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_steps")),
    )
    op.create_index(op.f("ix_incident_steps_incident_id"), "incident_steps", ["incident_id"], unique=False)
    # Cameras near a place: a bounding box on indexed coordinates (no PostGIS).
    op.create_index("ix_channels_lat_lon", "channels", ["latitude", "longitude"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_channels_lat_lon", table_name="channels")
    op.drop_index(op.f("ix_incident_steps_incident_id"), table_name="incident_steps")
    op.drop_table("incident_steps")
    op.drop_index("ix_incident_dispatches_status_deadline", table_name="incident_dispatches")
    op.drop_index(op.f("ix_incident_dispatches_incident_id"), table_name="incident_dispatches")
    op.drop_index("ix_incident_dispatches_dept_incident", table_name="incident_dispatches")
    op.drop_table("incident_dispatches")
    op.drop_index(op.f("ix_incident_attachments_incident_id"), table_name="incident_attachments")
    op.drop_table("incident_attachments")
    op.drop_index("ix_incidents_status_id", table_name="incidents")
    op.drop_index("ix_incidents_open_id", table_name="incidents")
    op.drop_index("ix_incidents_flagged_id", table_name="incidents")
    op.drop_index("ix_incidents_div_id", table_name="incidents")
    op.drop_index("ix_incidents_created_at", table_name="incidents")
    op.drop_index("ix_incidents_cat_id", table_name="incidents")
    op.drop_table("incidents")
    op.drop_table("incident_rules")
    op.drop_table("incident_links")
