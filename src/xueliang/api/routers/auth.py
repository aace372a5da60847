"""Login (password, TOTP second factor and its enrollment), logout, the current user, users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, Field

from xueliang.access import context
from xueliang.access.authn import Credentials, LoginResult
from xueliang.access.policy import ROLES, compiled
from xueliang.api.deps import AccessDep, PlatformDep, PrincipalDep, UsersManager
from xueliang.errors import Invalid

router = APIRouter(tags=["auth"])


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    #: The 6-digit code of the authenticator app, for users with a second factor.
    totp: str | None = Field(default=None, max_length=16)


class EnrollIn(BaseModel):
    setup_token: str = Field(min_length=1, max_length=2000)
    code: str = Field(min_length=6, max_length=16)


class PasswordIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class ResetPasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=256)


class ScopeIn(BaseModel):
    """Further narrowing of a user's scope (all optional)."""

    point_classes: list[int] = []
    groups: list[str] = []
    coverages: list[str] = []
    tiers: list[str] = []
    key_site: bool | None = None


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=1, max_length=256)
    role: str
    department: str | None = None
    division_code: str | None = None
    display_name: str = ""
    scope: ScopeIn | None = None
    is_system: bool = False


class UserPatch(BaseModel):
    display_name: str | None = None
    role: str | None = None
    department: str | None = None
    division_code: str | None = None
    scope: ScopeIn | None = None
    disabled: bool | None = None
    is_system: bool | None = None


def _user(u: Any, detail: bool = False) -> dict[str, Any]:
    out = {
        "id": u.id,
        "username": u.username,
        "role": u.role,
        "department": u.department,
        "division_code": u.division_code,
        "display_name": u.display_name,
    }
    if detail:
        out.update(
            scope=u.scope or {},
            disabled=u.disabled,
            is_system=u.is_system,
            totp=bool(u.totp_secret) and u.totp_confirmed_at is not None,
            locked_until=u.locked_until,
            last_login_at=u.last_login_at,
            created_at=u.created_at,
        )
    return out


def _token_out(platform: Any, r: LoginResult) -> dict[str, Any]:
    return {
        "access_token": r.token,
        "token_type": "bearer",
        "expires_in": platform.settings.api.token_ttl,
        "user": _user(r.user),
    }


@router.post("/auth/login")
async def login(body: LoginIn, request: Request, platform: PlatformDep, access: AccessDep) -> dict[str, Any]:
    """Password (and TOTP code when the user has a second factor). A user whose role requires
    a second factor and who has none gets ``totp_setup_required`` with a provisioning URI
    instead of a token, and finishes with POST /auth/totp/enroll."""
    ctx = context.current()
    if ctx is not None:
        ctx.audited = True  # the login service records logins with the user name tried
    ip = ctx.ip if ctx is not None else (request.client.host if request.client else "")
    r = await access.login.login(Credentials(body.username, body.password, body.totp, ip))
    if r.token is None:
        return {
            "totp_setup_required": True,
            "setup_token": r.setup_token,
            "secret": r.secret,
            "provisioning_uri": r.provisioning_uri,
            "expires_in": 600,
            "user": _user(r.user),
        }
    return _token_out(platform, r)


@router.post("/auth/totp/enroll")
async def totp_enroll(body: EnrollIn, platform: PlatformDep, access: AccessDep) -> dict[str, Any]:
    """Confirm the authenticator app with one code; returns a login token."""
    ctx = context.current()
    if ctx is not None:
        ctx.audited = True
    r = await access.login.enroll(body.setup_token, body.code, ctx.ip if ctx else "")
    return _token_out(platform, r)


@router.post("/auth/totp/setup")
async def totp_setup(p: PrincipalDep, access: AccessDep) -> dict[str, Any]:
    """Set up a second factor voluntarily; confirm with POST /auth/totp/enroll."""
    r = await access.login.begin_setup(p.user_id)
    context.describe("auth.totp.setup", "user", p.user_id)
    return {
        "setup_token": r.setup_token,
        "secret": r.secret,
        "provisioning_uri": r.provisioning_uri,
        "expires_in": 600,
    }


