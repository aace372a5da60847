"""The demo's vector basemap (MVT in MBTiles): tiles that decode with the reference decoder and
hold the layers the console styles, deterministic bytes, damaged files refused at load, and the
tile route serving them gzipped as stored, to logged-in users only."""

from __future__ import annotations

import gzip
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import mapbox_vector_tile
import pytest

from tests.maps.conftest import ADMIN, api_client, login, map_platform
from xueliang.config import ConfigError, Settings
from xueliang.maps import mbtiles, vectormap
from xueliang.maps.democity import build
from xueliang.maps.service import MapService
from xueliang.maps.tiles import Tile, pixel, tiles_covering

MVT = "application/vnd.mapbox-vector-tile"


@pytest.fixture(scope="session")
def vector_basemap(tmp_path_factory: pytest.TempPathFactory, demo_divisions: list[dict[str, object]]) -> Path:
    path = tmp_path_factory.mktemp("vector") / "city.mbtiles"
    vectormap.generate(path, demo_divisions, min_zoom=12, max_zoom=14)
    return path


def _decode(data: bytes) -> dict[str, Any]:
    assert data[:2] == b"\x1f\x8b", "stored gzipped, as MBTiles writers store vector tiles"
    return dict(mapbox_vector_tile.decode(gzip.decompress(data), default_options={"y_coord_down": True}))


