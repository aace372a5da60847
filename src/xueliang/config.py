"""One settings tree for the whole platform (Frigate-style: one pydantic model, extra="forbid").

Sources, highest first: ``XUELIANG_*`` environment variables (nested with ``__``, e.g.
``XUELIANG_DATABASE__URL``), then a TOML file, then defaults that work with no file at all.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from xueliang.timetable import TimetableError, parse_timetable


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(_Section):
    url: str = "sqlite+aiosqlite:///./var/xueliang.db"
    echo: bool = False
    pool_size: int = Field(default=10, ge=1, le=500)
    #: Seconds to open a PostgreSQL connection (TCP, TLS, login) before giving up with an error;
    #: asyncpg's own default is 60 s, and an unreachable primary held every request that long.
    connect_timeout: float = Field(default=10.0, gt=0, le=300)


class ApiConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    #: Lifetime of a login token, seconds.
    token_ttl: int = Field(default=8 * 3600, ge=60)
    #: Lifetime of a signed media URL token (for players that cannot send headers), seconds.
    media_token_ttl: int = Field(default=300, ge=10)
    page_size_max: int = Field(default=1000, ge=10)
    #: Largest upload accepted by the import endpoints, bytes.
    upload_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)
    #: TLS: PEM certificate chain and private key; both set = the API serves HTTPS (and HSTS).
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiConfig:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("tls_certfile and tls_keyfile go together")
        return self


class SipConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=5060, ge=0, le=65535)
    #: The platform's own 20-digit GB/T 28181 ID.
    id: str = "34020000002000000001"
    #: SIP domain / digest realm; default: the first 10 digits of ``id``.
    domain: str = ""
    #: Platform-wide device password (per-device passwords override it). Empty: generated on
    #: first start and kept in ``<storage.var_dir>/sip_password`` (0600); the log says where.
    password: str = ""
    #: What to do with a device that authenticates but is not in the registry: ``pending``
    #: holds it for an administrator; ``open`` admits it (the demo and tests), ``reject`` refuses.
    admission: Literal["open", "pending", "reject"] = "pending"
    keepalive_interval: float = Field(default=60.0, gt=0)
    keepalive_misses: int = Field(default=3, ge=1)
    #: Wrong passwords before a temporary ban, and its length in seconds.
    ban_after_failures: int = Field(default=5, ge=1)
    ban_seconds: float = Field(default=300.0, ge=0)
    #: Requests per second accepted from one source address before rate limiting.
    rate_limit_per_address: float = Field(default=200.0, gt=0)
    request_timeout: float = Field(default=8.0, gt=0)
    #: While requests keep coming, read the UDP port every this many milliseconds instead of
    #: waking for each datagram (as media.rtp_poll_ms does for RTP); back to waking on the first
    #: request after 100 ms without any. 0: wake for every datagram.
    poll_ms: float = Field(default=5.0, ge=0, le=50)
    #: The largest SIP message sent to an upper platform (cascade) over UDP: catalog answers
    #: are cut into parts that fit. 1300 is RFC 3261 §18.1.1's bound when the path MTU is not
    #: known (about one catalog item a part); on a video private network that passes IP
    #: fragments, GB/T 28181 platforms take more (8000: about 14 items a part, docs/performance.md).
    cascade_udp_message: int = Field(default=1300, ge=600, le=65000)
    #: The same over TCP (no fragments to lose; stays under the 64 KiB most SIP stacks read).
    cascade_tcp_message: int = Field(default=60000, ge=1300, le=65000)
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _id_is_gb(cls, v: str) -> str:
        if len(v) != 20 or not v.isdigit():
            raise ValueError("must be a 20-digit GB/T 28181 ID")
        return v

    @model_validator(mode="after")
    def _default_domain(self) -> SipConfig:
        if not self.domain:
            self.domain = self.id[:10]
        return self


class MediaConfig(_Section):
    host: str = "127.0.0.1"
    #: The address put in SDP offers; default: ``host``.
    announce_ip: str = ""
    rtp_port: int = Field(default=30000, ge=0, le=65535)
    rtp_tcp_port: int = Field(default=30000, ge=0, le=65535)
    #: [first, last] UDP ports for one port per stream (GB/T 28181 INVITEs over UDP): for devices
    #: that ignore the SSRC, and a kernel receive buffer per stream. Empty: the one shared port.
    rtp_port_range: tuple[int, int] | None = None
    #: [first, last] ports of video sent to upper platforms (cascade): the UDP port it leaves
    #: from, the TCP port an upper connects to (passive) or we connect from (active), one per
    #: stream, for the firewall between us and the upper. Empty: ports the OS picks.
    upstream_port_range: tuple[int, int] | None = None
    #: While RTP flows on the shared port (or on RTP/TCP connections), read it every this many
    #: milliseconds instead of waking for every datagram or write (as network drivers do under
    #: load: NAPI); back to waking on the first packet after 100 ms without any. 5 ms cut the
    #: relay's CPU by about a fifth at 50 streams for 3.5 ms more latency (docs/performance.md).
    #: 0: wake for every datagram or write.
    rtp_poll_ms: float = Field(default=5.0, ge=0, le=50)
    #: The shared RTP port's kernel receive buffer, MiB: what arrives while the process is busy
    #: elsewhere (a burst of viewers joining, a key frame of every stream at once) waits here,
    #: and what does not fit is lost. At 300 streams of 2 Mbit/s a process takes about 59,000
    #: datagrams a second: 32 MiB overflowed in two of six 600-stream runs (after stalls of 0.4 and
    #: 1.1 s), 128 MiB in none of six, through stalls up to 1.4 s (docs/performance.md). The
    #: kernel takes memory only for what is queued. Past ``net.core.rmem_max`` it needs
    #: CAP_NET_ADMIN; without, the kernel caps it (the status API shows what was granted).
    rtp_receive_buffer_mb: int = Field(default=128, ge=1, le=2048)
    #: Seconds a stream lives after its last viewer leaves.
    idle_stop_seconds: float = Field(default=15.0, ge=0)
    #: Seconds without RTP before a stream is declared dead.
    rtp_timeout: float = Field(default=10.0, gt=0)
    #: G.711 audio: transcode to AAC, or drop.
    g711: Literal["aac", "drop"] = "drop"
    max_transcodes: int = Field(default=2, ge=0)
    enabled: bool = True

    @model_validator(mode="after")
    def _default_announce(self) -> MediaConfig:
        if not self.announce_ip:
            self.announce_ip = self.host
        r = self.rtp_port_range
        if r is not None:
            lo, hi = r
            if not 1024 <= lo <= hi <= 65535:
                raise ValueError(f"rtp_port_range must be [first, last] within 1024-65535, got [{lo}, {hi}]")
            if lo <= self.rtp_port <= hi:
                raise ValueError(f"rtp_port_range [{lo}, {hi}] must not contain rtp_port {self.rtp_port}")
        u = self.upstream_port_range
        if u is not None:
            lo, hi = u
            if not 1024 <= lo <= hi <= 65535:
                raise ValueError(f"upstream_port_range must be [first, last] within 1024-65535, got [{lo}, {hi}]")
            if lo <= self.rtp_port <= hi or lo <= self.rtp_tcp_port <= hi:
                raise ValueError(f"upstream_port_range [{lo}, {hi}] must not contain rtp_port or rtp_tcp_port")
            if r is not None and lo <= r[1] and r[0] <= hi:
                raise ValueError(f"upstream_port_range [{lo}, {hi}] must not overlap rtp_port_range {list(r)}")
        return self


class PurposeRule(_Section):
    """A rule marking an action sensitive (安全使用审核). Every condition given must hold."""

    name: str = Field(min_length=1, max_length=64)
    #: Actions it covers, e.g. ["media.playback", "media.download"] (see access.policy.Action).
    actions: list[str] = Field(min_length=1)
    #: Channel conditions; empty / null = any.
    point_classes: list[int] = []
    key_site: bool | None = None
    tiers: list[str] = []
    #: The channel belongs to another department than the user's (users with a department only).
    outside_department: bool = False
    #: "purpose": a stated purpose (X-Purpose, optional X-Case); "approval": also a second
    #: authorised person's approval, which gives a grant limited in time and scope.
    require: Literal["purpose", "approval"] = "purpose"
    #: The case / ticket number is mandatory too.
    case_required: bool = False

    @field_validator("actions")
    @classmethod
    def _known_actions(cls, v: list[str]) -> list[str]:
        from xueliang.actions import Action

        known = {a.value for a in Action}
        bad = [a for a in v if a not in known]
        if bad:
            raise ValueError(f"unknown actions {bad} (known: {', '.join(sorted(known))})")
        return v

    @model_validator(mode="after")
    def _approval_can_be_given(self) -> PurposeRule:
        # Approvals give channel actions only: an approval rule on another action could never
        # be met, and would block that action for everyone.
        from xueliang.actions import CHANNEL_ACTIONS

        if self.require == "approval":
            other = [a for a in self.actions if a not in CHANNEL_ACTIONS]
            if other:
                raise ValueError(f"rule {self.name!r}: an approval can be given for channel actions only "
                                 f"({', '.join(sorted(CHANNEL_ACTIONS))}), not {other}")
        return self


def _default_rules() -> list[PurposeRule]:
    return [
        PurposeRule(
            name="class-i-footage", actions=["media.playback", "media.download"], point_classes=[1]
        ),
        PurposeRule(name="key-site-footage", actions=["media.playback", "media.download"], key_site=True),
        PurposeRule(
            name="key-site-export", actions=["media.download", "media.export"], key_site=True, require="approval"
        ),
        PurposeRule(
            name="outside-department",
            actions=["media.live", "media.playback", "media.download", "device.ptz"],
            outside_department=True,
        ),
        PurposeRule(name="lookout-ptz", actions=["device.ptz"], tiers=["high"]),
    ]


class AccessConfig(_Section):
    """Identity, permissions, approvals, audit and hardening (全程可控). See docs/access.md."""

    #: Roles that must use a TOTP second factor; the first login of such a user enrolls.
    totp_required_roles: list[str] = ["administrator", "auditor"]
    totp_issuer: str = "xueliang"
    #: Sensitive-action rules; the default list is in docs/access.md.
    rules: list[PurposeRule] = Field(default_factory=_default_rules)
    #: Longest time an approval may grant, and the default, minutes.
    approval_max_minutes: int = Field(default=24 * 60, ge=1)
    approval_default_minutes: int = Field(default=120, ge=1)
    #: Pending approval requests lapse after this many hours.
    approval_request_hours: int = Field(default=24, ge=1)
    #: Login attempts per client address: burst, then one every ``login_refill_seconds``.
    login_burst: int = Field(default=10, ge=1)
    login_refill_seconds: float = Field(default=6.0, gt=0)
    #: API requests per client address and per token: burst and sustained rate per second.
    api_burst: int = Field(default=300, ge=1)
    api_rate: float = Field(default=100.0, gt=0)
    #: Audit: key file for signing checkpoints (outside the database). Default var/audit.key;
    #: the XUELIANG_AUDIT_KEY environment variable (hex or text) wins over both.
    audit_key_file: Path | None = None
    #: Audit: file the signed chain head is appended to at every flush (and checkpoints), outside
    #: the database. Default var/audit/checkpoints.jsonl; in production a path outside the data
    #: directory, append-only and copied off the host (docs/operations.md).
    audit_heads_file: Path | None = None
    #: Seconds between signed checkpoints (0 = only on demand and at shutdown).
    audit_checkpoint_seconds: float = Field(default=300.0, ge=0)
    #: Writer batching: most records per transaction, and the longest wait before a write.
    audit_batch_max: int = Field(default=5000, ge=1)
    audit_flush_seconds: float = Field(default=0.2, gt=0)
    #: Content-Security-Policy of the console and API responses ("" = none).
    csp: str = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src * data: blob:; media-src 'self' blob:; connect-src 'self' ws: wss:; "
        "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; frame-ancestors 'self'; "
        "form-action 'self'"
    )
    #: Strict-Transport-Security max-age, sent on HTTPS responses (0 = none).
    hsts_seconds: int = Field(default=365 * 24 * 3600, ge=0)
    #: Seconds between reloads of grants from the database (changes made in this process
    #: apply at once; this picks up other processes' and lapsed grants).
    reload_seconds: float = Field(default=30.0, gt=0)
    #: How often open viewing sessions are re-checked (a withdrawn right cuts them within it).
    viewing_recheck_seconds: float = Field(default=2.0, gt=0, le=60)


class ObjectsConfig(_Section):
    """Where reports, ticket photos (and, with the recording issue, older recordings and
    evidence exports) are kept. ``local``: a folder, right for one process or a folder every
    node mounts. ``s3``: S3-compatible storage (SeaweedFS, MinIO, Ceph RGW, a cloud's S3), what
    a cluster uses so that any node serves what another wrote."""

    kind: Literal["local", "s3"] = "local"
    #: local: the folder; empty: ``<storage.var_dir>/objects``.
    dir: str = ""
    #: s3: the service, e.g. ``http://10.0.0.7:8333``; empty: AWS itself.
    endpoint_url: str = ""
    bucket: str = Field(default="xueliang", min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: SecretStr = SecretStr("")
    #: Keys go under this prefix, so several platforms can share one bucket.
    prefix: str = Field(default="", max_length=128, pattern=r"^[A-Za-z0-9._/-]*$")
    #: Create the bucket on start when it is missing (off where the credentials may not).
    create_bucket: bool = True
    #: Seconds to connect (a read may take three times as long) before the store is unavailable.
    timeout: float = Field(default=10.0, gt=0, le=300)

    @model_validator(mode="after")
    def _s3(self) -> ObjectsConfig:
        if self.kind == "s3" and bool(self.access_key) != bool(self.secret_key.get_secret_value()):
            raise ValueError("give both access_key and secret_key, or neither (the environment's)")
        return self


class StorageConfig(_Section):
    var_dir: Path = Path("./var")
    objects: ObjectsConfig = Field(default_factory=ObjectsConfig)


Role = Literal["api", "signalling", "media", "worker", "all"]


class ClusterConfig(_Section):
    """Several processes over shared state (docs/operations.md, "Scaling out")."""

    #: What this process runs: ``all`` is the single process (the embedded default); a cluster
    #: runs ``api``, ``signalling``, ``media`` and ``worker`` nodes, one or more of each.
    roles: list[Role] = Field(default_factory=lambda: list[Role](["all"]), min_length=1)
    #: Redis for presence, routing and the event stream, e.g. ``redis://10.0.0.5:6379/0``.
    #: Empty: in-process state (one process only).
    redis_url: str = ""
    #: The address other nodes reach this node's HTTP API at (a media node's viewers are proxied
    #: there); empty: ``api.host``.
    advertise_host: str = ""
    #: This node's name in the cluster; empty: ``<hostname>-<pid>``.
    node_id: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9._-]*$")
    #: The Redis stream that carries the events, and the length it is trimmed to (roughly).
    stream: str = "xueliang:events"
    stream_maxlen: int = Field(default=1_000_000, ge=1000)
    #: A node that has not refreshed its announcement for this long is taken as dead.
    node_ttl: float = Field(default=15.0, ge=2)
    #: Worker nodes write offline, this often, devices the registry calls online that no live
    #: signalling node serves (their node died); seconds.
    sweep_every: float = Field(default=10.0, gt=0)
    #: Streams a media node takes before new ones go to others (when all are full: the least
    #: loaded); about 300 on the machine of docs/performance.md.
    media_capacity: int = Field(default=300, ge=1)
    #: A request to another node (a device command) waits this long for an answer.
    rpc_timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _roles(self) -> ClusterConfig:
        if "all" in self.roles and len(self.roles) > 1:
            raise ValueError("'all' is every role: give it alone")
        if self.roles != ["all"] and not self.redis_url:
            raise ValueError("a node with roles other than 'all' shares state through Redis: set redis_url")
        return self

    def runs(self, role: Role) -> bool:
        return "all" in self.roles or role in self.roles


class ConsoleConfig(_Section):
    """What the browser console needs to draw the map (no Internet: the city's own GIS)."""

    #: XYZ tile URL template of the city's map service, e.g. ``https://gis.example/{z}/{x}/{y}.png``;
    #: empty: division outlines on a plain background.
    tile_url: str = ""
    tile_attribution: str = ""
    tile_max_zoom: int = Field(default=18, ge=1, le=22)
    #: Initial view: [longitude, latitude] and zoom; empty centre: fit the points.
    center: list[float] = Field(default_factory=list)
    zoom: int = Field(default=11, ge=1, le=22)


class MapConfig(_Section):
    """The offline map (一张图): the basemap file the platform serves (docs/operations.md, "The map")."""

    #: An MBTiles file (vector tiles, format pbf, or raster PNG/JPEG/WebP) served at /api/v1/map/tiles/{z}/{x}/{y};
    #: the console uses it unless console.tile_url names another tile service. Empty: none.
    basemap: Path | None = None

    @field_validator("basemap")
    @classmethod
    def _mbtiles(cls, v: Path | None) -> Path | None:
        if v is None or str(v) == "":
            return None
        if not v.is_file():
            raise ValueError(f"no such file: {v}")
        with v.open("rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                raise ValueError(f"{v} is not an MBTiles file (not an SQLite database)")
        return v


class ServiceLevel(_Section):
    """Times a maintenance team has for a fault on a point of one class (服务等级)."""

    acknowledge_hours: float = Field(gt=0)
    repair_hours: float = Field(gt=0)


def _default_levels() -> dict[int, ServiceLevel]:
    return {
        1: ServiceLevel(acknowledge_hours=2, repair_hours=24),
        2: ServiceLevel(acknowledge_hours=4, repair_hours=48),
        3: ServiceLevel(acknowledge_hours=8, repair_hours=72),
    }


class HealthConfig(_Section):
    """Usable at all times (全时可用): state history, rates, fault tickets, reports."""

    #: Targets, percent online and intact, by point class (I 98, II 95 in the programme).
    targets: dict[int, float] = Field(default_factory=lambda: {1: 98.0, 2: 95.0, 3: 90.0})
    #: A point offline or faulty this long gets a ticket (seconds).
    ticket_after_seconds: float = Field(default=600.0, ge=0)
    #: A fault episode ends only after the point has been good this long: a point that flaps
    #: every few seconds stays one episode (one ticket).
    episode_gap_seconds: float = Field(default=300.0, ge=0)
    #: A resolved ticket is verified when the point has been online and good this long.
    verify_seconds: float = Field(default=1800.0, ge=0)
    #: A fault returning within this time after a ticket was resolved reopens it.
    reopen_seconds: float = Field(default=7 * 24 * 3600.0, ge=0)
    #: Repeat-fault point: this many tickets within ``repeat_days``.
    repeat_tickets: int = Field(default=3, ge=2)
    repeat_days: int = Field(default=30, ge=1)
    #: Service levels by point class; a point without a class takes class III's.
    service_levels: dict[int, ServiceLevel] = Field(default_factory=_default_levels)
    #: After a restart, a device that has not come back within this time is offline (until
    #: then, and for the time the platform was down, its state is unknown).
    restart_grace_seconds: float = Field(default=200.0, ge=0)
    #: Seconds between checks for tickets to open, verify or escalate.
    check_seconds: float = Field(default=5.0, gt=0)
    #: The city's time zone offset from UTC, hours (days and reports follow local days).
    utc_offset_hours: float = Field(default=8.0, ge=-12, le=14)
    #: Raw intervals are kept this many days (daily rows are kept for ever); 0 = for ever.
    interval_retention_days: int = Field(default=400, ge=0)
    #: Notifications: SMTP for e-mail (empty host: no e-mail), webhook signing secret.
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "xueliang@localhost"
    webhook_secret: str = ""
    #: Retries of a notification before it is given up, and the first back-off (doubling).
    notify_attempts: int = Field(default=8, ge=1)
    notify_backoff_seconds: float = Field(default=5.0, gt=0)
    enabled: bool = True

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: dict[int, float]) -> dict[int, float]:
        for k, t in v.items():
            if k not in (1, 2, 3) or not 0 <= t <= 100:
                raise ValueError(f"targets are percent (0-100) for classes 1-3, got {k}: {t}")
        return v

    @field_validator("service_levels")
    @classmethod
    def _levels(cls, v: dict[int, ServiceLevel]) -> dict[int, ServiceLevel]:
        bad = [k for k in v if k not in (1, 2, 3)]
        if bad:
            raise ValueError(f"service levels are for point classes 1-3, got {bad}")
        return v

    def level(self, point_class: int | None) -> ServiceLevel:
        return self.service_levels.get(point_class or 3) or self.service_levels.get(3) or _default_levels()[3]


def _default_intervals() -> dict[int, float]:
    return {1: 3600.0, 2: 4 * 3600.0, 3: 4 * 3600.0}


class DiagnosisConfig(_Section):
    """Picture diagnosis (视频质量诊断) and inspections (巡检) of every camera."""

    #: Inspections on a schedule (the command and "diagnose now" work either way).
    inspections: bool = True
    #: How often each camera is inspected, seconds, by point class (no class: class III's).
    interval_seconds: dict[int, float] = Field(default_factory=_default_intervals)
    #: Inspections at once on this node (each holds a stream open for a few seconds).
    concurrency: int = Field(default=4, ge=1, le=64)
    #: Processes decoding and diagnosing samples, at a lower priority than the server (viewers
    #: first); one takes about 40 ms of a core per camera.
    workers: int = Field(default=1, ge=1, le=16)
    #: The sample: up to this many key frames within this many seconds.
    sample_frames: int = Field(default=3, ge=1, le=20)
    sample_seconds: float = Field(default=4.0, gt=0, le=60)
    #: Daily windows with no inspections (maintenance), local time "HH:MM-HH:MM".
    mute: list[str] = Field(default_factory=list)
    #: Thresholds by point class: {class: {"day": {fault: score}, "night": {...}}}; a camera's
    #: own (API) go over its class's.
    thresholds: dict[int, dict[str, dict[str, float]]] = Field(default_factory=dict)
    #: Results kept, days (the latest of each camera always).
    retention_days: int = Field(default=90, ge=1)

    @field_validator("mute")
    @classmethod
    def _mute(cls, v: list[str]) -> list[str]:
        for w in v:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", w):
                raise ValueError(f"mute window {w!r} is not HH:MM-HH:MM")
        return v

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[int, dict[str, dict[str, float]]]) -> dict[int, dict[str, dict[str, float]]]:
        # the fault codes are checked where they live, when the inspector is built (diagnosis/)
        for k in v:
            if k not in (1, 2, 3):
                raise ValueError(f"point class {k} is not 1, 2 or 3")
        return v

    @field_validator("interval_seconds")
    @classmethod
    def _intervals(cls, v: dict[int, float]) -> dict[int, float]:
        for k, x in v.items():
            if k not in (1, 2, 3) or x < 60:
                raise ValueError(f"interval of class {k}: classes 1-3, at least 60 s (got {x})")
        return v


# ---- recording: the programme's floors (recording/plans.py applies them) -------------------
#: The programme's floors, days.
MIN_RETENTION_DAYS = 30
MIN_KEY_SITE_RETENTION_DAYS = 90
#: Point classes.
CLASSES = (1, 2, 3)


def check_retention(retention_days: Mapping[int, int], key_site_retention_days: int) -> None:
    """Refuse retention settings below the programme's floors (ValueError naming the setting)."""
    for k, days in retention_days.items():
        if k not in CLASSES:
            raise ValueError(f"recording.retention_days.{k}: point class {k} is not 1, 2 or 3")
        if days < MIN_RETENTION_DAYS:
            raise ValueError(f"recording.retention_days.{k}: {days} days is below the required "
                             f"{MIN_RETENTION_DAYS} days")
    if key_site_retention_days < MIN_KEY_SITE_RETENTION_DAYS:
        raise ValueError(f"recording.key_site_retention_days: {key_site_retention_days} days is below "
                         f"the {MIN_KEY_SITE_RETENTION_DAYS} days required at key sites")


def check_continuous(continuous: Mapping[int, object], setting: str = "recording.continuous") -> None:
    for k in continuous:
        if k not in CLASSES:
            raise ValueError(f"{setting}.{k}: point class {k} is not 1, 2 or 3")


class RecordingPlanSpec(_Section):
    """A recording plan as configured or sent (``PUT /channels/{id}/recording``)."""

    #: Always; by a weekly timetable; on events (alarms, analytics, an operator) with video from
    #: before and after; or not at all.
    mode: Literal["continuous", "scheduled", "event", "off"]
    #: The weekly timetable of a scheduled plan (xueliang/timetable.py), in the platform's time.
    schedule: list[dict[str, Any]] = Field(default_factory=list)
    #: Event plans: seconds of video kept from before a trigger, and recorded after the last one
    #: (unset: recording.pre_seconds / post_seconds).
    pre_seconds: float | None = Field(default=None, ge=0, le=120)
    post_seconds: float | None = Field(default=None, ge=1, le=3600)

    @model_validator(mode="after")
    def _timetable(self) -> RecordingPlanSpec:
        try:
            table = parse_timetable(self.schedule)
        except TimetableError as e:
            raise ValueError(f"schedule: {e}") from None
        if self.mode == "scheduled" and not table.windows:
            raise ValueError("schedule: a scheduled plan needs at least one window")
        if self.mode != "scheduled" and table.windows:
            raise ValueError(f"schedule: only a scheduled plan has one (this one is {self.mode})")
        if self.mode != "event" and (self.pre_seconds is not None or self.post_seconds is not None):
            raise ValueError(f"pre_seconds and post_seconds are for event plans (this one is {self.mode})")
        self.schedule = table.as_list()
        return self


class RecordingConfig(_Section):
    """The platform's own recorder (录像): segments of video from the media hub, kept by class."""

    #: Off by default: nothing records until it is switched on (where the media hub runs).
    enabled: bool = False
    #: Length of a segment file, seconds (cut at the first key frame after it).
    segment_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)
    #: Video per fragment written (and flushed) at most, seconds: what a crash may lose.
    fragment_seconds: float = Field(default=1.0, gt=0, le=10.0)
    #: Days kept by point class (no class: class III's); at least 30.
    retention_days: dict[int, int] = Field(default_factory=lambda: {1: 30, 2: 30, 3: 30})
    #: Days kept at key sites (反恐重点目标); at least 90.
    key_site_retention_days: int = 90
    #: Continuous recording by point class (class I and key sites by default).
    continuous: dict[int, bool] = Field(default_factory=lambda: {1: True, 2: False, 3: False})
    #: How often the plans are applied (recorders started and stopped), seconds.
    plan_seconds: float = Field(default=60.0, ge=1.0)
    #: How often recordings beyond retention are deleted, seconds.
    retention_seconds: float = Field(default=3600.0, ge=10.0)
    #: Plans by point class for the classes that do not record continuously (e.g.
    #: ``{2: {mode = "event"}}``); none: off. A channel's own plan comes first, then key sites and
    #: the continuous classes, then ``division_plans``, then these.
    class_plans: dict[int, RecordingPlanSpec] = Field(default_factory=dict)
    #: Plans by division: a code or its prefix (``"3401"``: the city), the longest match wins.
    division_plans: dict[str, RecordingPlanSpec] = Field(default_factory=dict)
    #: Event plans: seconds of video kept in memory from before a trigger (from a key frame),
    #: and recorded after the last trigger.
    pre_seconds: float = Field(default=10.0, ge=0, le=120)
    post_seconds: float = Field(default=30.0, ge=1, le=3600)
    #: The disk is nearly full below this free share (percent) or these bytes, whichever is
    #: larger: recordings beyond retention go first, then an alarm and the least important
    #: channels stop (recording/disk.py).
    min_free_percent: float = Field(default=5.0, ge=0, le=90)
    min_free_bytes: int = Field(default=0, ge=0)
    #: How often the free space is read, seconds.
    disk_seconds: float = Field(default=30.0, ge=1.0)
    #: Closed segments older than this many days move from local disk to the object store
    #: (storage.objects: S3, or a folder set in its ``dir``); 0: they stay local.
    tier_after_days: float = Field(default=0.0, ge=0)
    #: How often segments due are moved, seconds.
    tier_seconds: float = Field(default=600.0, ge=10.0)

    @model_validator(mode="after")
    def _floors(self) -> RecordingConfig:
        check_retention(self.retention_days, self.key_site_retention_days)
        check_continuous(self.continuous)
        check_continuous(self.class_plans, "recording.class_plans")
        for code in self.division_plans:
            if not (code.isascii() and code.isdigit() and len(code) <= 12):
                raise ValueError(f"recording.division_plans.{code}: not a division code")
        return self


