"""diagnosis.* settings: a mistake is named on start, not found later."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from xueliang.app import Platform
from xueliang.config import Settings


def _settings(tmp_path: Path, **diagnosis: object) -> Settings:
    return Settings(database={"url": f"sqlite+aiosqlite:///{tmp_path}/x.db"}, storage={"var_dir": tmp_path},
                    secret_key="k" * 32, sip={"enabled": False}, diagnosis=diagnosis)


@pytest.mark.parametrize(("value", "said"), [
    ({"mute": ["25:00-01:00"]}, "not HH:MM-HH:MM"),
    ({"mute": ["1:00-2:00"]}, "not HH:MM-HH:MM"),
    ({"interval_seconds": {4: 3600}}, "classes 1-3"),
    ({"interval_seconds": {1: 10}}, "at least 60 s"),
    ({"thresholds": {5: {"day": {"blur": 0.5}}}}, "point class 5"),
    ({"concurrency": 0}, "concurrency"),
    ({"sampel_frames": 3}, "sampel_frames"),
])
def test_bad_settings_are_named(tmp_path: Path, value: dict[str, object], said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        _settings(tmp_path, **value)


def test_an_unknown_fault_in_the_thresholds_stops_the_start_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"diagnosis.thresholds.1: unknown fault code 'blurr'"):
        Platform(_settings(tmp_path, thresholds={1: {"day": {"blurr": 0.5}}}))
    p = Platform(_settings(tmp_path, thresholds={1: {"day": {"blur": 0.6}}}, mute=["23:00-01:00"]))
    assert p.diagnosis is not None and p.settings.diagnosis.mute == ["23:00-01:00"]