def _at(lon: float, lat: float, z: int) -> Tile:
    x, y = pixel(lon, lat, z)
    return Tile(z, int(x // 256), int(y // 256))


def test_the_vector_tiles_decode_and_hold_the_citys_layers(vector_basemap: Path, demo_divisions: list[dict[str, object]]) -> None:
    m = mbtiles.MBTiles(vector_basemap)
    try:
        assert m.format == "pbf" and m.vector and m.media_type == MVT
        assert {lay["id"] for lay in __import__("json").loads(m.metadata["json"])["vector_layers"]} == set(vectormap.FIELDS)
        city = build(demo_divisions)
        seen: dict[str, int] = {}
        heights: list[float] = []
        x0, y0, x1, y1 = tiles_covering(*city.bbox, 14)
        with sqlite3.connect(vector_basemap) as con:
            count = con.execute("SELECT COUNT(*) FROM tiles WHERE zoom_level = 14").fetchone()[0]
        assert count == (x1 - x0 + 1) * (y1 - y0 + 1)  # every tile of the city's box
        for x in range(x0, x1 + 1, 3):
            for y in range(y0, y1 + 1, 3):
                data = m.tile(Tile(14, x, y))
                assert data is not None
                for name, layer in _decode(data).items():
                    assert layer["extent"] == vectormap.EXTENT
                    seen[name] = seen.get(name, 0) + len(layer["features"])
                    for f in layer["features"]:
                        # inside the tile and its buffer: cut per tile, not the whole city in each
                        flat = str(f["geometry"]["coordinates"]).replace("[", "").replace("]", "").split(",")
                        assert all(-vectormap.BUFFER - 1 <= float(v) <= vectormap.EXTENT + vectormap.BUFFER + 1 for v in flat if v.strip())
                        if name == "building":
                            heights.append(f["properties"]["render_height"])
                        if name == "transportation":
                            assert f["properties"]["class"] in ("primary", "minor")
        assert set(seen) == set(vectormap.FIELDS), seen
        assert seen["building"] > 100 and seen["transportation"] > 50
        # a skyline: low blocks and towers, heights in whole floors
        assert min(heights) >= 6 and max(heights) >= 45 and all(h % 3 == 0 for h in heights)
        # streets and buildings only from zoom 13: a zoom-12 tile has arterials and no buildings
        z12 = _decode(m.tile(_at(117.25, 31.85, 12)) or b"")
        assert "building" not in z12 and {f["properties"]["class"] for f in z12["transportation"]["features"]} == {"primary"}
        assert m.tile(_at(100.0, 25.0, 14)) is None  # nothing far from the city
    finally:
        m.close()


def test_the_vector_basemap_is_deterministic(tmp_path: Path, vector_basemap: Path, demo_divisions: list[dict[str, object]]) -> None:
    again = tmp_path / "again.mbtiles"
    vectormap.generate(again, demo_divisions, min_zoom=12, max_zoom=14)
    assert again.read_bytes() == vector_basemap.read_bytes()


def _copy_with(src: Path, dst: Path, sql: str, *args: Any) -> Path:
    dst.write_bytes(src.read_bytes())
    with sqlite3.connect(dst) as con:
        con.execute(sql, args)
    return dst


@pytest.mark.parametrize(("sql", "args", "reason"), [
    ("UPDATE tiles SET tile_data = ?", (b"\x1f\x8b\x08\x00garbage",), "not readable gzip"),
    ("UPDATE tiles SET tile_data = ?", (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30,), "not a Mapbox Vector Tile"),
    ("UPDATE metadata SET value = 'svg' WHERE name = 'format'", (), "tile format 'svg'"),
    ("UPDATE metadata SET value = 'png' WHERE name = 'format'", (), "not a PNG image"),
    ("UPDATE tiles SET tile_data = NULL", (), "a tile is NoneType"),
    ("UPDATE tiles SET tile_data = 'text'", (), "a tile is str"),
])
def test_a_damaged_basemap_is_refused_at_start_with_the_reason(tmp_path: Path, vector_basemap: Path,
                                                                sql: str, args: tuple[Any, ...], reason: str) -> None:
    bad = _copy_with(vector_basemap, tmp_path / "bad.mbtiles", sql, *args)
    with pytest.raises(ConfigError, match=rf"map\.basemap: .*{reason}"):
        MapService(Settings(map={"basemap": str(bad)}).map, None)  # type: ignore[arg-type]


def test_a_truncated_file_is_refused_not_a_crash(tmp_path: Path, vector_basemap: Path) -> None:
    bad = tmp_path / "cut.mbtiles"
    data = vector_basemap.read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(ConfigError, match=r"map\.basemap: .*(damaged|not readable|not an MBTiles)"):
        MapService(Settings(map={"basemap": str(bad)}).map, None)  # type: ignore[arg-type]


@pytest.fixture
async def vclient(db_url: str, tmp_path: Path, vector_basemap: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with map_platform(db_url, tmp_path, vector_basemap) as p, api_client(p) as c:
        yield c


async def test_vector_tiles_are_served_gzipped_as_stored_to_a_logged_in_user(vclient: httpx.AsyncClient, vector_basemap: Path) -> None:
    admin = await login(vclient, *ADMIN)
    t = _at(117.25, 31.85, 14)
    url = f"/api/v1/map/tiles/{t.z}/{t.x}/{t.y}.pbf"
    assert (await vclient.get(url)).status_code == 401
    # no token in the query: tiles are not media URLs
    token = admin["Authorization"].split()[1]
    assert (await vclient.get(f"{url}?token={token}")).status_code == 401
    m = mbtiles.MBTiles(vector_basemap)
    stored = m.tile(t)
    m.close()
    assert stored is not None
    async with vclient.stream("GET", url, headers={**admin, "Accept-Encoding": "gzip"}) as r:
        raw = b"".join([c async for c in r.aiter_raw()])
        assert r.status_code == 200
        assert r.headers["content-type"] == MVT and r.headers["content-encoding"] == "gzip"
        assert "private" in r.headers["cache-control"]
    assert raw == stored  # the stored bytes, not compressed again
    assert set(_decode(raw)) >= {"transportation", "boundary"}
    # a client that takes no gzip gets the plain tile
    plain = await vclient.get(url, headers={**admin, "Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.content == gzip.decompress(stored)
    # the console is told it is a vector basemap
    cfg = (await vclient.get("/api/v1/console/config", headers=admin)).json()
    assert cfg["tile_url"] == "/api/v1/map/tiles/{z}/{x}/{y}.pbf" and cfg["tile_vector"] is True
    assert cfg["tile_min_zoom"] == 12 and cfg["tile_max_zoom"] == 14
    # a .png address of a vector basemap names no tile
    assert (await vclient.get(f"/api/v1/map/tiles/{t.z}/{t.x}/{t.y}.png", headers=admin)).status_code == 422
