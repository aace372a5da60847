"""Sharing grants, API tokens for systems, the sensitive-action rules, and "may I?" checks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from xueliang.access import context
from xueliang.access.policy import Action, compiled, requirement
from xueliang.access.resources import visible_channel
from xueliang.api.deps import AccessDep, AccessManager, AccessReader, PlatformDep, PrincipalDep
from xueliang.errors import Invalid

router = APIRouter(tags=["access"])


class FilterIn(BaseModel):
    """Which channels: every field given must hold (within one field, any value)."""

    divisions: list[str] = []
    departments: list[str] = []
    point_classes: list[int] = []
    coverages: list[str] = []
    tiers: list[str] = []
    key_site: bool | None = None
    groups: list[str] = []


class GrantIn(BaseModel):
    #: Share with a department (every user of it) or with one user.
    department: str | None = None
    user_id: int | None = None
    filter: FilterIn | None = None
    channel_ids: list[str] = Field(default=[], max_length=100_000)
    actions: list[str] = ["media.live", "media.playback"]
    valid_until: datetime | None = None
    reason: str = Field(default="", max_length=400)


class TokenIn(BaseModel):
    user_id: int | None = None
    username: str | None = None
    name: str = Field(min_length=1, max_length=200)
    scopes: list[str] = Field(min_length=1)
    expires_at: datetime | None = None


@router.get("/access/rules")
async def rules(p: PrincipalDep) -> list[dict[str, Any]]:
    """The sensitive-action rules in force (configuration access.rules)."""
    return [r.describe() for r in (p.book.rules if p.book is not None else ())]


@router.get("/access/check")
async def check(
    platform: PlatformDep,
    p: PrincipalDep,
    action: str,
    channel_id: str | None = None,
) -> dict[str, Any]:
    """Would ``action`` on the channel be allowed, how, and what would it ask for (a purpose,
    an approval)? Nothing is done and nothing is used up."""
    try:
        act = Action(action)
    except ValueError as exc:
        raise Invalid(f"unknown action {action!r}") from exc
    ch = await visible_channel(platform.registry, p, Action.REGISTRY_READ, channel_id) if channel_id else None
    out: dict[str, Any] = {"action": act.value, "channel_id": channel_id}
    if act not in p.actions:
        out.update(allowed=False, reason=f"role {p.role} may not {act.value}")
        return out
    via = compiled(p).via(act.value, ch) if ch is not None else "role"
    if via is None:
        out.update(allowed=False, reason="outside your scope")
        return out
    out.update(allowed=True, via=via, requires=requirement(p, act, ch))
    return out


# ---- grants ------------------------------------------------------------------------------
@router.get("/access/grants")
async def list_grants(
    access: AccessDep,
    _: AccessReader,
    department: str | None = None,
    user_id: int | None = None,
    kind: str | None = None,
    include_inactive: bool = False,
    limit: int = Query(default=500, ge=1, le=5000),
) -> list[dict[str, Any]]:
    return await access.grants.list(
        department=department, user_id=user_id, kind=kind, active_only=not include_inactive, limit=limit
    )


@router.get("/access/grants/{grant_id}")
async def get_grant(grant_id: int, access: AccessDep, _: AccessReader) -> dict[str, Any]:
    from xueliang.access.grants import describe

    g, ids = await access.grants.get(grant_id)
    out = describe(g, len(ids) if g.has_ids else None)
    out["channel_ids"] = ids
    return out


@router.post("/access/grants", status_code=201)
async def create_grant(body: GrantIn, access: AccessDep, p: AccessManager) -> dict[str, Any]:
    """Share channels with a department or a user (a sharing grant), optionally until a date."""
    from xueliang.access.grants import describe

    g = await access.grants.create(
        department=body.department,
        user_id=body.user_id,
        selector=body.filter.model_dump(exclude_defaults=True) if body.filter else None,
        channel_ids=body.channel_ids,
        actions=body.actions,
        valid_until=body.valid_until,
        reason=body.reason,
        created_by=p.username,
    )
    context.describe("grant.create", "grant", g.id, department=g.grantee_department,
                     user_id=g.grantee_user_id, filter=g.selector, channels=len(body.channel_ids),
                     actions=g.actions, valid_until=str(g.valid_until) if g.valid_until else None)
    return describe(g, len(set(body.channel_ids)) if body.channel_ids else None)


@router.delete("/access/grants/{grant_id}", status_code=204)
async def revoke_grant(grant_id: int, access: AccessDep, p: AccessManager) -> Response:
    await access.grants.revoke(grant_id, p.username)
    context.describe("grant.revoke", "grant", grant_id)
    return Response(status_code=204)


# ---- API tokens ----------------------------------------------------------------------------
def _token(t: Any) -> dict[str, Any]:
    return {
        "id": t.id, "user_id": t.user_id, "name": t.name, "scopes": t.scopes,
        "created_at": t.created_at, "created_by": t.created_by, "expires_at": t.expires_at,
        "last_used_at": t.last_used_at, "revoked_at": t.revoked_at,
    }


@router.get("/access/tokens")
async def list_tokens(access: AccessDep, _: AccessReader, user_id: int | None = None) -> list[dict[str, Any]]:
    return [_token(t) for t in await access.api_tokens.list(user_id)]


@router.post("/access/tokens", status_code=201)
async def create_token(body: TokenIn, platform: PlatformDep, access: AccessDep, p: AccessManager) -> dict[str, Any]:
    """A long-lived token for a system (upper platform, dispatch system). Shown once."""
    if (body.user_id is None) == (body.username is None):
        raise Invalid("give user_id or username")
    uid = body.user_id if body.user_id is not None else (await platform.users.by_name(body.username or "")).id
    row, secret = await access.api_tokens.create(
        uid, body.name, body.scopes, expires_at=body.expires_at, created_by=p.username
    )
    context.describe("token.create", "api_token", row.id, user_id=uid, name=row.name, scopes=row.scopes)
    return {**_token(row), "token": secret}


@router.delete("/access/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: int, access: AccessDep, _: AccessManager) -> Response:
    await access.api_tokens.revoke(token_id)
    context.describe("token.revoke", "api_token", token_id)
    return Response(status_code=204)

