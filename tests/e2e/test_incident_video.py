"""视频就近 on a case's page, end to end: Debian's Chromium driven by Playwright against
`xueliang demo` with simulated devices (the fixtures of tests/e2e/test_console.py). The duty
operator opens a case, sees the cameras near it nearest first with their tiers, plays one live
(the picture moves), attaches a snapshot with one click, and finds it among the case's
attachments, where it opens as a decodable image (the API shows the same); then plays the
camera's recording from around the case's time. The dashboard shows the incident figures."""

from __future__ import annotations

from typing import Any

import pytest

from tests import browser as browser_launcher
from tests.e2e.test_console import (  # noqa: F401  (fixtures)
    Demo,
    browser,
    demo,
    login,
    media,
    page,
    require_media,
    shot,
    wait_js,
    wait_playing,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not browser_launcher.available(), reason=f"needs Debian's Chromium at {browser_launcher.CHROMIUM}"),
]


def test_a_cases_nearby_camera_plays_live_and_a_snapshot_is_attached(page: Any, demo: Demo, media: int) -> None:  # noqa: F811
    require_media(demo, media)
    # an online class II camera (no purpose asked for its live view) with a place on the map
    cam = next(c for c in demo.api("/channels?status=ON&class=2&limit=200")["items"] if c.get("longitude") is not None)
    case = demo.api("/incidents", user="duty", method="POST", body={
        "category": "治安", "description": "商铺门前有人打架", "longitude": cam["longitude"] + 0.00005,
        "latitude": cam["latitude"]})
    near = demo.api(f"/incidents/{case['id']}/cameras?radius=1000&limit=20", user="duty")["items"]
    assert cam["id"] in [c["id"] for c in near]
    assert [c["distance"] for c in near] == sorted(c["distance"] for c in near)
    login(page, demo, "duty")
    page.goto(demo.base + "/app/incidents")
    page.locator(f"[data-testid=inc-row-{case['id']}]").click()
    detail = page.locator("[data-testid=inc-detail]")
    detail.locator("[data-testid=inc-cameras] li").first.wait_for()
    # nearest first, each with its tier, as the API says
    shown = detail.locator("[data-testid=inc-cameras] li").evaluate_all("els => els.map(e => e.dataset.testid)")
    assert shown == [f"inc-camera-{c['id']}" for c in near]
    tiers = detail.locator("[data-testid=inc-tiers]").inner_text()
    for k, label in (("high", "高点"), ("building", "楼顶"), ("street", "街面")):
        assert f"{label} {sum(1 for c in near if c['tier'] == k)}" in tiers
    # 立体联动: the nearest camera of each tier, side by side
    detail.locator("[data-testid=inc-linked]").click()
    linked = detail.locator("[data-testid=inc-linked-view] .linked-title")
    linked.first.wait_for()
    want = [next(c for c in near if c["tier"] == k) for k in ("high", "building", "street")
            if any(c["tier"] == k for c in near)]
    assert [t.split(" · ")[1] for t in linked.all_inner_texts()] == [c["name"] for c in want]
    detail.locator("[data-testid=inc-linked]").click()
    row = detail.locator(f"[data-testid=inc-camera-{cam['id']}]")
    assert cam["name"] in row.inner_text()
    row.locator("button.link").click()
    view = detail.locator("[data-testid=inc-camera-view]")
    view.wait_for()
    wait_playing(page, "[data-testid=inc-camera-view] video", seconds=30)
    shot(page, "incident-video-live")
    view.locator("[data-testid=inc-attach-snapshot]").click()
    page.locator(".toast", has_text="截图已附加到事件").wait_for(timeout=30000)
    item = detail.locator("[data-testid=inc-attachments] li[data-kind=snapshot]")
    item.wait_for()
    assert cam["id"] in item.inner_text()
    item.locator("button.link").click()
    img = page.locator("[data-testid=inc-attachment-image]")
    img.wait_for()
    wait_js(page, "() => { const i = document.querySelector('[data-testid=inc-attachment-image]');"
                  " return i && i.complete && i.naturalWidth > 0; }")
    shot(page, "incident-video-snapshot")
    atts = demo.api(f"/incidents/{case['id']}", user="duty")["attachments"]
    assert [(a["kind"], a["channel_id"], a["content_type"]) for a in atts] == [("snapshot", cam["id"], "image/jpeg")]
    page.keyboard.press("Escape")
    # the recording around the case's time, from the platform when it has one, else the device
    view.locator("[data-testid=inc-playback]").click()
    source = view.locator("[data-testid=inc-pb-source]")
    source.wait_for(timeout=20000)
    assert source.inner_text() in ("平台录像", "设备录像")
    view.locator("[data-testid=playback-panel]").wait_for()
    wait_playing(page, "[data-testid=inc-camera-view] video", seconds=30)
    shot(page, "incident-video-playback")
    # the dashboard's incident figures: today's intake counts this case
    today = demo.api("/incidents/statistics?since=" + case["created_at"].replace("+", "%2B"), user="duty")
    page.goto(demo.base + "/app/dashboard")
    kpi = page.locator("[data-testid=kpi-inc-intake] .kpi-value")
    kpi.wait_for()
    assert int(kpi.inner_text().replace(",", "")) >= today["intake"] >= 1
    page.locator("[data-testid=kpi-inc-flagged]").wait_for()
    page.locator("[data-testid=chart-inc-category] canvas").wait_for()
    page.locator("[data-testid=dash-incidents]").scroll_into_view_if_needed()
    shot(page, "incident-dashboard")
