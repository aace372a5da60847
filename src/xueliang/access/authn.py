"""Authentication: who someone is, decided by pluggable authenticators, then a second factor
and a token. Authorization never looks here: it sees only the resulting Principal.

An :class:`Authenticator` turns credentials into a local user (LDAP: bind, then find or
provision the local user; OIDC: exchange the code, map the subject). It returns None when the
credentials are not its kind (the next one is asked) and raises Unauthorized when they are wrong.
An authenticator whose identity provider already did a second factor says so (``mfa=True``)
and TOTP is not asked again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from xueliang.access import totp
from xueliang.access.users import UserService
from xueliang.db.tables import User
from xueliang.errors import Invalid, Unauthorized


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str
    #: A TOTP code, when the user has one.
    totp: str | None = None
    ip: str = ""


@dataclass(frozen=True, slots=True)
class Identity:
    user: User
    #: The identity provider already checked a second factor.
    mfa: bool = False
    via: str = "local"


class Authenticator(Protocol):
    name: str

    async def authenticate(self, creds: Credentials) -> Identity | None: ...


class LocalPasswordAuthenticator:
    """Local accounts: argon2 password hashes, lockout after repeated failures."""

    name = "local"

    def __init__(self, users: UserService) -> None:
        self.users = users

    async def authenticate(self, creds: Credentials) -> Identity | None:
        return Identity(await self.users.check_password(creds.username, creds.password), via=self.name)


class SecondFactorRequired(Unauthorized):
    """Password right, TOTP code missing: ask for it and log in again with ``totp``."""

    def __init__(self) -> None:
        super().__init__(
            "enter the 6-digit code of your authenticator app (field totp)",
            type="urn:xueliang:problem:totp-required",
            totp_required=True,
        )


@dataclass
class LoginResult:
    user: User
    token: str | None = None
    #: Enrollment: the user must set up TOTP before getting a token.
    setup_token: str | None = None
    secret: str | None = None
    provisioning_uri: str | None = None
    via: str = "local"


class LoginService:
    def __init__(
        self,
        users: UserService,
        authenticators: Sequence[Authenticator],
        *,
        totp_required_roles: Sequence[str],
        issuer: str,
        audit: Any = None,
    ) -> None:
        self.users = users
        self.authenticators = list(authenticators)
        self.totp_required_roles = frozenset(totp_required_roles)
        self.issuer = issuer
        self.audit = audit

    def _record(self, creds: Credentials, outcome: str, user: User | None, **detail: Any) -> None:
        if self.audit is None:
            return
        self.audit.append(
            "auth.login",
            outcome,
            actor_id=user.id if user is not None else None,
            actor=creds.username,
            role=user.role if user is not None else "",
            actor_department=user.department if user is not None else None,
            ip=creds.ip,
            status=200 if outcome == "ok" else 401,
            detail=detail or None,
        )

    async def login(self, creds: Credentials) -> LoginResult:
        identity: Identity | None = None
        try:
            for a in self.authenticators:
                identity = await a.authenticate(creds)
                if identity is not None:
                    break
        except Unauthorized as exc:
            self._record(creds, "failed", None, reason=exc.detail)
            raise
        if identity is None:
            self._record(creds, "failed", None, reason="no authenticator accepted the credentials")
            raise Unauthorized("wrong user name or password")
        u = identity.user
        if not identity.mfa and self.users.totp_enrolled(u):
            if not creds.totp:
                self._record(creds, "partial", u, reason="second factor required", via=identity.via)
                raise SecondFactorRequired()
            try:  # a wrong code counts towards the lockout (check_totp counts it)
                accepted = await self.users.check_totp(u.id, creds.totp)
            except Unauthorized as exc:  # locked
                self._record(creds, "failed", u, reason=exc.detail)
                raise
            if not accepted:
                self._record(creds, "failed", u, reason="wrong or reused one-time code")
                raise Unauthorized("wrong or already used one-time code")
        elif not identity.mfa and u.role in self.totp_required_roles:
            secret = await self.users.begin_totp(u.id)
            self._record(creds, "partial", u, reason="second factor enrollment required")
            return LoginResult(
                u,
                setup_token=self.users.setup_token(u),
                secret=secret,
                provisioning_uri=totp.provisioning_uri(secret, u.username, self.issuer),
                via=identity.via,
            )
        await self.users.logged_in(u.id)
        self._record(creds, "ok", u, via=identity.via, mfa=identity.mfa or self.users.totp_enrolled(u))
        return LoginResult(u, token=self.users.issue(u), via=identity.via)

    async def begin_setup(self, user_id: int) -> LoginResult:
        """A logged-in user sets up TOTP voluntarily."""
        u = await self.users.get(user_id)
        secret = await self.users.begin_totp(u.id)
        return LoginResult(
            u,
            setup_token=self.users.setup_token(u),
            secret=secret,
            provisioning_uri=totp.provisioning_uri(secret, u.username, self.issuer),
        )

    async def enroll(self, setup_token: str, code: str, ip: str = "") -> LoginResult:
        """Confirm the pending secret with a code; the user is then logged in."""
        claims = self.users.claims(setup_token, "totp-setup")
        u = await self.users.get(claims.user_id)
        if u.token_version != claims.version or u.disabled:
            raise Unauthorized("setup token revoked")
        try:  # a wrong code counts towards the lockout (check_totp counts it)
            accepted = await self.users.check_totp(u.id, code, confirm=True)
        except Unauthorized:  # locked
            if self.audit is not None:
                self.audit.append("auth.totp.enroll", "failed", actor_id=u.id, actor=u.username,
                                  role=u.role, ip=ip, status=401)
            raise
        if not accepted:
            if self.audit is not None:
                self.audit.append("auth.totp.enroll", "failed", actor_id=u.id, actor=u.username,
                                  role=u.role, ip=ip, status=422)
            raise Invalid("wrong code: check the authenticator app's clock and try the next code")
        await self.users.logged_in(u.id)
        if self.audit is not None:
            self.audit.append("auth.totp.enroll", "ok", actor_id=u.id, actor=u.username, role=u.role,
                              actor_department=u.department, ip=ip, status=200)
        u = await self.users.get(u.id)
        return LoginResult(u, token=self.users.issue(u))
