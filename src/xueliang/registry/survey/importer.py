"""Importing the survey: every row validated, and only a file without problems written.

Imports are all-or-nothing: every row is checked, every problem is reported with its row
number (as in the file), column header, value and reason, and only a file without problems is
written, in one transaction. The :class:`~xueliang.registry.report.ImportReport` says what was
(or, with ``dry_run``, would have been) created, updated and left unchanged.

Choices where the survey spec is silent:

* Department: the ``department`` argument wins over a ``主管部门`` column, which wins over the
  title line ``主管部门：…``; a warning is given where they differ.
* A Form 1 row whose system columns are all empty registers the unit only (no platform).
* Segments are ``"1"``, ``"2"``, … in the order of the unit's system rows in the file.
  Platforms of a unit that the file does not mention are kept (with a warning), never deleted.
* A unit named on several rows: unit columns may be left empty on the later rows; different
  non-empty values are a problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import select, update
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Platform, SurveySummary, Unit
from xueliang.registry.report import ImportReport
from xueliang.registry.spreadsheet import Sheet
from xueliang.registry.survey.cells import _int_cell, clean_text
from xueliang.registry.survey.queries import _in_chunks, _segment_key
from xueliang.registry.survey.reader import (
    _FORM2_FIELDS,
    _UNIT_FIELD_HEADER,
    _UNIT_HEADERS,
    DEPARTMENT,
    FORM1_HEADERS,
    FORM1_PARSERS,
    FORM2_HEADERS,
    ColumnMap,
    _cell,
    _department_of,
    _detect_form,
    _find,
    _read_sheet,
    header_key,
    map_columns,
)


@dataclass(slots=True)
class _UnitIn:
    name: str
    first_row: int
    fields: dict[str, Any] = field(default_factory=dict)
    #: row of the value each field came from
    origin: dict[str, int] = field(default_factory=dict)
    department: str | None = None
    department_row: int = 0
    #: (row number, system fields or None for a unit-only row) in file order
    entries: list[tuple[int, dict[str, Any] | None]] = field(default_factory=list)


def _choose_department(argument: str | None, title: str | None, report: ImportReport) -> str | None:
    arg = (argument or "").strip() or None
    if arg and title and arg != title:
        report.warn(
            f"the file's title says {DEPARTMENT} {title!r}; {arg!r} as given to the import is used",
            column=DEPARTMENT,
            value=title,
        )
    return arg or title


class _Opened(NamedTuple):
    """A form's sheet, its columns and where its department comes from."""

    sheet: Sheet
    cols: ColumnMap
    #: the 主管部门 column, if the form has one
    dept_col: int | None
    #: the department given to the import
    given: str | None
    #: the department of a row without its own: the one given, else the title line's
    default: str | None


def _open_form(
    raw: list[list[str]],
    first: str,
    headers: Sequence[str],
    department: str | None,
    report: ImportReport,
    *,
    all_columns: bool,
) -> _Opened | None:
    """The form found by its header ``first``, its columns and its department; None (with the
    problem reported) when it is not there. A missing column is a problem when the form needs
    ``all_columns`` (the summary's numbers), else a warning: those fields are left as they are."""
    sheet = _find(raw, first, headers, report)
    if sheet is None:
        return None
    cols = map_columns(sheet.header, headers, report, optional=[DEPARTMENT])
    if cols.missing:
        missing = "、".join(cols.missing)
        if all_columns:
            report.add(f"the summary has no column {missing}")
            return None
        report.warn(f"the form has no column {missing}; those fields are left as they are")
    dept_col = cols.index.pop(DEPARTMENT, None)
    given = (department or "").strip() or None
    return _Opened(sheet, cols, dept_col, given, _choose_department(given, _department_of(sheet), report))