@router.get("/auth/me")
async def me(p: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    scope = compiled(p)
    grants = []
    if p.book is not None:
        for g in p.book.grants_of(p):
            grants.append({
                "id": g.id, "kind": g.kind, "actions": sorted(g.actions),
                "filter": g.selector.to_json(), "channels": len(g.ids) if g.ids is not None else None,
                "valid_until": g.valid_until, "max_uses": g.max_uses, "uses": g.uses,
                "approval_id": g.approval_id,
            })
    return {
        "id": p.user_id,
        "username": p.username,
        "role": p.role,
        "department": p.department,
        "division_code": p.division_code,
        "scope": p.scope.to_json() if p.scope is not None else {},
        "unrestricted": scope.unrestricted,
        "actions": sorted(a.value for a in p.actions),
        "api_token": p.token_id,
        "grants": grants,
    }


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, p: PrincipalDep, platform: PlatformDep) -> Response:
    """End this session: the token presented is revoked (other sessions stay)."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() == "bearer" and token and not token.startswith("xlt_"):
        await platform.users.revoke_token(token)
    context.describe("auth.logout", "user", p.user_id)
    return Response(status_code=204)


@router.post("/auth/logout-everywhere", status_code=204)
async def logout_everywhere(p: PrincipalDep, platform: PlatformDep) -> None:
    await platform.users.revoke_all(p.user_id)
    context.describe("auth.logout_everywhere", "user", p.user_id)


@router.post("/auth/password")
async def change_password(body: PasswordIn, p: PrincipalDep, platform: PlatformDep) -> dict[str, Any]:
    """Change one's own password; every other session ends; returns a new token."""
    u = await platform.users.check_password(p.username, body.current_password)
    u = await platform.users.set_password(u.id, body.new_password)
    context.describe("user.password", "user", p.user_id)
    return {"access_token": platform.users.issue(u), "token_type": "bearer",
            "expires_in": platform.settings.api.token_ttl, "user": _user(u)}


# ---- users -----------------------------------------------------------------------------------
@router.get("/users", tags=["users"])
async def list_users(platform: PlatformDep, _: UsersManager) -> list[dict[str, Any]]:
    return [_user(u, detail=True) for u in await platform.users.list()]


@router.post("/users", tags=["users"], status_code=201)
async def create_user(body: UserIn, platform: PlatformDep, p: UsersManager) -> dict[str, Any]:
    u = await platform.users.create(
        body.username,
        body.password,
        body.role,
        department=body.department,
        division_code=body.division_code,
        display_name=body.display_name,
        scope=body.scope.model_dump(exclude_defaults=True) if body.scope else None,
        is_system=body.is_system,
    )
    context.describe("user.create", "user", u.id, username=u.username, role=u.role,
                     department=u.department, division_code=u.division_code, scope=u.scope)
    return _user(u, detail=True)


@router.get("/users/{user_id}", tags=["users"])
async def get_user(user_id: int, platform: PlatformDep, _: UsersManager) -> dict[str, Any]:
    return _user(await platform.users.get(user_id), detail=True)


@router.patch("/users/{user_id}", tags=["users"])
async def patch_user(user_id: int, body: UserPatch, platform: PlatformDep, _: UsersManager) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if "scope" in changes:
        changes["scope"] = body.scope.model_dump(exclude_defaults=True) if body.scope else None
    if not changes:
        raise Invalid("nothing to change")
    u, diff = await platform.users.update(user_id, changes)
    context.describe("user.update", "user", user_id, username=u.username,
                     changes={k: [_plain(a), _plain(b)] for k, (a, b) in diff.items()})
    return _user(u, detail=True)


def _plain(v: Any) -> Any:
    return v if isinstance(v, (str, int, float, bool, dict, list, type(None))) else str(v)


@router.post("/users/{user_id}/password", tags=["users"], status_code=204)
async def reset_password(user_id: int, body: ResetPasswordIn, platform: PlatformDep, _: UsersManager) -> Response:
    """Set another user's password (their sessions end)."""
    await platform.users.set_password(user_id, body.password)
    context.describe("user.password_reset", "user", user_id)
    return Response(status_code=204)


@router.delete("/users/{user_id}/totp", tags=["users"], status_code=204)
async def reset_totp(user_id: int, platform: PlatformDep, _: UsersManager) -> Response:
    """Remove a user's second factor (lost phone); they enroll again at next login."""
    await platform.users.reset_totp(user_id)
    context.describe("user.totp_reset", "user", user_id)
    return Response(status_code=204)


@router.post("/users/{user_id}/revoke-sessions", tags=["users"], status_code=204)
async def revoke_sessions(user_id: int, platform: PlatformDep, _: UsersManager) -> Response:
    await platform.users.revoke_all(user_id)
    context.describe("user.revoke_sessions", "user", user_id)
    return Response(status_code=204)


def roles() -> dict[str, list[str]]:
    return {r: sorted(a.value for a in acts) for r, acts in ROLES.items()}


@router.get("/roles", tags=["users"])
async def list_roles(_: PrincipalDep) -> dict[str, list[str]]:
    """Roles and the actions each grants."""
    return roles()