#: The categories of incidents the seeds' centres take in (configurable: incidents.categories).
DEFAULT_INCIDENT_CATEGORIES = ["治安", "安全隐患", "矛盾纠纷", "交通", "消防", "防汛", "环境", "其他"]


class IncidentsConfig(_Section):
    """The incident centre (受理·分流·督办·反馈, issue 16)."""

    #: What a case may be about; the first seven are the seeds', the last the catch-all.
    categories: list[str] = Field(default_factory=lambda: list(DEFAULT_INCIDENT_CATEGORIES), min_length=1)
    #: A dispatch's deadline when none is given (hours), by priority.
    deadline_hours: dict[str, float] = Field(default_factory=lambda: {
        "urgent": 2.0, "high": 24.0, "normal": 72.0, "low": 168.0})
    #: Seconds between checks for overdue dispatches (督办: red flag, the supervisors told).
    check_seconds: float = Field(default=30.0, gt=0)
    #: Who is told of an overdue case: e-mail addresses of the centre's supervisors.
    supervisor_emails: list[str] = Field(default_factory=list)
    #: And, or instead, a webhook (signed like every notification; SMS gateways connect here).
    supervisor_webhook: str = ""
    #: Signed requests from emergency systems older or newer than this are refused (seconds).
    replay_window_seconds: float = Field(default=300.0, ge=5, le=3600)
    #: Largest inbound request body (bytes).
    inbound_max_bytes: int = Field(default=65_536, ge=1024, le=1_048_576)
    #: The joint-handling view opens live video of the cameras near a case for this long (hours).
    joint_hours: float = Field(default=4.0, gt=0, le=72)
    #: Largest photo attached to a case (bytes).
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    #: How far (metres) to look for a channel when no division boundary holds the case's place.
    nearest_channel_metres: float = Field(default=5000.0, gt=0)

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str]) -> list[str]:
        clean = [c.strip() for c in v]
        if any(not c or len(c) > 32 for c in clean) or len(set(clean)) != len(clean):
            raise ValueError("categories are distinct names of 1-32 characters")
        return clean

    @field_validator("deadline_hours")
    @classmethod
    def _deadlines(cls, v: dict[str, float]) -> dict[str, float]:
        need = {"urgent", "high", "normal", "low"}
        if set(v) != need or any(h <= 0 for h in v.values()):
            raise ValueError(f"deadline_hours gives positive hours for each of {sorted(need)}")
        return v


