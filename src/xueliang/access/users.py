"""Users: creation, login with lockout, lookup for tokens."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.access.passwords import check_policy, hash_password, verify_password
from xueliang.access.policy import ROLES, Principal
from xueliang.access.tokens import TokenError, TokenSigner
from xueliang.db.tables import User
from xueliang.errors import Conflict, Invalid, NotFound, Unauthorized

LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)
_DUMMY_HASH = hash_password("timing-equaliser-Password1")


def principal_of(u: User) -> Principal:
    return Principal(u.id, u.username, u.role, u.department, u.division_code)


class UserService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], signer: TokenSigner, token_ttl: float) -> None:
        self.sessions = sessions
        self.signer = signer
        self.token_ttl = token_ttl
        #: user_id -> (principal, token_version); refreshed on change. Keeps token checks off the DB.
        self._cache: dict[int, tuple[Principal, int, bool]] = {}

    async def create(self, username: str, password: str, role: str, *, department: str | None = None,
                     division_code: str | None = None, display_name: str = "", enforce_policy: bool = True) -> User:
        if role not in ROLES:
            raise Invalid(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        if enforce_policy:
            try:
                check_policy(password, username)
            except ValueError as exc:
                raise Invalid(str(exc)) from exc
        pw_hash = await asyncio.to_thread(hash_password, password)
        async with self.sessions() as s, s.begin():
            if await s.scalar(select(User.id).where(User.username == username)):
                raise Conflict(f"user {username!r} already exists")
            u = User(username=username, password_hash=pw_hash, role=role, department=department,
                     division_code=division_code, display_name=display_name or username)
            s.add(u)
        return u

    async def count(self) -> int:
        async with self.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(User)) or 0)

    async def login(self, username: str, password: str) -> tuple[str, User]:
        now = datetime.now(UTC)
        failure: str | None = None
        # The failure count must be committed even though the login fails, so decide inside the
        # transaction and raise after it.
        async with self.sessions() as s, s.begin():
            u = await s.scalar(select(User).where(User.username == username))
            if u is None:
                await asyncio.to_thread(verify_password, _DUMMY_HASH, password)
                failure = "wrong user name or password"
            else:
                locked = u.locked_until
                if locked is not None and locked.tzinfo is None:
                    locked = locked.replace(tzinfo=UTC)
                if locked is not None and locked > now:
                    failure = "account locked after repeated failures; try again later"
                elif u.disabled:
                    failure = "account disabled"
                elif not await asyncio.to_thread(verify_password, u.password_hash, password):
                    failure = "wrong user name or password"
                    u.failed_logins += 1
                    if u.failed_logins >= LOCK_AFTER:
                        u.locked_until = now + LOCK_FOR
                        u.failed_logins = 0
                else:
                    u.failed_logins = 0
                    u.locked_until = None
        if failure is not None or u is None:
            raise Unauthorized(failure or "wrong user name or password")
        token = self.signer.issue(u.id, u.token_version, self.token_ttl)
        return token, u

    async def principal_for_token(self, token: str, *, path: str | None = None) -> Principal:
        try:
            claims = self.signer.verify(token)
        except TokenError as exc:
            raise Unauthorized(str(exc)) from exc
        if claims.kind == "media" and (path is None or not path.startswith(claims.scope)):
            raise Unauthorized("media token not valid for this URL")
        cached = self._cache.get(claims.user_id)
        if cached is None:
            async with self.sessions() as s:
                u = await s.get(User, claims.user_id)
            if u is None:
                raise Unauthorized("unknown user")
            cached = (principal_of(u), u.token_version, u.disabled)
            self._cache[claims.user_id] = cached
        principal, version, disabled = cached
        if disabled or version != claims.version:
            raise Unauthorized("token revoked")
        return principal

    def media_token(self, p: Principal, version: int, scope: str, ttl: float) -> str:
        return self.signer.issue(p.user_id, version, ttl, kind="media", scope=scope)

    def token_version(self, user_id: int) -> int:
        c = self._cache.get(user_id)
        return c[1] if c else 0

    async def revoke_all(self, user_id: int) -> None:
        async with self.sessions() as s, s.begin():
            u = await s.get(User, user_id)
            if u is None:
                raise NotFound(f"user {user_id} not found")
            u.token_version += 1
        self._cache.pop(user_id, None)

    async def list(self) -> list[User]:
        async with self.sessions() as s:
            return list((await s.scalars(select(User).order_by(User.id))).all())
