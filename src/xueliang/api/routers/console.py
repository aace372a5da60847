"""What the browser console needs beyond the resource routers: compact map points, the linked
view around a place (立体化联动), and the map configuration. Registered before the channel
routes, because ``/channels/points`` and ``/channels/near`` would otherwise read as channel IDs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from xueliang.access.policy import scope_conditions
from xueliang.access.redact import hide_network
from xueliang.api.deps import PlatformDep, RegistryReader
from xueliang.db.tables import Channel
from xueliang.registry.models import ChannelFilter, ChannelOut
from xueliang.registry.service import channel_conditions

router = APIRouter(tags=["console"])
POINT_FIELDS = ["id", "name", "longitude", "latitude", "status", "point_class", "tier", "department",
                "division_code", "ptz_type"]


@router.get("/channels/points")
async def channel_points(platform: PlatformDep, p: RegistryReader, division: str | None = None,
                         department: str | None = None,
                         point_class: Annotated[int | None, Query(alias="class", ge=1, le=3)] = None,
                         tier: str | None = None, status: str | None = None,
                         after: str | None = None, limit: Annotated[int, Query(ge=1, le=200_000)] = 200_000,
                         changed_after: datetime | None = None) -> dict[str, Any]:
    """Every labelled camera point the user may see, as rows of ``fields`` (a tenth of the JSON
    of full channel objects): what the map draws. Paged by ``after`` (the last id) when large.

    ``changed_after``: only points changed since then (status from keepalives, catalogs and
    notifies; edits). ``as_of`` is the server's time when the answer was read: a client keeps
    its map current by asking again with ``changed_after`` a few seconds before it (rows
    committed late carry an earlier time; asking with an overlap catches them)."""
    as_of = datetime.now(UTC)
    f = ChannelFilter(division=division, department=department, point_class=point_class, tier=tier, status=status)
    cols = [getattr(Channel, c) for c in POINT_FIELDS]
    stmt = select(*cols).where(*channel_conditions(f), *scope_conditions(p), Channel.longitude.is_not(None),
                               Channel.latitude.is_not(None))
    if changed_after is not None:  # a time without a zone is UTC (db.tables.UtcDateTime)
        stmt = stmt.where(Channel.updated_at > changed_after)
    if after:
        stmt = stmt.where(Channel.id > after)
    stmt = stmt.order_by(Channel.id).limit(limit + 1)
    async with platform.sessions() as s:
        rows = [list(r) for r in (await s.execute(stmt)).all()]
    more = len(rows) > limit
    rows = rows[:limit]
    return {"fields": POINT_FIELDS, "items": rows, "total": len(rows),
            "next_after": rows[-1][0] if more and rows else None, "as_of": as_of}


@router.get("/channels/near")
async def channels_near(platform: PlatformDep, p: RegistryReader,
                        lon: Annotated[float, Query(ge=-180, le=180)], lat: Annotated[float, Query(ge=-90, le=90)],
                        radius: Annotated[float, Query(gt=0, le=20_000)] = 1000.0,
                        per_tier: Annotated[int, Query(ge=1, le=16)] = 3) -> dict[str, Any]:
    """立体化联动: the nearest high-lookout, building-top and street cameras around a place."""
    near = await platform.registry.channels_near(lon, lat, radius, per_tier, extra=scope_conditions(p))
    return {tier: [{**hide_network(ChannelOut.model_validate(ch).model_dump(), p.actions), "distance": round(d, 1)}
                   for ch, d in rows]
            for tier, rows in near.items()}


@router.get("/console/config")
async def console_config(platform: PlatformDep, _: RegistryReader) -> dict[str, Any]:
    c = platform.settings.console
    base = platform.maps.describe()
    # the city's day (health.utc_offset_hours): the console's date pickers count days as the
    # rates and reports do, not in the browser's own time zone
    days = {"utc_offset_hours": platform.settings.health.utc_offset_hours}
    # the platform's own basemap (map.basemap), tiles behind login: raster images, or vector
    # tiles the console styles itself (tile_vector)
    if base is not None and not c.tile_url:
        return {"tile_url": base["tile_url"], "tile_attribution": c.tile_attribution or base["attribution"],
                "tile_max_zoom": base["max_zoom"], "tile_min_zoom": base["min_zoom"], "tile_auth": True,
                "tile_bounds": base["bounds"], "tile_vector": base["vector"],
                "center": c.center or None, "zoom": c.zoom, **days}
    return {"tile_url": c.tile_url or None, "tile_attribution": c.tile_attribution, "tile_max_zoom": c.tile_max_zoom,
            "center": c.center or None, "zoom": c.zoom, **days}
