"""Recording plans: who records continuously, and how long recordings are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from xueliang.config import RecordingConfig, Settings
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
    assert p.plan("c1", 1, False) == Plan("c1", True, 30)
    assert p.plan("c2", 2, True) == Plan("c2", True, 90)
    assert p.plan("c3", 3, False) == Plan("c3", False, 30)


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
