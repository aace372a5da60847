"""Composition root: the whole process, put together in one place.

A reader sees here every service one xueliang process runs, what each depends on, which are
switched on by configuration, and the order they start and stop in:

    foundation   engine, sessions, bus, secret → sealer, token signer
    domain       users, registry, patrols
    access       identity, permissions, approvals, viewing sessions, the audit writer
    health       (health.enabled) state history from the bus, rates, maintenance teams, fault
                 tickets, notifications
    signalling   GB/T 28181 (sip.enabled): registrar, catalog into the registry, queries, control
    media        the hub (media.enabled): live/ (RTSP or INVITE), playback/ and download/
                 (INVITE, when signalling runs), transcode/h264/
    scheduler    (scheduler.enabled) periodic jobs: rollups, ticket checks, notifications

Start runs top to bottom (after migrating and creating the first administrator); stop runs
bottom to top, so that access — and with it the audit — stops last and records everything the
others did while stopping. The HTTP API (api/main.py) mounts every router over this; nothing
here knows the API.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from xueliang.access.service import AccessService
from xueliang.access.tokens import TokenSigner
from xueliang.access.users import UserService
from xueliang.bus import Bus, EventBus
from xueliang.config import Settings
from xueliang.console.patrols import PatrolService
from xueliang.db.engine import create_engine, session_factory
from xueliang.db.migrate import upgrade_async
from xueliang.gb28181.invite import GbMediaSessions
from xueliang.gb28181.service import SignallingService
from xueliang.health.service import HealthService
from xueliang.media.hub import MediaHub
from xueliang.media.live import LiveProvider
from xueliang.media.snapshot import Snapshots
from xueliang.media.transcode import PREFIX as TRANSCODE_PREFIX
from xueliang.media.transcode import TranscodeProvider
from xueliang.registry.catalog_store import store_catalog
from xueliang.registry.service import RegistryService
from xueliang.scheduler import Scheduler
from xueliang.sealing import Sealer

log = logging.getLogger("xueliang")

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
        )
        self.sessions = session_factory(self.engine)
        self.bus: Bus = EventBus()
        secret = _secret(settings)
        #: Seals secrets the platform must read back (TOTP seeds, device SIP passwords) at rest.
        self.sealer = Sealer(secret)
        self.signer = TokenSigner(secret)
        # ---- domain
        self.users = UserService(self.sessions, self.signer, settings.api.token_ttl, self.sealer)
        self.registry = RegistryService(self.sessions, self.bus, sealer=self.sealer)
        self.patrols = PatrolService(self.sessions)
        # ---- access (identity, permissions, approvals, audit)
        self.access = AccessService(settings, self.sessions, self.users, self.bus)
        # ---- signalling (sip.enabled)
        self.signalling: SignallingService | None = None
        if settings.sip.enabled:
            self.signalling = SignallingService(
                settings.sip, self.sessions, self.bus, nonce_secret=derive(secret, "sip-nonce"),
                sealer=self.sealer, var_dir=Path(settings.storage.var_dir),
            )
            self.signalling.set_catalog_sink(
                lambda device_id, items: store_catalog(self.sessions, device_id, items,
                                                       on_status=self._channel_status)
            )
        # ---- media (media.enabled)
        self.media: MediaHub | None = None
        #: The live/ provider (its GB/T 28181 side is the INVITE provider when signalling runs).
        self.live: LiveProvider | None = None
        if settings.media.enabled:
            self.media = MediaHub(settings.media, self.bus)
            self.media.snapshots = Snapshots(Path(settings.storage.var_dir) / "snapshots")
            gb = GbMediaSessions(self.signalling) if self.signalling is not None else None
            self.live = LiveProvider(self.registry, gb)
            self.media.set_provider("live/", self.live)
            self.media.set_provider(TRANSCODE_PREFIX, TranscodeProvider(settings.media.max_transcodes))
            if gb is not None:
                self.media.set_provider("playback/", gb)
                self.media.set_provider("download/", gb)
        # ---- health (health.enabled): state history, rates, maintenance, tickets, notifications
        self.health: HealthService | None = None
        if settings.health.enabled:
            self.health = HealthService(settings.health, self.sessions, self.bus, audit=self.access.audit,
                                        webhook_secret=derive(secret, "webhook"),
                                        reports_dir=Path(settings.storage.var_dir) / "reports")
        # ---- the scheduler of periodic jobs (scheduler.enabled; one switchable component, so
        # that only some nodes of a cluster run it — a job runs once either way)
        self.scheduler: Scheduler | None = None
        if settings.scheduler.enabled:
            self.scheduler = Scheduler(self.engine, self.sessions, tick_seconds=1.0)
            if self.health is not None:
                self.health.add_jobs(self.scheduler)
        # ---- lifecycle: this order up, the reverse down (access, with the audit, last down)
        self.components: list[Component] = [
            Component("bus", self.bus.start, self.bus.stop),
            Component("access", self.access.start, self.access.stop),
        ]
        if self.signalling is not None:
            self.components.append(Component("signalling", self.signalling.start, self.signalling.stop))
        if self.health is not None:
            # Before signalling and media: it subscribes to what they publish.
            self.components.insert(2, Component("health", self.health.start, self.health.stop))
        if self.media is not None:
            self.components.append(Component("media", self.media.start, self.media.stop))
        if self.scheduler is not None:
            self.components.append(Component("scheduler", self.scheduler.start, self.scheduler.stop))
        #: Steps of the process that runs the platform, after every component has started
        #: (the server freezes its start-up heap there).
        self._after_start: list[Step] = []
        self.started = False

    def _channel_status(self, changes: list[tuple[str, str, str]]) -> None:
        """The catalog changed channels' status: an event each, for the state history."""
        for channel_id, status, device_id in changes:
            self.bus.publish("channel.status", channel_id, status=status, device=device_id)

    def after_start(self, fn: Step) -> None:
        self._after_start.append(fn)

    async def start(self, *, migrate: bool = True) -> None:
        if migrate:
            await upgrade_async(self.settings.database.url)
        await self.bootstrap_admin()
        for c in self.components:
            await c.start()
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
