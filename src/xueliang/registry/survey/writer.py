"""Writing the survey: Form 1 from the registry, and Form 2 computed from it.

Exports write the forms' own layout and words, so that export → import reports everything
unchanged.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Platform, SurveySummary, Unit
from xueliang.registry import spreadsheet, vocab
from xueliang.registry.survey.cells import (
    CAMERA_KIND,
    NETWORK,
    PROVIDE,
    STORAGE,
    SUPPORT,
    UNIT_CATEGORY,
    _bool_text,
    count_text,
    network_text,
    platform_type_text,
)
from xueliang.registry.survey.queries import _in_chunks, _segment_key
from xueliang.registry.survey.reader import (
    DEPARTMENT,
    FORM1_HEADERS,
    FORM1_TITLE,
    FORM2_HEADERS,
    FORM2_TITLE,
)


def form1_row(u: Unit, p: Platform | None) -> list[object]:
    """One Form 1 row in the form's own words."""
    head: list[object] = [
        u.name,
        u.head_contact or "",
        UNIT_CATEGORY.vocab.label(u.category),
        u.address or "",
    ]
    if p is None:
        return head + [""] * (len(FORM1_HEADERS) - 4)
    return head + [
        p.built_on or "",
        platform_type_text(p.kind, p.signal),
        p.installer or "",
        p.installer_contact or "",
        p.platform_maker or "",
        _bool_text(SUPPORT, p.platform_standard),
        p.platform_model or "",
        _bool_text(PROVIDE, p.sdk_available),
        p.camera_maker or "",
        count_text(p.camera_models, p.camera_count),
        CAMERA_KIND.vocab.label(p.camera_type),
        _bool_text(SUPPORT, p.camera_standard),
        p.recorder_maker or "",
        count_text(p.recorder_models, p.recorder_count),
        _bool_text(SUPPORT, p.recorder_standard),
        network_text(p.network, p.uplink_mbps, NETWORK),
        STORAGE.vocab.label(p.storage_mode),
        "" if p.retention_days is None else f"{p.retention_days}天",
        p.faults or "",
        vocab.COVERAGE_LONG.get(p.coverage or "", p.coverage or ""),
    ]


async def _units_and_platforms(
    s: AsyncSession, department: str | None
) -> tuple[list[Unit], dict[int, list[Platform]]]:
    stmt = select(Unit).order_by(Unit.id)
    if department is not None:
        stmt = stmt.where(Unit.department == department)
    units = list((await s.scalars(stmt)).all())
    plats: dict[int, list[Platform]] = {}
    for (p,) in await _in_chunks(
        s, lambda ks: select(Platform).where(Platform.unit_id.in_(ks)), [u.id for u in units]
    ):
        plats.setdefault(p.unit_id, []).append(p)
    for ps in plats.values():
        ps.sort(key=lambda p: (_segment_key(p.segment), p.id))
    return units, plats


async def export_survey(
    sessions: async_sessionmaker[AsyncSession], path: Path, department: str | None = None
) -> int:
    """Write Form 1 (xlsx, or csv by the extension); returns the number of data rows.

    With a department: that department's units under the title line ``主管部门：X``. Without
    one: every unit; when they all share one department it is the title line, otherwise each row
    carries it in an extra last column ``主管部门`` (which the import reads back). A unit without
    systems is written as one row with the system columns empty.
    """
    async with sessions() as s:
        units, plats = await _units_and_platforms(s, department)
    rows: list[list[object]] = []
    depts = {u.department for u in units}
    per_row = department is None and len(depts) > 1
    for u in units:
        systems: list[Platform | None] = [*plats.get(u.id, [])] or [None]
        for p in systems:
            r = form1_row(u, p)
            if per_row:
                r.append(u.department or "")
            rows.append(r)
    title = (
        department if department is not None else (next(iter(depts)) if len(depts) == 1 else None)
    )
    titles = [FORM1_TITLE] + ([f"{DEPARTMENT}：{title}"] if title else [])
    header = FORM1_HEADERS + ([DEPARTMENT] if per_row else [])
    spreadsheet.write_table(Path(path), titles, header, rows, sheet_title=FORM1_TITLE)
    return len(rows)


@dataclass(slots=True)
class _Summary:
    department: str
    rows: list[list[object]]
    total: list[object]
    filled_by: str
    phone: str

    def footer(self) -> list[str]:
        return [f"填表人：{self.filled_by}", f"联系电话：{self.phone}"]


