"""A grid's boundary (网格边界): GeoJSON Polygon or MultiPolygon, WGS-84, inside China. Pure."""

from __future__ import annotations

import json
import math
from typing import Any

from xueliang.registry import vocab

#: a boundary's text at most (a detailed township outline is ~20k characters)
MAX_BOUNDARY = 200_000
MAX_POINTS = 20_000


def _position(p: Any) -> tuple[float, float]:
    if not isinstance(p, list) or len(p) not in (2, 3):
        raise ValueError("a position is [longitude, latitude]")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in p):
        raise ValueError("a position's coordinates are numbers")
    try:
        lon, lat = float(p[0]), float(p[1])
    except OverflowError:
        raise ValueError("a position's coordinates are degrees") from None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise ValueError("a position's coordinates are finite numbers")
    vocab.check_coordinates(lon, lat)
    return lon, lat


def _polygon(rings: Any, count: list[int]) -> list[list[list[float]]]:
    if not isinstance(rings, list) or not rings:
        raise ValueError("a polygon is a list of rings")
    out = []
    for ring in rings:
        if not isinstance(ring, list) or len(ring) < 4:
            raise ValueError("a polygon's ring has at least 4 positions")
        pts = [_position(p) for p in ring]
        if pts[0] != pts[-1]:
            raise ValueError("a polygon's ring ends where it starts")
        count[0] += len(pts)
        if count[0] > MAX_POINTS:
            raise ValueError(f"a boundary has at most {MAX_POINTS} positions")
        out.append([[lon, lat] for lon, lat in pts])
    return out


def parse_boundary(text: str) -> dict[str, Any] | None:
    """A GeoJSON Polygon or MultiPolygon (bare or in a Feature) as a geometry dict; None for empty."""
    t = text.strip()
    if not t:
        return None
    if len(t) > MAX_BOUNDARY:
        raise ValueError(f"a boundary has at most {MAX_BOUNDARY} characters")
    try:
        g = json.loads(t)
    except (ValueError, RecursionError):
        raise ValueError("is not GeoJSON (JSON text)") from None
    if isinstance(g, dict) and g.get("type") == "Feature":
        g = g.get("geometry")
    if not isinstance(g, dict) or g.get("type") not in ("Polygon", "MultiPolygon"):
        raise ValueError("a boundary is a GeoJSON Polygon or MultiPolygon")
    count = [0]
    coords = g.get("coordinates")
    if g["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": _polygon(coords, count)}
    if not isinstance(coords, list) or not coords:
        raise ValueError("a MultiPolygon is a list of polygons")
    return {"type": "MultiPolygon", "coordinates": [_polygon(p, count) for p in coords]}
