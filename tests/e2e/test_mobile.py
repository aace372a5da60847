"""The phone app (/m/) in Debian's Chromium with a phone's viewport and a granted position,
against `xueliang demo`: a resident joins with an invitation code, sees exactly the resident-
visible cameras of the place, plays one, and reports with one tap — the report lands in the
centre's queue; a grid member sees the case dispatched to them, acknowledges it and feeds back
with a photo; the app is installable (manifest, service worker) and starts offline."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.test_console import (  # noqa: F401  (fixtures: demo, browser)
    WITH_DEVICES,
    Demo,
    browser,
    channel_of,
    demo,
    shot,
    wait_js,
    wait_playing,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PW = "Harbour-Lamp-42"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
#: A phone (390 × 844, touch) standing in the place.
LON, LAT = 117.2301, 31.8201


def phone(browser: Any, lon: float = LON, lat: float = LAT) -> Any:  # noqa: F811
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                              locale="zh-CN", geolocation={"longitude": lon, "latitude": lat},
                              permissions=["geolocation"])
    ctx.set_default_timeout(15000)
    return ctx


def _place(demo: Demo) -> tuple[str, set[str], str]:  # noqa: F811
    """A place (a division) with an online camera; mark two of its cameras for residents, and
    a camera of another division too (which the place's residents must not see)."""
    # with simulated devices, one that streams; without them there is no video to play
    c = channel_of(demo) if WITH_DEVICES else demo.api("/channels?limit=1")["items"][0]
    div = c["division_code"]
    same = demo.api(f"/channels?division={div}&limit=50")["items"]
    same = [x for x in same if x["division_code"] == div]
    marked = [c["id"]] + [x["id"] for x in same if x["id"] != c["id"]][:1]
    for cid in marked:
        demo.api(f"/channels/{cid}", method="PATCH", body={"resident_visible": True, "coverage": "A"})
    others = demo.api("/channels?limit=200")["items"]
    other = next(x for x in others if not x["division_code"].startswith(div))
    demo.api(f"/channels/{other['id']}", method="PATCH", body={"resident_visible": True, "coverage": "A"})
    return div, set(marked), c["id"]


def test_a_resident_joins_watches_and_reports(browser: Any, demo: Demo) -> None:  # noqa: F811
    t0 = time.monotonic()
    div, marked, online = _place(demo)
    code = demo.api("/residents/codes", method="POST", body={"division_code": div, "place": "阳光小区", "max_uses": 5})
    ctx = phone(browser)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(demo.base + "/m/")
        page.click("[data-testid=m-mode-join]")
        page.fill("[data-testid=m-code]", code["code"])
        page.fill("[data-testid=m-name]", "王阿姨")
        page.fill("[data-testid=m-password]", PW)
        page.click("[data-testid=m-submit]")
        page.wait_for_selector("[data-testid=m-cameras]")
        seen = set(page.eval_on_selector_all("[data-testid=m-camera]", "els => els.map(e => e.dataset.id)"))
        assert seen == marked, (seen, marked)
        # installable: a manifest and a service worker that controls /m/
        assert page.evaluate("document.querySelector('link[rel=manifest]').href").endswith("/m/manifest.webmanifest")
        wait_js(page, "navigator.serviceWorker.getRegistration('/m/').then(r => !!(r && r.active))")
        # plays one of the place's cameras with the console's player
        page.click(f"[data-testid=m-camera][data-id='{online}']")
        page.wait_for_selector(".m-player video")
        if WITH_DEVICES:  # the video really advances
            wait_playing(page, ".m-player video", seconds=30)
        shot(page, "mobile-resident-camera")
        page.click("[data-testid=m-back]")
        # one tap: the category, with the phone's position
        page.click("[data-testid=m-tab-report]")
        wait_js(page, "document.querySelector('[data-testid=m-position]').textContent.includes('117.23')")
        page.click("[data-testid=m-category][data-category='安全隐患']")
        note = wait_js(page, """() => { const n = document.querySelector('[data-testid=m-note]');
                                    return n && n.textContent.startsWith('已上报') && n.textContent; }""")
        case_id = int(str(note).rsplit(" ", 1)[-1])
        queue = demo.api("/incidents?source=resident")["items"]
        got = next(i for i in queue if i["id"] == case_id)
        assert got["category"] == "安全隐患" and abs(got["longitude"] - LON) < 1e-6 and got["division_code"] == div
        page.click("[data-testid=m-tab-mine]")
        page.wait_for_selector(f"[data-testid=m-mine-item][data-id='{case_id}']")
        shot(page, "mobile-resident-reports")
        assert not errors, errors
    finally:
        ctx.close()
    assert time.monotonic() - t0 < 60


def test_a_grid_member_handles_a_dispatched_case(browser: Any, demo: Demo) -> None:  # noqa: F811
    t0 = time.monotonic()
    demo.api("/users", method="POST", body={"username": "grid-e2e", "password": PW, "role": "grid_member",
                                            "department": "网格一", "display_name": "李网格"})
    case = demo.api("/incidents", method="POST", body={"category": "环境", "description": "河道垃圾堆积",
                                                       "longitude": LON, "latitude": LAT})
    demo.api(f"/incidents/{case['id']}/dispatch", method="POST", body={"departments": [{"department": "网格一"}]})
    ctx = phone(browser)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(demo.base + "/m/")
        page.fill("[data-testid=m-username]", "grid-e2e")
        page.fill("[data-testid=m-password]", PW)
        page.click("[data-testid=m-submit]")
        page.click(f"[data-testid=m-case][data-id='{case['id']}']")
        page.click("[data-testid=m-acknowledge]")
        wait_js(page, "document.querySelector('[data-testid=m-dispatch-status]')?.textContent === '处置中'")
        page.fill("[data-testid=m-feedback-note]", "已清理完毕")
        page.set_input_files("[data-testid=m-feedback-photo]",
                             files=[{"name": "after.png", "mimeType": "image/png", "buffer": PNG}])
        page.click("[data-testid=m-feedback]")
        wait_js(page, "document.querySelector('[data-testid=m-dispatch-status]')?.textContent === '已反馈'")
        shot(page, "mobile-grid-feedback")
        detail = demo.api(f"/incidents/{case['id']}")
        fb = next(s for s in detail["steps"] if s["step"] == "feedback")
        assert fb["note"] == "已清理完毕" and len(fb["attachments"]) == 1 and fb["actor"] == "grid-e2e"
        assert any(a["kind"] == "photo" and a["by"] == "grid-e2e" for a in detail["attachments"])
        # the grid member's own position reached the centre's layer
        wait_js(page, "true")
        deadline = time.monotonic() + 10
        while not any(p["username"] == "grid-e2e" for p in demo.api("/mobile/positions")["items"]):
            assert time.monotonic() < deadline, "no position"
            time.sleep(0.3)
        # the app starts without a network (the shell from the service worker)
        wait_js(page, "navigator.serviceWorker.getRegistration('/m/').then(r => !!(r && r.active))")
        ctx.set_offline(True)
        page.reload()
        page.wait_for_selector("[data-testid=m-tab-cases]")
        ctx.set_offline(False)
        assert not errors, errors
    finally:
        ctx.close()
    assert time.monotonic() - t0 < 60


def _resident_on_phone(browser: Any, demo: Demo, name: str) -> tuple[Any, Any, list[str]]:  # noqa: F811
    div, _, _ = _place(demo)
    code = demo.api("/residents/codes", method="POST", body={"division_code": div, "place": "离线小区", "max_uses": 2})
    ctx = phone(browser)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(demo.base + "/m/")
    page.click("[data-testid=m-mode-join]")
    page.fill("[data-testid=m-code]", code["code"])
    page.fill("[data-testid=m-name]", name)
    page.fill("[data-testid=m-password]", PW)
    page.click("[data-testid=m-submit]")
    page.wait_for_selector("[data-testid=m-tab-report]")
    page.click("[data-testid=m-tab-report]")
    wait_js(page, "document.querySelector('[data-testid=m-position]').textContent.includes('117.23')")
    # the categories come from the platform: a test that goes offline first must have them
    # (one that did not timed out waiting for a category under a loaded fresh-clone CI run)
    page.wait_for_selector("[data-testid=m-category]")
    return ctx, page, errors


def _cases(demo: Demo, text: str) -> list[int]:  # noqa: F811
    return [i["id"] for i in demo.api("/incidents?source=resident&status=&limit=500")["items"] if i["description"] == text]


def _queued(page: Any) -> int:
    """What the phone keeps in its IndexedDB queue."""
    return int(page.evaluate("""() => new Promise((ok, no) => { const r = indexedDB.open('xl-mobile');
        r.onsuccess = () => { const db = r.result; if (!db.objectStoreNames.contains('reports')) return ok(0);
          const c = db.transaction('reports').objectStore('reports').count(); c.onsuccess = () => ok(c.result); };
        r.onerror = () => no(r.error); })"""))


def test_a_report_made_offline_is_sent_once_when_back_online(browser: Any, demo: Demo) -> None:  # noqa: F811
    ctx, page, errors = _resident_on_phone(browser, demo, "赵大爷")
    try:
        text = f"离线上报 {time.time_ns()}"
        ctx.set_offline(True)
        page.fill("[data-testid=m-description]", text)
        page.click("[data-testid=m-category][data-category='安全隐患']")
        wait_js(page, "document.querySelector('[data-testid=m-note]')?.textContent.startsWith('当前离线')")
        assert _queued(page) == 1 and _cases(demo, text) == []
        # back online: the 'online' event sends it; a second one at once (a flapping network)
        # must not send it twice
        ctx.set_offline(False)
        page.evaluate("() => window.dispatchEvent(new Event('online'))")
        wait_js(page, "document.querySelector('[data-testid=m-note]')?.textContent.startsWith('离线上报已发送')")
        wait_js(page, "!document.querySelector('.m-note.subtle')")  # nothing waiting any more
        assert _queued(page) == 0
        # the app started again sends nothing more
        page.reload()
        page.wait_for_selector("[data-testid=m-tab-report]")
        time.sleep(1.0)
        got = _cases(demo, text)
        assert len(got) == 1, got
        case = demo.api(f"/incidents/{got[0]}")
        assert case["category"] == "安全隐患" and abs(case["longitude"] - LON) < 1e-6
        assert [s["step"] for s in case["steps"]] == ["receive"]
        assert not errors, errors
    finally:
        ctx.close()


def test_a_report_whose_answer_was_lost_is_taken_in_once(browser: Any, demo: Demo) -> None:  # noqa: F811
    """The report reaches the platform but its answer never reaches the phone (the network drops
    on the way back): the phone keeps it and sends it again; the platform takes it in once."""
    ctx, page, errors = _resident_on_phone(browser, demo, "钱阿姨")
    try:
        text = f"应答丢失 {time.time_ns()}"
        lost: list[int] = []

        def drop_answer(route: Any) -> None:
            if route.request.method == "POST" and not lost:
                answer = route.fetch()  # the platform takes it in...
                lost.append(answer.status)
                route.abort("connectionreset")  # ...and the phone never hears of it
            else:
                route.continue_()

        page.route("**/api/v1/mobile/reports", drop_answer)
        page.fill("[data-testid=m-description]", text)
        page.click("[data-testid=m-category][data-category='矛盾纠纷']")
        wait_js(page, "document.querySelector('[data-testid=m-note]')?.textContent.startsWith('当前离线')")
        assert lost == [201] and len(_cases(demo, text)) == 1 and _queued(page) == 1
        page.evaluate("() => window.dispatchEvent(new Event('online'))")
        wait_js(page, "!document.querySelector('.m-note.subtle')")
        assert _queued(page) == 0
        got = _cases(demo, text)
        assert len(got) == 1, got
        # the repeat was not counted against the rate: four more go through, then the limit is
        # shown to the resident, and that report is not queued behind their back
        page.unroute("**/api/v1/mobile/reports")
        last = ""
        for _ in range(4):
            page.click("[data-testid=m-category][data-category='其他']")
            last = wait_js(page, """(last) => { const n = document.querySelector('[data-testid=m-note]')?.textContent;
                                         return n && n.startsWith('已上报') && n !== last && n; }""", last)
        page.click("[data-testid=m-category][data-category='其他']")
        err = page.locator("[data-testid=m-error]")
        err.wait_for()
        assert "上报太频繁" in err.inner_text() and "分钟后再试" in err.inner_text()
        assert _queued(page) == 0 and page.locator(".m-note.subtle").count() == 0
        assert not errors, errors
    finally:
        ctx.close()