async def _summaries(s: AsyncSession, department: str | None) -> list[_Summary]:
    units, plats = await _units_and_platforms(s, department)
    stmt = select(SurveySummary.department, SurveySummary.filled_by, SurveySummary.phone)
    footers: dict[str, tuple[str, str]] = {}
    for d, f, ph in (await s.execute(stmt)).all():
        if f or ph:
            footers.setdefault(d, (f or "", ph or ""))
    by_dept: dict[str, list[tuple[str, int, int, int, int]]] = {}
    for u in units:
        if u.department is None:
            continue
        ps = plats.get(u.id, [])
        cameras = sum(p.camera_count for p in ps)
        platforms = sum(1 for p in ps if p.kind == "platform")
        recorders = sum(p.recorder_count for p in ps)
        public = sum(
            p.public_camera_count
            if p.public_camera_count is not None
            else (p.camera_count if p.coverage in ("A", "C") else 0)
            for p in ps
        )
        by_dept.setdefault(u.department, []).append((u.name, cameras, platforms, recorders, public))
    if department is not None:
        by_dept.setdefault(department, [])
    out = []
    for d in sorted(by_dept):
        rows = by_dept[d]
        total: list[object] = [
            "合计",
            sum(r[1] for r in rows),
            sum(r[2] for r in rows),
            sum(r[3] for r in rows),
            sum(r[4] for r in rows),
        ]
        f, ph = footers.get(d, ("", ""))
        out.append(_Summary(d, [list(r) for r in rows], total, f, ph))
    return out


async def export_summary(
    sessions: async_sessionmaker[AsyncSession], path: Path, department: str | None = None
) -> int:
    """Write Form 2 computed from the registry; returns the number of unit rows.

    Per unit: cameras = Σ camera_count, platforms = systems of kind platform (有平台),
    recorders = Σ recorder_count, public-area cameras = Σ public_camera_count where set, else
    camera_count of systems covering A or C. A 合计 row and the footer lines 填表人/联系电话
    (taken from the department's last imported summary, else blank) follow.

    Without a department: an xlsx has one sheet per department (named after it); a csv has
    every department's rows with a first column 主管部门 and one 合计 row per department.
    Units with no department are left out.
    """
    path = Path(path)
    async with sessions() as s:
        sums = await _summaries(s, department)
    if department is not None:
        one = sums[0]
        spreadsheet.write_table(
            path,
            [FORM2_TITLE, f"{DEPARTMENT}：{one.department}"],
            FORM2_HEADERS,
            [*one.rows, one.total],
            one.footer(),
            sheet_title=FORM2_TITLE,
        )
        return len(one.rows)
    if path.suffix.lower() == ".csv":
        rows: list[list[object]] = []
        for sm in sums:
            rows += [[sm.department, *r] for r in sm.rows] + [[sm.department, *sm.total]]
        footer = sums[0].footer() if len(sums) == 1 else []
        spreadsheet.write_csv(path, [FORM2_TITLE], [DEPARTMENT, *FORM2_HEADERS], rows, footer)
        return sum(len(sm.rows) for sm in sums)
    _write_summary_workbook(path, sums)
    return sum(len(sm.rows) for sm in sums)


def _sheet_name(name: str, used: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "_", name)[:31] or "Sheet"
    out, n = base, 1
    while out in used:
        n += 1
        out = f"{base[: 31 - len(str(n)) - 1]}~{n}"
    used.add(out)
    return out


def _write_summary_workbook(path: Path | io.BytesIO, sums: Iterable[_Summary]) -> None:
    import openpyxl
    from openpyxl.styles import Font

    wb = openpyxl.Workbook()
    first = wb.active
    assert first is not None
    wb.remove(first)
    used: set[str] = set()
    for sm in sums:
        ws = wb.create_sheet(_sheet_name(sm.department, used))
        ws.append(spreadsheet.safe_row([FORM2_TITLE], xlsx=True))
        ws.append(spreadsheet.safe_row([f"{DEPARTMENT}：{sm.department}"], xlsx=True))
        ws.append(spreadsheet.safe_row(FORM2_HEADERS, xlsx=True))
        for c in ws[ws.max_row]:
            c.font = Font(bold=True)
        for r in [*sm.rows, sm.total]:
            ws.append(spreadsheet.safe_row(r, xlsx=True))
        for line in sm.footer():
            ws.append(spreadsheet.safe_row([line], xlsx=True))
        ws.column_dimensions["A"].width = 30
    if not wb.worksheets:
        ws = wb.create_sheet(FORM2_TITLE)
        ws.append([FORM2_TITLE])
        ws.append(FORM2_HEADERS)
    wb.save(path)
