"""The inbound schema (incidents/inbound.py), property-tested: any bytes are a case or a
ValidationError/ValueError naming the field, never anything else; valid cases keep what was sent."""

from __future__ import annotations

import json

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from pydantic import ValidationError

from xueliang.incidents.inbound import InboundCase, explain, parse_inbound

GOOD = {"reference": "110-20261204-0001", "category": "治安", "description": "有人打架",
        "longitude": 117.23, "latitude": 31.82}


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_any_bytes_are_a_case_or_a_clear_refusal(body: bytes) -> None:
    try:
        parse_inbound(body)
    except ValidationError as exc:
        assert explain(exc)


json_values = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.text(max_size=20)
                           | st.integers(), lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                           max_leaves=10)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from([*GOOD, "priority", "reporter", "address", "reported_at", "extra"]),
                       json_values, max_size=8))
def test_any_json_object_is_a_case_or_names_its_bad_fields(d: dict[str, object]) -> None:
    body = {**GOOD, **d}
    try:
        case = parse_inbound(json.dumps(body, allow_nan=True).encode())
    except ValidationError as exc:
        assert explain(exc)
        return
    assert case.reference == body["reference"] and case.longitude == body["longitude"]


@given(st.floats(min_value=-180, max_value=180), st.floats(min_value=-90, max_value=90),
       st.sampled_from(["urgent", "high", "normal", "low"]))
def test_valid_cases_keep_what_was_sent(lon: float, lat: float, prio: str) -> None:
    c = parse_inbound(json.dumps({**GOOD, "longitude": lon, "latitude": lat, "priority": prio}).encode())
    assert (c.longitude, c.latitude, c.priority) == (lon, lat, prio)


@pytest.mark.parametrize(("change", "field"), [
    ({"reference": ""}, "reference"), ({"reference": "a b"}, "reference"), ({"longitude": 181}, "longitude"),
    ({"latitude": "north"}, "latitude"), ({"description": "  "}, "description"), ({"surprise": 1}, "surprise"),
    ({"division_code": "340102"}, "division_code"), ({"reporter": {"phone": "call me"}}, "reporter.phone"),
    ({"description": "a\x00b"}, "description"),
])
def test_a_bad_field_is_named(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_inbound(json.dumps({**GOOD, **change}).encode())
    assert field in explain(exc.value)


def test_not_json_is_refused() -> None:
    with pytest.raises(ValidationError):
        InboundCase.model_validate_json(b"\xff\xfe not json")
