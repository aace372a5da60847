"""The demo's basemap: drawn from the city's geometry, the same bytes on every run, and the
configuration refusing at start a basemap that is not an MBTiles file."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from xueliang.config import ConfigError, Settings, load_settings
from xueliang.maps import basemap, mbtiles
from xueliang.maps.service import MapService
from xueliang.maps.tiles import Tile, pixel


def test_the_demo_basemap_is_deterministic_and_looks_like_a_city(tmp_path: Path, small_basemap: Path,
                                                                  demo_divisions: list[dict[str, object]]) -> None:
    again = tmp_path / "again.mbtiles"
    basemap.generate(again, demo_divisions, min_zoom=10, max_zoom=12)
    assert again.read_bytes() == small_basemap.read_bytes()
    m = mbtiles.MBTiles(small_basemap)
    try:
        assert m.format == "png" and m.metadata["minzoom"] == "10" and m.metadata["maxzoom"] == "12"
        x, y = pixel(117.25, 31.85, 12)
        data = m.tile(Tile(12, int(x // 256), int(y // 256)))
        assert data is not None
        colours = {rgb for _, rgb in Image.open(io.BytesIO(data)).convert("RGB").getcolors(256) or ()}
        assert basemap.COLOURS["water"] in colours or basemap.COLOURS["arterial"] in colours
        assert len(colours) >= 3
        # nothing far from the city
        x, y = pixel(100.0, 25.0, 12)
        assert m.tile(Tile(12, int(x // 256), int(y // 256))) is None
        with sqlite3.connect(small_basemap) as con:  # MBTiles rows are TMS: the north has the high rows
            rows = con.execute("SELECT MIN(tile_row), MAX(tile_row) FROM tiles WHERE zoom_level = 12").fetchone()
        _, ny = pixel(117.25, 32.1, 12)
        assert rows[1] <= (1 << 12) - 1 - int(ny // 256)
    finally:
        m.close()


def test_a_missing_or_foreign_basemap_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"map\.basemap.*no such file"):
        load_settings(None, map={"basemap": str(tmp_path / "none.mbtiles")})
    png = tmp_path / "tile.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(ConfigError, match=r"map\.basemap.*not an MBTiles file"):
        load_settings(None, map={"basemap": str(png)})
    with pytest.raises(ConfigError, match=r"map.*unknown key"):
        load_settings(None, map={"basemap": "", "tiles": "x"})


def test_an_sqlite_file_without_tiles_is_refused_at_start(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (x)")
    s = Settings(map={"basemap": str(db)})
    with pytest.raises(ConfigError, match=r"map\.basemap: .*no metadata, tiles table"):
        MapService(s.map, None)  # type: ignore[arg-type]
