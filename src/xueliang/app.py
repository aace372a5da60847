"""Composition root: the whole process, put together in one place.

A reader sees here every service one xueliang process runs, what each depends on, which are
switched on by configuration, and the order they start and stop in:

    foundation   engine, sessions, bus and presence (in-process, or Redis in a cluster),
                 secret → sealer, token signer
    domain       users, registry, patrols
    access       identity, permissions, approvals, viewing sessions, the audit writer
    health       (health.enabled) state history from the bus, rates, maintenance teams, fault
                 tickets, notifications
    incidents    the incident centre: cases, dispatch, deadlines (a scheduler job), rules that
                 open cases from alarms (the bus), links to emergency systems (signed, pushed
                 through the notification outbox)
    signalling   GB/T 28181 (sip.enabled): registrar, catalog into the registry, queries, control
    cascade      the upper platforms we register to (always, for the API); their links where
                 signalling runs, one signalling node of a cluster at a time (a lease); none
                 configured: nothing runs. Their video leaves from this hub, or in a cluster
                 from a media node asked over the rpc (cascade/remote.py)
    devices      device commands for the API: this process's signalling, or in a cluster the
                 signalling node serving the device (over Redis); a signalling node answers
                 the others (rpc server); a media node answers for its senders to uppers
    sweeper      (worker nodes of a cluster) devices a dead signalling node left online
    media        the hub (media.enabled): live/ (RTSP or INVITE), playback/ and download/
                 (INVITE, when signalling runs), transcode/h264/
    diagnosis    (where media runs) picture inspections of every camera; confirmed faults on the bus
    recording    (where media runs, recording.enabled) the platform's recorder: plans applied,
                 segments from the hub, the index reconciled with the disk on start
    evidence     holds (always, for the API and retention); exports: the service always, their
                 runner where the scheduler runs (jobs in the database, requeued after a restart)
    scheduler    (scheduler.enabled) periodic jobs: rollups, ticket checks, notifications,
                 inspections

Which of signalling and media run here is the node's roles (cluster.roles; ``all`` by default).

Start runs top to bottom (after migrating and creating the first administrator); stop runs
bottom to top, so that access — and with it the audit — stops after every service that acts
and records everything they did while stopping (only the bus and presence, which it may still
publish to, stop after it). The HTTP API (api/main.py) mounts every router over this; nothing
here knows the API.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from redis.asyncio import Redis

from xueliang.access.service import AccessService
from xueliang.access.tokens import TokenSigner
from xueliang.access.users import UserService
from xueliang.bus import Bus, EventBus
from xueliang.cascade.links import CascadeLinks
from xueliang.cascade.remote import RemoteSenders, SenderHost
from xueliang.cascade.senders import HubSenders, SenderSide
from xueliang.cascade.uppers import UpperService
from xueliang.cascade.upstream import RegistryShare, UpstreamMedia
from xueliang.cluster.placement import MediaPlacement
from xueliang.cluster.redis_bus import RedisBus
from xueliang.cluster.redis_lease import RedisLease
from xueliang.cluster.redis_limits import RedisBuckets
from xueliang.cluster.redis_presence import RedisPresence
from xueliang.cluster.remote import DialogReaper, RemoteCommands, RemoteDialogs, handlers
from xueliang.cluster.rpc import RpcClient, RpcServer
from xueliang.cluster.sweeper import OrphanSweeper
from xueliang.config import Settings
from xueliang.console.patrols import PatrolService
from xueliang.db.engine import create_engine, session_factory
from xueliang.db.migrate import upgrade_async
from xueliang.diagnosis.inspection import Inspector
from xueliang.errors import Unavailable
from xueliang.evidence.export import ExportRunner, ExportService
from xueliang.evidence.signing import EvidenceSigner
from xueliang.gb28181.commands import DeviceCommands, LocalCommands
from xueliang.gb28181.invite import DialogSide, GbDialogs, GbMediaSessions
from xueliang.gb28181.service import SignallingService
from xueliang.health.notify import Notifier
from xueliang.health.service import HealthService
from xueliang.incidents.reports import ReportService
from xueliang.incidents.service import IncidentService
from xueliang.leadership import Led
from xueliang.maps.service import MapService
from xueliang.media.hub import MediaHub
from xueliang.media.live import LiveProvider
from xueliang.media.ports import PortPool
from xueliang.media.snapshot import Snapshots
from xueliang.media.transcode import PREFIX as TRANSCODE_PREFIX
from xueliang.media.transcode import TranscodeProvider
from xueliang.objects import ObjectStore
from xueliang.objects.adopt import adopt_folders
from xueliang.objects.build import object_store
from xueliang.objects.local import LocalObjects
from xueliang.presence import MemoryPresence, NodeInfo, Presence, default_node_id
from xueliang.recording.channel_plans import ChannelPlans
from xueliang.recording.disk import DiskGuard
from xueliang.recording.holds import HoldService
from xueliang.recording.placement import RecordingPlacement
from xueliang.recording.plans import Policy
from xueliang.recording.playback import RecordedProvider
from xueliang.recording.retention import Retention
from xueliang.recording.tiers import Tiering
from xueliang.recording.writer import Recorder
from xueliang.registry.catalog_store import store_catalogs
from xueliang.registry.divisions import DivisionListMissing, LoadReport, ensure_national
from xueliang.registry.service import RegistryService
from xueliang.residents.service import ResidentService
from xueliang.scheduler import Scheduler
from xueliang.sealing import Sealer

log = logging.getLogger("xueliang")


async def _nothing() -> None:
    return None

Step = Callable[[], Awaitable[None]]


def _secret(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    path = Path(settings.storage.var_dir) / "secret.key"
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48).encode()
    path.write_bytes(key)
    path.chmod(0o600)
    return key


def derive(secret: bytes, purpose: str) -> bytes:
    """A key of its own for one purpose, from the platform secret (one secret, many uses
    that never share a key)."""
    return hashlib.sha256(purpose.encode() + b":" + secret).digest()


@dataclass(frozen=True, slots=True)
class Component:
    """One part of the process with a life: started in order, stopped in reverse."""

    name: str
    start: Step
    stop: Step


class Platform:
    """Everything one xueliang process runs. Edges (API, CLI, SIP) reach services through it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # ---- foundation
        self.engine = create_engine(
            settings.database.url,
            echo=settings.database.echo,
            pool_size=settings.database.pool_size,
            connect_timeout=settings.database.connect_timeout,
        )
        self.sessions = session_factory(self.engine)
        cluster = settings.cluster
        self.node = cluster.node_id or default_node_id()
        self.bus: Bus
        self.presence: Presence
        #: this node as the others see it (presence.nodes()); its addresses are set at start
        self._info = NodeInfo(self.node, tuple(cluster.roles), time.time(), {},
                              {"streams": 0.0, "capacity": float(cluster.media_capacity)}
                              if settings.media.enabled and cluster.runs("media") else {})
        if cluster.redis_url:
            self.bus = RedisBus(cluster.redis_url, self.node, stream=cluster.stream, maxlen=cluster.stream_maxlen)
            self.presence = RedisPresence(cluster.redis_url, self.node, node_ttl=cluster.node_ttl)
        else:
            self.bus = EventBus()
            self.presence = MemoryPresence(self.node)
        secret = _secret(settings)
        #: Seals secrets the platform must read back (TOTP seeds, device SIP passwords) at rest.
        self.sealer = Sealer(secret)
        self.signer = TokenSigner(secret)
        # ---- domain
        self.users = UserService(self.sessions, self.signer, settings.api.token_ttl, self.sealer)
        self.registry = RegistryService(self.sessions, self.bus, sealer=self.sealer)
        self.patrols = PatrolService(self.sessions)
        #: the offline map: the basemap file served, division boundaries (maps/)
        self.maps = MapService(settings.map, self.sessions)
        # ---- access (identity, permissions, approvals, audit)
        limiter = None
        self._limits_redis: Redis | None = None
        if cluster.redis_url:  # one budget per client for the whole cluster
            self._limits_redis = Redis.from_url(cluster.redis_url)
            limiter = partial(RedisBuckets, self._limits_redis)
        self.access = AccessService(settings, self.sessions, self.users, self.bus, limiter=limiter)
        # ---- signalling (sip.enabled, on signalling nodes)
        self.signalling: SignallingService | None = None
        if settings.sip.enabled and cluster.runs("signalling"):
            self.signalling = SignallingService(
                settings.sip, self.sessions, self.bus, nonce_secret=derive(secret, "sip-nonce"),
                sealer=self.sealer, var_dir=Path(settings.storage.var_dir), presence=self.presence,
            )
            self.signalling.set_catalog_sink(
                lambda catalogs: store_catalogs(self.sessions, catalogs, on_status=self._channel_status))
        # ---- cascade: the upper platforms (rows, for the API), and where signalling runs the
        # links to the enabled ones (cascade/links.py)
        self.uppers = UpperService(self.sessions, self.sealer, self.bus)
        self.cascade: CascadeLinks | None = None
        if self.signalling is not None:
            self.cascade = CascadeLinks(self.uppers, local_id=settings.sip.id, sip_host=settings.sip.host,
                                        audit=self.access.audit, udp_message=settings.sip.cascade_udp_message,
                                        tcp_message=settings.sip.cascade_tcp_message)
        # ---- device commands (what the API asks of devices), and answering other nodes' asks
        self.devices: DeviceCommands | None = None
        #: the INVITE dialogs of GB/T 28181 video (here, or on the node serving the device)
        self.dialogs: DialogSide | None = None
        self.rpc: RpcServer | None = None
        self._rpc_client: RpcClient | None = None
        if self.signalling is not None:
            self.devices = LocalCommands(self.signalling)
            local_dialogs = self.dialogs = GbDialogs(self.signalling)
            if cluster.redis_url:
                self.rpc = RpcServer(cluster.redis_url, self.node, {
                    **handlers(self.devices), "invite": local_dialogs.invite, "bye": local_dialogs.bye,
                    "info": local_dialogs.info})
        elif settings.sip.enabled and cluster.redis_url:
            self._rpc_client = RpcClient(cluster.redis_url, timeout=cluster.rpc_timeout)
            self.devices = RemoteCommands(self.presence, self._rpc_client)
            self.dialogs = RemoteDialogs(self.presence, self._rpc_client)
        if self.cascade is not None:  # DeviceControl from an upper goes to the device through these
            self.cascade.devices = self.devices
            if self.signalling is not None:  # DeviceConfig too (its sections), on this node's signalling
                sig = self.signalling
                self.cascade.configure = lambda dev, target, fields: sig.control(
                    dev, target, cmd_type="DeviceConfig", **fields)
        # ---- cluster housekeeping (worker nodes): devices a dead signalling node left online
        self.sweeper: OrphanSweeper | None = None
        if cluster.redis_url and cluster.runs("worker"):
            self.sweeper = OrphanSweeper(self.sessions, self.presence, self.bus, every=cluster.sweep_every,
                                         grace=cluster.node_ttl)
        # ---- media (media.enabled, on media nodes)
        self.media: MediaHub | None = None
        #: The live/ provider (its GB/T 28181 side is the INVITE provider when signalling runs).
        self.live: LiveProvider | None = None
        if settings.media.enabled and cluster.runs("media"):
            self.media = MediaHub(settings.media, self.bus)
            self.media.snapshots = Snapshots(Path(settings.storage.var_dir) / "snapshots")
            gb: GbMediaSessions | None = None
            if self.dialogs is not None:
                here = isinstance(self.dialogs, GbDialogs)
                gb = GbMediaSessions(self.dialogs, domain=settings.sip.domain, platform_id=settings.sip.id,
                                     owner="" if here else self.node)
                if isinstance(self.dialogs, GbDialogs):
                    self.dialogs.on_end = gb.dialog_ended
                else:  # the device's BYE arrives at the signalling node, which says so on the bus
                    sessions_here, me = gb, self.node
                    self.bus.listen(lambda ev: sessions_here.dialog_ended(ev.subject, str(ev.data.get("reason")))
                                    if ev.data.get("owner") == me else None, "media.dialog.ended")
            self.live = LiveProvider(self.registry, gb)
            self.media.set_provider("live/", self.live)
            self.media.set_provider(TRANSCODE_PREFIX, TranscodeProvider(settings.media.max_transcodes))
            if gb is not None:
                self.media.set_provider("playback/", gb)
                self.media.set_provider("download/", gb)
            # the platform's own recordings, played back (whether or not it records now)
            self.media.set_provider("record/", RecordedProvider(
                self.sessions, Path(settings.storage.var_dir) / "recordings"))
        # ---- cascade media (where an upper's link and the hub both run): its INVITEs served from
        # the hub as PS over RTP, its RecordInfo answered, each through its share (cascade/upstream.py)
        self.upstream: UpstreamMedia | None = None
        #: the senders of video to uppers on this node's hub (cascade/senders.py), and in a
        #: cluster the RPC surface other nodes ask them through (cascade/remote.py)
        self.upstream_senders: HubSenders | None = None
        self.sender_host: SenderHost | None = None
        if self.media is not None:
            up_range = settings.media.upstream_port_range
            self.upstream_senders = HubSenders(self.media, self.sessions,
                                               PortPool(*up_range) if up_range is not None else None)
            if cluster.redis_url:
                self.sender_host = SenderHost(self.upstream_senders, self.bus, self.presence,
                                              announce=settings.media.announce_ip, every=cluster.node_ttl)
                if self.rpc is None:
                    self.rpc = RpcServer(cluster.redis_url, self.node, {})
                self.rpc.handlers.update(self.sender_host.handlers())
        # ---- where streams live, in a cluster: a media node holds its streams; a node without
        # media sends stream requests to the node holding them (api/media_proxy.py)
        self.placement: MediaPlacement | None = None
        if cluster.redis_url and (self.media is not None or cluster.runs("api") or self.cascade is not None):
            self.placement = MediaPlacement(cluster.redis_url, self.node, self.presence, ttl=cluster.node_ttl)
            if self.media is not None:
                hub = self.media
                self.placement.held = lambda: [st.name for st in hub.streams()]
                self.placement.on_load = self._announce_load
                placement = self.placement
                self.bus.listen(lambda ev: placement.hold_now(ev.subject)
                                if hub.stream(ev.subject) is not None else None, "stream.up")
        # ---- cascade media (where an upper's link runs): its INVITEs served as PS over RTP from the
        # hub here, or in a cluster from a media node (cascade/remote.py), its RecordInfo answered,
        # each through its share (cascade/upstream.py)
        self.remote_senders: RemoteSenders | None = None
        if self.cascade is not None and (self.upstream_senders is not None or self.placement is not None):
            senders: SenderSide
            if self.upstream_senders is not None:
                senders = self.upstream_senders
            else:
                assert self.placement is not None and cluster.redis_url
                if self._rpc_client is None:
                    self._rpc_client = RpcClient(cluster.redis_url, timeout=cluster.rpc_timeout)
                senders = self.remote_senders = RemoteSenders(self._rpc_client, self.placement, self.presence,
                                                              self.node, every=cluster.node_ttl,
                                                              timeout=cluster.rpc_timeout)
                self.remote_senders.listen(self.bus)
            self.upstream = UpstreamMedia(self.media, RegistryShare(self.uppers, self.registry, settings.sip.id),
                                          sessions=self.sessions, audit=self.access.audit, records=self.devices,
                                          uppers=self.uppers, utc_offset_hours=settings.health.utc_offset_hours,
                                          senders=senders)
            self.cascade.media = self.upstream.handle
            self.upstream.listen(self.bus)
        # ---- object storage (storage.objects): reports and ticket photos; in a cluster, S3
        self.objects: ObjectStore = object_store(settings.storage)
        if self.media is not None:  # segments moved there (recording/tiers.py) play back from it
            recorded = self.media.provider_for("record/")
            if isinstance(recorded, RecordedProvider):
                recorded.objects = self.objects
        # ---- health (health.enabled): state history, rates, maintenance, tickets, notifications
        self.health: HealthService | None = None
        if settings.health.enabled:
            self.health = HealthService(settings.health, self.sessions, self.bus, objects=self.objects,
                                        audit=self.access.audit, webhook_secret=derive(secret, "webhook"))
        # ---- the incident centre (受理·分流·督办·反馈): its notifications (the supervisors told of
        # overdue cases, the emergency systems' pushes) go through health's outbox, or an own one
        self._own_notifier: Notifier | None = None
        if self.health is not None:
            notifier = self.health.notifier
        else:
            notifier = self._own_notifier = Notifier(self.sessions, settings.health, derive(secret, "webhook"))
        self.incidents = IncidentService(settings.incidents, self.sessions, self.bus, sealer=self.sealer,
                                         objects=self.objects, notifier=notifier, audit=self.access.audit,
                                         media=self.media, grants=self.access.grants)
        # ---- the phone app: reports of grid members and residents; residents' invitation codes
        self.reports = ReportService(self.incidents, limiter=limiter)
        self.residents = ResidentService(self.sessions, self.users, limiter=limiter)
        # ---- picture diagnosis (where the media hub runs): inspections of every camera, their
        # results and calibration; confirmed faults go to the state history over the bus
        self.diagnosis: Inspector | None = None
        if self.media is not None:
            self.diagnosis = Inspector(settings.diagnosis, self.sessions, self.bus, self.media, self.objects,
                                       utc_offset_hours=settings.health.utc_offset_hours)
        # ---- recording (where the media hub runs, recording.enabled): segments from the hub,
        # their index, and retention by class and key site
        self.recorder: Recorder | None = None
        self.recording_retention: Retention | None = None
        #: Channels' recording plans (for the API everywhere; changes reach the recorder on the bus).
        self.recording_plans = ChannelPlans(Policy.from_config(settings.recording), self.sessions, self.bus)
        self.recording_disk: DiskGuard | None = None
        self.recording_tiers: Tiering | None = None
        if self.media is not None and settings.recording.enabled:
            recordings = Path(settings.storage.var_dir) / "recordings"
            self.recorder = Recorder(settings.recording, self.sessions, self.media, recordings, bus=self.bus,
                                     utc_offset_hours=settings.health.utc_offset_hours)
            if self.placement is not None:  # a cluster: each channel recorded by the node holding its stream
                self.recorder.owns = RecordingPlacement(self.placement, self.node).mine
                self.recorder.owns_every = max(1.0, cluster.node_ttl / 3)
            self.recording_retention = Retention(self.recorder.policy, self.sessions, recordings, self.objects)
            # the disk nearly full: retention at once, then an alarm and the least important stop
            self.recording_disk = DiskGuard(settings.recording, recordings, self.recorder,
                                            self.recording_retention.run, self.bus, node=self.node)
            o = settings.storage.objects
            # older segments to the object store: S3, or a folder named for it (not the default
            # folder under var, on the same disk as the recordings)
            if settings.recording.tier_after_days > 0 and (o.kind == "s3" or o.dir):
                self.recording_tiers = Tiering(self.sessions, recordings, self.objects,
                                               settings.recording.tier_after_days)
            elif settings.recording.tier_after_days > 0:
                log.warning("recording.tier_after_days is set but no object store is (storage.objects): "
                            "recordings stay on local disk")
        # ---- evidence (证据): holds kept from retention, exports (MP4s, a manifest signed with a
        # key derived from the platform secret) made in the background where jobs run
        self.holds = HoldService(self.sessions)
        self.exports = ExportService(self.sessions, self.holds, EvidenceSigner(secret),
                                     Path(settings.storage.var_dir) / "exports")
        self.export_runner: ExportRunner | None = None
        if settings.scheduler.enabled and cluster.runs("worker"):
            self.export_runner = ExportRunner(self.exports, Path(settings.storage.var_dir) / "recordings",
                                              self.objects)
        # ---- the scheduler of periodic jobs (scheduler.enabled; one switchable component, so
        # that only some nodes of a cluster run it — a job runs once either way)
        self.scheduler: Scheduler | None = None
        if settings.scheduler.enabled and cluster.runs("worker"):
            self.scheduler = Scheduler(self.engine, self.sessions, tick_seconds=1.0)
            if self.health is not None:
                self.health.add_jobs(self.scheduler)
            self.incidents.add_jobs(self.scheduler)
            if self._own_notifier is not None:
                own = self._own_notifier

                async def dispatch_own(done: str | None) -> str | None:
                    await own.dispatch()
                    return None

                self.scheduler.add("incidents.notify", 2.0, dispatch_own)
            if self.diagnosis is not None:
                if settings.diagnosis.inspections:
                    self.scheduler.add("diagnosis.inspect", 30.0, self.diagnosis.run_due)
                self.scheduler.add("diagnosis.retention", 6 * 3600.0, self.diagnosis.retention)
            if self.recording_retention is not None:
                self.recording_retention.add_jobs(self.scheduler, settings.recording.retention_seconds)
            if self.recording_tiers is not None:
                self.recording_tiers.add_jobs(self.scheduler, settings.recording.tier_seconds)
        # ---- lifecycle: this order up, the reverse down (the bus and presence first up and last
        # down; then access, with the audit, which so records what the others do while stopping)
        self.components: list[Component] = [
            Component("bus", self.bus.start, self.bus.stop),
            Component("presence", self._announce, self.presence.stop),
        ]
        self.components.append(Component("objects", self._start_objects, self.objects.close))
        if self._limits_redis is not None:
            self.components.append(Component("rate-limits", _nothing, self._limits_redis.aclose))
        self.components.append(Component("access", self.access.start, self.access.stop))
        #: The state history's writer, led by one worker of a cluster at a time.
        self.history_lead: Led | None = None
        if self.health is not None and cluster.runs("worker"):
            # Before signalling and media: it subscribes to what they publish. In a cluster a
            # worker keeps the history (one at a time: it holds every point's state in memory;
            # another takes over when it dies); the other nodes answer from it.
            if cluster.redis_url:
                lease = RedisLease(cluster.redis_url, "history", self.node, ttl=cluster.node_ttl)
                led = self.history_lead = Led("state history", lease, self.health.history.start,
                                              self.health.history.stop)
                health = self.health

                async def stop_led() -> None:
                    await led.stop()
                    await lease.close()
                    await health.notifier.close()

                self.components.append(Component("health", led.start, stop_led))
            else:
                self.components.append(Component("health", self.health.start, self.health.stop))
        # Before signalling: its rules follow the alarms signalling publishes.
        self.components.append(Component("incidents", self.incidents.start, self.incidents.stop))
        if self.signalling is not None:
            self.components.append(Component("signalling", self.signalling.start, self.signalling.stop))
        if self.cascade is not None:
            if cluster.redis_url:  # one signalling node at a time registers to the uppers
                cascade_lease = RedisLease(cluster.redis_url, "cascade", self.node, ttl=cluster.node_ttl)
                cascade_led = Led("cascade links", cascade_lease, self.cascade.start, self.cascade.stop)

                async def stop_cascade() -> None:
                    await cascade_led.stop()
                    await cascade_lease.close()

                self.components.append(Component("cascade", cascade_led.start, stop_cascade))
            else:
                self.components.append(Component("cascade", self.cascade.start, self.cascade.stop))
        if self.rpc is not None:
            self.components.append(Component("rpc", self.rpc.start, self.rpc.stop))
            if isinstance(self.dialogs, GbDialogs):
                reaper = DialogReaper(self.dialogs, self.presence, every=cluster.node_ttl)
                self.components.append(Component("dialog-reaper", reaper.start, reaper.stop))
        if self._rpc_client is not None:
            self.components.append(Component("rpc-client", _nothing, self._rpc_client.close))
        if self.sweeper is not None:
            self.components.append(Component("sweeper", self.sweeper.start, self.sweeper.stop))
        if self.media is not None:
            self.components.append(Component("media", self.media.start, self.media.stop))
        if self.upstream is not None:  # stopped before the hub: the uppers get our BYE
            self.components.append(Component("cascade-media", _nothing, self.upstream.stop))
        if self.remote_senders is not None:  # the senders of media nodes that died end (our BYE)
            self.components.append(Component("cascade-remote-senders", self.remote_senders.start_reaper,
                                             self.remote_senders.stop))
        if self.sender_host is not None:  # and those of signalling nodes that died, here
            self.components.append(Component("cascade-sender-host", self.sender_host.start_reaper,
                                             self.sender_host.stop))
        if self.diagnosis is not None:  # its worker processes end before the hub
            self.components.append(Component("diagnosis", _nothing, self.diagnosis.close))
        if self.recorder is not None:  # segments closed before the hub stops
            self.components.append(Component("recording", self.recorder.start_plans, self.recorder.stop))
        if self.recording_disk is not None:
            self.components.append(Component("recording-disk", self.recording_disk.start, self.recording_disk.stop))
        if self.placement is not None:
            self.components.append(Component("placement", self.placement.start, self.placement.stop))
        if self.scheduler is not None:
            self.components.append(Component("scheduler", self.scheduler.start, self.scheduler.stop))
        if self.export_runner is not None:
            self.components.append(Component("exports", self.export_runner.start, self.export_runner.stop))
        #: Steps of the process that runs the platform, after every component has started
        #: (the server freezes its start-up heap there).
        self._after_start: list[Step] = []
        self.started = False

    async def _announce(self) -> None:
        """This node, as the others see it (presence.nodes())."""
        self._info = NodeInfo(self.node, tuple(self.settings.cluster.roles), time.time(), self._addresses(),
                              self._info.load)
        self.presence.announce(self._info)
        await self.presence.start()

    async def _start_objects(self) -> None:
        try:
            await self.objects.start()
        except Unavailable as e:
            # The platform runs on without it: what needs a file (reports, photos) answers 503
            # until the store is back; the rest does not depend on it.
            log.error("%s; reports and ticket photos are unavailable until it answers", e)
            return
        if self.settings.cluster.roles != ["all"] and isinstance(self.objects, LocalObjects):
            log.warning("objects are kept in the folder %s: only nodes that mount it see them; a cluster "
                        "uses storage.objects.kind = \"s3\" (docs/operations.md)", self.objects.root)
        await adopt_folders(self.objects, Path(self.settings.storage.var_dir))

    def _addresses(self) -> dict[str, str]:
        s = self.settings
        host = s.cluster.advertise_host or s.api.host
        addresses = {"api": f"{host}:{s.api.port}"}
        if s.cluster.runs("api") or self.media is not None:
            addresses["http"] = f"{'https' if s.api.tls_certfile else 'http'}://{host}:{s.api.port}"
        if self.signalling is not None:
            addresses["sip"] = f"{s.sip.host}:{s.sip.port}"
        if self.media is not None:  # the ports bound (a configured 0 is known once started)
            addresses["rtp"] = f"{s.media.announce_ip}:{self.media.rtp.udp_port}"
            addresses["rtp_tcp"] = f"{s.media.announce_ip}:{self.media.rtp.tcp_port}"
        return addresses

    def _announce_load(self, streams: int) -> None:
        self._info = NodeInfo(self._info.id, self._info.roles, self._info.started, self._info.addresses,
                              {**self._info.load, "streams": float(streams)})
        self.presence.announce(self._info)
    def _channel_status(self, changes: list[tuple[str, str, str]]) -> None:
        """The catalog changed channels' status: an event each, for the state history."""
        for channel_id, status, device_id in changes:
            self.bus.publish("channel.status", channel_id, status=status, device=device_id)

    def after_start(self, fn: Step) -> None:
        self._after_start.append(fn)

    async def migrate(self) -> LoadReport | None:
        """The schema to the newest migration, then the national division list if the shipped
        one is not loaded yet (registry/divisions.py): a fresh platform knows every division."""
        await upgrade_async(self.settings.database.url)
        try:
            rep = await ensure_national(self.sessions)
        except DivisionListMissing as exc:
            log.warning("%s; imports then know only the divisions entered by hand", exc)
            return None
        if rep is not None:
            log.info("%s", rep.text())
        return rep

    async def start(self, *, migrate: bool = True) -> None:
        if migrate:
            await self.migrate()
        await self.bootstrap_admin()
        for c in self.components:
            await c.start()
        self._info = NodeInfo(self._info.id, self._info.roles, self._info.started, self._addresses(), self._info.load)
        self.presence.announce(self._info)
        for fn in self._after_start:
            await fn()
        self.started = True

    async def stop(self) -> None:
        for c in reversed(self.components):
            try:
                await c.stop()
            except Exception:  # shutdown goes on
                log.exception("error while stopping %s", c.name)
        await self.engine.dispose()
        self.started = False

    async def bootstrap_admin(self) -> None:
        s = self.settings
        if s.bootstrap_admin and s.bootstrap_password and await self.users.count() == 0:
            await self.users.create(
                s.bootstrap_admin, s.bootstrap_password, "administrator", enforce_policy=False
            )
            log.info("created first administrator %s", s.bootstrap_admin)
