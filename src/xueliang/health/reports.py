"""Reports (日统计、周通报、月分析) as xlsx (openpyxl) and PDF (fpdf2, a CJK font, charts drawn
with matplotlib).

- daily: rates against targets by class and county, the worst points, tickets of the day;
- weekly (the ISO week of the date): divisions, departments and maintenance teams ranked by
  availability and intact rate against the week before, the worst points, overdue tickets;
- monthly (the calendar month of the date): the daily trend, repeat-fault points, service-level
  performance per team, coverage (geo-labelled, networked) and storage compliance.

A range with no data says so, in the file and to whoever asked.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.config import HealthConfig
from xueliang.db.tables import Channel, MaintenanceTeam, Platform, Ticket
from xueliang.health.rates import RateFilter, rates, worst_points
from xueliang.health.rollup import day_window

log = logging.getLogger("xueliang.health")
KINDS = ("daily", "weekly", "monthly")
TITLES = {"daily": "日统计", "weekly": "周通报", "monthly": "月分析"}
CLASS_NAMES = {1: "一类", 2: "二类", 3: "三类", None: "未分类"}
#: CJK fonts looked for, in order (scripts/setup.sh installs fonts-wqy-microhei).
FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
         "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")


def period(kind: str, day: date) -> tuple[date, date]:
    if kind == "daily":
        return day, day
    if kind == "weekly":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6)
    if kind == "monthly":
        start = day.replace(day=1)
        nxt = (start + timedelta(days=32)).replace(day=1)
        return start, nxt - timedelta(days=1)
    raise ValueError(f"kind must be one of {', '.join(KINDS)}")


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class ReportData:
    kind: str
    start: date
    end: date
    summary: list[tuple[str, Any]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    #: Daily trend (date, availability, intact) for the chart.
    trend: list[tuple[date, float | None, float | None]] = field(default_factory=list)
    empty: bool = False

    @property
    def title(self) -> str:
        span = self.start.isoformat() if self.start == self.end else f"{self.start} — {self.end}"
        return f"视频监控全时可用{TITLES[self.kind]} {span}"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}%"


async def build(sessions: async_sessionmaker[AsyncSession], cfg: HealthConfig, kind: str, day: date) -> ReportData:
    start, end = period(kind, day)
    r = ReportData(kind, start, end)
    f = RateFilter(start, end)
    total = await rates(sessions, f, scope=[], teams=None, group="class")
    t = total["total"]
    if not t["point_days"]:
        r.empty = True
        r.summary.append(("说明 (note)", "本期无数据 — no data for this range"))
        return r
    r.summary += [("点位数 points", t["points"]), ("在线率 availability", _pct(t["availability"])),
                  ("完好率 intact", _pct(t["intact"])), ("出图率 picture rate", _pct(t["picture_rate"])),
                  ("未知占比 unknown", _pct(t["unknown_share"]))]
    r.tables.append(Table("按点位类别 by class (目标 target)", ["类别 class", "点位 points", "在线率", "完好率", "目标 target", "达标 met"], [
        [CLASS_NAMES.get(g["key"], str(g["key"])), g["points"], _pct(g["availability"]), _pct(g["intact"]),
         _pct(cfg.targets.get(g["key"] or 3)),
         "是" if g["intact"] is not None and g["intact"] >= cfg.targets.get(g["key"] or 3, 0) else "否"]
        for g in total["groups"]]))
    prev = None
    if kind == "weekly":
        prev_f = RateFilter(start - timedelta(days=7), end - timedelta(days=7))
        prev = {g: {x["key"]: x for x in (await rates(sessions, prev_f, scope=[], teams=None, group=g))["groups"]}
                for g in ("division", "department", "team")}
    teams = await _team_names(sessions)
    for group, label in (("division", "按区县 by county"), ("department", "按部门 by department"), ("team", "按运维单位 by maintenance team")):
        if kind == "daily" and group != "division":
            continue
        got = (await rates(sessions, f, scope=[], teams=None, group=group, division_digits=6))["groups"]
        got.sort(key=lambda g: (g["availability"] is None, -(g["availability"] or 0), -(g["intact"] or 0)))
        cols = ["名次 rank", "名称 name", "点位 points", "在线率", "完好率"]
        if prev is not None:
            cols += ["上周在线率 last week", "变化 change"]
        rows = []
        for i, g in enumerate(got, 1):
            name = teams.get(g["key"], "未指定 none") if group == "team" else (g["key"] or "未指定 none")
            row = [i, name, g["points"], _pct(g["availability"]), _pct(g["intact"])]
            if prev is not None:
                p = prev[group].get(g["key"])
                pa = p["availability"] if p else None
                row += [_pct(pa), "—" if pa is None or g["availability"] is None else f"{g['availability'] - pa:+.2f}"]
            rows.append(row)
        r.tables.append(Table(label, cols, rows))
    worst = await worst_points(sessions, f, 20)
    r.tables.append(Table("最差点位 worst points", ["点位 point", "在线率", "完好率"],
                          [[g["key"], _pct(g["availability"]), _pct(g["intact"])] for g in worst]))
    await _tickets(sessions, r, start, end, cfg, kind)
    if kind in ("weekly", "monthly"):
        by_day = (await rates(sessions, f, scope=[], teams=None, group="day"))["groups"]
        r.trend = [(g["key"], g["availability"], g["intact"]) for g in by_day]
    if kind == "monthly":
        await _coverage(sessions, r)
    return r


async def _team_names(sessions: async_sessionmaker[AsyncSession]) -> dict[Any, str]:
    async with sessions() as s:
        return dict((await s.execute(select(MaintenanceTeam.id, MaintenanceTeam.name))).all())


async def _tickets(sessions: async_sessionmaker[AsyncSession], r: ReportData, start: date, end: date,
                   cfg: HealthConfig, kind: str) -> None:
    a, _ = day_window(start, cfg.utc_offset_hours)
    _, b = day_window(end, cfg.utc_offset_hours)
    now = datetime.now(UTC)
    async with sessions() as s:
        opened = await s.scalar(select(func.count()).where(Ticket.opened_at >= a, Ticket.opened_at < b))
        closed = await s.scalar(select(func.count()).where(Ticket.closed_at >= a, Ticket.closed_at < b))
        overdue = (await s.execute(select(Ticket.id, Ticket.channel_id, Ticket.team_id, Ticket.status, Ticket.repair_due)
                                   .where(Ticket.status.in_(("open", "acknowledged", "repairing")),
                                          Ticket.repair_due < now).order_by(Ticket.repair_due).limit(100))).all()
        teams = dict((await s.execute(select(MaintenanceTeam.id, MaintenanceTeam.name))).all())
        sla = []
        if kind == "monthly":
            in_time_ack = func.sum(case((Ticket.acknowledged_at <= Ticket.ack_due, 1), else_=0))
            in_time_fix = func.sum(case((Ticket.resolved_at <= Ticket.repair_due, 1), else_=0))
            sla = (await s.execute(select(Ticket.team_id, func.count(), in_time_ack, in_time_fix,
                                          func.sum(case((Ticket.repeat.is_(True), 1), else_=0)))
                                   .where(Ticket.opened_at >= a, Ticket.opened_at < b).group_by(Ticket.team_id))).all()
    r.summary += [("新开工单 tickets opened", opened or 0), ("关闭工单 tickets closed", closed or 0),
                  ("超时工单 overdue now", len(overdue))]
    r.tables.append(Table("超时工单 overdue tickets", ["工单 ticket", "点位 point", "运维 team", "状态 status", "修复时限 due"],
                          [[i, c, teams.get(tm, "—") if tm is not None else "—", st, f"{due:%Y-%m-%d %H:%M}"] for i, c, tm, st, due in overdue]))
    if kind == "monthly":
        r.tables.append(Table("服务等级 service levels by team", ["运维 team", "工单 tickets", "按时响应 ack in time",
                                                                  "按时修复 repaired in time", "重复故障 repeat"],
                              [[teams.get(tm, "未指定 none"), n, f"{(ack or 0) / n:.0%}", f"{(fix or 0) / n:.0%}", rep or 0]
                               for tm, n, ack, fix, rep in sla]))


async def _coverage(sessions: async_sessionmaker[AsyncSession], r: ReportData) -> None:
    async with sessions() as s:
        total, labelled, networked = (await s.execute(select(
            func.count(), func.sum(case((Channel.longitude.is_not(None), 1), else_=0)),
            func.sum(case((Channel.networked.is_(True), 1), else_=0))).where(Channel.kind == "camera"))).one()
        platforms, compliant = (await s.execute(select(
            func.count(), func.sum(case((Platform.retention_days >= 30, 1), else_=0))))).one()
    total = total or 0
    r.summary += [("地理标注率 geo-labelled", f"{(labelled or 0) / total:.1%}" if total else "—"),
                  ("联网率 networked", f"{(networked or 0) / total:.1%}" if total else "—"),
                  ("存储达标 (≥30天) storage compliant", f"{compliant or 0}/{platforms or 0}")]


# ---- files -----------------------------------------------------------------------------------


def write_xlsx(r: ReportData, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.chart import LineChart, Reference
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "概要 summary"
    ws.append([r.title])
    ws["A1"].font = Font(bold=True, size=14)
    for k, v in r.summary:
        ws.append([k, _cell(v)])
    for t in r.tables:
        sh = wb.create_sheet(t.title[:31].replace("/", " "))
        sh.append([t.title])
        sh.append(t.columns)
        for row in t.rows:
            sh.append([_cell(x) for x in row])
        if not t.rows:
            sh.append(["无 none"])
    if r.trend:
        sh = wb.create_sheet("趋势 trend")
        sh.append(["日期 day", "在线率 availability", "完好率 intact"])
        for d, a, i in r.trend:
            sh.append([d, a, i])
        chart = LineChart()
        chart.title = "在线率 / 完好率"
        data = Reference(sh, min_col=2, min_row=1, max_col=3, max_row=len(r.trend) + 1)
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(Reference(sh, min_col=1, min_row=2, max_row=len(r.trend) + 1))
        sh.add_chart(chart, "E2")
    wb.save(path)


def _cell(v: Any) -> Any:
    # A text cell that a spreadsheet would run as a formula is written as text.
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") and not v[1:2].isdigit():
        return "'" + v
    return v


def _font() -> str | None:
    return next((f for f in FONTS if Path(f).is_file()), None)


def _chart(r: ReportData) -> bytes | None:
    if not r.trend:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    font = _font()
    props = font_manager.FontProperties(fname=font) if font else None
    fig, ax = plt.subplots(figsize=(7, 2.6), dpi=120)
    days: Any = [d for d, _, _ in r.trend]
    ax.plot(days, [a if a is not None else float("nan") for _, a, _ in r.trend], label="availability 在线率")
    ax.plot(days, [i if i is not None else float("nan") for _, _, i in r.trend], label="intact 完好率")
    ax.set_ylim(0, 100)
    ax.legend(prop=props, loc="lower left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def write_pdf(r: ReportData, path: Path) -> None:
    from fpdf import FPDF

    font = _font()
    if font is None:
        raise RuntimeError("no CJK font found (install fonts-wqy-microhei: scripts/setup.sh does)")
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.add_font("cjk", fname=font)
    pdf.set_auto_page_break(True, margin=12)
    pdf.add_page()
    pdf.set_font("cjk", size=15)
    pdf.multi_cell(0, 9, r.title)
    pdf.set_font("cjk", size=10)
    for k, v in r.summary:
        pdf.cell(70, 6, str(k))
        pdf.cell(0, 6, str(v), new_x="LMARGIN", new_y="NEXT")
    png = _chart(r)
    if png is not None:
        pdf.image(io.BytesIO(png), w=180)
    for t in r.tables:
        pdf.set_font("cjk", size=12)
        pdf.ln(3)
        pdf.multi_cell(0, 7, t.title)
        pdf.set_font("cjk", size=8)
        if not t.rows:
            pdf.cell(0, 5, "无 none", new_x="LMARGIN", new_y="NEXT")
            continue
        from fpdf.fonts import FontFace

        with pdf.table(text_align="LEFT", line_height=5,
                       headings_style=FontFace(emphasis=None, fill_color=(230, 236, 245))) as table:
            table.row([str(c) for c in t.columns])
            for row in t.rows[:60]:
                table.row(["" if x is None else str(x) for x in row])
    pdf.output(str(path))


async def generate(sessions: async_sessionmaker[AsyncSession], cfg: HealthConfig, kind: str, day: date,
                   out: Path) -> ReportData:
    """Build the report and write it to ``out`` (.xlsx or .pdf chooses the format)."""
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("xlsx", "pdf"):
        raise ValueError("the file must end in .xlsx or .pdf")
    data = await build(sessions, cfg, kind, day)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    (write_xlsx if fmt == "xlsx" else write_pdf)(data, tmp)
    tmp.replace(out)
    return data
