"""The demo city's geometry (雪亮市): counties and townships as polygons, a river, roads and
blocks. Pure and deterministic: the same city on every machine, drawn from the same layout as
the generated registry (sim/city.py places county ``i`` around ``CENTER + (i - 2.5) * 0.12``
east and its townships 0.035 apart), so the cameras stand in the streets of their township.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from xueliang.sim.city import CENTER

Point = tuple[float, float]
COUNTY_W = 0.12  # degrees of longitude per county (sim/city.py's spacing)
TOWN_W = COUNTY_W / 3
SOUTH, NORTH = CENTER[1] - 0.13, CENTER[1] + 0.13


@dataclass
class CityMap:
    """What the basemap draws, in longitude/latitude."""

    bbox: tuple[float, float, float, float]
    #: (code, level, outer ring) of counties and townships
    divisions: list[tuple[str, str, list[Point]]] = field(default_factory=list)
    river: list[Point] = field(default_factory=list)
    #: (kind, line): "arterial" or "street"
    roads: list[tuple[str, list[Point]]] = field(default_factory=list)
    #: (kind, ring): "urban", "block" or "park"
    areas: list[tuple[str, list[Point]]] = field(default_factory=list)


def _edge(a: Point, b: Point, seed: float, amp: float = 0.003, steps: int = 24) -> list[Point]:
    """A wavy line from ``a`` to ``b``, the same whichever polygon asks (it depends on the
    segment only), still at both ends so that edges meet at their corners."""
    if (a[0], a[1]) > (b[0], b[1]):
        return list(reversed(_edge(b, a, seed, amp, steps)))
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / length, dx / length
    phase = (a[0] * 97.0 + a[1] * 53.0 + seed) % (2 * math.pi)
    out = []
    for i in range(steps + 1):
        t = i / steps
        o = amp * math.sin(math.pi * t) * math.sin(3 * math.pi * t + phase)
        out.append((round(a[0] + dx * t + nx * o, 6), round(a[1] + dy * t + ny * o, 6)))
    return out


def _ring(corners: list[Point]) -> list[Point]:
    ring: list[Point] = []
    for i, a in enumerate(corners):
        b = corners[(i + 1) % len(corners)]
        # only the edges between neighbours wave; the city's north and south edges are straight,
        # so a county's edge there is its townships' edges joined
        ring.extend(_edge(a, b, 0.0, amp=0.003 if a[0] == b[0] else 0.0)[:-1])
    ring.append(ring[0])
    return ring


def county_west(index: int) -> float:
    """West edge of county ``index`` (1-based), as sim/city.py spaces them."""
    return CENTER[0] + (index - 2.5) * COUNTY_W - COUNTY_W / 2


def division_polygons(divisions: list[dict[str, Any]]) -> list[tuple[str, str, list[Point]]]:
    """Counties as columns of the city, townships as thirds of their county."""
    out: list[tuple[str, str, list[Point]]] = []
    for d in divisions:
        code, level = str(d["code"]), str(d["level"])
        if level == "county":
            w = county_west(int(code[-2:]))
            e = w + COUNTY_W
        elif level == "township":
            w = county_west(int(code[4:6])) + (int(code[-3:]) - 1) * TOWN_W
            e = w + TOWN_W
        else:
            continue
        w, e = round(w, 6), round(e, 6)
        out.append((code, level, _ring([(w, SOUTH), (e, SOUTH), (e, NORTH), (w, NORTH)])))
    return out


def build(divisions: list[dict[str, Any]], seed: int = 7) -> CityMap:
    rnd = random.Random(seed)
    polys = division_polygons(divisions)
    counties = [p for p in polys if p[1] == "county"]
    west = min((min(x for x, _ in r) for _, _, r in counties), default=CENTER[0] - 0.25)
    east = max((max(x for x, _ in r) for _, _, r in counties), default=CENTER[0] + 0.25)
    m = CityMap((round(west - 0.04, 6), SOUTH - 0.03, round(east + 0.04, 6), NORTH + 0.03), polys)
    # the river: west to east through the middle, meandering
    x = m.bbox[0]
    while x <= m.bbox[2] + 1e-9:
        y = CENTER[1] - 0.004 + 0.018 * math.sin((x - west) * 19.0) + 0.006 * math.sin((x - west) * 53.0)
        m.river.append((round(x, 6), round(y, 6)))
        x += 0.002
    # town centres: the townships' cores, where streets and blocks are dense
    cores = []
    for code, level, ring in polys:
        if level == "township":
            cx = (min(p[0] for p in ring) + max(p[0] for p in ring)) / 2
            cores.append((cx, CENTER[1] + (0.05 if int(code[4:6]) % 2 else -0.05)))
    # arterials: a loose grid over the whole city, each a little bent
    for i in range(int((m.bbox[2] - m.bbox[0]) / 0.03) + 1):
        lon = m.bbox[0] + 0.015 + i * 0.03 + rnd.uniform(-0.004, 0.004)
        bend = rnd.uniform(-0.004, 0.004)
        m.roads.append(("arterial", [(round(lon + bend * math.sin(k / 10 * math.pi), 6), round(m.bbox[1] + k * (m.bbox[3] - m.bbox[1]) / 10, 6)) for k in range(11)]))
    for j in range(int((m.bbox[3] - m.bbox[1]) / 0.028) + 1):
        lat = m.bbox[1] + 0.012 + j * 0.028 + rnd.uniform(-0.003, 0.003)
        bend = rnd.uniform(-0.003, 0.003)
        m.roads.append(("arterial", [(round(m.bbox[0] + k * (m.bbox[2] - m.bbox[0]) / 20, 6), round(lat + bend * math.sin(k / 20 * math.pi * 3), 6)) for k in range(21)]))
    # each core: urban area, a street grid, blocks between the streets, some of them parks
    step = 0.0045
    for cx, cy in cores:
        half_w, half_h = 0.024, 0.04
        m.areas.append(("urban", [(cx - half_w, cy - half_h), (cx + half_w, cy - half_h), (cx + half_w, cy + half_h),
                                  (cx - half_w, cy + half_h), (cx - half_w, cy - half_h)]))
        nx, ny = int(2 * half_w / step), int(2 * half_h / step)
        xs = [round(cx - half_w + i * step, 6) for i in range(nx + 1)]
        ys = [round(cy - half_h + j * step, 6) for j in range(ny + 1)]
        for sx in xs:
            m.roads.append(("street", [(sx, ys[0]), (sx, ys[-1])]))
        for sy in ys:
            m.roads.append(("street", [(xs[0], sy), (xs[-1], sy)]))
        inset = step * 0.16
        for i in range(nx):
            for j in range(ny):
                x0, y0, x1, y1 = xs[i] + inset, ys[j] + inset, xs[i + 1] - inset, ys[j + 1] - inset
                kind = "park" if rnd.random() < 0.08 else "block"
                if kind == "block" and rnd.random() < 0.5:  # two buildings in a block, not one slab
                    mid = round((x0 + x1) / 2, 6)
                    m.areas.append(("block", [(x0, y0), (mid - inset / 2, y0), (mid - inset / 2, y1), (x0, y1), (x0, y0)]))
                    x0 = round(mid + inset / 2, 6)
                m.areas.append((kind, [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]))
    return m


def feature_collection(divisions: list[dict[str, Any]]) -> dict[str, Any]:
    """The demo's division boundaries as the GeoJSON an administrator would load."""
    names = {str(d["code"]): str(d["name"]) for d in divisions}
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"code": code, "name": names.get(code, "")},
         "geometry": {"type": "Polygon", "coordinates": [[[x, y] for x, y in ring]]}}
        for code, _, ring in division_polygons(divisions)]}
