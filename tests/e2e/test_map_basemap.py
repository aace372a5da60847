"""The offline map in a real Chromium (WebGL from SwiftShader) against `xueliang demo`: the
basemap's vector tiles come from the platform (the demo's generated MBTiles, fetched with the
login) and are drawn in the style's colours, buildings rise in the tilted view, the division
boundaries the demo loaded are drawn and can be switched off and on, and grid members'
positions show to the centre only."""

from __future__ import annotations

import gzip
import io
import json
import urllib.request
from typing import Any

import mapbox_vector_tile
from PIL import Image

from tests.e2e.test_console import PASSWORD, Demo, browser, demo, login, page, shot, wait_js  # noqa: F401  (fixtures)


def _hex(c: str) -> tuple[int, int, int]:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


def _map_pixels(pg: Any) -> list[tuple[int, int, int]]:
    """The map's pixels as drawn (a screenshot of the element: WebGL's canvas composited)."""
    img = Image.open(io.BytesIO(pg.locator("[data-testid=map] canvas").screenshot())).convert("RGB")
    return list(img.get_flattened_data()) if hasattr(img, "get_flattened_data") else list(img.getdata())


def _share(pixels: list[tuple[int, int, int]], rgb: tuple[int, int, int], tol: int = 3) -> float:
    return sum(1 for p in pixels if all(abs(a - b) <= tol for a, b in zip(p, rgb, strict=True))) / len(pixels)


def _jump(pg: Any, lon: float, lat: float, zoom: float) -> None:
    """Move the map and wait until it has drawn everything of the new view."""
    # listening before the move, and a repaint asked for: a jump to where the map already is
    # draws nothing new and would otherwise never be followed by an 'idle'
    pg.evaluate("([lon, lat, z]) => new Promise((done) => { const m = window.__xueliangMap;"
                " m.once('idle', () => done(true)); m.jumpTo({center: [lon, lat], zoom: z}); m.triggerRepaint(); })",
                [lon, lat, zoom])


#: Grid members drawn around the centre of the view (where the test reported one).
MEMBERS_AT = ("(() => { const m = window.__xueliangMap; const c = m.project(m.getCenter());"
              " return m.queryRenderedFeatures([[c.x - 20, c.y - 20], [c.x + 20, c.y + 20]], {layers: ['members']}).length; })()")
RENDERED_DIVISIONS = ("(() => { const m = window.__xueliangMap; return new Set(m.queryRenderedFeatures("
                      "{layers: ['div-coarse', 'div-township', 'div-fine']}).map((f) => f.properties.code)).size; })()")