async def import_survey(
    sessions: async_sessionmaker[AsyncSession],
    data: bytes,
    filename: str = "",
    department: str | None = None,
    *,
    dry_run: bool = False,
) -> ImportReport:
    """Import Form 1 (摸底调查表) or Form 2 (摸底汇总表), told apart by their headers.

    Form 1 has 单位名称 and 平台类型; Form 2 has 所属单位名称 and 摄像头数量. The department comes
    from ``department`` (which wins, with a warning when the file says otherwise), else a
    ``主管部门`` column, else the title line ``主管部门：…``. Nothing is written when there is any
    problem, or with ``dry_run``; the report says what would have been created/updated.
    """
    report = ImportReport(file=filename)
    raw = _read_sheet(data, filename, report)
    if raw is None:
        return report
    form = _detect_form(raw)
    if form == 1:
        report.form = "survey"
        opened = _open_form(raw, "单位名称", FORM1_HEADERS, department, report, all_columns=False)
        return report if opened is None else await _import_form1(sessions, opened, dry_run, report)
    if form == 2:
        report.form = "summary"
        opened = _open_form(raw, "所属单位名称", FORM2_HEADERS, department, report, all_columns=True)
        return report if opened is None else await _import_form2(sessions, opened, dry_run, report)
    report.add(
        "this is neither a survey form (headers 单位名称 and 平台类型) nor a summary "
        "(headers 所属单位名称 and 摄像头数量) in the first 50 rows"
    )
    return report


async def _import_form1(
    sessions: async_sessionmaker[AsyncSession], form: _Opened, dry_run: bool, report: ImportReport
) -> ImportReport:
    sheet, cols, dept_col, arg, dept_default = form
    if dept_default is not None and len(dept_default) > 200:
        report.add(
            f"{DEPARTMENT} is longer than 200 characters",
            column=DEPARTMENT,
            value=dept_default[:50],
        )
    report.rows = len(sheet.rows)
    if not sheet.rows:
        report.add("the form has a header row but no data rows")
        return report
    if dept_default is None and dept_col is None:
        report.add(
            f"no {DEPARTMENT}: the file has no title line “{DEPARTMENT}：…” and none was given to the import",
            column=DEPARTMENT,
        )
    unit_cols = [(h, i) for h, i in cols.index.items() if h in _UNIT_HEADERS]
    system_cols = [(h, i) for h, i in cols.index.items() if h not in _UNIT_HEADERS]
    units: dict[str, _UnitIn] = {}
    dept_warned = False
    for rowno, cells in sheet.rows:
        unit_vals: dict[str, Any] = {}
        bad = False
        for h, i in unit_cols:
            v = _cell(cells, i)
            try:
                unit_vals.update(FORM1_PARSERS[h](v))
            except ValueError as exc:
                report.add(f"{h} {exc}", rowno, h, v)
                bad = True
        sys_vals: dict[str, Any] = {}
        any_system = False
        for h, i in system_cols:
            v = _cell(cells, i)
            if v.strip():
                any_system = True
            try:
                sys_vals.update(FORM1_PARSERS[h](v))
            except ValueError as exc:
                report.add(f"{h} {exc}", rowno, h, v)
        row_dept = dept_default
        if dept_col is not None:
            cell = _cell(cells, dept_col).strip()
            if cell:
                if len(cell) > 200:
                    report.add(
                        f"{DEPARTMENT} is longer than 200 characters", rowno, DEPARTMENT, cell[:50]
                    )
                if arg and cell != arg and not dept_warned:
                    report.warn(
                        f"the file's {DEPARTMENT} column says {cell!r}; {arg!r} as given is used",
                        rowno,
                        DEPARTMENT,
                        cell,
                    )
                    dept_warned = True
                row_dept = arg or cell
        name = unit_vals.get("name")
        if name is None:
            if not bad:
                report.add(
                    "单位名称 is required", rowno, "单位名称", _cell(cells, cols.index["单位名称"])
                )
            continue
        if row_dept is None and dept_col is not None:
            report.add(
                f"no {DEPARTMENT} on this row, in the title line “{DEPARTMENT}：…”, or given to the import",
                rowno,
                DEPARTMENT,
            )
        u = units.get(name)
        if u is None:
            u = units[name] = _UnitIn(name, rowno)
        for k, v in unit_vals.items():
            if k == "name":
                continue
            if k not in u.fields or (u.fields[k] is None and v is not None):
                u.fields[k] = v
                u.origin[k] = rowno
            elif v is not None and u.fields[k] != v:
                h = _UNIT_FIELD_HEADER[k]
                report.add(
                    f"{h} of unit {name!r} differs from row {u.origin[k]}",
                    rowno,
                    h,
                    _cell(cells, cols.index[h]),
                )
        if row_dept is not None:
            if u.department is None:
                u.department, u.department_row = row_dept, rowno
            elif u.department != row_dept:
                report.add(
                    f"unit {name!r} is under {u.department!r} on row {u.department_row}",
                    rowno,
                    DEPARTMENT,
                    row_dept,
                )
        u.entries.append((rowno, sys_vals if any_system else None))
    if not report.ok:
        return report
    try:
        await _write_form1(sessions, list(units.values()), dry_run, report)
    except (IntegrityError, DataError) as exc:
        report.add(
            f"the database refused the import ({type(exc.orig).__name__}); nothing was written"
        )
    return report


