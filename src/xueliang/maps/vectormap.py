"""The demo's basemap as vector tiles (Mapbox Vector Tile 2.1, gzipped as MBTiles stores them):
the demo city's geometry (maps/democity.py) cut into tiles and encoded with the maintained
``mapbox-vector-tile`` encoder. The console styles it (water, roads, blocks and their buildings
in 3D from ``height``); deterministic: the same bytes on every machine for the same city.

Layers: a subset of OpenMapTiles' schema, which tilemaker writes from OpenStreetMap, so that the
console's one style draws the demo and a province's basemap alike:

    water           Polygon   the river's surface
    waterway        Line      the river's course            class=river
    landuse         Polygon   the towns' built-up cores     class=residential
    park            Polygon   parks among the blocks        class=park
    transportation  Line      arterials and streets         class=primary|minor
    building        Polygon   the blocks' buildings         render_height, render_min_height (metres)
    boundary        Line      county and township outlines  admin_level=6|8, code
"""

from __future__ import annotations

import gzip
import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import numpy as np
import shapely
from shapely.geometry import LineString, Polygon

from xueliang.maps import mbtiles
from xueliang.maps.democity import CityMap, build
from xueliang.maps.tiles import MAX_LAT, Tile, tiles_covering

MIN_ZOOM, MAX_ZOOM = 10, 15  # the console draws beyond 15 from the z15 tiles (overzoom)
EXTENT = 4096
BUFFER = 64  # tile units drawn beyond the edge, so lines and outlines join across tiles
RIVER_WIDTH_M = 140.0
EARTH_M = 40075016.686
#: First zoom of each layer (and of each class where it differs).
FIRST_ZOOM = {"water": 10, "waterway": 10, "landuse": 10, "park": 12, "building": 13, "transportation": 10,
              "boundary": 10}
FIRST_ZOOM_CLASS = {"minor": 13}
ROAD_CLASS = {"arterial": "primary", "street": "minor"}
ADMIN_LEVEL = {"county": 6, "township": 8}
#: The schema, written into the file's metadata (MBTiles 1.3 asks for ``vector_layers``).
FIELDS: dict[str, dict[str, str]] = {
    "water": {}, "waterway": {"class": "String"}, "landuse": {"class": "String"}, "park": {"class": "String"},
    "building": {"render_height": "Number", "render_min_height": "Number"}, "transportation": {"class": "String"},
    "boundary": {"admin_level": "Number", "code": "String"},
}


@dataclass(frozen=True, slots=True)
class Feature:
    layer: str
    geom: Any  # shapely geometry in Web Mercator units of the world at zoom 0 (0..1, y down)
    props: dict[str, Any]
    first_zoom: int


def _merc(coords: np.ndarray) -> np.ndarray:
    """Longitude/latitude to the unit Web Mercator square (x east, y south), vectorised."""
    lon, lat = coords[:, 0], np.clip(coords[:, 1], -MAX_LAT, MAX_LAT)
    s = np.sin(np.radians(lat))
    return np.column_stack(((lon + 180.0) / 360.0, 0.5 - np.log((1 + s) / (1 - s)) / (4 * math.pi)))


def features(m: CityMap, seed: int = 11) -> list[Feature]:
    """The city's features in unit Mercator, in drawing order within each layer."""
    rnd = random.Random(seed)
    lat0 = (m.bbox[1] + m.bbox[3]) / 2
    unit_per_m = 1.0 / (EARTH_M * math.cos(math.radians(lat0)))
    out: list[Feature] = []

    def add(layer: str, geom: Any, cls: str | None = None, **props: Any) -> None:
        if cls is not None:
            props["class"] = cls
        first = max(FIRST_ZOOM[layer], FIRST_ZOOM_CLASS.get(cls or "", 0))
        out.append(Feature(layer, shapely.transform(geom, _merc), props, first))

    river = LineString(m.river)
    add("waterway", river, "river")
    out.append(Feature("water", shapely.transform(river, _merc).buffer(RIVER_WIDTH_M / 2 * unit_per_m, cap_style="flat"),
                       {}, FIRST_ZOOM["water"]))
    cores = [((min(x for x, _ in r) + max(x for x, _ in r)) / 2, (min(y for _, y in r) + max(y for _, y in r)) / 2)
             for k, r in m.areas if k == "urban"]
    for kind, ring in m.areas:
        poly = Polygon(ring)
        if kind == "urban":
            add("landuse", poly, "residential")
            continue
        if kind == "park":
            add("park", poly, "park")
            continue
        # taller towards a core's centre: a skyline, not a uniform carpet
        cx, cy = poly.centroid.x, poly.centroid.y
        near = min(math.hypot(cx - x, cy - y) for x, y in cores) if cores else 1.0
        floors = rnd.randint(2, 7) + int(22 * max(0.0, 1.0 - near / 0.03) * rnd.random())
        add("building", poly, render_height=floors * 3, render_min_height=0)
    for kind, line in m.roads:
        add("transportation", LineString(line), ROAD_CLASS[kind])
    for code, level, ring in m.divisions:
        add("boundary", LineString(ring), admin_level=ADMIN_LEVEL[level], code=code)
    return out


