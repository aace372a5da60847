"""A point's team, property-tested against a plain statement of the rule; what a team's duties
accept, property-tested too."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from xueliang.health.teams import Duty, Resolver

codes = st.text("0123", min_size=2, max_size=12)


@given(st.dictionaries(st.integers(0, 5), st.integers(1, 9), max_size=4),
       st.dictionaries(st.integers(0, 5), st.integers(1, 9), max_size=4),
       st.dictionaries(codes, st.integers(1, 9), max_size=6),
       st.one_of(st.none(), st.integers(0, 5)), st.one_of(st.none(), st.integers(0, 5)), codes)
def test_platform_then_unit_then_the_narrowest_division(by_platform, by_unit, by_division, platform, unit,
                                                         division) -> None:
    r = Resolver(by_platform, by_unit, by_division)
    if platform is not None and platform in by_platform:
        want = by_platform[platform]
    elif unit is not None and unit in by_unit:
        want = by_unit[unit]
    else:
        above = [c for c in by_division if division.startswith(c)]
        want = by_division[max(above, key=len)] if above else None
    assert r.team(platform, unit, division) == want


@given(st.one_of(st.sampled_from(["unit", "division", "platform"]), st.text(max_size=12)),
       st.one_of(st.text("0123456789²٣", max_size=22), st.text(max_size=25)))
def test_a_duty_is_a_known_kind_and_digits(kind: str, ref: str) -> None:
    ok = kind in ("unit", "platform", "division") and 1 <= len(ref) <= 20 and all(c in "0123456789" for c in ref)
    if ok:
        assert Duty(kind=kind, ref=ref).ref == ref
    else:
        with pytest.raises(ValidationError):
            Duty(kind=kind, ref=ref)
