"""API tokens for systems (upper platforms, 110/119/120/122 dispatch): long-lived, scoped to
some actions, hashed at rest, revocable.

A token reads ``xlt_<id>_<secret>``; only SHA-256(secret) is stored (the secret has 256 random
bits, so a slow hash adds nothing). The token acts as its owner — usually a ``system`` user with
a scope of its own — within the token's scopes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import ApiToken, User
from xueliang.errors import Invalid, NotFound, Unauthorized

PREFIX = "xlt_"
#: How often a token's last use is written back (seconds).
TOUCH_EVERY = 300.0


@dataclass(slots=True)
class _Entry:
    user_id: int
    digest: bytes
    scopes: frozenset[str]
    expires: float | None
    revoked: bool
    touched: float = 0.0


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse(token: str) -> tuple[int, str]:
    try:
        prefix, rest = token[: len(PREFIX)], token[len(PREFIX) :]
        ident, secret = rest.split("_", 1)
        if prefix != PREFIX or not ident.isdigit() or len(secret) < 20:
            raise ValueError
        return int(ident), secret
    except ValueError as exc:
        raise Unauthorized("malformed API token") from exc


class ApiTokenService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self._cache: dict[int, _Entry] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def create(
        self,
        user_id: int,
        name: str,
        scopes: list[str],
        *,
        expires_at: datetime | None = None,
        created_by: str = "",
    ) -> tuple[ApiToken, str]:
        from xueliang.access.policy import ROLES, Action

        known = {a.value for a in Action}
        bad = [s for s in scopes if s not in known]
        if bad or not scopes:
            raise Invalid(f"scopes must be actions (unknown: {bad})" if bad else "give at least one scope")
        secret = secrets.token_urlsafe(32)
        async with self.sessions() as s, s.begin():
            u = await s.get(User, user_id)
            if u is None:
                raise NotFound(f"user {user_id} not found")
            beyond = sorted(set(scopes) - {a.value for a in ROLES.get(u.role, ())})
            if beyond:
                raise Invalid(f"role {u.role} of {u.username} cannot {beyond}: a token never widens its owner")
            row = ApiToken(
                user_id=user_id,
                name=name,
                token_hash=_digest(secret).hex(),
                scopes=sorted(set(scopes)),
                expires_at=expires_at,
                created_by=created_by,
            )
            s.add(row)
            await s.flush()
        self._cache.pop(row.id, None)
        return row, f"{PREFIX}{row.id}_{secret}"

    async def list(self, user_id: int | None = None) -> list[ApiToken]:
        stmt = select(ApiToken).order_by(ApiToken.id)
        if user_id is not None:
            stmt = stmt.where(ApiToken.user_id == user_id)
        async with self.sessions() as s:
            return list((await s.scalars(stmt)).all())

    async def revoke(self, token_id: int) -> ApiToken:
        async with self.sessions() as s, s.begin():
            row = await s.get(ApiToken, token_id)
            if row is None:
                raise NotFound(f"API token {token_id} not found")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(UTC)
        self._cache.pop(token_id, None)
        return row

    async def resolve(self, token: str) -> tuple[int, frozenset[str], int]:
        """(owner user id, scopes, token id) of a valid token; Unauthorized otherwise."""
        ident, secret = parse(token)
        e = self._cache.get(ident)
        if e is None:
            async with self.sessions() as s:
                row = await s.get(ApiToken, ident)
            if row is None:
                raise Unauthorized("unknown API token")
            exp = row.expires_at
            if exp is not None and exp.tzinfo is None:
                exp = exp.replace(tzinfo=UTC)
            e = _Entry(
                row.user_id, bytes.fromhex(row.token_hash), frozenset(row.scopes),
                exp.timestamp() if exp else None, row.revoked_at is not None,
            )
            self._cache[ident] = e
        if not hmac.compare_digest(_digest(secret), e.digest):
            raise Unauthorized("bad API token")
        now = time.time()
        if e.revoked:
            raise Unauthorized("API token revoked")
        if e.expires is not None and now >= e.expires:
            raise Unauthorized("API token expired")
        if now - e.touched > TOUCH_EVERY:
            e.touched = now
            t = asyncio.get_running_loop().create_task(self._touch(ident))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
        return e.user_id, e.scopes, ident

    async def _touch(self, ident: int) -> None:
        try:
            async with self.sessions() as s, s.begin():
                await s.execute(
                    update(ApiToken).where(ApiToken.id == ident).values(last_used_at=datetime.now(UTC))
                )
        except Exception:  # bookkeeping only
            pass

    def forget_all(self) -> None:
        """Drop the cache (revocations by other processes are then seen)."""
        self._cache.clear()
