"""Users: creation and changes, passwords with lockout, TOTP enrollment, tokens and revocation.

Token checks stay off the database: principals are cached per user and refreshed on change;
revoked single tokens are kept in memory (and in ``revoked_tokens`` for other processes).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.access import context, totp
from xueliang.access.passwords import check_policy, hash_password, needs_rehash, verify_password
from xueliang.access.policy import ROLES, Principal
from xueliang.access.scope import Selector
from xueliang.access.tokens import Credential, TokenClaims, TokenError, TokenSigner
from xueliang.db.tables import RevokedToken, User
from xueliang.errors import Conflict, Invalid, NotFound, Unauthorized
from xueliang.sealing import Sealer, SealError

if TYPE_CHECKING:
    from xueliang.access.apitokens import ApiTokenService
    from xueliang.access.book import PolicyBook

LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)
_DUMMY_HASH = hash_password("timing-equaliser-Password1")
#: Fields an administrator may change on a user.
EDITABLE = ("display_name", "role", "department", "division_code", "scope", "disabled", "is_system")

log = logging.getLogger("xueliang.access")


def _aware(d: datetime | None) -> datetime | None:
    if d is not None and d.tzinfo is None:
        return d.replace(tzinfo=UTC)
    return d


def scope_of(u: User) -> Selector | None:
    try:
        s = Selector.from_json(u.scope)
    except (ValueError, TypeError):
        # A malformed stored scope must not open everything: it closes everything instead.
        return Selector(divisions=("-",))
    return None if s.empty else s


def principal_of(u: User, book: PolicyBook | None = None) -> Principal:
    return Principal(
        u.id, u.username, u.role, u.department or None, u.division_code or None, scope_of(u),
        book=book,
    )


class UserService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], signer: TokenSigner, token_ttl: float,
        sealer: Sealer,
    ) -> None:
        self.sessions = sessions
        self.signer = signer
        self.token_ttl = token_ttl
        #: TOTP seeds are sealed at rest under a key that is not in the database.
        self.sealer = sealer
        #: user_id -> (principal, token_version, disabled); refreshed on change.
        self._cache: dict[int, tuple[Principal, int, bool]] = {}
        #: Grants and rules given to every principal (set by the access service).
        self.book: PolicyBook | None = None
        #: API tokens of systems (set by the access service).
        self.api_tokens: ApiTokenService | None = None
        #: jti -> expiry (epoch seconds) of single tokens revoked before they expire.
        self.revoked: dict[str, float] = {}

    def attach_book(self, book: PolicyBook) -> None:
        self.book = book
        self._cache.clear()

    def forget_all(self) -> None:
        """Drop every cached principal (changes made by other processes are then seen)."""
        self._cache.clear()

    def forget(self, user_id: int) -> None:
        self._cache.pop(user_id, None)

    # ---- users --------------------------------------------------------------------------
    async def create(
        self,
        username: str,
        password: str,
        role: str,
        *,
        department: str | None = None,
        division_code: str | None = None,
        display_name: str = "",
        enforce_policy: bool = True,
        scope: Mapping[str, Any] | None = None,
        is_system: bool = False,
    ) -> User:
        if role not in ROLES:
            raise Invalid(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        self._check_needs(role, department)
        if enforce_policy:
            try:
                check_policy(password, username)
            except ValueError as exc:
                raise Invalid(str(exc)) from exc
        sel = self._scope_json(scope)
        pw_hash = await asyncio.to_thread(hash_password, password)
        try:
            async with self.sessions() as s, s.begin():
                if await s.scalar(select(User.id).where(User.username == username)):
                    raise Conflict(f"user {username!r} already exists")
                u = User(
                    username=username,
                    password_hash=pw_hash,
                    role=role,
                    department=department or None,
                    division_code=division_code or None,
                    display_name=display_name or username,
                    scope=sel,
                    is_system=is_system,
                )
                s.add(u)
        except IntegrityError as exc:  # created at the same time by another request
            raise Conflict(f"user {username!r} already exists") from exc
        return u

    @staticmethod
    def _check_needs(role: str, department: str | None) -> None:
        """What a role cannot work without: a grid member is reached through its grid's
        department (cases are dispatched to a department; without one it would see none)."""
        if role == "grid_member" and not (department or "").strip():
            raise Invalid("a grid member needs the department of their grid (cases are dispatched to it, e.g. 网格一)")

    @staticmethod
    def _scope_json(scope: Mapping[str, Any] | None) -> dict[str, object] | None:
        if not scope:
            return None
        try:
            sel = Selector.from_json(scope)
        except (ValueError, TypeError) as exc:
            raise Invalid(f"scope: {exc}") from exc
        return sel.to_json() or None

    async def count(self) -> int:
        async with self.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(User)) or 0)

    async def get(self, user_id: int) -> User:
        async with self.sessions() as s:
            u = await s.get(User, user_id)
        if u is None:
            raise NotFound(f"user {user_id} not found")
        return u

    async def by_name(self, username: str) -> User:
        async with self.sessions() as s:
            u = await s.scalar(select(User).where(User.username == username))
        if u is None:
            raise NotFound(f"user {username!r} not found")
        return u

    async def list(self) -> list[User]:
        async with self.sessions() as s:
            return list((await s.scalars(select(User).order_by(User.id))).all())

    async def update(self, user_id: int, changes: Mapping[str, Any]) -> tuple[User, dict[str, Any]]:
        """Change a user; returns the user and {field: [old, new]} of what changed. Changing the
        role, scope or disabling revokes every token of the user."""
        bad = set(changes) - set(EDITABLE)
        if bad:
            raise Invalid(f"cannot change {sorted(bad)}")
        if "role" in changes and changes["role"] not in ROLES:
            raise Invalid(f"unknown role {changes['role']!r} (roles: {', '.join(ROLES)})")
        data = dict(changes)
        if "scope" in data:
            data["scope"] = self._scope_json(data["scope"])
        for k in ("department", "division_code"):
            if k in data:
                data[k] = data[k] or None
        diff: dict[str, Any] = {}
        async with self.sessions() as s, s.begin():
            u = await s.get(User, user_id)
            if u is None:
                raise NotFound(f"user {user_id} not found")
            for k, v in data.items():
                old = getattr(u, k)
                if old != v:
                    diff[k] = [old, v]
                    setattr(u, k, v)
            self._check_needs(u.role, u.department)  # the user as changed (raising rolls back)
            if set(diff) & {"role", "scope", "disabled", "department", "division_code"}:
                u.token_version += 1
        self.forget(user_id)
        return u, diff

    # ---- passwords ----------------------------------------------------------------------
    async def check_password(self, username: str, password: str) -> User:
        """The user, if the password is right and the account usable; Unauthorized otherwise.
        Counts failures and locks the account for LOCK_FOR after LOCK_AFTER of them.

        Each check takes an attempt first (:meth:`_attempt`, one atomic UPDATE), so that
        parallel guesses cannot all be checked against the state read before any failure was
        counted: a burst gets LOCK_AFTER checks at most, the rest are refused unchecked, the
        right password among them too. A right password gives its attempt back."""
        async with self.sessions() as s:
            u = await s.scalar(select(User).where(User.username == username))
        if u is None:
            await asyncio.to_thread(verify_password, _DUMMY_HASH, password)
            raise Unauthorized("wrong user name or password")
        if u.disabled:
            raise Unauthorized("account disabled")
        attempt = await self._attempt(u.id)
        if not await asyncio.to_thread(verify_password, u.password_hash, password):
            await self._attempt_failed(u.id, attempt)
            raise Unauthorized("wrong user name or password")
        await self._attempt_succeeded(u.id)
        if needs_rehash(u.password_hash):
            new_hash = await asyncio.to_thread(hash_password, password)
            async with self.sessions() as s, s.begin():
                await s.execute(update(User).where(User.id == u.id).values(password_hash=new_hash))
        return u

    async def _attempt(self, user_id: int) -> int:
        """Take one attempt at a secret of the user (password or one-time code) before checking
        it: the failure count goes up at once, in one statement (atomic on SQLite and PostgreSQL:
        the row is locked while it is updated), and the decision is taken from the value it
        returns. Raises Unauthorized when the account is locked, or when LOCK_AFTER attempts are
        already counted (then it locks it). A lock that has run out starts a new count."""
        now = datetime.now(UTC)
        until = now + LOCK_FOR
        locked = and_(User.locked_until.is_not(None), User.locked_until > now)
        lapsed = and_(User.locked_until.is_not(None), User.locked_until <= now)
        count = case((lapsed, 1), else_=User.failed_logins + 1)
        stmt = (
            update(User)
            .where(User.id == user_id)
            .values(
                failed_logins=count,
                locked_until=case(
                    (locked, User.locked_until),
                    (count > LOCK_AFTER, until),
                    else_=None,
                ),
            )
            .returning(User.failed_logins, User.locked_until)
            .execution_options(synchronize_session=False)
        )
        async with self.sessions() as s, s.begin():
            row = (await s.execute(stmt)).one_or_none()
        if row is None:
            raise Unauthorized("wrong user name or password")
        lock = _aware(row[1])
        if lock is not None and lock > now:
            raise Unauthorized("account locked after repeated failures; try again later")
        return int(row[0])

    async def _attempt_failed(self, user_id: int, attempt: int) -> None:
        """The attempt numbered ``attempt`` was wrong: it stays counted, and the LOCK_AFTER-th
        locks the account."""
        if attempt < LOCK_AFTER:
            return
        now = datetime.now(UTC)
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(User)
                .where(User.id == user_id, or_(User.locked_until.is_(None), User.locked_until <= now))
                .values(locked_until=now + LOCK_FOR)
                .execution_options(synchronize_session=False)
            )

    async def _attempt_succeeded(self, user_id: int) -> None:
        """A right secret gives its attempt back (a login that then completes resets the count:
        :meth:`logged_in`)."""
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(User)
                .where(User.id == user_id, User.failed_logins > 0)
                .values(failed_logins=User.failed_logins - 1)
                .execution_options(synchronize_session=False)
            )

    async def record_failure(self, user_id: int) -> None:
        """Count a failure that was not checked through an attempt (another authenticator's)."""
        try:
            attempt = await self._attempt(user_id)
        except Unauthorized:
            return
        await self._attempt_failed(user_id, attempt)

    async def logged_in(self, user_id: int) -> None:
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(User)
                .where(User.id == user_id)
                .values(failed_logins=0, locked_until=None, last_login_at=datetime.now(UTC))
            )

    async def login(self, username: str, password: str) -> tuple[str, User]:
        """Password only (no second factor): kept for tools; the API logs in through
        access.authn.LoginService."""
        u = await self.check_password(username, password)
        await self.logged_in(u.id)
        return self.issue(u), u

    async def set_password(self, user_id: int, password: str, *, enforce_policy: bool = True) -> User:
        async with self.sessions() as s:
            u = await s.get(User, user_id)
        if u is None:
            raise NotFound(f"user {user_id} not found")
        if enforce_policy:
            try:
                check_policy(password, u.username)
            except ValueError as exc:
                raise Invalid(str(exc)) from exc
        pw_hash = await asyncio.to_thread(hash_password, password)
        async with self.sessions() as s, s.begin():
            u2 = await s.get(User, user_id)
            assert u2 is not None
            u2.password_hash = pw_hash
            u2.password_changed_at = datetime.now(UTC)
            u2.failed_logins = 0
            u2.locked_until = None
            u2.token_version += 1
        self.forget(user_id)
        return u2

    # ---- TOTP ---------------------------------------------------------------------------
    @staticmethod
    def totp_enrolled(u: User) -> bool:
        return bool(u.totp_secret) and u.totp_confirmed_at is not None

    async def begin_totp(self, user_id: int) -> str:
        """A new pending TOTP secret for the user (replaces an unconfirmed one)."""
        secret = totp.new_secret()
        async with self.sessions() as s, s.begin():
            u = await s.get(User, user_id)
            if u is None:
                raise NotFound(f"user {user_id} not found")
            if self.totp_enrolled(u):
                raise Conflict("a second factor is already set up; an administrator can reset it")
            u.totp_secret = self.sealer.seal(secret, context=_totp_context(user_id))
            u.totp_confirmed_at = None
            u.totp_last_step = None
        return secret

    async def check_totp(self, user_id: int, code: str, *, confirm: bool = False) -> bool:
        """Accept ``code`` once (a code's time step must be later than the last accepted one).
        With ``confirm``, a right code completes enrollment of the pending secret.

        A code is checked only after an attempt is taken (:meth:`_attempt`): a wrong one counts
        towards the lockout, and parallel guesses at the 10**6 codes get LOCK_AFTER checks at
        most. Raises Unauthorized when the account is locked."""
        async with self.sessions() as s:
            u = await s.get(User, user_id)
        if u is None or not u.totp_secret:
            return False
        if confirm != (u.totp_confirmed_at is None):
            return False
        try:
            secret = self.sealer.open(u.totp_secret, context=_totp_context(user_id))
        except SealError:
            log.warning("the TOTP secret of user %s does not open (platform secret changed, or the row "
                        "was copied from another user): an administrator must reset it", user_id)
            return False
        attempt = await self._attempt(user_id)
        # The last accepted step is read after the attempt is taken.
        async with self.sessions() as s:
            last_step = await s.scalar(select(User.totp_last_step).where(User.id == user_id))
        step = totp.match(secret, code, after_step=last_step)
        accepted = False
        if step is not None:
            # Atomic: two requests with the same code cannot both pass.
            values: dict[str, Any] = {"totp_last_step": step}
            if not self.sealer.is_sealed(u.totp_secret):  # enrolled before sealing: seal it now
                values["totp_secret"] = self.sealer.seal(secret, context=_totp_context(user_id))
            if confirm:
                values["totp_confirmed_at"] = datetime.now(UTC)
            async with self.sessions() as s, s.begin():
                res = await s.execute(
                    update(User)
                    .where(
                        User.id == user_id,
                        User.totp_secret == u.totp_secret,
                        or_(User.totp_last_step.is_(None), User.totp_last_step < step),
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                accepted = bool(res.rowcount)  # type: ignore[attr-defined]
        if accepted:
            await self._attempt_succeeded(user_id)
        else:
            await self._attempt_failed(user_id, attempt)
        return accepted

    async def reset_totp(self, user_id: int) -> None:
        async with self.sessions() as s, s.begin():
            u = await s.get(User, user_id)
            if u is None:
                raise NotFound(f"user {user_id} not found")
            u.totp_secret = None
            u.totp_confirmed_at = None
            u.totp_last_step = None
            u.token_version += 1
        self.forget(user_id)

    # ---- tokens -------------------------------------------------------------------------
    def issue(self, u: User, ttl: float | None = None) -> str:
        return self.signer.issue(
            u.id, u.token_version, ttl or self.token_ttl, jti=secrets.token_hex(8)
        )

    def setup_token(self, u: User, ttl: float = 600) -> str:
        """Opens only the TOTP enrollment step (kind "totp-setup")."""
        return self.signer.issue(u.id, u.token_version, ttl, kind="totp-setup")

    def claims(self, token: str, kind: str) -> TokenClaims:
        try:
            c = self.signer.verify(token)
        except TokenError as exc:
            raise Unauthorized(str(exc)) from exc
        if c.kind != kind:
            raise Unauthorized(f"not a {kind} token")
        return c

    async def principal_for_token(self, token: str, *, query: bool = False) -> Principal:
        return (await self.authenticate(token, query=query))[0]

    async def authenticate(self, token: str, *, query: bool = False) -> tuple[Principal, Credential]:
        """The principal of a token and the credential it stands on.

        ``query``: the token came in ``?token=`` (players that cannot send headers). There only
        media tokens count: a login or API token in a URL lands in logs and browser history.
        Elsewhere media tokens count for nothing: one reads one stream, never mints or controls.
        """
        if token.startswith("xlt_"):
            if query:
                raise Unauthorized("?token= takes a media token only: send API tokens as a bearer")
            principal = await self.recheck(Credential("api", 0, api_token=token))
            return principal, Credential("api", principal.user_id, api_token=token)
        try:
            claims = self.signer.verify(token)
        except TokenError as exc:
            raise Unauthorized(str(exc)) from exc
        if query and claims.kind != "media":
            raise Unauthorized("?token= takes a media token only (POST .../media-token)")
        if claims.kind == "media":
            if not query:
                raise Unauthorized("a media token opens only its own stream's URLs, as ?token=")
            ctx = context.current()
            if ctx is not None and ctx.purpose is None and claims.purpose:
                ctx.purpose = claims.purpose
                ctx.case_ref = ctx.case_ref or claims.case_ref or None
        elif claims.kind != "access":
            raise Unauthorized(f"a {claims.kind} token does not open the API")
        cred = Credential(
            claims.kind, claims.user_id, claims.version, claims.jti,
            target=claims.scope if claims.kind == "media" else "",
            action=claims.action if claims.kind == "media" else "",
        )
        return await self.recheck(cred), cred

    async def recheck(self, cred: Credential) -> Principal:
        """The principal a credential stands for now: Unauthorized once the user is disabled or
        the token revoked (by version, by id, or the API token). Expiry is not re-checked: it
        limits when a session may open, not how long it runs."""
        if cred.kind == "api":  # the same check as when the token was first presented
            if self.api_tokens is None:
                raise Unauthorized("API tokens are not enabled")
            user_id, scopes, token_id = await self.api_tokens.resolve(cred.api_token)
            principal, _ = await self._principal(user_id)
            return replace(principal, token_scopes=scopes, token_id=token_id)
        if cred.jti and cred.jti in self.revoked:
            raise Unauthorized("token revoked (logged out)")
        principal, version = await self._principal(cred.user_id)
        if version != cred.version:
            raise Unauthorized("token revoked")
        return principal

    async def _principal(self, user_id: int) -> tuple[Principal, int]:
        cached = self._cache.get(user_id)
        if cached is None:
            async with self.sessions() as s:
                u = await s.get(User, user_id)
            if u is None:
                raise Unauthorized("unknown user")
            cached = (principal_of(u, self.book), u.token_version, u.disabled)
            self._cache[user_id] = cached
        principal, version, disabled = cached
        if disabled:
            raise Unauthorized("account disabled")
        return principal, version

    def media_token(
        self, p: Principal, cred: Credential, target: str, action: str, ttl: float
    ) -> str:
        """A short-lived token that reads one stream (``target``) for one ``action``; it carries
        the purpose stated now and the id of the login token behind it (see :class:`Credential`)."""
        if cred.kind == "media":
            raise Unauthorized("a media token cannot mint another")
        ctx = context.current()
        purpose = (ctx.purpose or "") if ctx is not None else ""
        case = (ctx.case_ref or "") if ctx is not None else ""
        version = cred.version if cred.kind == "access" else self.token_version(p.user_id)
        return self.signer.issue(
            p.user_id, version, ttl, kind="media", scope=target, purpose=purpose, case_ref=case,
            jti=cred.jti, action=action,
        )

    def token_version(self, user_id: int) -> int:
        c = self._cache.get(user_id)
        return c[1] if c else 0

    async def revoke_all(self, user_id: int) -> None:
        async with self.sessions() as s, s.begin():
            u = await s.get(User, user_id)
            if u is None:
                raise NotFound(f"user {user_id} not found")
            u.token_version += 1
        self.forget(user_id)

    async def revoke_token(self, token: str) -> None:
        """Log out one login token (kept as revoked until it would have expired)."""
        c = self.claims(token, "access")
        if not c.jti:
            await self.revoke_all(c.user_id)
            return
        self.revoked[c.jti] = c.expires
        try:
            async with self.sessions() as s, s.begin():
                if await s.get(RevokedToken, c.jti) is None:
                    s.add(
                        RevokedToken(
                            jti=c.jti, user_id=c.user_id,
                            expires_at=datetime.fromtimestamp(c.expires, UTC),
                        )
                    )
        except IntegrityError:
            pass  # revoked by a request at the same time: it is in the table, as wanted

    async def load_revoked(self) -> None:
        now = datetime.now(UTC)
        async with self.sessions() as s, s.begin():
            await s.execute(delete(RevokedToken).where(RevokedToken.expires_at < now))
            rows = (await s.execute(select(RevokedToken.jti, RevokedToken.expires_at))).all()
        t = time.time()
        self.revoked = {
            j: e.timestamp() for j, e in ((r[0], _aware(r[1])) for r in rows) if e is not None
        }
        self.revoked = {j: e for j, e in self.revoked.items() if e > t}


def _totp_context(user_id: int) -> str:
    return f"user:{user_id}:totp"