class SchedulerConfig(_Section):
    """The one scheduler of periodic jobs (rollups, reports, escalation). Off on nodes that
    should not run jobs; a job runs once in the cluster either way."""

    enabled: bool = True


class Settings(BaseSettings):
    """The whole configuration. Unknown keys are errors, named in the message."""

    model_config = SettingsConfigDict(
        env_prefix="XUELIANG_",
        env_nested_delimiter="__",
        extra="forbid",
        toml_file=None,
    )

    database: DatabaseConfig = DatabaseConfig()
    api: ApiConfig = ApiConfig()
    sip: SipConfig = SipConfig()
    media: MediaConfig = MediaConfig()
    access: AccessConfig = AccessConfig()
    console: ConsoleConfig = ConsoleConfig()
    storage: StorageConfig = StorageConfig()
    cluster: ClusterConfig = ClusterConfig()
    health: HealthConfig = HealthConfig()
    diagnosis: DiagnosisConfig = DiagnosisConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    recording: RecordingConfig = RecordingConfig()
    incidents: IncidentsConfig = IncidentsConfig()
    map: MapConfig = MapConfig()
    #: Secret for signing tokens; generated and kept under var/ when empty.
    secret_key: str = ""
    #: First administrator, created on first start if no user exists.
    bootstrap_admin: str = ""
    bootstrap_password: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = settings_cls.model_config.get("toml_file")
        if toml:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)


