"""The incident queue in the console, end to end: Debian's Chromium driven by Playwright
against `xueliang demo` (the fixtures of tests/e2e/test_console.py). The duty operator takes a
case in through the form, finds it in the queue with its division and the cameras near it,
dispatches it to 教育局 in the dispatch dialog with a deadline of a day; 教育局's user sees it in
its inbox (and takes nothing in), acknowledges and feeds back in the console; the operator
closes it there. A case dispatched in the dialog to two departments, each with its own
deadline. The API shows what the console did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests import browser as browser_launcher
from tests.e2e.test_console import (  # noqa: F401  (fixtures)
    Demo,
    browser,
    demo,
    login,
    page,
    shot,
    wait_js,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not browser_launcher.available(), reason=f"needs Debian's Chromium at {browser_launcher.CHROMIUM}"),
]


def test_a_case_is_taken_in_dispatched_and_closed_in_the_console(page: Any, demo: Demo) -> None:  # noqa: F811
    cam = next(c for c in demo.api("/channels?limit=200")["items"] if c.get("longitude") is not None)
    login(page, demo, "duty")
    page.goto(demo.base + "/app/incidents")
    form = page.locator("[data-testid=inc-intake]")
    form.wait_for()
    page.select_option("[data-testid=inc-category]", "安全隐患")
    page.fill("[data-testid=inc-description]", "路灯杆倾斜，恐倒塌")
    page.fill("[data-testid=inc-lon]", str(cam["longitude"] + 0.0001))
    page.fill("[data-testid=inc-lat]", str(cam["latitude"]))
    page.click("[data-testid=inc-submit]")
    page.locator(".toast", has_text="已受理").wait_for()
    case = next(i for i in demo.api("/incidents", user="duty")["items"] if i["description"] == "路灯杆倾斜，恐倒塌")
    # the division from the place: the demo's loaded outlines (counties and townships) hold the
    # point, so the case is in the camera's township, found by its boundary
    assert case["division_basis"] == "boundary" and case["category"] == "安全隐患"
    assert len(case["division_code"]) == 9 and cam["division_code"].startswith(case["division_code"])
    row = page.locator(f"[data-testid=inc-row-{case['id']}]")
    row.wait_for()
    row.click()
    detail = page.locator("[data-testid=inc-detail]")
    detail.wait_for()
    detail.locator("[data-testid=inc-cameras] li").first.wait_for()  # the camera next to it
    assert cam["name"] in detail.locator("[data-testid=inc-cameras]").inner_text()
    page.click("[data-testid=inc-dispatch]")
    # the dialog offers the departments the platform knows (the demo's 教育局 user's among them)
    # (the list arrives a moment after the dialog opens)
    page.locator('#dispatch-departments option[value="教育局"]').wait_for(state="attached")
    page.fill("[data-testid=dispatch-dept-0]", "教育局")
    page.locator("[data-testid=dispatch-rows] button", has_text="1 天").click()
    page.fill("[data-testid=dispatch-note]", "请排查")
    page.click("[data-testid=dispatch-submit]")
    detail.locator("[data-testid=inc-dispatches] li", has_text="教育局").wait_for()
    d = demo.api(f"/incidents/{case['id']}", user="duty")["dispatches"][0]
    due = datetime.fromisoformat(d["deadline"]) - datetime.now(UTC)
    assert d["department"] == "教育局" and timedelta(hours=23) < due < timedelta(hours=24, minutes=1), d
    row.locator("[data-testid=inc-status]", has_text="已分流").wait_for()
    shot(page, "incidents-queue")
    # 教育局 sees it in its inbox, and only it; acknowledges and feeds back in the console
    inbox = demo.api("/incidents", user="education")["items"]
    assert [i["id"] for i in inbox] == [case["id"]]
    page.evaluate("() => localStorage.clear()")
    login(page, demo, "education")
    page.goto(demo.base + "/app/incidents")
    assert page.locator("[data-testid=inc-intake]").count() == 0  # a department takes nothing in
    inbox_row = page.locator(f"[data-testid=inbox-row-{case['id']}]")
    inbox_row.locator("[data-testid=inbox-status]", has_text="待签收").wait_for()
    inbox_row.click()
    page.click("[data-testid=inc-ack]")
    detail.locator("[data-testid=inc-dispatches] li", has_text="处置中").wait_for()
    page.fill("[data-testid=inc-feedback-note]", "已加固")
    page.click("[data-testid=inc-feedback]")
    detail.locator("[data-testid=inc-dispatches] li", has_text="已加固").wait_for()
    inbox_row.locator("[data-testid=inbox-status]", has_text="已反馈").wait_for()  # awaiting review
    shot(page, "incidents-department")
    page.evaluate("() => localStorage.clear()")
    login(page, demo, "duty")
    page.goto(demo.base + "/app/incidents")
    page.locator(f"[data-testid=inc-row-{case['id']}]").click()
    detail.locator("[data-testid=inc-dispatches] li", has_text="已加固").wait_for()
    page.fill("[data-testid=inc-note]", "核实已处置")
    page.click("[data-testid=inc-close]")
    detail.locator(".card-title", has_text="已结案").wait_for()
    done = demo.api(f"/incidents/{case['id']}", user="duty")
    assert done["status"] == "closed"
    assert [s["step"] for s in done["steps"]] == ["receive", "dispatch", "acknowledge", "feedback", "close"]


def test_a_case_is_dispatched_to_two_departments_each_with_its_deadline(page: Any, demo: Demo) -> None:  # noqa: F811
    case = demo.api("/incidents", user="duty", method="POST",
                    body={"category": "交通", "description": "校门口违停拥堵", "longitude": 117.23, "latitude": 31.82})
    login(page, demo, "duty")
    page.goto(demo.base + "/app/incidents")
    page.locator(f"[data-testid=inc-row-{case['id']}]").click()
    page.click("[data-testid=inc-dispatch]")
    page.fill("[data-testid=dispatch-dept-0]", "教育局")
    page.locator("[data-testid=dispatch-rows] tr", has=page.locator("[data-testid=dispatch-dept-0]")) \
        .locator("button", has_text="2 小时").click()
    page.click("[data-testid=dispatch-add]")
    page.fill("[data-testid=dispatch-dept-1]", "教育局")
    assert page.locator("[data-testid=dispatch-submit]").is_disabled()  # a department named twice
    page.fill("[data-testid=dispatch-dept-1]", "交警大队")  # no deadline: the default for its priority
    page.fill("[data-testid=dispatch-note]", "联合处置")
    page.click("[data-testid=dispatch-submit]")
    page.locator("[data-testid=inc-dispatches] li", has_text="交警大队").wait_for()
    got = {d["department"]: d for d in demo.api(f"/incidents/{case['id']}", user="duty")["dispatches"]}
    now = datetime.now(UTC)
    assert set(got) == {"教育局", "交警大队"}
    assert timedelta(hours=1, minutes=58) < datetime.fromisoformat(got["教育局"]["deadline"]) - now < timedelta(hours=2)
    assert timedelta(hours=71) < datetime.fromisoformat(got["交警大队"]["deadline"]) - now < timedelta(hours=72)
    steps = demo.api(f"/incidents/{case['id']}", user="duty")["steps"]
    assert [(s["step"], s["department"], s["note"]) for s in steps[1:]] == [
        ("dispatch", "教育局", "联合处置"), ("dispatch", "交警大队", "联合处置")]


def test_the_queue_shows_its_cases_on_the_map_and_a_marker_selects_its_case(page: Any, demo: Demo) -> None:  # noqa: F811
    # a case of its own, away from the others (the demo's cameras are around 117.25, 31.85)
    case = demo.api("/incidents", user="duty", method="POST",
                    body={"category": "交通", "description": "信号灯不亮", "longitude": 117.40, "latitude": 31.70})
    login(page, demo, "duty")
    page.goto(demo.base + "/app/incidents")
    page.locator(f"[data-testid=inc-row-{case['id']}]").wait_for()
    listed = [i for i in demo.api("/incidents?limit=100", user="duty")["items"]
              if i["status"] not in ("closed", "merged") and i["longitude"] is not None]
    assert case["id"] in {i["id"] for i in listed}
    # every open case of the queue with a place is a marker, on the platform's basemap
    wait_js(page, f"window.__xueliangQueueMap && window.__xueliangQueueMap.cases === {len(listed)}", timeout=20)
    wait_js(page, "window.__xueliangQueueMap.tilesLoaded > 0", timeout=20)
    assert not page.locator(f"[data-testid=inc-row-{case['id']}]").get_attribute("class")
    # a click on its marker selects it in the queue and opens it (the canvas draws the moved
    # view in a later frame: on a loaded machine the first click may come before it, so a few)
    row = f"document.querySelector('[data-testid=inc-row-{case['id']}]').classList.contains('selected')"
    for _ in range(10):
        page.locator("[data-testid=inc-map]").scroll_into_view_if_needed()
        box = page.locator("[data-testid=inc-map]").bounding_box()
        xy = page.evaluate("() => new Promise((done) => { const m = window.__xueliangQueueGL;"
                           " m.jumpTo({center: [117.40, 31.70], zoom: 14});"
                           " m.once('idle', () => { const p = m.project([117.40, 31.70]);"
                           " done([p.x, p.y, m.queryRenderedFeatures([p.x, p.y], {layers: ['incidents']})"
                           ".map((f) => f.properties.id)]); }); })")
        # the map drew the case's marker there (WebGL: asked of the map, not the DOM)
        assert case["id"] in xy[2], xy
        page.mouse.click(box["x"] + xy[0], box["y"] + xy[1])
        page.wait_for_timeout(300)
        if page.evaluate(f"() => {row}"):
            break
    wait_js(page, row)
    page.locator("[data-testid=inc-detail]").wait_for()
    assert "信号灯不亮" in page.locator("[data-testid=inc-detail]").inner_text()
    shot(page, "incident-queue-map")
