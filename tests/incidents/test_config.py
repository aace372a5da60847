"""incidents.* settings: what is refused, and that the error names the key."""

from __future__ import annotations

import pytest

from xueliang.config import ConfigError, load_settings


@pytest.mark.parametrize(("value", "words"), [
    ({"categories": []}, "categories"),
    ({"categories": ["治安", "治安"]}, "categories"),
    ({"categories": [""]}, "categories"),
    ({"deadline_hours": {"urgent": 1}}, "deadline_hours"),
    ({"deadline_hours": {"urgent": 0, "high": 1, "normal": 1, "low": 1}}, "deadline_hours"),
    ({"replay_window_seconds": 1}, "replay_window_seconds"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_incident_settings_are_named(tmp_path, value: dict[str, object], words: str) -> None:  # type: ignore[no-untyped-def]
    import json

    lines = "\n".join(f"{k} = {json.dumps(v, ensure_ascii=False)}" if not isinstance(v, dict) else
                      f"{k} = {{{', '.join(f'{a} = {b}' for a, b in v.items())}}}" for k, v in value.items())
    f = tmp_path / "x.toml"
    f.write_text(f"[incidents]\n{lines}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_settings(f)
    assert words in str(exc.value)


def test_the_defaults_are_the_seeds_categories() -> None:
    from xueliang.config import Settings

    s = Settings()
    assert s.incidents.categories == ["治安", "安全隐患", "矛盾纠纷", "交通", "消防", "防汛", "环境", "其他"]
    assert s.incidents.deadline_hours["urgent"] < s.incidents.deadline_hours["low"]