class _DryRun(Exception):
    """Raised inside a transaction to roll a dry run back."""


async def _write_form1(
    sessions: async_sessionmaker[AsyncSession],
    units: list[_UnitIn],
    dry_run: bool,
    report: ImportReport,
) -> None:
    try:
        async with sessions() as s, s.begin():
            await _apply_form1(s, units, report)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass


async def _apply_form1(s: AsyncSession, units: list[_UnitIn], report: ImportReport) -> None:
    existing: dict[str, Unit] = {
        r[0].name: r[0]
        for r in await _in_chunks(
            s, lambda ks: select(Unit).where(Unit.name.in_(ks)), [u.name for u in units]
        )
    }
    plats: dict[int, dict[str, Platform]] = {}
    for (p,) in await _in_chunks(
        s,
        lambda ks: select(Platform).where(Platform.unit_id.in_(ks)),
        [u.id for u in existing.values()],
    ):
        plats.setdefault(p.unit_id, {})[p.segment] = p
    moved: list[tuple[int, str | None]] = []
    pending: list[tuple[Unit, str, dict[str, Any]]] = []
    for u in units:
        row = existing.get(u.name)
        created = row is None
        unit_changed = False
        if row is None:
            row = Unit(name=u.name, department=u.department, **u.fields)
            report.new_units.append(u.name)
            s.add(row)
        else:
            for k, v in [*u.fields.items(), ("department", u.department)]:
                if getattr(row, k) != v:
                    if k == "department":
                        report.warn(
                            f"unit {u.name!r} moves from {DEPARTMENT} {row.department!r} to {v!r}",
                            u.department_row,
                            DEPARTMENT,
                            v,
                        )
                        moved.append((row.id, v))
                    setattr(row, k, v)
                    unit_changed = True
        known = {} if created else plats.get(row.id, {})
        n = 0
        for i, (_rowno, values) in enumerate(u.entries):
            first = i == 0
            if values is None:
                _count_row(report, created, unit_changed and first)
                continue
            n += 1
            p = known.get(str(n))
            if p is None:
                pending.append((row, str(n), values))
                report.created += 1
                continue
            changed = unit_changed and first
            for k, v in values.items():
                if getattr(p, k) != v:
                    setattr(p, k, v)
                    changed = True
            _count_row(report, False, changed)
        extra = sorted(set(known) - {str(i) for i in range(1, n + 1)}, key=_segment_key)
        if extra:
            report.warn(
                f"unit {u.name!r} has {len(extra)} more system(s) in the registry than rows in "
                f"this file (segments {', '.join(extra)}); they are kept",
                u.first_row,
            )
    await s.flush()
    s.add_all(Platform(unit_id=unit.id, segment=seg, **values) for unit, seg, values in pending)
    for unit_id, dept in moved:
        await s.execute(update(Channel).where(Channel.unit_id == unit_id).values(department=dept))


def _count_row(report: ImportReport, created: bool, changed: bool) -> None:
    if created:
        report.created += 1
    elif changed:
        report.updated += 1
    else:
        report.unchanged += 1


# ---- Form 2 -------------------------------------------------------------------------------

_TOTAL_WORDS = {"合计", "总计", "小计", "合计:", "总计:"}