def _tile_geom(g: Any, z: int, t: Tile) -> Any:
    """``g`` (unit Mercator) in tile units of ``t``, clipped to the tile and its buffer."""
    n = float(1 << z)

    def local(c: np.ndarray) -> np.ndarray:
        return np.column_stack(((c[:, 0] * n - t.x) * EXTENT, (c[:, 1] * n - t.y) * EXTENT))

    return shapely.clip_by_rect(shapely.transform(g, local), -BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)


def render(m: CityMap, min_zoom: int = MIN_ZOOM, max_zoom: int = MAX_ZOOM) -> Iterator[tuple[Tile, bytes]]:
    """Every tile of the city's box from ``min_zoom`` to ``max_zoom``, as gzipped MVT bytes."""
    feats = features(m)
    west, south, east, north = m.bbox
    for z in range(min_zoom, max_zoom + 1):
        # simplified once per zoom to a quarter of a tile unit, then cut per tile
        tol = 0.25 / (EXTENT * (1 << z))
        shown = [f for f in feats if f.first_zoom <= z]
        geoms = [shapely.simplify(f.geom, tol, preserve_topology=True) if f.layer != "building" else f.geom for f in shown]
        tree = shapely.STRtree(geoms)
        x0, y0, x1, y1 = tiles_covering(west, south, east, north, z)
        n = float(1 << z)
        pad = BUFFER / EXTENT
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                t = Tile(z, x, y)
                box = shapely.box((x - pad) / n, (y - pad) / n, (x + 1 + pad) / n, (y + 1 + pad) / n)
                layers: dict[str, list[dict[str, Any]]] = {}
                for i in sorted(int(i) for i in tree.query(box, predicate="intersects")):
                    g = _tile_geom(geoms[i], z, t)
                    if g.is_empty or (shown[i].layer in ("water", "landuse", "park", "building") and g.area < 1.0):
                        continue
                    layers.setdefault(shown[i].layer, []).append({"geometry": g, "properties": shown[i].props})
                data = mapbox_vector_tile.encode(
                    [{"name": k, "features": v} for k, v in layers.items()],
                    default_options={"y_coord_down": True, "extents": EXTENT,
                                     "on_invalid_geometry": mapbox_vector_tile.encoder.on_invalid_geometry_make_valid})
                yield t, gzip.compress(data, compresslevel=6, mtime=0)


def generate(path: Path, divisions: list[dict[str, Any]], *, name: str = "雪亮市 (demo)",
             generator: str = "", min_zoom: int = MIN_ZOOM, max_zoom: int = MAX_ZOOM) -> dict[str, float]:
    """Write the demo city's vector basemap to ``path``. Returns figures: tiles, bytes, seconds."""
    t0 = time.perf_counter()
    m = build(divisions)
    west, south, east, north = m.bbox
    layers = [{"id": k, "fields": v, "minzoom": FIRST_ZOOM[k], "maxzoom": max_zoom} for k, v in FIELDS.items()]
    meta = {
        "name": name, "format": "pbf", "type": "baselayer", "version": "2",
        "description": "The fictional demo city, generated by xueliang (water, roads, blocks with heights, divisions)",
        "attribution": "xueliang demo city", "bounds": f"{west},{south},{east},{north}",
        "center": f"{(west + east) / 2},{(south + north) / 2},12", "minzoom": str(min_zoom), "maxzoom": str(max_zoom),
        "generator": generator, "json": json.dumps({"vector_layers": layers}, separators=(",", ":")),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    n = mbtiles.write(path, meta, render(m, min_zoom, max_zoom))
    return {"tiles": n, "bytes": path.stat().st_size, "seconds": round(time.perf_counter() - t0, 2)}
