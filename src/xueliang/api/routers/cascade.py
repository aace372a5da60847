"""Cascade (级联): the upper platforms xueliang registers to, their shares, and their links' state.

Sharing the city's cameras upward is a signalling manager's act (``signalling.manage``);
every write is audited (a share change with what it now shares). The password toward an upper
is write-only: no answer carries it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response

from xueliang.access import context
from xueliang.api.deps import PlatformDep, SignallingManager
from xueliang.app import Platform
from xueliang.cascade.uppers import UpperIn, UpperPatch, public
from xueliang.db.tables import UpperPlatform

router = APIRouter(prefix="/cascade", tags=["cascade"])


def _status(platform: Platform, row: UpperPlatform) -> dict[str, Any]:
    if platform.cascade is None:
        return {"state": "not-running", "last_error": "links to uppers run where signalling runs (sip.enabled)"}
    return platform.cascade.status(row)


def _out(platform: Platform, row: UpperPlatform) -> dict[str, Any]:
    return {**public(row), "status": _status(platform, row)}


async def _settled(platform: Platform) -> None:
    if platform.cascade is not None:
        await platform.cascade.settled()


def _audit(event: str, upper_id: int, **detail: Any) -> None:
    context.describe(event, "upper_platform", upper_id, **detail)


@router.get("/uppers")
async def list_uppers(platform: PlatformDep, _: SignallingManager) -> list[dict[str, Any]]:
    return [_out(platform, row) for row in await platform.uppers.list()]


@router.post("/uppers", status_code=201)
async def create_upper(body: UpperIn, platform: PlatformDep, _: SignallingManager) -> dict[str, Any]:
    row = await platform.uppers.create(body)
    _audit("cascade.upper.create", row.id, sip_id=row.sip_id, host=row.host, port=row.port, enabled=row.enabled,
           share=row.share)
    await _settled(platform)
    return _out(platform, row)


@router.get("/uppers/{upper_id}")
async def get_upper(upper_id: int, platform: PlatformDep, _: SignallingManager) -> dict[str, Any]:
    return _out(platform, await platform.uppers.get(upper_id))


@router.patch("/uppers/{upper_id}")
async def update_upper(upper_id: int, body: UpperPatch, platform: PlatformDep, _: SignallingManager) -> dict[str, Any]:
    row = await platform.uppers.update(upper_id, body)
    fields = sorted(body.model_dump(exclude_unset=True))
    _audit("cascade.upper.update", row.id, fields=fields, **({"share": row.share} if "share" in fields else {}))
    await _settled(platform)
    return _out(platform, row)


@router.delete("/uppers/{upper_id}", status_code=204)
async def delete_upper(upper_id: int, platform: PlatformDep, _: SignallingManager) -> Response:
    await platform.uppers.delete(upper_id)
    _audit("cascade.upper.delete", upper_id)
    await _settled(platform)
    return Response(status_code=204)


@router.get("/uppers/{upper_id}/catalog")
async def upper_catalog(upper_id: int, platform: PlatformDep, _: SignallingManager,
                        limit: int = Query(100, ge=0, le=1000)) -> dict[str, Any]:
    """The catalog the upper is shown (its share, tree and numbering): a preview."""
    return await platform.uppers.preview(upper_id, platform.settings.sip.id, limit)


@router.get("/uppers/{upper_id}/status")
async def upper_status(upper_id: int, platform: PlatformDep, _: SignallingManager) -> dict[str, Any]:
    row = await platform.uppers.get(upper_id)
    return {"id": row.id, "enabled": row.enabled, **_status(platform, row)}
