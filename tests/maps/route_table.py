"""What tests/access/test_every_route.py needs to call the map's routes: their entries and the
file the boundary load takes (a boundary for division 34, which that test registers)."""

from __future__ import annotations

import json
from typing import Any

from xueliang.access.policy import Action

#: Routes for any logged-in user: the basemap and the outlines show no camera (grids outside a
#: scoped user's cameras are left out, as /grids does: test_map_api.py).
SELF = {
    ("GET", "/api/v1/map/tiles/{z}/{x}/{y}"): "the basemap's tiles: no camera in them; the platform is no public tile server",
    ("GET", "/api/v1/map/divisions"): "division outlines, as public as their names (grids: only those of one's scope)",
}
DEFAULTS = {"z": 0, "x": 0, "y": "0.png"}
BOUNDARY = {"type": "FeatureCollection", "features": [{
    "type": "Feature", "properties": {"code": "34"},
    "geometry": {"type": "Polygon", "coordinates": [[[117.0, 31.0], [118.0, 31.0], [118.0, 32.0], [117.0, 32.0], [117.0, 31.0]]]},
}]}


def table(N: Any) -> dict[tuple[str, str], Any]:
    return {("POST", "/api/v1/map/divisions"): N(Action.REGISTRY_MANAGE, make="map_boundary_file")}


def make(what: str) -> tuple[dict[str, Any], Any, Any]:
    assert what == "map_boundary_file", what
    return {}, None, {"file": ("divisions.geojson", json.dumps(BOUNDARY).encode(), "application/geo+json")}
