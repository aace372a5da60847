"""The console's playback on the merged timeline, in Debian's Chromium against `xueliang demo`:
the platform's recordings (segment files of real H.264 put into the demo's recordings folder
and index) and, with simulated devices, the device's own on one timeline with the gaps; a click
plays the platform's recording, a second click seeks in it, 16× and frame step work, and the
video element really advances."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.test_console import (  # noqa: F401  (fixtures: demo, browser, page, media)
    CONSOLE,
    WITH_DEVICES,
    Demo,
    browser,
    channel_of,
    demo,
    media,
    open_class_i_playback,
    page,
    require_media,
    shot,
    wait_js,
    wait_playing,
)
from tests.media._media_clips import encode
from xueliang.media.fmp4 import Fmp4Muxer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SEGMENT_FRAMES = 250  # 10 s at 25 fps
VIDEO = "[data-testid=wall-tile] video"


def _segment() -> bytes:
    frames, ps = encode(frames=SEGMENT_FRAMES, gop=25)
    muxer = Fmp4Muxer(frames[0].codec, ps, base_dts=frames[0].dts)
    data = bytearray(muxer.init_segment())
    for i in range(0, len(frames), 25):
        part = frames[i:i + 25]
        end = frames[i + 25].dts if i + 25 < len(frames) else part[-1].dts + 3600
        data += muxer.fragment(part, end_dts=end)
    return bytes(data)


def _record(demo: Demo, channel_id: str, starts: list[datetime]) -> None:  # noqa: F811
    """Segments of the channel, as the recorder leaves them: files and index rows."""
    from xueliang.db.engine import create_engine, session_factory
    from xueliang.db.tables import Recording
    from xueliang.recording.index import segment_path

    assert demo.db is not None
    root = demo.db.parent / "recordings"
    data = _segment()

    async def rows() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{demo.db}")
        try:
            async with session_factory(engine)() as s, s.begin():
                for start in starts:
                    rel = segment_path(channel_id, start)
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    (root / rel).write_bytes(data)
                    s.add(Recording(channel_id=channel_id, start=start, end=start + timedelta(seconds=10),
                                    size=len(data), path=rel, tier="local", state="closed"))
        finally:
            await engine.dispose()

    # Playwright's sync API holds this thread's event loop: the platform's own engine, in another
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, rows()).result()


def test_the_server_serves_the_console_as_built(demo: Demo) -> None:  # noqa: F811
    """What the browser gets is the bundle scripts/setup.sh built, with the merged timeline."""
    with urllib.request.urlopen(demo.base + "/app/wall", timeout=10) as r:
        served = r.read()
    assert served == (CONSOLE / "index.html").read_bytes()
    # the chunk holding the playback page's timeline, as built and as served
    chunks = [p for p in (CONSOLE / "assets").glob("*.js") if b"rec-timeline" in p.read_bytes()]
    assert len(chunks) == 1, chunks
    with urllib.request.urlopen(f"{demo.base}/assets/{chunks[0].name}", timeout=10) as r:
        assert r.read() == chunks[0].read_bytes()
    assert re.search(rb"/assets/main-[\w-]+\.js", served)


def test_the_merged_timeline_plays_seeks_and_steps(page: Any, demo: Demo, media: int) -> None:  # noqa: F811
    require_media(demo, media)
    c = channel_of(demo, **{"class": 1})
    now = datetime.now(UTC).replace(microsecond=0)
    # 30 s recorded in three 10 s segments, then a gap of 60 s, then 10 s more
    base = now - timedelta(minutes=5)  # inside the quarter of an hour around now the timeline shows
    _record(demo, c["id"], [base, base + timedelta(seconds=10), base + timedelta(seconds=20),
                            base + timedelta(seconds=90)])
    t0 = time.monotonic()
    open_class_i_playback(page, demo, c["id"])
    page.locator("[data-testid=rec-platform]").first.wait_for(timeout=20000)
    # the timeline: the platform's segments, the gaps between them, the device's own files
    assert page.locator("[data-testid=rec-platform]").count() == 4
    assert page.locator("[data-testid=rec-gap]").count() >= 2
    if WITH_DEVICES:  # the simulated device's hourly files, in their own colour
        page.locator("[data-testid=rec-device]").first.wait_for(timeout=10000)
        colours = page.evaluate("""() => ['platform', 'device'].map(k => getComputedStyle(
            document.querySelector(`[data-testid=rec-${k}]`)).backgroundImage)""")
        assert colours[0] != colours[1], colours
    shot(page, "30-playback-timeline")
    page.click("[data-testid=playback-panel] .seg button:has-text('15m')")

    # a click on the first segment plays the platform's recording from there
    seg = page.locator("[data-testid=rec-platform]").first
    box = seg.bounding_box()
    assert box is not None and box["width"] > 8, box  # 10 s of a quarter of an hour
    page.mouse.click(box["x"] + 1, box["y"] + box["height"] / 2)
    page.locator("[data-testid=wall-tile] .tag.pb").wait_for()
    wait_playing(page, VIDEO, seconds=20)
    stream = page.evaluate("document.querySelector('[data-testid=wall-tile]').dataset.stream || ''")

    # a click further on: a seek in the same playback (no new stream), and the video goes on
    later = page.locator("[data-testid=rec-platform]").nth(3).bounding_box()
    assert later is not None
    with page.expect_response(lambda r: r.url.endswith("/control") and r.request.method == "POST") as got:
        page.mouse.click(later["x"] + later["width"] / 2, later["y"] + later["height"] / 2)
    assert got.value.status == 200 and got.value.json()["action"] == "seek", got.value.text()
    if stream:
        assert page.evaluate("document.querySelector('[data-testid=wall-tile]').dataset.stream || ''") == stream
    t = page.evaluate(f"document.querySelector('{VIDEO}').currentTime")
    wait_js(page, "([sel, t]) => document.querySelector(sel).currentTime > t + 0.5", [VIDEO, t], 10)

    # frame step: paused, and each step moves the picture a little, never a lot
    page.click("[data-testid=pb-step]")
    page.wait_for_timeout(600)
    t1 = page.evaluate(f"document.querySelector('{VIDEO}').currentTime")
    page.wait_for_timeout(800)
    assert page.evaluate(f"document.querySelector('{VIDEO}').currentTime") == t1  # paused
    page.click("[data-testid=pb-step]")
    page.wait_for_timeout(600)
    t2 = page.evaluate(f"document.querySelector('{VIDEO}').currentTime")
    assert 0 < t2 - t1 <= 0.2, (t1, t2)
    # 16×, then resume: the picture runs far faster than real time (the segment's 10 s)
    page.select_option("[data-testid=pb-speed]", "16")
    wait_js(page, "sel => document.querySelector(sel).playbackRate === 16", VIDEO, 5)
    page.click("[data-testid=pb-pause]")
    r0 = time.monotonic()
    wait_js(page, "([sel, t]) => document.querySelector(sel).currentTime > t + 3", [VIDEO, t2], 10)
    assert time.monotonic() - r0 < 3, "3 s of video took longer than real time"
    assert time.monotonic() - t0 < 60



def test_just_after_midnight_the_timeline_still_shows_the_evening_before(browser: Any, demo: Demo) -> None:  # noqa: F811
    """At 00:03 in Beijing the operator opens playback: the last 24 hours are on the timeline,
    so the recordings of 23:40 and 23:50 are there to click, and the date shown is today's. A
    calendar day would have opened on three empty minutes."""
    from zoneinfo import ZoneInfo

    beijing = ZoneInfo("Asia/Shanghai")
    midnight = datetime.now(beijing).replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight + timedelta(minutes=3) > datetime.now(beijing):  # the browser's clock never ahead of the server's
        midnight -= timedelta(days=1)
    c = channel_of(demo, **{"class": 1})
    evening = [midnight - timedelta(minutes=20), midnight - timedelta(minutes=10)]
    _record(demo, c["id"], evening)
    ctx = browser.new_context(viewport={"width": 1600, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai")
    ctx.set_default_timeout(15000)
    try:
        pg = ctx.new_page()
        pg.clock.install(time=(midnight + timedelta(minutes=3)).timestamp())
        open_class_i_playback(pg, demo, c["id"])
        pg.locator("[data-testid=pb-summary]").wait_for(timeout=20000)
        for start in evening:
            iso = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            seg = pg.locator(f"[data-testid=rec-platform][data-start='{iso}']")
            assert seg.count() == 1, (iso, pg.locator("[data-testid=rec-platform]").evaluate_all(
                "xs => xs.map(x => x.dataset.start)"))
            box = seg.bounding_box()
            assert box is not None and box["width"] > 0, box
        assert pg.input_value("[data-testid=pb-date]") == midnight.strftime("%Y-%m-%d")
        # a calendar day picked: that day from its midnight, and the evening before is not on it
        pg.click("[data-testid=playback-panel] button:has-text('‹')")  # a day back, then today's date
        pg.fill("[data-testid=pb-date]", midnight.strftime("%Y-%m-%d"))
        wait_js(pg, "d => document.querySelector('[data-testid=pb-date]').value === d", midnight.strftime("%Y-%m-%d"))
        pg.locator("[data-testid=pb-summary]").wait_for(timeout=20000)
        pg.wait_for_timeout(500)
        iso = evening[0].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert pg.locator(f"[data-testid=rec-platform][data-start='{iso}']").count() == 0
    finally:
        ctx.close()
