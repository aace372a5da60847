"""Composition root: builds the services from the settings and owns start-up and shutdown."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from xueliang.access.sealing import Sealer
from xueliang.access.tokens import TokenSigner
from xueliang.access.users import UserService
from xueliang.bus import EventBus
from xueliang.config import Settings
from xueliang.console.patrols import PatrolService
from xueliang.db.engine import create_engine, session_factory
from xueliang.db.migrate import upgrade_async
from xueliang.registry.service import RegistryService

log = logging.getLogger("xueliang")


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


class Platform:
    """Everything one xueliang process runs. Edges (API, CLI, SIP) reach services through it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(
            settings.database.url,
            echo=settings.database.echo,
            pool_size=settings.database.pool_size,
        )
        self.sessions = session_factory(self.engine)
        self.bus = EventBus()
        secret = _secret(settings)
        #: Seals secrets the platform must read back (TOTP seeds, device SIP passwords) at rest.
        self.sealer = Sealer(secret)
        self.registry = RegistryService(self.sessions, self.bus, sealer=self.sealer)
        self.signer = TokenSigner(secret)
        self.users = UserService(self.sessions, self.signer, settings.api.token_ttl, self.sealer)
        self.patrols = PatrolService(self.sessions)
        #: Extra start/stop steps registered by subsystems (signalling, media).
        self._starters: list[Callable[[], Awaitable[None]]] = []
        self._stoppers: list[Callable[[], Awaitable[None]]] = []
        self.started = False
        #: Set by subsystems.attach when enabled.
        self.signalling: Any = None
        self.media: Any = None

    def on_start(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._starters.append(fn)

    def on_stop(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._stoppers.append(fn)

    async def start(self, *, migrate: bool = True) -> None:
        if migrate:
            await upgrade_async(self.settings.database.url)
        await self.bootstrap_admin()
        for fn in self._starters:
            await fn()
        self.started = True

    async def stop(self) -> None:
        for fn in reversed(self._stoppers):
            try:
                await fn()
            except Exception:  # shutdown goes on
                log.exception("error while stopping")
        await self.engine.dispose()
        self.started = False

    async def bootstrap_admin(self) -> None:
        s = self.settings
        if s.bootstrap_admin and s.bootstrap_password and await self.users.count() == 0:
            await self.users.create(
                s.bootstrap_admin, s.bootstrap_password, "administrator", enforce_policy=False
            )
            log.info("created first administrator %s", s.bootstrap_admin)
