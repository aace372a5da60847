"""Recording plans and evidence exports in the console, in Debian's Chromium against
`xueliang demo` (with simulated devices when XUELIANG_E2E_DEVICES=1): the administrator sets a
channel's recording plan on its page (the platform answers with the channel's own plan), and
creates an export of its recordings (real H.264 segments put into the demo's recordings folder
and index, as the recorder leaves them) on the Exports page, which follows the job until it is
done and lists its files; a file downloads, and the public key is shown."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_console import (  # noqa: F401  (fixtures: demo, browser, page)
    Demo,
    browser,
    demo,
    login,
    page,
    shot,
)
from tests.e2e.test_playback_timeline import _record

pytestmark = [pytest.mark.browser, pytest.mark.slow]

def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


LOCAL = """ms => { const d = new Date(ms); const p = n => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`; }"""


def test_a_plan_is_set_and_an_export_completes_with_its_files(page: Any, demo: Demo, tmp_path: Path) -> None:  # noqa: F811
    t0 = time.monotonic()
    # any camera that is not a key site (exporting one needs an approval: tests/access); it
    # need not be online, its recordings are what is exported
    cid = next(c["id"] for c in demo.api("/channels?limit=200")["items"] if not c["key_site"])
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    base = now - timedelta(minutes=10)
    _record(demo, cid, [base + timedelta(seconds=10 * i) for i in range(3)])  # 30 s of video
    login(page, demo, "admin")

    # the channel's page: its plan and where it comes from; set it to scheduled, then continuous
    page.goto(demo.base + f"/app/channel/{cid}")
    page.locator("[data-testid=recording-plan]").wait_for()
    before = demo.api(f"/channels/{cid}/recording")
    assert before["source"] != "channel"
    page.click("[data-testid=rec-edit]")
    page.select_option("[data-testid=rec-mode-select]", "scheduled")
    page.locator("[data-testid=rec-window]").first.wait_for()
    page.click("[data-testid=rec-save]")
    page.locator("[data-testid=rec-source]").wait_for()
    plan = demo.api(f"/channels/{cid}/recording")
    assert plan["mode"] == "scheduled" and plan["source"] == "channel"
    assert plan["schedule"] == [{"days": [1, 2, 3, 4, 5], "start": "08:00", "end": "18:00"}]
    page.click("[data-testid=rec-edit]")
    page.select_option("[data-testid=rec-mode-select]", "event")
    page.fill("[data-testid=rec-pre]", "5")
    page.fill("[data-testid=rec-post]", "20")
    page.click("[data-testid=rec-save]")
    page.locator("[data-testid=rec-trigger]").wait_for()  # an event plan: the operator's trigger
    plan = demo.api(f"/channels/{cid}/recording")
    assert (plan["mode"], plan["pre_seconds"], plan["post_seconds"]) == ("event", 5, 20)
    assert page.locator("[data-testid=rec-mode]").inner_text() == "事件录像"

    # a download of a range: a plain link (with a media token) the browser saves
    start_ms = int(base.timestamp() * 1000)
    end_ms = int((base + timedelta(minutes=1)).timestamp() * 1000)
    page.fill("[data-testid=rec-dl-start]", page.evaluate(LOCAL, start_ms))
    page.fill("[data-testid=rec-dl-end]", page.evaluate(LOCAL, end_ms))
    with page.expect_download() as dl:
        page.click("[data-testid=rec-download]")
    saved = tmp_path / "range.mp4"
    dl.value.save_as(saved)
    assert saved.stat().st_size > 10000 and b"ftyp" in saved.read_bytes()[:64]

    # the Exports page, from the channel's page (its ID filled in)
    page.click("[data-testid=rec-to-export]")
    page.locator("[data-testid=export-form]").wait_for()
    assert page.input_value("[data-testid=export-channels]") == cid
    page.fill("[data-testid=export-start]", page.evaluate(LOCAL, start_ms))
    page.fill("[data-testid=export-end]", page.evaluate(LOCAL, end_ms))
    page.fill("[data-testid=export-purpose]", "交通事故取证")
    page.fill("[data-testid=export-case]", "JQ20261204-0007")
    page.click("[data-testid=export-submit]")
    card = page.locator("[data-testid^=export-]").filter(has_text="JQ20261204-0007").first
    card.locator("[data-testid=export-files]").wait_for(timeout=30000)
    assert card.locator("[data-testid=export-state]").inner_text() == "已完成"
    files = card.locator("[data-testid=export-files] a").all_inner_texts()
    assert any(f.endswith(".mp4") for f in files) and "manifest.json" in files, files
    with page.expect_download() as dl:
        card.locator("[data-testid=export-files] a", has_text="manifest.json").click()
    manifest = tmp_path / "manifest.json"
    dl.value.save_as(manifest)
    body = json.loads(manifest.read_text())
    assert "JQ20261204-0007" in json.dumps(body, ensure_ascii=False)
    # the link's media token opens this export's files only
    export_id = next(e["id"] for e in demo.api("/exports") if e["case_number"] == "JQ20261204-0007")
    token = demo.api(f"/exports/{export_id}/media-token", method="POST")["token"]
    assert _status(f"{demo.base}/api/v1/exports/{export_id}/files/manifest.json?token={token}") == 200
    assert _status(f"{demo.base}/api/v1/exports/{export_id + 1}/files/manifest.json?token={token}") == 401
    assert _status(f"{demo.base}/api/v1/channels/{cid}/recordings/download?start=x&end=y&token={token}") == 401
    # the key that signs manifests; the hold the export placed
    page.click("[data-testid=export-public-key] summary")
    assert "BEGIN PUBLIC KEY" in page.locator("[data-testid=export-public-key] pre").inner_text()
    page.locator("[data-testid=holds] tr", has_text="JQ20261204-0007").wait_for()
    shot(page, "exports")
    assert time.monotonic() - t0 < 60
