"""The health section of the configuration: defaults, a TOML file, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from xueliang.config import ConfigError, load_settings


def test_defaults_and_a_file(tmp_path: Path) -> None:
    s = load_settings()
    assert s.health.targets == {1: 98.0, 2: 95.0, 3: 90.0} and s.health.ticket_after_seconds == 600
    assert s.health.level(None).repair_hours == 72 and s.scheduler.enabled
    f = tmp_path / "x.toml"
    f.write_text("""
[health]
targets = { 1 = 99.0, 2 = 96.0, 3 = 85.0 }
ticket_after_seconds = 300

[health.service_levels]
1 = { acknowledge_hours = 1, repair_hours = 12 }
2 = { acknowledge_hours = 4, repair_hours = 48 }
3 = { acknowledge_hours = 8, repair_hours = 96 }
""", encoding="utf-8")
    s = load_settings(f)
    assert s.health.targets[3] == 85.0 and s.health.ticket_after_seconds == 300
    assert s.health.level(1).repair_hours == 12 and s.health.level(3).repair_hours == 96


@pytest.mark.parametrize(("body", "named"), [
    ("[health]\ntargets = { 1 = 120.0 }\n", "health.targets"),
    ("[health]\ntargets = { 4 = 90.0 }\n", "health.targets"),
    ("[health]\nticket_after = 5\n", "health.ticket_after"),
    ("[health.service_levels]\n1 = { acknowledge_hours = 0, repair_hours = 1 }\n", "health.service_levels"),
    ("[scheduler]\ntick = 1\n", "scheduler.tick"),
])
def test_bad_values_are_named(tmp_path: Path, body: str, named: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_settings(f)
    assert named in str(e.value)