async def _import_form2(
    sessions: async_sessionmaker[AsyncSession], form: _Opened, dry_run: bool, report: ImportReport
) -> ImportReport:
    sheet, cols, dept_col, arg, dept_default = form
    filled_by = sheet.title_value("填表人", "填报人")
    phone = sheet.title_value("联系电话")
    for label, val, n in (("填表人", filled_by, 100), ("联系电话", phone, 64)):
        if val is not None and len(val) > n:
            report.add(f"{label} is longer than {n} characters", column=label, value=val[:50])
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    first_row: dict[tuple[str, str], int] = {}
    totals: dict[str | None, tuple[int, dict[str, int]]] = {}
    sums: dict[str, dict[str, int]] = {}
    ucol = cols.index["所属单位名称"]
    for rowno, cells in sheet.rows:
        numbers: dict[str, int] = {}
        for h, f in _FORM2_FIELDS.items():
            v = _cell(cells, cols.index[h])
            try:
                numbers[f] = _int_cell(v)
            except ValueError as exc:
                report.add(f"{h} {exc}", rowno, h, v)
        dept = dept_default
        if dept_col is not None and _cell(cells, dept_col).strip():
            dept = arg or _cell(cells, dept_col).strip()
        if any(header_key(c) in _TOTAL_WORDS for c in cells[: ucol + 1]):
            if dept in totals:
                report.warn(
                    "a second 合计 row"
                    + (f" for {dept}" if dept else "")
                    + "; the last one is checked",
                    rowno,
                )
            totals[dept] = (rowno, numbers)
            continue
        v = _cell(cells, ucol)
        try:
            name = clean_text(v, 200)
        except ValueError as exc:
            report.add(f"所属单位名称 {exc}", rowno, "所属单位名称", v)
            continue
        if name is None:
            report.add("所属单位名称 is required", rowno, "所属单位名称", v)
            continue
        if dept is None:
            report.add(
                f"no {DEPARTMENT}: the file has no title line “{DEPARTMENT}：…” and none was given",
                rowno,
                DEPARTMENT,
            )
            continue
        if len(dept) > 200:
            report.add(f"{DEPARTMENT} is longer than 200 characters", rowno, DEPARTMENT, dept[:50])
            continue
        key = (dept, name)
        if key in rows:
            report.add(
                f"unit {name!r} is listed twice (rows {first_row[key]} and {rowno})",
                rowno,
                "所属单位名称",
                name,
            )
            continue
        rows[key] = {**numbers, "filled_by": filled_by, "phone": phone}
        first_row[key] = rowno
        agg = sums.setdefault(dept, dict.fromkeys(_FORM2_FIELDS.values(), 0))
        for f, n in numbers.items():
            agg[f] += n
    report.rows = len(rows)
    if not rows and report.ok:
        report.add("the summary has no unit rows")
    if report.ok:
        for dept, (rowno, got) in totals.items():
            if dept is not None and dept in sums:
                want = sums[dept]
            else:
                want = {f: sum(a[f] for a in sums.values()) for f in _FORM2_FIELDS.values()}
            for h, f in _FORM2_FIELDS.items():
                if got[f] != want[f]:
                    report.warn(
                        f"合计 says {got[f]} but the rows add up to {want[f]}",
                        rowno,
                        h,
                        str(got[f]),
                    )
    if not report.ok:
        return report
    try:
        await _write_form2(sessions, rows, dry_run, report)
    except (IntegrityError, DataError) as exc:
        report.add(
            f"the database refused the import ({type(exc.orig).__name__}); nothing was written"
        )
    return report


async def _write_form2(
    sessions: async_sessionmaker[AsyncSession],
    rows: dict[tuple[str, str], dict[str, Any]],
    dry_run: bool,
    report: ImportReport,
) -> None:
    departments = sorted({d for d, _ in rows})
    try:
        async with sessions() as s, s.begin():
            existing: dict[tuple[str, str], SurveySummary] = {
                (r[0].department, r[0].unit_name): r[0]
                for r in await _in_chunks(
                    s,
                    lambda ks: select(SurveySummary).where(SurveySummary.department.in_(ks)),
                    departments,
                )
            }
            for key, values in rows.items():
                row = existing.get(key)
                if row is None:
                    report.created += 1
                    s.add(SurveySummary(department=key[0], unit_name=key[1], **values))
                    continue
                changed = False
                for k, v in values.items():
                    if getattr(row, k) != v:
                        setattr(row, k, v)
                        changed = True
                _count_row(report, False, changed)
            stale = sorted(k[1] for k in set(existing) - set(rows))
            if stale:
                report.warn(
                    f"{len(stale)} unit(s) of the stored summary are not in this file and are kept: "
                    + "、".join(stale[:10])
                    + ("…" if len(stale) > 10 else "")
                )
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
