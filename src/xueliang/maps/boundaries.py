"""A GeoJSON FeatureCollection of division boundaries (区划边界), checked whole. Pure.

Each feature names its division in a property (``code``, or ``adcode``/``division_code``/
``区划代码`` as common exports of the national boundaries call it) and holds a Polygon or
MultiPolygon in WGS-84. The file is refused whole, with every problem named by feature, when
any feature is wrong: no code, a code twice, a geometry that is not a valid polygon (rings
open or too short, crossing itself, outside China). Which codes the registry knows is the
service's check. Outlines more detailed than the registry keeps (registry/geojson.py) are
simplified to about 5 m first, and refused only if still too large.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.validation import explain_validity

from xueliang.registry import geojson
from xueliang.registry.geojson import MAX_BOUNDARY, MAX_POINTS
from xueliang.registry.report import ImportReport

CODE_KEYS = ("code", "adcode", "division_code", "区划代码")
MAX_FEATURES = 20_000
#: Simplification when a boundary is larger than the registry keeps: ~5 m, then coarser.
TOLERANCES = (0.00005, 0.0002, 0.001)


@dataclass(frozen=True, slots=True)
class Boundary:
    code: str
    #: GeoJSON geometry (Polygon or MultiPolygon), as the registry stores it.
    geometry: dict[str, Any]


def _code(props: Any) -> str | None:
    if not isinstance(props, dict):
        return None
    for k in CODE_KEYS:
        v = props.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            v = str(v)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return None


def _fits(geom: dict[str, Any]) -> bool:
    text = json.dumps(geom, separators=(",", ":"))
    count = sum(len(r) for p in (geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]])
                for r in p)
    return len(text) <= MAX_BOUNDARY and count <= MAX_POINTS


def _geometry(g: Any) -> dict[str, Any]:
    """A valid (Multi)Polygon as the registry keeps it; ValueError with the reason otherwise."""
    if not isinstance(g, dict) or g.get("type") not in ("Polygon", "MultiPolygon"):
        raise ValueError("geometry is not a Polygon or MultiPolygon")
    # the registry's own checks first (rings closed, 4 positions, numbers, inside China), on the
    # outline unsimplified: shapely would read a bad one differently or not at all
    checked = _structure(g)
    geom = shape(checked)
    if geom.is_empty or geom.area <= 0:
        raise ValueError("the polygon has no area")
    if not geom.is_valid:
        raise ValueError(f"not a valid polygon: {explain_validity(geom)}")
    out: dict[str, Any] = checked
    for tol in TOLERANCES:
        if _fits(out):
            return out
        simple = shapely.simplify(geom, tol, preserve_topology=True)
        out = json.loads(shapely.to_geojson(shapely.set_precision(simple, 1e-7)))
    if not _fits(out):
        raise ValueError(f"too detailed even simplified to ~100 m (at most {MAX_POINTS} positions)")
    return out


def _structure(g: dict[str, Any]) -> dict[str, Any]:
    """The registry's ring parser without its size limit (checked after simplifying)."""
    count = [-(10**12)]  # no point limit here
    coords = g.get("coordinates")
    if g["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": geojson._polygon(coords, count)}
    if not isinstance(coords, list) or not coords:
        raise ValueError("a MultiPolygon is a list of polygons")
    return {"type": "MultiPolygon", "coordinates": [geojson._polygon(p, count) for p in coords]}


def parse(data: bytes, filename: str = "") -> tuple[list[Boundary], ImportReport]:
    """The boundaries of a FeatureCollection and the report (``ok`` false: use none of them)."""
    report = ImportReport(file=filename, form="division boundaries")
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        report.add("the file is not GeoJSON (UTF-8 JSON text)")
        return [], report
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        report.add("the file is not a GeoJSON FeatureCollection")
        return [], report
    feats = doc["features"]
    report.rows = len(feats)
    if not feats:
        report.add("the FeatureCollection has no features")
        return [], report
    if len(feats) > MAX_FEATURES:
        report.add(f"at most {MAX_FEATURES} features in one file")
        return [], report
    out: list[Boundary] = []
    seen: dict[str, int] = {}
    for i, f in enumerate(feats, start=1):
        if not isinstance(f, dict) or f.get("type") != "Feature":
            report.add("is not a GeoJSON Feature", i)
            continue
        code = _code(f.get("properties"))
        if code is None:
            report.add(f"no division code: give one of the properties {', '.join(CODE_KEYS)}", i, "properties")
            continue
        if not (code.isascii() and code.isdigit() and 2 <= len(code) <= 20):
            report.add("a division code is 2 to 20 digits", i, "code", code[:40])
            continue
        if code in seen:
            report.add(f"division {code} is given twice (features {seen[code]} and {i})", i, "code", code)
            continue
        seen[code] = i
        try:
            geom = _geometry(f.get("geometry"))
        except (ValueError, shapely.errors.ShapelyError) as exc:
            report.add(str(exc), i, "geometry", code)
            continue
        out.append(Boundary(code, geom))
    if not report.ok:
        return [], report
    return out, report

