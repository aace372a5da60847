"""Registry resources: divisions, units, platforms, devices, channels."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy import func, or_, select

from xueliang.access.policy import Action, scope_conditions
from xueliang.access.redact import hide_network
from xueliang.access.resources import devices_seen, visible_channel
from xueliang.api.deps import PlatformDep, RegistryManager, RegistryReader
from xueliang.api.routers.diagnosis import latest_of
from xueliang.db.tables import Channel, Device, Division, Platform, Unit
from xueliang.errors import NotFound
from xueliang.registry.models import (
    ChannelFields,
    ChannelFilter,
    ChannelIn,
    ChannelOut,
    DeviceIn,
    DeviceOut,
    DevicePatch,
    DivisionIn,
    DivisionOut,
    GridOut,
    PlatformIn,
    PlatformOut,
    UnitIn,
    UnitOut,
    UnitPatch,
)
from xueliang.registry.platforms import is_platform, platform_ids

router = APIRouter(tags=["registry"])
Limit = Annotated[int, Query(ge=1, le=1000)]


class DivisionPage(BaseModel):
    items: list[DivisionOut]
    next_cursor: str | None


class GridPage(BaseModel):
    items: list[GridOut]
    next_cursor: str | None


class UnitPage(BaseModel):
    items: list[UnitOut]
    next_cursor: str | None


class PlatformPage(BaseModel):
    items: list[PlatformOut]
    next_cursor: str | None


class DevicePage(BaseModel):
    items: list[DeviceOut]
    next_cursor: str | None


class ChannelPage(BaseModel):
    items: list[ChannelOut]
    next_cursor: str | None
    total: int | None = None


# Units, their systems and devices are visible to a scoped user through the cameras they may
# see (own scope and sharing grants alike): the same scope as the channel listing, one subquery.
def _visible_units(p: Any) -> list[Any]:
    if p.unrestricted:
        return []
    return [Unit.id.in_(select(Channel.unit_id).where(Channel.unit_id.is_not(None), *scope_conditions(p)))]


def _visible_grids(p: Any) -> list[Any]:
    """Grids (网格) are the city's own map of its grassroots cells: a scoped user sees those
    holding a camera of their scope (as units); the national divisions are public names."""
    if p.unrestricted:
        return []
    col = Channel.division_code
    seen = select(col).where(col >= Division.code, col < Division.code + ":", *scope_conditions(p))
    return [or_(Division.level != "grid", seen.limit(1).exists())]


def _visible_devices(p: Any) -> list[Any]:
    if p.unrestricted:
        return []
    return [Device.id.in_(devices_seen(p))]


def _visible_platforms(p: Any) -> list[Any]:
    if p.unrestricted:
        return []
    return [Platform.unit_id.in_(select(Channel.unit_id).where(Channel.unit_id.is_not(None), *scope_conditions(p)))]


async def _check_visible(platform: Any, model: Any, key: Any, conds: list[Any], what: str) -> None:
    """A single read outside the caller's scope is answered like a listing would hide it: as
    not found, exactly as an ID that does not exist (answers never tell which IDs exist)."""
    if not conds:
        return
    async with platform.sessions() as s:
        found = await s.scalar(select(func.count()).select_from(model).where(model.__mapper__.primary_key[0] == key, *conds))
    if not found:
        raise NotFound(f"{what} {key} not found")


def _page(
    model: type[BaseModel], rows: list[Any], cursor: str | None, p: Any = None
) -> dict[str, Any]:
    items = [_out(model, r, p) for r in rows]
    return {"items": items, "next_cursor": cursor}


def _out(model: type[BaseModel], row: Any, p: Any = None) -> Any:
    """A row as ``model``; network addresses and RTSP URLs only for who manages them."""
    out = model.model_validate(row)
    if p is None:
        return out
    return hide_network(out.model_dump(), p.actions)


# ---- divisions ---------------------------------------------------------------------------
@router.get("/divisions", response_model=DivisionPage)
async def list_divisions(
    platform: PlatformDep,
    p: RegistryReader,
    parent: str | None = None,
    under: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
    in_use: bool = False,
    level: str | None = None,
) -> dict[str, Any]:
    """``in_use=true``: only divisions entered here or holding a channel or unit, out of the
    national list's ~45,000 (the console's tree); ``level``: province … village, grid."""
    rows, nxt = await platform.registry.list_divisions(
        parent, under, q, cursor, limit, in_use=in_use, level=level, extra=_visible_grids(p),
        channel_scope=None if p.unrestricted else scope_conditions(p),
    )
    return _page(DivisionOut, rows, nxt)


@router.get("/grids", response_model=GridPage)
async def list_grids(
    platform: PlatformDep,
    p: RegistryReader,
    under: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Grids (网格) with their boundaries (GeoJSON); a scoped user sees those holding a camera of their scope."""
    rows, nxt = await platform.registry.list_divisions(
        None, under, None, cursor, limit, level="grid", extra=_visible_grids(p)
    )
    return _page(GridOut, rows, nxt)


