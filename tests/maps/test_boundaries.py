"""The GeoJSON of division boundaries is taken whole or not at all, with every problem named."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from xueliang.maps import boundaries, democity
from xueliang.sim import city

DIVISIONS = city.generate().divisions
GOOD = democity.feature_collection(DIVISIONS)


def _data(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_the_demo_file_reads_whole() -> None:
    found, report = boundaries.parse(_data(GOOD), "demo.geojson")
    assert report.ok, report.text()
    assert [b.code for b in found] == [f["properties"]["code"] for f in GOOD["features"]]
    assert all(b.geometry["type"] == "Polygon" for b in found)


def _square(x: float, y: float, d: float = 0.01) -> list[list[float]]:
    return [[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]


#: Ways to spoil a feature, each a reason the report must give for that feature.
SPOILERS = {
    "no code": lambda f: f["properties"].clear(),
    "code not digits": lambda f: f["properties"].update(code="34A"),
    "open ring": lambda f: f["geometry"]["coordinates"][0].pop(),
    "too few positions": lambda f: f["geometry"].update(coordinates=[[[117.0, 31.0], [117.1, 31.0], [117.0, 31.0]]]),
    "a bow tie": lambda f: f["geometry"].update(coordinates=[[[117.0, 31.0], [117.1, 31.1], [117.1, 31.0], [117.0, 31.1], [117.0, 31.0]]]),
    "outside China": lambda f: f["geometry"].update(coordinates=[_square(2.0, 48.0)]),
    "a line": lambda f: f["geometry"].update(type="LineString", coordinates=[[117.0, 31.0], [117.1, 31.0]]),
    "no geometry": lambda f: f.update(geometry=None),
    "not a feature": lambda f: f.update(type="Point"),
    "a string coordinate": lambda f: f["geometry"]["coordinates"][0].__setitem__(1, ["117", "31"]),
    "infinite": lambda f: f["geometry"]["coordinates"][0].__setitem__(1, [float("inf"), 31.0]),
    "no area": lambda f: f["geometry"].update(coordinates=[[[117.0, 31.0], [117.1, 31.0], [117.2, 31.0], [117.0, 31.0]]]),
}


@settings(max_examples=60, deadline=None)
@given(st.integers(0, len(GOOD["features"]) - 1), st.sampled_from(sorted(SPOILERS)), st.booleans())
def test_one_bad_feature_anywhere_refuses_the_whole_file(i: int, how: str, twice: bool) -> None:
    doc = copy.deepcopy(GOOD)
    SPOILERS[how](doc["features"][i])
    if twice:  # and a second problem elsewhere: both are named
        j = (i + 1) % len(doc["features"])
        doc["features"][j]["properties"]["code"] = doc["features"][(j + 1) % len(doc["features"])]["properties"]["code"]
    found, report = boundaries.parse(_data(doc).replace(b"Infinity", b"1e999"))
    assert found == [] and not report.ok
    rows = {p.row for p in report.problems}
    assert i + 1 in rows, (how, report.text())
    assert all(p.reason for p in report.problems)


@given(st.binary(max_size=300))
def test_any_bytes_are_read_or_refused_with_a_report(data: bytes) -> None:
    found, report = boundaries.parse(data)
    assert report.ok == bool(found)
    assert report.ok or report.problems


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                           lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=8), c, max_size=5),
                           max_leaves=30)


@given(st.lists(st.fixed_dictionaries({"type": st.just("Feature"), "properties": json_values, "geometry": json_values}),
                min_size=1, max_size=4))
def test_any_features_are_read_or_refused_with_a_report(features: list[Any]) -> None:
    found, report = boundaries.parse(_data({"type": "FeatureCollection", "features": features}))
    assert report.ok == bool(found) and (report.ok or report.problems)


def test_a_detailed_outline_is_simplified_to_what_the_registry_keeps() -> None:
    import math

    n = 30_000  # more positions than a stored boundary holds (registry/geojson.py: 20,000)
    ring = [[117.2 + 0.05 * math.cos(2 * math.pi * k / n), 31.8 + 0.05 * math.sin(2 * math.pi * k / n)] for k in range(n)]
    ring.append(ring[0])
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"adcode": 340101}, "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    found, report = boundaries.parse(_data(doc))
    assert report.ok, report.text()
    assert found[0].code == "340101"
    kept = found[0].geometry["coordinates"][0]
    assert 100 < len(kept) <= 20_000
    assert kept[0] == kept[-1]