#: Variables the platform reads itself, outside the settings tree.
ENV_ONLY = frozenset({"XUELIANG_AUDIT_KEY", "XUELIANG_PURE_PYTHON"})


def unknown_env_names(env: Mapping[str, str]) -> list[str]:
    """The ``XUELIANG_*`` names in ``env`` that name no setting. pydantic-settings refuses an
    unknown key inside a section, but passes over a name that matches no section or top-level
    setting (``XUELIANG_SECRETKEY``) in silence, and the default stays. The deployment checks and
    the server's start both ask this one function."""
    bad = []
    for name in env:
        if not name.startswith("XUELIANG_") or name in ENV_ONLY:
            continue
        model: type[BaseModel] | None = Settings
        for part in name.removeprefix("XUELIANG_").lower().split("__"):
            fields = model.model_fields if model is not None else {}
            if part not in fields:
                bad.append(name)
                break
            ann = fields[part].annotation
            model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return sorted(bad)


class ConfigError(Exception):
    """A configuration problem, with every bad key named."""


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(root)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(
            f"  {key}: {msg}"
            + (
                f" (got {e['input']!r})"
                if e["type"] != "extra_forbidden" and not isinstance(e["input"], dict)
                else ""
            )
        )
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from ``path`` (TOML), the environment and ``overrides``.

    Raises :class:`ConfigError` naming every bad key.
    """
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"configuration file not found: {p}")
        try:
            tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"configuration file {p} is not valid TOML: {exc}") from exc

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=str(path) if path else None)

    try:
        return _FileSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
