"""Tile addresses (瓦片坐标): XYZ as browsers ask for them, TMS rows as MBTiles stores them. Pure.

Web Mercator tiles: at zoom ``z`` there are ``2**z`` columns and rows; XYZ counts rows from the
north, TMS (the MBTiles specification) from the south, so ``tms_row = 2**z - 1 - y``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Deeper than any basemap is made (OpenStreetMap's renderers stop at 19-20).
MAX_ZOOM = 24
#: Web Mercator's latitude limit.
MAX_LAT = 85.0511287798066
FORMATS = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
           "pbf": "application/vnd.mapbox-vector-tile"}  # pbf: Mapbox Vector Tiles (MBTiles' name for them)


class BadTile(ValueError):
    """A tile address that names no tile (the message says why)."""


@dataclass(frozen=True, slots=True)
class Tile:
    z: int
    x: int
    y: int  # XYZ: rows counted from the north

    @property
    def tms_row(self) -> int:
        return (1 << self.z) - 1 - self.y


def _integer(name: str, text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise BadTile(f"{name} must be a non-negative integer, got {text[:20]!r}")
    return int(text)


def parse_tile(z: str, x: str, y: str, fmt: str) -> Tile:
    """The tile of ``/{z}/{x}/{y}`` where ``y`` may carry the file's extension (``12.png``).

    Raises BadTile for anything but a tile of the grid, or an extension other than the file's."""
    stem, dot, ext = y.partition(".")
    if dot and ext.lower() != fmt and not (fmt == "jpg" and ext.lower() == "jpeg"):
        raise BadTile(f"this basemap's tiles are .{fmt}, not .{ext[:10]}")
    zi = _integer("z", z)
    if zi > MAX_ZOOM:
        raise BadTile(f"z is at most {MAX_ZOOM}, got {zi}")
    xi, yi = _integer("x", x), _integer("y", stem)
    n = 1 << zi
    if xi >= n or yi >= n:
        raise BadTile(f"at zoom {zi} x and y are below {n}, got x={xi} y={yi}")
    return Tile(zi, xi, yi)


def from_tms(z: int, x: int, tms_row: int) -> Tile:
    return Tile(z, x, (1 << z) - 1 - tms_row)


def pixel(lon: float, lat: float, z: int, size: int = 256) -> tuple[float, float]:
    """Global pixel coordinates (from the north-west corner of the world) at zoom ``z``."""
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    n = size * (1 << z)
    s = math.sin(math.radians(lat))
    return (lon + 180.0) / 360.0 * n, (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * n


def lonlat(px: float, py: float, z: int, size: int = 256) -> tuple[float, float]:
    """The inverse of :func:`pixel`."""
    n = size * (1 << z)
    lon = px / n * 360.0 - 180.0
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * py / n))))
    return lon, lat


def tiles_covering(west: float, south: float, east: float, north: float, z: int) -> tuple[int, int, int, int]:
    """(first x, first y, last x, last y) of the XYZ tiles at ``z`` covering the box."""
    x0, y0 = pixel(west, north, z)
    x1, y1 = pixel(east, south, z)
    last = (1 << z) - 1
    return (max(0, int(x0 // 256)), max(0, int(y0 // 256)), min(last, int(x1 // 256)), min(last, int(y1 // 256)))