def test_the_map_draws_the_platforms_vector_basemap_and_the_division_boundaries(page: Any, demo: Demo) -> None:  # noqa: F811
    responses: list[Any] = []
    page.on("response", lambda r: responses.append(r) if "/api/v1/map/tiles/" in r.url else None)
    # an open case with a place: the incidents layer draws it
    case = demo.api("/incidents", method="POST", body={"category": "治安", "description": "路口有人争吵",
                                                       "longitude": 117.25, "latitude": 31.85})
    login(page, demo, "admin")
    wait_js(page, "window.__xueliangMapReady && window.__xueliangMapReady.points > 0", timeout=30)
    wait_js(page, "window.__xueliangMapLayers && window.__xueliangMapLayers.tilesLoaded >= 4", timeout=20)
    assert page.locator("[data-testid=map-nowebgl]").count() == 0  # WebGL works in the tests' Chromium
    ok = [r for r in responses if r.status == 200]
    assert len(ok) >= 4, [(r.status, r.url) for r in responses[:5]]
    for r in ok[:6]:
        # vector tiles, sent gzipped as the MBTiles file stores them
        assert r.url.endswith(".pbf") and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        assert r.headers["content-encoding"] == "gzip"
        # the same bytes, asked for with the same login outside the browser, decode as MVT
        req = urllib.request.Request(r.url, headers={"Authorization": f"Bearer {demo.token('admin')}",
                                                     "Accept-Encoding": "gzip"})
        with urllib.request.urlopen(req, timeout=10) as got:
            layers = mapbox_vector_tile.decode(gzip.decompress(got.read()))
        assert set(layers) <= {"water", "waterway", "landuse", "park", "transportation", "building", "boundary"}
        assert layers, r.url

    # the demo's counties and townships, as outlines
    expected = len([d for d in demo.api("/map/divisions")["features"]])
    assert expected == 16
    wait_js(page, f"window.__xueliangMapLayers.divisions === {expected}")
    open_cases = [i for i in demo.api("/incidents?limit=500")["items"]
                  if i["status"] not in ("closed", "merged") and i["longitude"] is not None]
    assert case["id"] in {i["id"] for i in open_cases}
    wait_js(page, f"window.__xueliangMapLayers.incidents === {len(open_cases)}")
    _jump(page, 117.25, 31.85, 10.5)  # the whole city in view
    assert page.evaluate(RENDERED_DIVISIONS) == expected
    page.click("[data-testid=layer-divisions]")
    wait_js(page, f"{RENDERED_DIVISIONS} === 0")
    page.click("[data-testid=layer-divisions]")
    wait_js(page, f"{RENDERED_DIVISIONS} === {expected}")

    # the basemap drawn: without the cameras, a view over the river and the roads shows the
    # style's water and road colours, and is far from one uniform background
    page.click("[data-testid=layer-cameras]")
    _jump(page, 117.25, 31.846, 13)
    px = _map_pixels(page)
    colours = json.loads(page.evaluate("JSON.stringify(window.__xueliangBasemapColors)"))
    water, road, background = (_share(px, _hex(colours[k])) for k in ("water", "arterial", "background"))
    # the river is a few pixels wide at zoom 13 (0.4-0.8 % of the view in runs so far); without
    # the water layer its colour is absent (0 %)
    assert water > 0.002 and road > 0.002, (water, road)
    assert background < 0.8 and len(set(px)) > 20, (background, len(set(px)))
    shot(page, "map-basemap")

    # the tilted view: buildings raised from their height
    _jump(page, 117.23, 31.80, 15.5)  # a town core (maps/democity.py)
    flat = _map_pixels(page)
    page.click("[data-testid=map-tilt]")
    wait_js(page, "window.__xueliangMap.getPitch() > 50 && !window.__xueliangMap.isMoving()", timeout=20)
    page.evaluate("() => new Promise((done) => { const m = window.__xueliangMap; m.once('idle', () => done(true)); m.triggerRepaint(); })")
    assert page.evaluate("window.__xueliangMap.getLayoutProperty('building-3d', 'visibility')") == "visible"
    raised = page.evaluate("window.__xueliangMap.queryRenderedFeatures({layers: ['building-3d']}).length")
    assert raised > 10, raised
    assert _map_pixels(page) != flat
    shot(page, "map-3d")
    page.click("[data-testid=map-tilt]")
    wait_js(page, "window.__xueliangMap.getPitch() < 1 && !window.__xueliangMap.isMoving()", timeout=20)
    page.click("[data-testid=layer-cameras]")

    # closer in: the tiles of the next zooms come from the platform too
    before = page.evaluate("window.__xueliangMapLayers.tilesLoaded")
    _jump(page, 117.25, 31.85, 15)
    wait_js(page, f"window.__xueliangMapLayers.tilesLoaded >= {before + 2}", timeout=20)
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
    # and drawn where it was reported
    _jump(page, 117.26, 31.86, 16)
    assert page.evaluate(MEMBERS_AT) >= 1

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
        _jump(other, 117.26, 31.86, 16)
        assert other.evaluate(MEMBERS_AT) == 0  # nothing drawn there either
    finally:
        ctx.close()


def test_without_webgl_the_map_says_so_and_the_console_works(browser: Any, demo: Demo) -> None:  # noqa: F811
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    # a browser without WebGL (no GPU, no software renderer): every WebGL context is refused
    ctx.add_init_script("""(() => { const get = HTMLCanvasElement.prototype.getContext;
        HTMLCanvasElement.prototype.getContext = function (type, ...rest) {
          return /webgl/i.test(String(type)) ? null : get.call(this, type, ...rest); }; })()""")
    try:
        pg = ctx.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        login(pg, demo, "admin")
        msg = pg.locator("[data-testid=map-nowebgl]")
        msg.wait_for()
        assert "WebGL" in msg.inner_text()
        assert pg.locator("[data-testid=map] canvas").count() == 0
        # the rest of the page and the console go on: the filter panel counts the points
        pg.locator("[data-testid=map-count]").wait_for(timeout=30_000)
        pg.goto(demo.base + "/app/incidents")
        pg.locator("[data-testid=incidents]").wait_for()
        assert errors == [], errors
    finally:
        ctx.close()
