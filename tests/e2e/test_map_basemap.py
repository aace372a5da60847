"""The offline map in a real Chromium against `xueliang demo`: the basemap's tiles come from the
platform (the demo's generated MBTiles, fetched with the login) and the division boundaries the
demo loaded are drawn, and can be switched off and on."""

from __future__ import annotations

import urllib.request
from typing import Any

from tests.e2e.test_console import PASSWORD, Demo, browser, demo, login, page, shot, wait_js  # noqa: F401  (fixtures)

PNG = b"\x89PNG\r\n\x1a\n"


def test_the_map_draws_the_platforms_basemap_and_the_division_boundaries(page: Any, demo: Demo) -> None:  # noqa: F811
    responses: list[Any] = []
    page.on("response", lambda r: responses.append(r) if "/api/v1/map/tiles/" in r.url else None)
    # an open case with a place: the incidents layer draws it
    case = demo.api("/incidents", method="POST", body={"category": "治安", "description": "路口有人争吵",
                                                       "longitude": 117.25, "latitude": 31.85})
    login(page, demo, "admin")
    wait_js(page, "window.__xueliangMapReady && window.__xueliangMapReady.points > 0", timeout=30)
    wait_js(page, "window.__xueliangMapLayers && window.__xueliangMapLayers.tilesLoaded >= 4", timeout=20)
    ok = [r for r in responses if r.status == 200]
    assert len(ok) >= 4, [(r.status, r.url) for r in responses[:5]]
    for r in ok[:8]:
        assert r.headers["content-type"] == "image/png" and int(r.headers["content-length"]) > 100
        # the same bytes, asked for with the same login outside the browser, are a PNG
        req = urllib.request.Request(r.url, headers={"Authorization": f"Bearer {demo.token('admin')}"})
        with urllib.request.urlopen(req, timeout=10) as got:
            body = got.read()
        assert body.startswith(PNG) and len(body) == int(r.headers["content-length"])
    # and the page drew them: whole 256-pixel images
    sizes = page.evaluate("Array.from(document.querySelectorAll('.leaflet-tile-loaded')).map(i => i.naturalWidth)")
    assert sizes and set(sizes) == {256}, sizes
    # every tile shown is an image the page made from those bytes
    shown = page.evaluate("Array.from(document.querySelectorAll('.leaflet-tile-loaded')).map(i => i.src.slice(0, 5))")
    assert shown and set(shown) == {"blob:"}, shown

    # the demo's counties and townships, as outlines
    expected = len([d for d in demo.api("/map/divisions")["features"]])
    assert expected == 16
    wait_js(page, f"window.__xueliangMapLayers.divisions === {expected}")
    open_cases = [i for i in demo.api("/incidents?limit=500")["items"]
                  if i["status"] not in ("closed", "merged") and i["longitude"] is not None]
    assert case["id"] in {i["id"] for i in open_cases}
    wait_js(page, f"window.__xueliangMapLayers.incidents === {len(open_cases)}")
    paths = "document.querySelectorAll('path.division-boundary').length"
    assert page.evaluate(paths) == expected
    assert page.evaluate("document.querySelectorAll('path.level-county').length") == 4
    page.wait_for_timeout(300)
    shot(page, "map-basemap")

    page.click("[data-testid=layer-divisions]")
    wait_js(page, f"{paths} === 0")
    page.click("[data-testid=layer-divisions]")
    wait_js(page, f"{paths} === {expected}")

    # closer in: the tiles of the next zooms come from the platform too
    before = len(ok)
    page.evaluate("window.__xueliangMap.setView([31.85, 117.25], 15, {animate: false})")
    wait_js(page, f"window.__xueliangMapLayers.tilesLoaded >= {before + 4}", timeout=20)
    # a tile the basemap lacks (beyond the city) may be 404; nothing else is refused
    assert {r.status for r in responses} <= {200, 304, 404}, {r.status for r in responses}


def test_grid_members_positions_are_a_layer_for_the_centre_only(browser: Any, page: Any, demo: Demo) -> None:  # noqa: F811
    demo.api("/users", method="POST", body={"username": "grid-map", "password": PASSWORD, "role": "grid_member",
                                            "department": "网格二"})
    demo.api("/mobile/position", user="grid-map", method="PUT",
             body={"longitude": 117.26, "latitude": 31.86, "accuracy": 25})
    positions = demo.api("/mobile/positions")["items"]
    assert any(p["username"] == "grid-map" for p in positions)
    # the centre (admin holds incidents.manage) sees every recent position drawn
    login(page, demo, "admin")
    page.locator("[data-testid=layer-members]").wait_for()
    wait_js(page, f"window.__xueliangMapLayers && window.__xueliangMapLayers.members === {len(positions)}", timeout=20)

    # a supervisor holds incidents.read (the incidents layer) but not incidents.manage: no
    # positions, neither on the map nor from the API
    demo.api("/users", method="POST", body={"username": "sup-map", "password": PASSWORD, "role": "supervisor"})
    assert demo.status("/mobile/positions", user="sup-map") == 403
    ctx = browser.new_context()
    try:
        other = ctx.new_page()
        login(other, demo, "sup-map")
        wait_js(other, "window.__xueliangMapLayers && window.__xueliangMapLayers.incidents !== null", timeout=20)
        assert other.locator("[data-testid=layer-incidents]").count() == 1
        assert other.locator("[data-testid=layer-members]").count() == 0
        assert other.evaluate("window.__xueliangMapLayers.members") is None
    finally:
        ctx.close()
