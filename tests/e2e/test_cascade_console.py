"""Upper platforms in the console, end to end: Debian's Chromium driven by Playwright against
`xueliang demo` with signalling on, and a real upper platform (a UDP socket of this test's own
that accepts the REGISTER). An administrator adds the upper with its share through the form,
sees it registered, and changes the share; the API shows what the form sent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import browser as browser_launcher
from tests.e2e.test_console import (  # noqa: F401  (fixtures)
    Demo,
    _ensure_console,
    _free_ports,
    browser,
    login,
    page,
    seed_demo_basemap,
    shot,
)
from xueliang.gb28181.sip import SipRequest, make_response, parse_message

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not browser_launcher.available(), reason=f"needs Debian's Chromium at {browser_launcher.CHROMIUM}"),
]

UPPER_ID = "34000000002000000001"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, upper: tuple[int, list[SipRequest]]) -> Iterator[Demo]:
    """The demo with signalling on. It asks for ``upper`` so that the upper outlives it: the
    demo's unregistering at its stop is answered, not waited out (3 s)."""
    _ensure_console()
    tmp = tmp_path_factory.mktemp("demo-cascade")
    seed_demo_basemap(tmp, tmp_path_factory)
    port, sip_port = _free_ports(2)
    env = dict(os.environ, XUELIANG_DATABASE__URL=f"sqlite+aiosqlite:///{tmp}/demo.db", XUELIANG_API__PORT=str(port),
               XUELIANG_STORAGE__VAR_DIR=str(tmp), XUELIANG_SIP__ENABLED="true", XUELIANG_SIP__PORT=str(sip_port),
               XUELIANG_SIP__HOST="127.0.0.1", XUELIANG_MEDIA__ENABLED="false", XUELIANG_ACCESS__LOGIN_BURST="500")
    exe = Path(sys.executable).parent / "xueliang"
    log = (tmp / "demo.log").open("wb")
    proc = subprocess.Popen([str(exe), "demo", "--fresh", "--no-devices"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"xueliang demo exited: {(tmp / 'demo.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "xueliang demo did not become healthy in 90 s"
            time.sleep(0.3)
        yield Demo(base, tmp / "demo.db")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@pytest.fixture(scope="module")
def upper() -> Iterator[tuple[int, list[SipRequest]]]:
    """An upper platform on UDP: 200 to every REGISTER and MESSAGE (no digest: its own choice)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    seen: list[SipRequest] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(65536)
            except TimeoutError:
                continue
            msg = parse_message(data)
            if isinstance(msg, SipRequest):
                seen.append(msg)
                sock.sendto(make_response(msg, 200, to_tag="up", headers=[("Expires", "3600")]).serialize(), addr)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield sock.getsockname()[1], seen
    stop.set()
    t.join(2)
    sock.close()


def test_an_upper_is_added_with_its_share_registers_and_its_share_is_changed(
        page: Any, demo: Demo, upper: tuple[int, list[SipRequest]]) -> None:  # noqa: F811
    port, seen = upper
    division = demo.api("/channels?limit=1")["items"][0]["division_code"][:4]
    login(page, demo, "admin")
    page.goto(demo.base + "/app/admin/uppers")
    table = page.locator("[data-testid=uppers-table]")
    table.wait_for()
    page.click("[data-testid=uppers-new]")
    page.fill("input[name=name]", "省级平台")
    page.fill("input[name=sip_id]", UPPER_ID)
    page.fill("input[name=host]", "127.0.0.1")
    page.fill("input[name=port]", str(port))
    page.fill("input[name=password]", "Upper-pass-1")
    page.fill("input[name=keepalive_interval]", "5")
    page.fill("input[name=share_divisions]", division)
    page.fill("input[name=share_classes]", "1, 2")
    page.check("input[name=share_control]")
    page.fill("input[name=bg_id]", "34020000002150000001")
    page.fill("input[name=bg_name]", "市公安局")
    page.click("[data-testid=form-submit]")
    row = table.locator("tbody tr", has_text="省级平台")
    row.wait_for()
    (made,) = [u for u in demo.api("/cascade/uppers") if u["name"] == "省级平台"]
    share = made["share"]
    assert share["divisions"] == [division] and share["classes"] == [1, 2] and share["control"] is True
    assert share["business_group"] == {"id": "34020000002150000001", "name": "市公安局"}
    assert made["has_password"] and "Upper-pass-1" not in str(made)

    # the link registers to the upper; the table says so
    deadline = time.monotonic() + 20
    state = page.locator(f"[data-testid=upper-state-{made['id']}]")
    while "已注册" not in state.inner_text():
        assert time.monotonic() < deadline, (state.inner_text(), demo.api(f"/cascade/uppers/{made['id']}/status"))
        page.wait_for_timeout(500)
        page.reload()
        state = page.locator(f"[data-testid=upper-state-{made['id']}]")
        state.wait_for()
    assert any(r.method == "REGISTER" for r in seen)
    shot(page, "cascade-uppers")

    row = table.locator("tbody tr", has_text="省级平台")
    row.locator("[data-testid=row-edit]").click()
    page.fill("input[name=share_classes]", "1")
    page.uncheck("input[name=share_control]")
    page.click("[data-testid=form-submit]")
    deadline = time.monotonic() + 10
    while (s := demo.api(f"/cascade/uppers/{made['id']}")["share"]).get("classes") != [1]:
        assert time.monotonic() < deadline, s
        time.sleep(0.2)
    assert "control" not in s and s["divisions"] == [division]
    assert demo.api(f"/cascade/uppers/{made['id']}")["has_password"]  # an empty password field kept it
    preview = demo.api(f"/cascade/uppers/{made['id']}/catalog?limit=5")
    assert preview["items"][0]["id"] == "34020000002150000001"
