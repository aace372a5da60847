"""Tile addresses: XYZ in, TMS rows to the file, and bad addresses refused with a reason."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xueliang.maps.tiles import (
    MAX_ZOOM,
    BadTile,
    Tile,
    from_tms,
    lonlat,
    parse_tile,
    pixel,
    tiles_covering,
)


@st.composite
def tiles(draw: st.DrawFn) -> Tile:
    z = draw(st.integers(0, MAX_ZOOM))
    return Tile(z, draw(st.integers(0, (1 << z) - 1)), draw(st.integers(0, (1 << z) - 1)))


@given(tiles(), st.sampled_from(["", ".png", ".PNG"]))
def test_a_tile_of_the_grid_reads_back(t: Tile, ext: str) -> None:
    assert parse_tile(str(t.z), str(t.x), f"{t.y}{ext}", "png") == t


@given(tiles())
def test_the_tms_row_flips_north_and_south_and_back(t: Tile) -> None:
    assert 0 <= t.tms_row < (1 << t.z)
    assert t.tms_row + t.y == (1 << t.z) - 1
    assert from_tms(t.z, t.x, t.tms_row) == t


def test_the_tms_row_of_known_tiles() -> None:
    assert Tile(0, 0, 0).tms_row == 0
    assert Tile(1, 0, 0).tms_row == 1  # the north-west tile is TMS row 1 at zoom 1
    assert Tile(3, 5, 2).tms_row == 5


@given(st.text(max_size=12), st.text(max_size=12), st.text(max_size=16))
def test_any_address_is_a_tile_or_refused_with_a_reason(z: str, x: str, y: str) -> None:
    try:
        t = parse_tile(z, x, y, "png")
    except BadTile as exc:
        assert str(exc)
        return
    assert 0 <= t.x < (1 << t.z) and 0 <= t.y < (1 << t.z) and t.z <= MAX_ZOOM


@given(tiles())
def test_outside_the_grid_is_refused(t: Tile) -> None:
    n = 1 << t.z
    for args in ((t.z, n + t.x, t.y), (t.z, t.x, n + t.y)):
        with pytest.raises(BadTile):
            parse_tile(*(str(a) for a in args), "png")


@pytest.mark.parametrize(("z", "x", "y"), [("-1", "0", "0"), ("25", "0", "0"), ("1", "2", "0"), ("a", "0", "0"),
                                          ("1", "0", "0.pbf"), ("1", "0", "1e3"), ("1", "０", "0"), ("99999999999", "0", "0")])
def test_bad_addresses(z: str, x: str, y: str) -> None:
    with pytest.raises(BadTile):
        parse_tile(z, x, y, "png")


@given(st.floats(-179.9, 179.9), st.floats(-85, 85), st.integers(0, 20))
def test_pixels_and_degrees_are_inverse(lon: float, lat: float, z: int) -> None:
    px, py = pixel(lon, lat, z)
    lon2, lat2 = lonlat(px, py, z)
    assert abs(lon2 - lon) < 1e-7 and abs(lat2 - lat) < 1e-7


@given(st.floats(100, 120), st.floats(20, 40), st.floats(0.001, 1), st.integers(0, 18))
def test_the_covering_tiles_hold_the_box(west: float, south: float, size: float, z: int) -> None:
    x0, y0, x1, y1 = tiles_covering(west, south, west + size, south + size, z)
    for lon, lat in ((west, south), (west + size, south + size)):
        px, py = pixel(lon, lat, z)
        assert x0 <= px // 256 <= x1 and y0 <= py // 256 <= y1
