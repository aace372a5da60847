"""Reports: xlsx read back, PDF with the CJK font and a chart, a range without data says so,
the command line."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import insert

from xueliang.config import HealthConfig
from xueliang.db.tables import StateInterval
from xueliang.health.reports import build, generate, period
from xueliang.health.rollup import day_window, rollup_day

DAY = date(2026, 11, 4)  # a Wednesday


def test_periods() -> None:
    assert period("daily", DAY) == (DAY, DAY)
    assert period("weekly", DAY) == (date(2026, 11, 2), date(2026, 11, 8))
    assert period("monthly", DAY) == (date(2026, 11, 1), date(2026, 11, 30))
    assert period("monthly", date(2026, 12, 31)) == (date(2026, 12, 1), date(2026, 12, 31))


async def history(sessions: Any, city: dict[str, Any]) -> None:
    ch = city["channels"]
    rows = []
    for i in range(3):
        d = DAY - timedelta(days=i)
        a, b = day_window(d, 8.0)
        rows += [{"subject": ch[0], "subject_kind": "channel", "state": "online", "start": a, "end": b},
                 {"subject": ch[2], "subject_kind": "channel", "state": "offline", "start": a, "end": b}]
    async with sessions() as s, s.begin():
        await s.execute(insert(StateInterval), rows)
    for i in range(3):
        await rollup_day(sessions, DAY - timedelta(days=i), 8.0)


async def test_xlsx_and_pdf(sessions, city, tmp_path: Path) -> None:
    await history(sessions, city)
    cfg = HealthConfig()
    data = await build(sessions, cfg, "weekly", DAY)
    assert not data.empty and len(data.trend) == 3
    x = tmp_path / "w.xlsx"
    await generate(sessions, cfg, "weekly", DAY, x)
    wb = load_workbook(x)
    summary = {r[0]: r[1] for r in wb["概要 summary"].iter_rows(min_row=2, values_only=True)}
    # 4 points over 3 days: one online, one offline, two unknown: 25 % online.
    assert summary["点位数 points"] == 4 and summary["在线率 availability"] == "25.00%"
    assert "趋势 trend" in wb.sheetnames
    dept = [r for r in wb["按部门 by department"].iter_rows(min_row=3, values_only=True)]
    assert [r[1] for r in dept] == ["甲局", "乙局"]  # ranked by availability
    p = tmp_path / "m.pdf"
    await generate(sessions, cfg, "monthly", DAY, p)
    raw = p.read_bytes()
    assert raw.startswith(b"%PDF") and b"/Subtype /Image" in raw  # the chart
    assert b"WenQuanYi" in raw or b"NotoSansCJK" in raw  # the CJK font, embedded


async def test_a_range_without_data_says_so(sessions, city, tmp_path: Path) -> None:
    out = tmp_path / "d.xlsx"
    data = await generate(sessions, HealthConfig(), "daily", date(2020, 1, 1), out)
    assert data.empty
    wb = load_workbook(out)
    assert any("no data" in str(r[1]) for r in wb.active.iter_rows(min_row=2, values_only=True))  # type: ignore[union-attr]


def test_the_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from xueliang.cli import app

    env = {"XUELIANG_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/x.db", "XUELIANG_STORAGE__VAR_DIR": str(tmp_path)}
    r = CliRunner().invoke(app, ["report", "daily", "--date", "2026-11-04", "--out", str(tmp_path / "r.pdf")], env=env)
    assert r.exit_code == 0, r.output
    assert "no data" in r.output and (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    bad = CliRunner().invoke(app, ["report", "yearly", "--date", "2026-11-04", "--out", "x.pdf"], env=env)
    assert bad.exit_code == 2
    bad = CliRunner().invoke(app, ["report", "daily", "--date", "04/11/2026", "--out", "x.pdf"], env=env)
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
