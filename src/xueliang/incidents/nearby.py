"""Cameras near a place (视频就近): a bounding box on the indexed coordinates
(``ix_channels_lat_lon``), the caller's scope as SQL, then exact distances, nearest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel
from xueliang.incidents.place import bbox, distance_m

FIELDS = ("id", "name", "tier", "point_class", "status", "department", "division_code", "longitude", "latitude",
          "ptz_type")


async def cameras_near(sessions: async_sessionmaker[AsyncSession], lon: float, lat: float, radius_m: float,
                       scope: Sequence[Any] = (), limit: int = 50) -> list[dict[str, Any]]:
    """Cameras within ``radius_m`` of the point that ``scope`` (SQL on channels) lets through,
    nearest first, each with its distance in metres."""
    x0, y0, x1, y1 = bbox(lon, lat, radius_m)
    cols = [getattr(Channel, f) for f in FIELDS]
    stmt = select(*cols).where(Channel.latitude.between(y0, y1), Channel.longitude.between(x0, x1),
                               Channel.kind == "camera", *scope)
    async with sessions() as s:
        rows = (await s.execute(stmt)).all()
    out = []
    for r in rows:
        d = distance_m(lon, lat, r.longitude, r.latitude)
        if d <= radius_m:
            out.append({**{f: getattr(r, f) for f in FIELDS}, "distance": round(d, 1)})
    out.sort(key=lambda c: (c["distance"], c["id"]))
    return out[:limit]
