"""A misspelt XUELIANG_* variable is named at start instead of leaving its setting at the
default in silence: pydantic-settings refuses an unknown key inside a section
(XUELIANG_SIP__PASWORD) but passes over a name that matches no section or top-level setting
(XUELIANG_SECRETKEY, XUELIANG_CLUSTR__NODE_ID)."""

from __future__ import annotations

import logging

import pytest

from xueliang import cli
from xueliang.config import load_settings, unknown_env_names


def test_every_setting_name_is_known_and_misspelt_ones_are_not() -> None:
    good = {"XUELIANG_SIP__PORT": "5062", "XUELIANG_SIP__PASSWORD": "x", "XUELIANG_SECRET_KEY": "k",
            "XUELIANG_STORAGE__OBJECTS__BUCKET": "b", "XUELIANG_AUDIT_KEY": "a", "XUELIANG_PURE_PYTHON": "1",
            "PATH": "/bin", "XUELIANGX": "not ours"}
    assert unknown_env_names(good) == []
    bad = ["XUELIANG_SIP__PASWORD", "XUELIANG_SIP__PORT__X", "XUELIANG_SECRETKEY", "XUELIANG_STORAGE__OBJECTS__BUKET"]
    assert unknown_env_names({**good, **dict.fromkeys(bad, "1")}) == sorted(bad)


def test_the_server_names_a_misspelt_variable_at_start(monkeypatch: pytest.MonkeyPatch,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("XUELIANG_SECRETKEY", "secret")
    settings = load_settings()
    assert settings.secret_key != "secret"  # ignored by the settings ...
    with caplog.at_level(logging.WARNING, logger="xueliang.config"):
        cli._logging(settings)
    # ... and said so, by name
    assert any("XUELIANG_SECRETKEY" in r.getMessage() for r in caplog.records)
    monkeypatch.delenv("XUELIANG_SECRETKEY")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="xueliang.config"):
        cli._logging(settings)
    assert not [r for r in caplog.records if "SECRETKEY" in r.getMessage()]
