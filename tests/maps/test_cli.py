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


def test_the_demo_basemap_command_writes_vector_tiles_or_with_raster_png(tmp_path: Path) -> None:
    from xueliang.maps import mbtiles

    run = CliRunner().invoke
    for args, fmt in (([], "pbf"), (["--raster"], "png")):
        out = tmp_path / f"city-{fmt}.mbtiles"
        r = run(app, ["map", "demo-basemap", str(out), *args])
        assert r.exit_code == 0 and "tiles" in r.output, r.output
        m = mbtiles.MBTiles(out)
        try:
            assert m.format == fmt and m.metadata["minzoom"] == "10" and m.metadata["maxzoom"] == "15"
        finally:
            m.close()
