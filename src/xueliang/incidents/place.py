"""Where a case is: the division holding its point (pure geometry here; the lookups in service).

The division comes from the registry's division boundaries (GeoJSON, grids) when one holds the
point — the smallest such, a grid before its township — and otherwise from the nearest camera's
division, which the case then says (``division_basis``: ``boundary``, ``nearest_channel``,
``given`` or ``none``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

EARTH_M = 6_371_000.0
M_PER_DEG_LAT = 111_320.0

Ring = Sequence[Sequence[float]]


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(min(1.0, math.sqrt(a)))


def bbox(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min lon, min lat, max lon, max lat) of a square holding the circle."""
    dlat = radius_m / M_PER_DEG_LAT
    dlon = radius_m / (M_PER_DEG_LAT * max(math.cos(math.radians(lat)), 0.01))
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def _in_ring(lon: float, lat: float, ring: Ring) -> bool:
    inside = False
    n = len(ring)
    j = n - 1
    for i in range(n):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


@dataclass(frozen=True, slots=True)
class Area:
    """A division's boundary, ready for point tests."""

    code: str
    polygons: tuple[tuple[Ring, ...], ...]  # each: outer ring, then holes
    box: tuple[float, float, float, float]

    def contains(self, lon: float, lat: float) -> bool:
        x0, y0, x1, y1 = self.box
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            return False
        for rings in self.polygons:
            if rings and _in_ring(lon, lat, rings[0]) and not any(_in_ring(lon, lat, h) for h in rings[1:]):
                return True
        return False


def area_of(code: str, boundary: str) -> Area | None:
    """A stored boundary (GeoJSON Polygon or MultiPolygon, as registry/geojson.py keeps it) as an
    Area; None when it does not read as one."""
    try:
        g: Any = json.loads(boundary)
    except (ValueError, RecursionError):
        return None
    if isinstance(g, dict) and g.get("type") == "Feature":
        g = g.get("geometry")
    if not isinstance(g, dict):
        return None
    coords = g.get("coordinates")
    if not isinstance(coords, list):
        return None
    if g.get("type") == "Polygon":
        polys = [coords]
    elif g.get("type") == "MultiPolygon":
        polys = coords
    else:
        return None
    try:
        out = tuple(tuple(tuple((float(p[0]), float(p[1])) for p in ring) for ring in poly) for poly in polys)
    except (TypeError, ValueError, IndexError):
        return None
    pts = [p for poly in out for ring in poly for p in ring]
    if not pts:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return Area(code, out, (min(xs), min(ys), max(xs), max(ys)))


def locate(areas: Sequence[Area], lon: float, lat: float) -> str | None:
    """The code of the smallest division (the longest code) whose boundary holds the point."""
    best: str | None = None
    for a in areas:
        if a.contains(lon, lat) and (best is None or len(a.code) > len(best)):
            best = a.code
    return best
