"""The console's side of the phone app, end to end in Debian's Chromium against `xueliang demo`:
the duty operator makes a residents' invitation code in 管理 › 居民邀请码 (shown once, with its
join link), a resident joins with it on a phone through /m/, the count of residents who joined
goes up, the operator revokes it and joining with it then fails with a clear message; and the
administrator gives a user the grid member role in the user form (refused without the grid's
department, which the form then takes), and the grid member logs in on the phone."""

from __future__ import annotations

import time
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
from tests.e2e.test_mobile import PW, _place, phone

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not browser_launcher.available(), reason=f"needs Debian's Chromium at {browser_launcher.CHROMIUM}"),
]


def _join(browser: Any, demo: Demo, link: str, name: str) -> tuple[Any, Any]:  # noqa: F811
    """A phone opening the code's link and joining: (its context, its page)."""
    ctx = phone(browser)
    pg = ctx.new_page()
    pg.goto(link)
    assert pg.input_value("[data-testid=m-code]")  # the link fills the code in
    pg.fill("[data-testid=m-name]", name)
    pg.fill("[data-testid=m-password]", PW)
    pg.click("[data-testid=m-submit]")
    return ctx, pg


def test_codes_are_made_counted_and_revoked_in_the_console(page: Any, browser: Any, demo: Demo) -> None:  # noqa: F811
    t0 = time.monotonic()
    div, marked, _ = _place(demo)
    place = f"东湖小区{time.time_ns() % 10000}"
    login(page, demo, "duty")
    page.goto(demo.base + "/app/admin/codes")
    page.click("[data-testid=codes-new]")
    page.fill("input[name=place]", place)
    page.fill("input[name=division_code]", div)
    page.fill("input[name=max_uses]", "3")
    page.fill("input[name=valid_hours]", "24")
    page.click("[data-testid=form-submit]")
    made = page.locator("[data-testid=code-made]")
    made.wait_for()
    code = made.inner_text().strip()
    link = page.locator("[data-testid=code-link]").inner_text().strip()
    assert len(code.replace("-", "")) == 16 and link.endswith("/m/#join=" + code), (code, link)
    page.locator("[data-testid=code-qr]").wait_for()
    shot(page, "admin-codes-made")
    page.locator(".modal-foot button").click()
    row = page.locator("[data-testid=codes-table] tr", has_text=place)
    row.locator("[data-testid=code-uses]", has_text="0 / 3").wait_for()
    assert row.locator("[data-testid=code-state]").inner_text() == "有效"
    # the code is not kept: the listing never shows it again
    assert code not in page.locator("[data-testid=codes-table]").inner_text()

    # a resident joins through the link on a phone, and sees the place's cameras
    ctx, pg = _join(browser, demo, link, "孙阿姨")
    try:
        pg.wait_for_selector("[data-testid=m-cameras]")
        seen = set(pg.eval_on_selector_all("[data-testid=m-camera]", "els => els.map(e => e.dataset.id)"))
        assert seen == marked, (seen, marked)
    finally:
        ctx.close()
    page.reload()
    row.locator("[data-testid=code-uses]", has_text="1 / 3").wait_for()

    # revoked: the row says so, and joining with it is refused with a clear message
    page.once("dialog", lambda d: d.accept())
    row.locator("[data-testid=row-delete]").click()
    row.locator("[data-testid=code-state]", has_text="已作废").wait_for()
    assert row.locator("[data-testid=row-delete]").count() == 0
    shot(page, "admin-codes")
    ctx, pg = _join(browser, demo, link, "周先生")
    try:
        err = pg.locator("[data-testid=m-error]")
        err.wait_for()
        assert "邀请码无效" in err.inner_text() and "作废" in err.inner_text()
        assert pg.locator("[data-testid=m-cameras]").count() == 0
    finally:
        ctx.close()
    listed = {c["place"]: c for c in demo.api("/residents/codes", user="duty")["items"]}
    assert listed[place]["uses"] == 1 and listed[place]["state"] == "revoked"
    assert time.monotonic() - t0 < 60


def test_the_user_form_makes_a_grid_member(page: Any, browser: Any, demo: Demo) -> None:  # noqa: F811
    name = f"grid-form-{time.time_ns() % 100000}"
    login(page, demo, "admin")
    page.goto(demo.base + "/app/admin/users")
    page.click("[data-testid=users-new]")
    roles = page.eval_on_selector_all("select[name=role] option", "els => els.map(e => e.value).filter(Boolean)")
    platform_roles = set(demo.api("/roles")) - {"system"}
    assert set(roles) == platform_roles and "grid_member" in roles, roles
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PW)
    page.select_option("select[name=role]", "grid_member")
    assert page.locator("select[name=role] option:checked").inner_text() == "网格员"
    # without the grid's department the platform refuses, and the form says why
    page.click("[data-testid=form-submit]")
    page.locator(".modal", has_text="department").wait_for()
    page.fill("input[name=department]", "网格三")
    page.fill("input[name=division_code]", "340102001001")
    page.click("[data-testid=form-submit]")
    page.locator("[data-testid=users-table] tr", has_text=name).locator("td", has_text="网格员").wait_for()
    u = next(x for x in demo.api("/users") if x["username"] == name)
    assert (u["role"], u["department"], u["division_code"]) == ("grid_member", "网格三", "340102001001")
    # the grid member's phone: their tasks, not a resident's cameras
    ctx = phone(browser)
    pg = ctx.new_page()
    try:
        pg.goto(demo.base + "/m/")
        pg.fill("[data-testid=m-username]", name)
        pg.fill("[data-testid=m-password]", PW)
        pg.click("[data-testid=m-submit]")
        pg.wait_for_selector("[data-testid=m-tab-cases]")
        assert pg.locator("[data-testid=m-tab-cameras]").count() == 0
    finally:
        ctx.close()
