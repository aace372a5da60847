"""Patrols (轮巡) of the video wall, kept by the platform and shared within a department."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from xueliang.api.deps import LiveViewer, PlatformDep
from xueliang.console.patrols import PatrolIn

router = APIRouter(tags=["console"])


class PatrolBody(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    layout: int = 4
    interval: int = 30
    channel_ids: list[str] = Field(default_factory=list, max_length=256)
    shared: bool = False

    def into(self) -> PatrolIn:
        return PatrolIn(self.name, self.layout, self.interval, self.channel_ids, self.shared)


@router.get("/patrols")
async def list_patrols(platform: PlatformDep, p: LiveViewer) -> list[dict[str, Any]]:
    """Mine, and those shared in my department; each with the cameras of it I may watch."""
    return await platform.patrols.visible(p)


@router.post("/patrols", status_code=201)
async def create_patrol(body: PatrolBody, platform: PlatformDep, p: LiveViewer) -> dict[str, Any]:
    return await platform.patrols.create(p, body.into())


@router.get("/patrols/{patrol_id}")
async def get_patrol(patrol_id: int, platform: PlatformDep, p: LiveViewer) -> dict[str, Any]:
    return await platform.patrols.get(p, patrol_id)


@router.put("/patrols/{patrol_id}")
async def update_patrol(patrol_id: int, body: PatrolBody, platform: PlatformDep, p: LiveViewer) -> dict[str, Any]:
    return await platform.patrols.update(p, patrol_id, body.into())


@router.delete("/patrols/{patrol_id}", status_code=204)
async def delete_patrol(patrol_id: int, platform: PlatformDep, p: LiveViewer) -> Response:
    await platform.patrols.delete(p, patrol_id)
    return Response(status_code=204)
