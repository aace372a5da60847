"""The access subsystem of a platform: identity, permissions, approvals, audit (全程可控).

The composition root (app.py) builds it with the users it serves; it gives every principal the
policy book, keeps the open viewing sessions (access/viewing.py: re-checked, cut, audited) and
the audit writer running. It starts first and stops last, so that everything else is audited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xueliang.access.apitokens import ApiTokenService
from xueliang.access.approvals import ApprovalService
from xueliang.access.audit import AuditLog, CheckpointKey, placement_warnings
from xueliang.access.authn import LocalPasswordAuthenticator, LoginService
from xueliang.access.book import PolicyBook, Rule
from xueliang.access.grants import GrantService
from xueliang.access.ratelimit import Limiter, TokenBuckets
from xueliang.access.viewing import ViewingSessions
from xueliang.tasks import stop_task

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from xueliang.access.users import UserService
    from xueliang.bus import Bus
    from xueliang.config import Settings

log = logging.getLogger("xueliang.access")


def key_path(settings: Any) -> Path:
    a = settings.access
    return Path(a.audit_key_file) if a.audit_key_file else Path(settings.storage.var_dir) / "audit.key"


def checkpoint_path(settings: Any) -> Path:
    """The signed heads and checkpoints outside the database (``access.audit_heads_file``)."""
    a = settings.access
    if a.audit_heads_file:
        return Path(a.audit_heads_file)
    return Path(settings.storage.var_dir) / "audit" / "checkpoints.jsonl"


class AccessService:
    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], users: UserService,
        bus: Bus, *, limiter: Callable[[str, float, float], Limiter] | None = None,
    ) -> None:
        """``limiter(name, rate, burst)`` makes the rate limiters (default: this process's own
        buckets; in a cluster, buckets shared in Redis)."""
        cfg = settings.access
        self.config = cfg
        self.sessions = sessions
        self.book = PolicyBook([Rule.of(r) for r in cfg.rules])
        self.users = users
        self.users.attach_book(self.book)
        self.grants = GrantService(self.sessions, self.book)
        self.book.on_use = self._grant_used
        self.api_tokens = ApiTokenService(self.sessions)
        self.users.api_tokens = self.api_tokens
        self.audit = AuditLog(
            self.sessions,
            CheckpointKey.load(key_path(settings)),
            batch_max=cfg.audit_batch_max,
            flush_seconds=cfg.audit_flush_seconds,
            checkpoint_seconds=cfg.audit_checkpoint_seconds,
            checkpoint_file=checkpoint_path(settings),
        )
        for warning in placement_warnings(settings.database.url, key_path(settings), checkpoint_path(settings)):
            log.warning("audit: %s", warning)
        self.approvals = ApprovalService(
            self.sessions,
            self.grants,
            max_minutes=cfg.approval_max_minutes,
            default_minutes=cfg.approval_default_minutes,
            request_hours=cfg.approval_request_hours,
            bus=bus,
        )
        self.login = LoginService(
            self.users,
            [LocalPasswordAuthenticator(self.users)],
            totp_required_roles=cfg.totp_required_roles,
            issuer=cfg.totp_issuer,
            audit=self.audit,
        )
        make = limiter or (lambda _name, rate, burst: TokenBuckets(rate, burst))
        self.login_limiter: Limiter = make("login", 1.0 / cfg.login_refill_seconds, cfg.login_burst)
        self.api_limiter: Limiter = make("api", cfg.api_rate, cfg.api_burst)
        #: Every open reader of a stream: re-checked, cut when its rights go, audited once.
        self.viewing = ViewingSessions(
            self.audit, self.users.recheck, every=cfg.viewing_recheck_seconds
        )
        self._loaded = False
        self._lock = asyncio.Lock()
        self._reloader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- lifecycle ----------------------------------------------------------------------
    async def ready(self) -> None:
        """Load grants and revocations once, start the audit writer and the reloader."""
        if self._loaded:
            return
        async with self._lock:
            if self._loaded:
                return
            await self.reload()
            await self.audit.start()
            self.viewing.start()
            self._loaded = True
            self._reloader = asyncio.get_running_loop().create_task(self._reload_loop(), name="access-reload")

    async def start(self) -> None:
        await self.ready()

    async def stop(self) -> None:
        await stop_task(self._reloader)
        self._reloader = None
        await self.viewing.stop()  # open sessions end and are recorded before the audit's last flush
        for t in list(self._tasks):
            try:
                async with asyncio.timeout(5):
                    await t
            except Exception:
                pass
        await self.audit.stop()
        self._loaded = False

    async def reload(self) -> None:
        await self.grants.load()
        await self.users.load_revoked()

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.reload_seconds)
            try:
                await self.reload()
                self.api_tokens.forget_all()
                self.users.forget_all()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reloading grants failed")

    def _spawn(self, coro: Any) -> None:
        try:
            t = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _grant_used(self, grant_id: int, delta: int) -> None:
        self._spawn(self._record_use(grant_id, delta))

    async def _record_use(self, grant_id: int, delta: int) -> None:
        await self.grants.record_use(grant_id, delta)
        self.book.use_saved(grant_id, delta)  # a reload now finds it in the database
