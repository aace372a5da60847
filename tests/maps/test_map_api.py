"""The map's routes on SQLite and PostgreSQL: basemap tiles from the MBTiles file, division
boundaries loaded whole by an administrator and read by every logged-in user."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import httpx
from PIL import Image

from tests.maps.conftest import login
from xueliang.app import Platform
from xueliang.maps import democity
from xueliang.maps.tiles import pixel
from xueliang.sim import city as democity_registry

CITY = democity_registry.generate()
FC = democity.feature_collection(CITY.divisions)
PROBLEM = "application/problem+json"


def _tile_at(lon: float, lat: float, z: int) -> str:
    x, y = pixel(lon, lat, z)
    return f"{z}/{int(x // 256)}/{int(y // 256)}"


async def test_tiles_are_served_from_the_file_to_a_logged_in_user(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    url = f"/api/v1/map/tiles/{_tile_at(117.25, 31.85, 12)}.png"
    assert (await client.get(url)).status_code == 401
    r = await client.get(url, headers=admin)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content))
    assert img.size == (256, 256)
    assert len(img.convert("RGB").getcolors(256) or ()) >= 3  # land, roads, river or blocks: a city, not a blank
    assert "max-age" in r.headers["cache-control"] and "private" in r.headers["cache-control"]
    etag = r.headers["etag"]
    again = await client.get(url, headers={**admin, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    # the same tile without the extension; another tile has another tag
    assert (await client.get(url.removesuffix(".png"), headers=admin)).content == r.content
    other = await client.get(f"/api/v1/map/tiles/{_tile_at(117.35, 31.85, 12)}.png", headers=admin)
    assert other.status_code == 200 and other.headers["etag"] != etag


async def test_a_tile_the_file_lacks_is_404_and_a_bad_address_a_clear_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    far = await client.get(f"/api/v1/map/tiles/{_tile_at(87.6, 43.8, 12)}.png", headers=admin)  # Urumqi
    assert far.status_code == 404 and far.headers["content-type"].startswith(PROBLEM)
    deeper = await client.get(f"/api/v1/map/tiles/{_tile_at(117.25, 31.85, 16)}.png", headers=admin)
    assert deeper.status_code == 404
    for bad in ("12/99999/1.png", "-1/0/0", "abc/0/0", "12/0/0.pbf", "99/0/0", "1/0/0.png.png", "3/1e2/0"):
        r = await client.get(f"/api/v1/map/tiles/{bad}", headers=admin)
        assert r.status_code == 422, (bad, r.status_code)
        assert r.headers["content-type"].startswith(PROBLEM) and r.json()["detail"], bad


async def test_the_console_is_told_to_use_the_platforms_basemap(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    cfg = (await client.get("/api/v1/console/config", headers=admin)).json()
    assert cfg["tile_url"] == "/api/v1/map/tiles/{z}/{x}/{y}.png"
    assert cfg["tile_auth"] is True and cfg["tile_max_zoom"] == 12 and cfg["tile_min_zoom"] == 10


async def _city(platform: Platform) -> None:
    await democity_registry.load(platform.sessions, CITY)


def _upload(doc: Any) -> dict[str, Any]:
    return {"file": ("divisions.geojson", json.dumps(doc).encode(), "application/geo+json")}


async def test_boundaries_load_whole_and_read_back(platform: Platform, client: httpx.AsyncClient,
                                                   admin: dict[str, str]) -> None:
    await _city(platform)
    r = await client.post("/api/v1/map/divisions", headers=admin, files=_upload(FC))
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["ok"] and rep["created"] == len(FC["features"]) == 16
    got = (await client.get("/api/v1/map/divisions", headers=admin, params={"zoom": 14})).json()
    assert got["type"] == "FeatureCollection"
    by = {f["properties"]["code"]: f for f in got["features"]}
    assert set(by) == {f["properties"]["code"] for f in FC["features"]}
    assert by["349901"]["properties"] == {"code": "349901", "name": "东湖区", "level": "county", "parent_code": "3499"}
    # a coarse zoom gets simpler outlines than a close one
    coarse = (await client.get("/api/v1/map/divisions", headers=admin, params={"zoom": 8})).json()
    n = lambda doc: sum(len(f["geometry"]["coordinates"][0]) for f in doc["features"])  # noqa: E731
    assert n(coarse) < n(got)
    # loaded again: unchanged
    again = (await client.post("/api/v1/map/divisions", headers=admin, files=_upload(FC))).json()
    assert again["unchanged"] == 16 and again["created"] == again["updated"] == 0
    # the point-in-polygon others use (the incident centre's place of a case)
    town = next(f for f in FC["features"] if f["properties"]["code"] == "349902002")
    xs = [p[0] for p in town["geometry"]["coordinates"][0]]
    assert await platform.maps.division_at((min(xs) + max(xs)) / 2, 31.85) == "349902002"
    assert await platform.maps.division_at(100.0, 30.0) is None


async def test_a_file_with_one_unknown_code_changes_nothing(platform: Platform, client: httpx.AsyncClient,
                                                            admin: dict[str, str]) -> None:
    await _city(platform)
    assert (await client.post("/api/v1/map/divisions", headers=admin, files=_upload(FC))).status_code == 200
    before = (await client.get("/api/v1/map/divisions", headers=admin, params={"zoom": 18})).json()
    doc = copy.deepcopy(FC)
    for f in doc["features"]:  # every outline moved a little ...
        f["geometry"]["coordinates"][0] = [[x + 0.001, y] for x, y in f["geometry"]["coordinates"][0]]
    doc["features"][-1]["properties"]["code"] = "349999"  # ... and one division nobody registered
    r = await client.post("/api/v1/map/divisions", headers=admin, files=_upload(doc))
    assert r.status_code == 422
    rep = r.json()
    assert not rep["ok"] and [p["row"] for p in rep["problems"]] == [len(doc["features"])]
    assert "349999" in rep["problems"][0]["reason"]
    after = (await client.get("/api/v1/map/divisions", headers=admin, params={"zoom": 18})).json()
    assert after == before


async def test_bad_files_are_refused_with_a_report(platform: Platform, client: httpx.AsyncClient,
                                                   admin: dict[str, str]) -> None:
    await _city(platform)
    for data in (b"", b"not json", b"[]", b'{"type": "FeatureCollection", "features": []}', "\u00ff".encode("latin-1")):
        r = await client.post("/api/v1/map/divisions", headers=admin,
                              files={"file": ("x.geojson", data, "application/geo+json")})
        assert r.status_code == 422 and r.json()["problems"], data
    assert (await client.get("/api/v1/map/divisions", headers=admin)).json()["features"] == []


async def test_only_registry_managers_load_and_every_user_reads(platform: Platform, client: httpx.AsyncClient,
                                                                 admin: dict[str, str]) -> None:
    await _city(platform)
    for name, role in (("duty", "operator"), ("res", "resident"), ("aud", "auditor")):
        await platform.users.create(name, "Some-pass-123", role, enforce_policy=False)
        h = await login(client, name, "Some-pass-123")
        assert (await client.post("/api/v1/map/divisions", headers=h, files=_upload(FC))).status_code == 403
        assert (await client.get("/api/v1/map/divisions", headers=h)).status_code == 200
        assert (await client.get(f"/api/v1/map/tiles/{_tile_at(117.25, 31.85, 11)}.png", headers=h)).status_code == 200
    assert (await client.post("/api/v1/map/divisions", files=_upload(FC))).status_code == 401
    assert (await client.get("/api/v1/map/divisions")).status_code == 401
    assert (await client.get("/api/v1/map/divisions", headers=admin)).json()["features"] == []


async def test_a_scoped_user_sees_no_grid_outside_its_cameras(platform: Platform, client: httpx.AsyncClient,
                                                              admin: dict[str, str]) -> None:
    await _city(platform)
    assert (await client.post("/api/v1/map/divisions", headers=admin, files=_upload(FC))).status_code == 200
    grid = "349901001001001"  # a grid of a village: no camera stands in it
    square = [[117.08, 31.9], [117.09, 31.9], [117.09, 31.91], [117.08, 31.91], [117.08, 31.9]]
    r = await client.put(f"/api/v1/divisions/{grid}", headers=admin,
                         json={"code": grid, "name": "网格一", "boundary": {"type": "Polygon", "coordinates": [square]}})
    assert r.status_code in (200, 201), r.text
    await platform.users.create("edu", "Some-pass-123", "department_user", department="教育局", enforce_policy=False)
    edu = await login(client, "edu", "Some-pass-123")
    codes = lambda h: {f["properties"]["code"] for f in h["features"]}  # noqa: E731
    seen_by_admin = codes((await client.get("/api/v1/map/divisions", headers=admin)).json())
    seen_by_edu = codes((await client.get("/api/v1/map/divisions", headers=edu)).json())
    assert grid in seen_by_admin and grid not in seen_by_edu
    assert seen_by_admin - {grid} == seen_by_edu
    platform.maps.forget()  # the grid came through the registry: read the outlines again
    assert await platform.maps.division_at(117.085, 31.905) == grid  # the smallest division holding it
