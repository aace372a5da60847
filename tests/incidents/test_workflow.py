"""The sans-IO pieces of the incident centre, property-tested: the steps of a dispatch and the
case's state that follows from its dispatches; the point-in-boundary test and distances."""

from __future__ import annotations

import json
import math

import hypothesis.strategies as st
import pytest
from hypothesis import given

from xueliang.incidents import workflow
from xueliang.incidents.place import area_of, bbox, distance_m, locate
from xueliang.incidents.workflow import StepRefused

STEPS = sorted(workflow.DISPATCH_STEPS)
STATES = ["dispatched", "handling", "fed_back", "done", "returned", "reassigned"]


@given(st.lists(st.sampled_from(STEPS), max_size=12))
def test_any_sequence_of_steps_keeps_a_dispatch_in_a_known_state(steps: list[str]) -> None:
    state = "dispatched"
    for step in steps:
        sources, target = workflow.DISPATCH_STEPS[step]
        if state in sources:
            state = workflow.dispatch_step(step, state)
            assert state == target
        else:
            with pytest.raises(StepRefused):
                workflow.dispatch_step(step, state)
        assert state in STATES
    # returned and reassigned are ends: nothing moves them again
    if state in ("returned", "reassigned"):
        for step in STEPS:
            with pytest.raises(StepRefused):
                workflow.dispatch_step(step, state)


@given(st.sampled_from(["received", "dispatched", "handling", "fed_back", "closed", "merged"]),
       st.lists(st.sampled_from(STATES), max_size=6))
def test_the_case_follows_its_live_dispatches(current: str, dispatches: list[str]) -> None:
    got = workflow.case_state(current, dispatches)
    live = [d for d in dispatches if d in ("dispatched", "handling", "fed_back")]
    if current in ("closed", "merged"):
        assert got == current
    elif not live:
        assert got == "received"
    elif "handling" in live:
        assert got == "handling"
    elif all(d == "fed_back" for d in live):
        assert got == "fed_back"
    else:
        assert got == "dispatched"


def test_closing_needs_the_feedback_or_no_dispatch() -> None:
    for ok in ("received", "fed_back"):
        workflow.may_close(ok)
    for no in ("dispatched", "handling", "closed", "merged"):
        with pytest.raises(StepRefused):
            workflow.may_close(no)


lons = st.floats(min_value=73.0, max_value=135.0)
lats = st.floats(min_value=18.0, max_value=53.0)


@given(lons, lats, st.floats(min_value=0.001, max_value=1.0), st.floats(min_value=0.001, max_value=1.0), lons, lats)
def test_a_point_is_in_a_rectangle_exactly_when_its_coordinates_are(x0: float, y0: float, w: float, h: float,
                                                                    px: float, py: float) -> None:
    ring = [[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h], [x0, y0]]
    a = area_of("340102001", json.dumps({"type": "Polygon", "coordinates": [ring]}))
    assert a is not None
    inside = x0 < px < x0 + w and y0 < py < y0 + h
    on_edge = px in (x0, x0 + w) or py in (y0, y0 + h)
    if not on_edge:
        assert a.contains(px, py) == inside


def test_a_hole_and_the_smallest_division() -> None:
    outer = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
    hole = [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]
    town = area_of("340102001", json.dumps({"type": "Feature", "geometry": {"type": "Polygon",
                                                                          "coordinates": [outer, hole]}}))
    grid = area_of("340102001001001", json.dumps({"type": "MultiPolygon",
                                                  "coordinates": [[[[1, 1], [2, 1], [2, 2], [1, 2], [1, 1]]]]}))
    assert town is not None and grid is not None
    assert locate([town, grid], 1.5, 1.5) == "340102001001001"
    assert locate([town, grid], 8, 8) == "340102001"
    assert locate([town, grid], 5, 5) is None  # in the hole
    for bad in ("", "[]", '{"type": "Point", "coordinates": [1, 2]}', '{"type": "Polygon", "coordinates": [[["a"]]]}'):
        assert area_of("x", bad) is None


@given(lons, lats, st.floats(min_value=1, max_value=20_000))
def test_the_box_holds_the_circle(lon: float, lat: float, r: float) -> None:
    x0, y0, x1, y1 = bbox(lon, lat, r)
    for bearing in range(0, 360, 45):
        # a point r metres away in that direction (small-distance approximation, 1 % in)
        d = r * 0.99
        dy = d * math.cos(math.radians(bearing)) / 111_320.0
        dx = d * math.sin(math.radians(bearing)) / (111_320.0 * math.cos(math.radians(lat)))
        assert distance_m(lon, lat, lon + dx, lat + dy) <= r * 1.01
        assert x0 <= lon + dx <= x1 and y0 <= lat + dy <= y1
