"""`xueliang map load-divisions FILE`: the same all-or-nothing load, from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.maps.route_table import BOUNDARY
from xueliang.cli import app


def test_load_divisions_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XUELIANG_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path}/x.db")
    monkeypatch.setenv("XUELIANG_STORAGE__VAR_DIR", str(tmp_path))
    monkeypatch.setenv("XUELIANG_SECRET_KEY", "test-secret-0123456789abcdef")
    bad = dict(BOUNDARY, features=[*BOUNDARY["features"], {**BOUNDARY["features"][0], "properties": {"code": "9999"}}])
    (tmp_path / "bad.geojson").write_text(json.dumps(bad))
    (tmp_path / "good.geojson").write_text(json.dumps(BOUNDARY))
    run = CliRunner().invoke
    r = run(app, ["map", "load-divisions", str(tmp_path / "bad.geojson")])
    assert r.exit_code == 1 and "NOT imported" in r.output and "9999" in r.output, r.output
    r = run(app, ["map", "load-divisions", str(tmp_path / "good.geojson"), "--dry-run"])
    assert r.exit_code == 0 and "1 created" in r.output, r.output
    r = run(app, ["map", "load-divisions", str(tmp_path / "good.geojson")])
    assert r.exit_code == 0 and "1 created" in r.output, r.output
    r = run(app, ["map", "load-divisions", str(tmp_path / "good.geojson")])
    assert r.exit_code == 0 and "1 unchanged" in r.output, r.output