@router.put("/divisions/{code}", response_model=DivisionOut)
async def put_division(code: str, body: DivisionIn, platform: PlatformDep, _: RegistryManager) -> Any:
    if body.code != code:
        from xueliang.errors import Invalid

        raise Invalid("code in the body differs from the URL")
    return await platform.registry.upsert_division(body)


@router.get("/divisions/{code}", response_model=DivisionOut)
async def get_division(code: str, platform: PlatformDep, p: RegistryReader) -> Any:
    await _check_visible(platform, Division, code, _visible_grids(p), "division")
    return await platform.registry.get_division(code)


@router.delete("/divisions/{code}", status_code=204)
async def delete_division(code: str, platform: PlatformDep, _: RegistryManager) -> Response:
    await platform.registry.delete_division(code)
    return Response(status_code=204)


# ---- units -------------------------------------------------------------------------------
@router.get("/units", response_model=UnitPage)
async def list_units(
    platform: PlatformDep,
    p: RegistryReader,
    q: str | None = None,
    department: str | None = None,
    division: str | None = None,
    category: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    rows, nxt = await platform.registry.list_units(
        q=q, department=department, division=division, category=category, cursor=cursor, limit=limit,
        extra=_visible_units(p),
    )
    return _page(UnitOut, rows, nxt)


@router.post("/units", response_model=UnitOut, status_code=201)
async def create_unit(body: UnitIn, platform: PlatformDep, _: RegistryManager) -> Any:
    return await platform.registry.create_unit(body)


@router.get("/units/{unit_id}", response_model=UnitOut)
async def get_unit(unit_id: int, platform: PlatformDep, p: RegistryReader) -> Any:
    row = await platform.registry.get_unit(unit_id)
    await _check_visible(platform, Unit, unit_id, _visible_units(p), "unit")
    return row


@router.patch("/units/{unit_id}", response_model=UnitOut)
async def patch_unit(unit_id: int, body: UnitPatch, platform: PlatformDep, p: RegistryManager) -> Any:
    await _check_visible(platform, Unit, unit_id, _visible_units(p), "unit")
    return await platform.registry.update_unit(unit_id, body)


@router.delete("/units/{unit_id}", status_code=204)
async def delete_unit(unit_id: int, platform: PlatformDep, p: RegistryManager) -> Response:
    await _check_visible(platform, Unit, unit_id, _visible_units(p), "unit")
    await platform.registry.delete_unit(unit_id)
    return Response(status_code=204)


# ---- platforms ---------------------------------------------------------------------------
@router.get("/platforms", response_model=PlatformPage)
async def list_platforms(
    platform: PlatformDep,
    p: RegistryReader,
    unit_id: int | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    rows, nxt = await platform.registry.list_platforms(
        unit_id=unit_id, q=q, cursor=cursor, limit=limit, extra=_visible_platforms(p)
    )
    return _page(PlatformOut, rows, nxt, p)


@router.post("/platforms", response_model=PlatformOut, status_code=201)
async def create_platform(body: PlatformIn, platform: PlatformDep, _: RegistryManager) -> Any:
    return await platform.registry.create_platform(body)


@router.get("/platforms/{platform_id}", response_model=PlatformOut)
async def get_platform(platform_id: int, platform: PlatformDep, p: RegistryReader) -> Any:
    row = await platform.registry.get_platform(platform_id)
    await _check_visible(platform, Platform, platform_id, _visible_platforms(p), "platform")
    return _out(PlatformOut, row, p)


@router.patch("/platforms/{platform_id}", response_model=PlatformOut)
async def patch_platform(
    platform_id: int, body: dict[str, Any], platform: PlatformDep, p: RegistryManager
) -> Any:
    await _check_visible(platform, Platform, platform_id, _visible_platforms(p), "platform")
    return await platform.registry.update_platform(platform_id, body)


@router.delete("/platforms/{platform_id}", status_code=204)
async def delete_platform(platform_id: int, platform: PlatformDep, p: RegistryManager) -> Response:
    await _check_visible(platform, Platform, platform_id, _visible_platforms(p), "platform")
    await platform.registry.delete_platform(platform_id)
    return Response(status_code=204)


# ---- devices -----------------------------------------------------------------------------
async def _kinds(platform: Any, items: list[Any], rows: list[Any]) -> list[Any]:
    """``kind: platform`` on the lower platforms among these devices (registry/platforms.py)."""
    ids = await platform_ids(platform.sessions, rows)
    for item in items:
        if isinstance(item, dict):
            item["kind"] = "platform" if item["id"] in ids else "device"
        else:
            item.kind = "platform" if item.id in ids else "device"
    return items


@router.get("/devices", response_model=DevicePage)
async def list_devices(
    platform: PlatformDep,
    p: RegistryReader,
    q: str | None = None,
    online: bool | None = None,
    admission: str | None = None,
    unit_id: int | None = None,
    kind: Literal["device", "platform"] | None = None,
    cursor: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    extra = _visible_devices(p) + ([] if kind is None else [is_platform(kind == "platform")])
    rows, nxt = await platform.registry.list_devices(
        q=q, online=online, admission=admission, unit_id=unit_id, cursor=cursor, limit=limit,
        extra=extra,
    )
    page = _page(DeviceOut, rows, nxt, p)
    await _kinds(platform, page["items"], rows)
    return page


@router.post("/devices", response_model=DeviceOut, status_code=201)
async def create_device(body: DeviceIn, platform: PlatformDep, _: RegistryManager) -> Any:
    return await platform.registry.create_device(body)


@router.get("/devices/{device_id}", response_model=DeviceOut)
async def get_device(device_id: str, platform: PlatformDep, p: RegistryReader) -> Any:
    row = await platform.registry.get_device(device_id)
    await _check_visible(platform, Device, device_id, _visible_devices(p), "device")
    return (await _kinds(platform, [_out(DeviceOut, row, p)], [row]))[0]


@router.patch("/devices/{device_id}", response_model=DeviceOut)
async def patch_device(device_id: str, body: DevicePatch, platform: PlatformDep, p: RegistryManager) -> Any:
    await _check_visible(platform, Device, device_id, _visible_devices(p), "device")
    return await platform.registry.update_device(device_id, body)


@router.delete("/devices/{device_id}", status_code=204)
async def delete_device(device_id: str, platform: PlatformDep, p: RegistryManager) -> Response:
    await _check_visible(platform, Device, device_id, _visible_devices(p), "device")
    await platform.registry.delete_device(device_id)
    return Response(status_code=204)


# ---- channels ----------------------------------------------------------------------------
@router.get("/channels", response_model=ChannelPage)
async def list_channels(
    platform: PlatformDep,
    p: RegistryReader,
    division: str | None = None,
    department: str | None = None,
    unit_id: int | None = None,
    device_id: str | None = None,
    point_class: Annotated[int | None, Query(alias="class", ge=1, le=3)] = None,
    coverage: str | None = None,
    tier: str | None = None,
    status: str | None = None,
    kind: str | None = "camera",
    key_site: bool | None = None,
    networked: bool | None = None,
    q: str | None = None,
    bbox: Annotated[str | None, Query(description="west,south,east,north")] = None,
    cursor: str | None = None,
    limit: Limit = 100,
    with_total: bool = False,
) -> dict[str, Any]:
    box = None
    if bbox:
        parts = [float(x) for x in bbox.split(",")]
        if len(parts) != 4:
            raise ValueError("bbox must be west,south,east,north")
        box = (parts[0], parts[1], parts[2], parts[3])
    f = ChannelFilter(
        division=division,
        department=department,
        unit_id=unit_id,
        device_id=device_id,
        point_class=point_class,
        coverage=coverage,
        tier=tier,
        status=status,
        kind=kind or None,
        key_site=key_site,
        networked=networked,
        q=q,
        bbox=box,
    )
    scope = scope_conditions(p)
    rows, nxt = await platform.registry.list_channels(f, cursor, limit, extra=scope)
    out = _page(ChannelOut, rows, nxt, p)
    if with_total:
        out["total"] = await platform.registry.count_channels(f, extra=scope)
    return out


@router.post("/channels", response_model=ChannelOut, status_code=201)
async def create_channel(body: ChannelIn, platform: PlatformDep, _: RegistryManager) -> Any:
    return await platform.registry.create_channel(body)


class ChannelDetail(ChannelOut):
    #: The latest picture diagnosis (``null`` for a caller who may not read the point's health).
    diagnosis: dict[str, Any] | None = None


@router.get("/channels/{channel_id}", response_model=ChannelDetail)
async def get_channel(channel_id: str, platform: PlatformDep, p: RegistryReader) -> Any:
    ch = await visible_channel(platform.registry, p, Action.REGISTRY_READ, channel_id)
    return {**_out(ChannelOut, ch, p), "diagnosis": await latest_of(platform, p, channel_id)}


@router.patch("/channels/{channel_id}", response_model=ChannelOut)
async def patch_channel(
    channel_id: str, body: ChannelFields, platform: PlatformDep, p: RegistryManager
) -> Any:
    await visible_channel(platform.registry, p, Action.REGISTRY_MANAGE, channel_id)
    return await platform.registry.update_channel(channel_id, body)


@router.delete("/channels/{channel_id}", status_code=204)
async def delete_channel(channel_id: str, platform: PlatformDep, p: RegistryManager) -> Response:
    await visible_channel(platform.registry, p, Action.REGISTRY_MANAGE, channel_id)
    await platform.registry.delete_channel(channel_id)
    return Response(status_code=204)
