"""Login and the current user."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from xueliang.access.policy import ROLES
from xueliang.api.deps import PlatformDep, PrincipalDep, UsersManager

router = APIRouter(tags=["auth"])


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    user: dict[str, Any]


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=1, max_length=256)
    role: str
    department: str | None = None
    division_code: str | None = None
    display_name: str = ""


def _user(u: Any) -> dict[str, Any]:
    return {
        "id": u.id,
        "username": u.username,
        "role": u.role,
        "department": u.department,
        "division_code": u.division_code,
        "display_name": u.display_name,
    }


@router.post("/auth/login", response_model=TokenOut)
async def login(body: LoginIn, platform: PlatformDep) -> dict[str, Any]:
    token, u = await platform.users.login(body.username, body.password)
    return {"access_token": token, "expires_in": platform.settings.api.token_ttl, "user": _user(u)}


@router.get("/auth/me")
async def me(p: PrincipalDep) -> dict[str, Any]:
    return {
        "id": p.user_id,
        "username": p.username,
        "role": p.role,
        "department": p.department,
        "division_code": p.division_code,
        "actions": sorted(a.value for a in ROLES.get(p.role, ())),
    }


@router.post("/auth/logout-everywhere", status_code=204)
async def logout_everywhere(p: PrincipalDep, platform: PlatformDep) -> None:
    await platform.users.revoke_all(p.user_id)


@router.get("/users", tags=["users"])
async def list_users(
    platform: PlatformDep, _: UsersManager
) -> list[dict[str, Any]]:
    return [_user(u) for u in await platform.users.list()]


@router.post("/users", tags=["users"], status_code=201)
async def create_user(
    body: UserIn, platform: PlatformDep, _: UsersManager
) -> dict[str, Any]:
    u = await platform.users.create(
        body.username,
        body.password,
        body.role,
        department=body.department,
        division_code=body.division_code,
        display_name=body.display_name,
    )
    return _user(u)
