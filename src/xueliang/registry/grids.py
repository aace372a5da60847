"""Grids (网格): the city's own cells of grassroots governance, below its divisions.

No national list has them: administrators enter one (``PUT /divisions/{code}`` with a grid
code) or import the city's grid list (xlsx or csv, UTF-8 or GBK) with the columns

    网格编码 (grid code), 网格名称 (name), 所属区划代码 (parent division), 边界 (optional GeoJSON)

Choices where nothing says otherwise:

* A grid code has 13 to 20 digits and begins with its parent's code, so that the division
  subtree ranges of scopes, listings and statistics take a grid's cameras in with its parent's.
  The parent is a registered county, township or village (6, 9 or 12 digits).
* 边界 is a GeoJSON Polygon or MultiPolygon (or a Feature holding one), WGS-84, every point in
  China, rings closed; stored as the geometry alone. An empty cell leaves a stored boundary.
* The import is all-or-nothing with a report naming each bad row; grids of the registry that
  the file does not list are kept.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Division
from xueliang.registry import spreadsheet, vocab
from xueliang.registry.geojson import parse_boundary
from xueliang.registry.report import ImportReport
from xueliang.registry.survey import clean_text, map_columns

__all__ = ["GRID_HEADERS", "import_grids"]

GRID_HEADERS = ["网格编码", "网格名称", "所属区划代码", "边界"]
PARENT_LEVELS = (6, 9, 12)


class _DryRun(Exception):
    pass


async def import_grids(
    sessions: async_sessionmaker[AsyncSession], data: bytes, filename: str = "", *, dry_run: bool = False
) -> ImportReport:
    """Import a grid list. Never raises for bad input: the report says what is wrong."""
    report = ImportReport(file=filename, form="grids")
    try:
        raw = spreadsheet.read_raw_rows(data, filename)
        sheet = spreadsheet.find_sheet(raw, "网格编码", GRID_HEADERS)
    except spreadsheet.SheetError as exc:
        report.add(str(exc))
        return report
    cols = map_columns(sheet.header, GRID_HEADERS, report)
    required = [h for h in GRID_HEADERS[:3] if h in cols.missing]
    if required:
        report.add("the grid list has no column " + "、".join(required))
        return report
    report.rows = len(sheet.rows)
    if not sheet.rows:
        report.add("the grid list has a header row but no data rows")
        return report
    idx = cols.index
    grids: dict[str, dict[str, Any]] = {}
    first: dict[str, int] = {}
    for rowno, cells in sheet.rows:
        def cell(h: str, cells: list[str] = cells) -> str:
            i = idx.get(h)
            return cells[i] if i is not None and i < len(cells) else ""

        ok = True
        parent = unicodedata.normalize("NFKC", cell("所属区划代码")).strip()
        if not (parent.isascii() and parent.isdigit() and len(parent) in PARENT_LEVELS):
            report.add("所属区划代码 is a county, township or village code (6, 9 or 12 digits)",
                       rowno, "所属区划代码", cell("所属区划代码"))
            ok, parent = False, ""
        try:
            code = vocab.grid_code(cell("网格编码"), parent)
        except ValueError as exc:
            report.add(str(exc), rowno, "网格编码", cell("网格编码"))
            ok, code = False, ""
        try:
            name = clean_text(cell("网格名称"), 200)
            if name is None:
                raise ValueError("is required")
        except ValueError as exc:
            report.add(f"网格名称 {exc}", rowno, "网格名称", cell("网格名称"))
            ok, name = False, None
        boundary: dict[str, Any] | None = None
        try:
            boundary = parse_boundary(cell("边界"))
        except ValueError as exc:
            report.add(f"边界 {exc}", rowno, "边界", cell("边界")[:80])
            ok = False
        if code:
            if code in first:
                report.add(f"duplicate 网格编码: rows {first[code]} and {rowno}", rowno, "网格编码", code)
                continue
            first[code] = rowno
        if ok:
            grids[code] = {"code": code, "name": name, "parent_code": parent,
                           "boundary": None if boundary is None else json.dumps(boundary, separators=(",", ":"))}
    try:  # the rows that parsed are checked against the registry too: every bad row is named
        async with sessions() as s, s.begin():
            await _write(s, grids, first, report, dry_run)
            if dry_run or not report.ok:
                raise _DryRun
    except _DryRun:
        pass
    except (IntegrityError, DataError) as exc:
        report.add(f"the database refused the import ({type(exc.orig).__name__}); nothing was written")
    if not report.ok:
        report.created = report.updated = report.unchanged = 0
        report.problems.sort(key=lambda p: p.row or 0)
    return report


async def _write(
    s: AsyncSession, grids: dict[str, dict[str, Any]], first: dict[str, int], report: ImportReport, dry_run: bool
) -> None:
    keys = sorted({g["parent_code"] for g in grids.values()} | set(grids))
    have: dict[str, tuple[str, str, str | None, str | None]] = {}
    for i in range(0, len(keys), 500):
        for code, name, level, parent, boundary in (
            await s.execute(
                select(Division.code, Division.name, Division.level, Division.parent_code, Division.boundary)
                .where(Division.code.in_(keys[i : i + 500]))
            )
        ).all():
            have[code] = (name, level, parent, boundary)
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for code, g in grids.items():
        row = first[code]
        if g["parent_code"] not in have:
            report.add("所属区划代码 is not a registered division", row, "所属区划代码", g["parent_code"])
            continue
        old = have.get(code)
        if old is None:
            new.append({**g, "level": "grid", "source": "local", "historical": False})
            continue
        if old[1] != "grid":
            report.add(f"网格编码 {code} is a registered {old[1]}, not a grid", row, "网格编码", code)
            continue
        boundary = g["boundary"] if g["boundary"] is not None else old[3]
        if (old[0], old[2], old[3]) != (g["name"], g["parent_code"], boundary):
            changed.append({**g, "boundary": boundary})
    report.created, report.updated = len(new), len(changed)
    report.unchanged = len(grids) - len(new) - len(changed)
    if not report.ok or dry_run:
        return
    if new:
        await s.execute(insert(Division), new)
    for g in changed:
        await s.execute(
            update(Division).where(Division.code == g["code"])
            .values(name=g["name"], parent_code=g["parent_code"], boundary=g["boundary"])
        )
