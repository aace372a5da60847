"""Recording plans: who records continuously, and how long recordings are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from xueliang.config import RecordingConfig, RecordingPlanSpec, Settings
from xueliang.recording.plans import (
    MIN_KEY_SITE_RETENTION_DAYS,
    MIN_RETENTION_DAYS,
    Plan,
    Policy,
    check_retention,
    expires_before,
    records_continuously,
    retention_days,
)

BY_CLASS = {1: 60, 2: 45, 3: 30}


@pytest.mark.parametrize(("point_class", "key_site", "expected"), [
    (1, False, 60), (2, False, 45), (3, False, 30), (None, False, 30), (7, False, 30),
    (1, True, 120), (2, True, 120), (3, True, 120), (None, True, 120),
])
def test_retention_by_class_and_key_site(point_class: int | None, key_site: bool, expected: int) -> None:
    assert retention_days(point_class, key_site, BY_CLASS, 120) == expected


def test_retention_never_below_the_floors_even_when_unset() -> None:
    assert retention_days(2, False, {}, 90) == MIN_RETENTION_DAYS
    assert retention_days(2, True, {2: 31}, 0) == MIN_KEY_SITE_RETENTION_DAYS
    assert retention_days(1, True, {1: 200}, 90) == 200  # a longer class setting wins at a key site


@pytest.mark.parametrize(("point_class", "key_site", "continuous", "expected"), [
    (1, False, {}, True), (2, False, {}, False), (3, False, {}, False), (None, False, {}, False),
    (2, True, {}, True), (None, True, {}, True), (3, True, {3: False}, True),
    (1, False, {1: False}, False), (2, False, {2: True}, True), (None, False, {3: True}, True),
])
def test_continuous_by_class_and_key_site(point_class: int | None, key_site: bool,
                                          continuous: dict[int, bool], expected: bool) -> None:
    assert records_continuously(point_class, key_site, continuous) is expected


def test_policy_gives_a_plan() -> None:
    p = Policy({1: 30, 2: 30, 3: 30}, 90, {1: True})
    assert p.plan("c1", 1, False) == Plan("c1", "continuous", 30, "class")
    assert p.plan("c2", 2, True) == Plan("c2", "continuous", 90, "key_site")
    assert p.plan("c3", 3, False) == Plan("c3", "off", 30, "class")
    assert p.plan("c1", 1, False).continuous and not p.plan("c3", 3, False).continuous


EVENT = RecordingPlanSpec(mode="event", pre_seconds=5)
NIGHTS = RecordingPlanSpec(mode="scheduled", schedule=[{"days": [1, 2, 3, 4, 5], "start": "20:00", "end": "06:00"}])
POLICY = Policy({1: 60, 2: 30, 3: 30}, 90, {1: True}, class_plans={2: EVENT},
                division_plans={"3401": NIGHTS, "340102": RecordingPlanSpec(mode="continuous")},
                pre_seconds=10, post_seconds=30)


@pytest.mark.parametrize(("point_class", "key_site", "division", "own", "mode", "source"), [
    # the channel's own plan first, whatever else holds
    (1, True, "340102001", RecordingPlanSpec(mode="off"), "off", "channel"),
    (3, False, "", EVENT, "event", "channel"),
    # then continuous where the programme asks it: key sites, class I
    (3, True, "3401", None, "continuous", "key_site"),
    (1, False, "3401", None, "continuous", "class"),
    # then the division's plan, the longest prefix
    (2, False, "340102001", None, "continuous", "division"),
    (3, False, "340103001", None, "scheduled", "division"),
    # then the class's plan, else off
    (2, False, "3402", None, "event", "class"),
    (3, False, "3402", None, "off", "class"),
    (None, False, "", None, "off", "class"),
])
def test_a_plan_comes_from_the_channel_then_key_site_and_class_i_then_division_then_class(
        point_class: int | None, key_site: bool, division: str, own: RecordingPlanSpec | None,
        mode: str, source: str) -> None:
    plan = POLICY.plan("c", point_class, key_site, division, own)
    assert (plan.mode, plan.source) == (mode, source)
    # retention stays by class and key site whatever the plan
    assert plan.retention_days == retention_days(point_class, key_site, {1: 60, 2: 30, 3: 30}, 90)


def test_event_plans_take_the_configured_buffers_unless_their_own() -> None:
    own = POLICY.plan("c", 3, False, "", RecordingPlanSpec(mode="event", post_seconds=90))
    assert (own.pre_seconds, own.post_seconds) == (10, 90)
    by_class = POLICY.plan("c", 2, False, "3402")
    assert (by_class.pre_seconds, by_class.post_seconds) == (5, 30)
    assert by_class.as_dict() == {"channel_id": "c", "mode": "event", "source": "class", "retention_days": 30,
                                  "pre_seconds": 5, "post_seconds": 30}
    nights = POLICY.plan("c", 3, False, "3401")
    assert nights.as_dict()["schedule"] == [{"days": [1, 2, 3, 4, 5], "start": "20:00", "end": "06:00"}]


@pytest.mark.parametrize(("body", "message"), [
    ({"mode": "scheduled"}, "needs at least one window"),
    ({"mode": "continuous", "schedule": [{"days": [1], "start": "08:00", "end": "09:00"}]}, "only a scheduled plan"),
    ({"mode": "off", "pre_seconds": 3}, "for event plans"),
    ({"mode": "event", "pre_seconds": 121}, "less than or equal to 120"),
    ({"mode": "event", "post_seconds": 0}, "greater than or equal to 1"),
    ({"mode": "sometimes"}, "continuous"),
    ({"mode": "scheduled", "schedule": [{"days": [0], "start": "08:00", "end": "09:00"}]}, "window 1: days"),
    ({"mode": "scheduled", "schedule": [{"days": [1], "start": "8:00", "end": "09:00"}]}, "HH:MM"),
    ({"mode": "scheduled", "schedule": [{"days": [1], "start": "08:00", "end": "08:00"}]}, "no time at all"),
    ({"mode": "continuous", "colour": "red"}, "extra"),
])
def test_bad_plans_are_refused_saying_why(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RecordingPlanSpec.model_validate(body)


def test_configured_defaults_are_checked_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match=r"recording\.class_plans\.4"):
        RecordingConfig(class_plans={4: {"mode": "event"}})
    with pytest.raises(ValidationError, match=r"recording\.division_plans\.34x"):
        RecordingConfig(division_plans={"34x": {"mode": "event"}})
    cfg = RecordingConfig(class_plans={2: {"mode": "event", "pre_seconds": 4}}, division_plans={"3401": {"mode": "off"}})
    assert Policy.from_config(cfg).plan("c", 2, False, "3402").pre_seconds == 4


@pytest.mark.parametrize(("by_class", "key_site", "named"), [
    ({2: 29}, 90, "recording.retention_days.2"),
    ({1: 0}, 90, "recording.retention_days.1"),
    ({4: 30}, 90, "recording.retention_days.4"),
    ({}, 89, "recording.key_site_retention_days"),
])
def test_settings_below_the_floors_are_refused_naming_the_setting(by_class: dict[int, int], key_site: int,
                                                                 named: str) -> None:
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        check_retention(by_class, key_site)
    with pytest.raises(ValidationError, match=named.replace(".", r"\.")):
        RecordingConfig(retention_days=by_class, key_site_retention_days=key_site)


def test_defaults_are_off_and_at_the_floors() -> None:
    cfg = Settings().recording
    assert cfg.enabled is False and cfg.segment_seconds == 60
    assert Policy(cfg.retention_days, cfg.key_site_retention_days, cfg.continuous).plan("c", 2, True).retention_days == 90
    with pytest.raises(ValidationError, match=r"recording\.continuous\.5"):
        RecordingConfig(continuous={5: True})
    with pytest.raises(ValidationError, match="extra"):
        RecordingConfig(retention=30)  # type: ignore[call-arg]


def test_expiry() -> None:
    now = datetime(2026, 12, 4, tzinfo=UTC)
    assert expires_before(now, 30) == now - timedelta(days=30)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 4000) | st.floats(allow_nan=True) |
    st.sampled_from(["continuous", "scheduled", "event", "off", "22:00", "06:00", "24:00", "7"]) | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(
        st.sampled_from(["mode", "schedule", "pre_seconds", "post_seconds", "days", "start", "end", "x"]), c,
        max_size=5), max_leaves=14)


@given(JSON)
@settings(max_examples=400, deadline=None)
def test_any_body_is_a_plan_or_a_validation_error_never_anything_else(body: object) -> None:
    try:
        spec = RecordingPlanSpec.model_validate(body)
    except ValidationError as e:
        assert e.errors()
        return
    plan = POLICY.plan("c", 3, False, "", spec)
    assert plan.mode == spec.mode and plan.source == "channel"
    assert RecordingPlanSpec.model_validate(spec.model_dump()) == spec  # what it keeps reads back
