"""Form 3, the channel list (点位清单): camera points in and out as spreadsheets.

One row per channel, headers 点位编码, 点位名称, 所属单位, 行政区划代码, 点位类别, 覆盖范围,
监控层级, 摄像机类型, 经度, 纬度, 安装地址, 重点部位. The import is all-or-nothing with a report
of every problem; a valid file is written in one transaction, upserting by channel ID. It is
built for big files: rows are plain dicts (no per-row models), existing rows, units and
divisions are fetched in chunks of 500 keys, and writes go out as batched
``INSERT … ON CONFLICT (id) DO UPDATE`` statements.

Choices where the spec is silent:

* A file without a column leaves that field alone on existing channels (a warning names the
  columns); 点位编码 and 点位名称 are required.
* An empty 行政区划代码 takes the division the ID's centre code names (6 digits, or the full
  code) when it is registered; otherwise the channel has no division (a warning counts them).
* An empty 重点部位 means 否. 重点部位 sets the required retention: 90 days (是) or 30 (否).
* 所属单位 that is not registered is created with only its name (listed in ``new_units``);
  the channel's department is its unit's.
* Export writes 摄像机类型 codes other than 1–4 as an empty cell.
* Divisions: the national list (registry/divisions.py) is loaded, so real codes are known. A
  township (9 digits) or village (12) code the registry does not hold, under a registered
  county, is created from the row — named by the optional column 行政区划名称 where the file has
  it, else by its code — and listed in the report (``new_divisions``); a village's unknown
  township is created with it, named by its code. A code used on several rows with different
  names is a problem. A county (6 digits) that is not registered is still a problem, as is a
  code under no registered county. A village of the shipped national list not loaded yet
  (``xueliang divisions load --villages``) is added from the list under its own name, with a
  warning. A code a later list retired (historical) imports, with a warning.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Division, Unit
from xueliang.gb28181.ids import GbIdError, division_code_of, parse_gb_id
from xueliang.registry import spreadsheet, vocab
from xueliang.registry.divisions import shipped_villages
from xueliang.registry.models import ChannelFilter
from xueliang.registry.report import ImportReport
from xueliang.registry.service import channel_conditions
from xueliang.registry.survey import Lookup, clean_text, map_columns

__all__ = ["CHANNEL_HEADERS", "bulk_upsert_channels", "export_channels", "import_channels"]

CHANNEL_HEADERS = [
    "点位编码",
    "点位名称",
    "所属单位",
    "行政区划代码",
    "点位类别",
    "覆盖范围",
    "监控层级",
    "摄像机类型",
    "经度",
    "纬度",
    "安装地址",
    "重点部位",
]
#: Optional: the name of the 行政区划代码, used when the code is a township or village the
#: registry does not hold yet (it is then created under that name).
DIVISION_NAME = "行政区划名称"
CHUNK = 500
_TMP = "_xl_channels_in"
#: Rows per INSERT … ON CONFLICT statement in :func:`bulk_upsert_channels`.
BATCH = 2000

POINT_CLASS = Lookup(vocab.POINT_CLASS)
COVERAGE = Lookup(vocab.COVERAGE)
TIER = Lookup(vocab.TIER)
PTZ_TYPE = Lookup(vocab.PTZ_TYPE)
YES_NO = Lookup(vocab.YES_NO)

#: Channel columns an import may set, compared to tell updated from unchanged.
_FIELDS = (
    "name",
    "kind",
    "unit_id",
    "department",
    "division_code",
    "point_class",
    "coverage",
    "tier",
    "ptz_type",
    "longitude",
    "latitude",
    "address",
    "key_site",
    "retention_days_required",
)
#: header -> the channel fields it sets
_SETS: dict[str, tuple[str, ...]] = {
    "点位名称": ("name",),
    "所属单位": ("unit_id", "department"),
    "行政区划代码": ("division_code",),
    "点位类别": ("point_class",),
    "覆盖范围": ("coverage",),
    "监控层级": ("tier",),
    "摄像机类型": ("ptz_type",),
    "经度": ("longitude",),
    "纬度": ("latitude",),
    "安装地址": ("address",),
    "重点部位": ("key_site", "retention_days_required"),
}


class _DryRun(Exception):
    pass


def _gb_id(v: str) -> str:
    t = unicodedata.normalize("NFKC", v).strip().lstrip("'")
    if len(t) == 20 and t.isascii() and t.isdigit():
        return t
    try:
        return parse_gb_id(t).raw
    except GbIdError as exc:
        msg = str(exc)
        if "e+" in t.lower():
            msg += " (Excel stored it as a number and lost digits: format the column as text)"
        raise ValueError(msg) from None


def _division(v: str) -> str | None:
    t = unicodedata.normalize("NFKC", v).strip()
    if not t:
        return None
    if not (t.isascii() and t.isdigit() and len(t) in (6, 9, 12)):
        raise ValueError(
            "a division code (GB/T 2260) has 6 digits (county) or 9/12 (township/village)"
        )
    return t


def _degrees(v: str) -> float | None:
    t = unicodedata.normalize("NFKC", v).strip().rstrip("°").strip()
    if not t:
        return None
    try:
        x = float(t)
    except ValueError:
        raise ValueError("is not a number in decimal degrees") from None
    if not math.isfinite(x):
        raise ValueError("is not a number in decimal degrees")
    return x


def _same_degrees(a: float | None, b: float | None) -> bool:
    """Equal within 1e-9° (0.1 mm): xlsx keeps 15 significant digits, so 117.30499999999999 comes back as 117.305."""
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) <= 1e-9


async def import_channels(
    sessions: async_sessionmaker[AsyncSession],
    data: bytes,
    filename: str = "",
    *,
    dry_run: bool = False,
) -> ImportReport:
    """Import a channel list (点位清单). Never raises for bad input: the report says what is wrong.

    With any problem nothing is written; with ``dry_run`` nothing is written either, and the
    report still gives the created/updated/unchanged counts and the units that would be created.
    """
    report = ImportReport(file=filename, form="channels")
    try:
        raw = spreadsheet.read_raw_rows(data, filename)
        sheet = spreadsheet.find_sheet(raw, "点位编码", CHANNEL_HEADERS)
    except spreadsheet.SheetError as exc:
        report.add(str(exc))
        return report
    cols = map_columns(sheet.header, CHANNEL_HEADERS, report, optional=[DIVISION_NAME])
    if "点位名称" in cols.missing:
        report.add("the channel list has no column 点位名称")
        return report
    if cols.missing:
        report.warn(
            "the list has no column "
            + "、".join(cols.missing)
            + "; those fields are left as they are"
        )
    report.rows = len(sheet.rows)
    if not sheet.rows:
        report.add("the channel list has a header row but no data rows")
        return report
    records = _parse_rows(sheet, cols.index, report)
    try:
        async with sessions() as s, s.begin():
            await _check_and_write(s, records, cols.index, report, dry_run)
            if dry_run or not report.ok:
                raise _DryRun
    except _DryRun:
        pass
    except (IntegrityError, DataError) as exc:
        report.add(
            f"the database refused the import ({type(exc.orig).__name__}); nothing was written"
        )
    if not report.ok:
        report.created = report.updated = report.unchanged = 0
        report.new_units = []
        report.new_divisions = []
        report.problems.sort(key=lambda p: p.row or 0)
    return report


_Record = tuple[int, dict[str, Any], str | None, bool]


def _parse_rows(
    sheet: spreadsheet.Sheet, index: dict[str, int], report: ImportReport
) -> list[_Record]:
    """(row number, channel fields, unit name, row is valid) for every row; problems go to the report."""
    seen: dict[str, int] = {}
    return [_parse_row(rowno, cells, index, report, seen) for rowno, cells in sheet.rows]


def _parse_row(
    rowno: int, cells: list[str], index: dict[str, int], report: ImportReport, seen: dict[str, int]
) -> _Record:
    i_id = index["点位编码"]
    col = index.get

    def cell(h: str) -> str:
        i = col(h)
        return cells[i] if i is not None and i < len(cells) else ""

    rec: dict[str, Any] = {}
    ok = True

    def bad(h: str, reason: str, value: str | None = None) -> None:
        nonlocal ok
        ok = False
        report.add(reason, rowno, h, cell(h) if value is None else value)

    try:
        cid = _gb_id(cells[i_id] if i_id < len(cells) else "")
    except ValueError as exc:
        bad("点位编码", str(exc))
        cid = ""
    if cid:
        if cid in seen:
            bad("点位编码", f"duplicate 点位编码: the same ID is on rows {seen[cid]} and {rowno}")
        else:
            seen[cid] = rowno
        rec["id"] = cid
        rec["kind"] = "group" if cid[10:13] in ("215", "216") else "camera"
    try:
        name = clean_text(cell("点位名称"), 200)
        if name is None:
            bad("点位名称", "点位名称 is required")
        rec["name"] = name
    except ValueError as exc:
        bad("点位名称", f"点位名称 {exc}")
    unit: str | None = None
    if "所属单位" in index:
        try:
            unit = clean_text(cell("所属单位"), 200)
        except ValueError as exc:
            bad("所属单位", f"所属单位 {exc}")
    if "行政区划代码" in index:
        try:
            rec["division_code"] = _division(cell("行政区划代码"))
        except ValueError as exc:
            bad("行政区划代码", str(exc))
    if DIVISION_NAME in index:
        try:
            rec[DIVISION_NAME] = clean_text(cell(DIVISION_NAME), 200)
        except ValueError as exc:
            bad(DIVISION_NAME, f"{DIVISION_NAME} {exc}")
    for h, key, lookup, conv in (
        ("点位类别", "point_class", POINT_CLASS, int),
        ("覆盖范围", "coverage", COVERAGE, str),
        ("监控层级", "tier", TIER, str),
        ("摄像机类型", "ptz_type", PTZ_TYPE, int),
    ):
        if h in index:
            try:
                v = lookup.parse_opt(cell(h))
                rec[key] = None if v is None else conv(v)
            except ValueError as exc:
                bad(h, f"{h} {exc}")
    coords: dict[str, float | None] = {}
    for h, key in (("经度", "longitude"), ("纬度", "latitude")):
        if h in index:
            try:
                coords[key] = _degrees(cell(h))
            except ValueError as exc:
                bad(h, f"{h} {exc}")
    if len(coords) == 2:
        lon, lat = coords["longitude"], coords["latitude"]
        if (lon is None) != (lat is None):
            missing = "经度" if lon is None else "纬度"
            bad(missing, "经度 and 纬度 must be given together")
        else:
            try:
                vocab.check_coordinates(lon, lat)
            except ValueError as exc:
                bad("经度", str(exc), f"{cell('经度')}, {cell('纬度')}")
    rec.update(coords)
    if "安装地址" in index:
        try:
            rec["address"] = clean_text(cell("安装地址"), 400)
        except ValueError as exc:
            bad("安装地址", f"安装地址 {exc}")
    if "重点部位" in index:
        try:
            key_site = YES_NO.parse_opt(cell("重点部位")) == "yes"
            rec["key_site"] = key_site
            rec["retention_days_required"] = (
                vocab.RETENTION_DAYS_KEY_SITE if key_site else vocab.RETENTION_DAYS
            )
        except ValueError as exc:
            bad("重点部位", f"重点部位 {exc}")
    return rowno, rec, unit, ok


async def _chunked(s: AsyncSession, stmt_of: Any, keys: Sequence[Any]) -> list[Any]:
    rows: list[Any] = []
    keys = list(keys)
    for i in range(0, len(keys), CHUNK):
        rows.extend((await s.execute(stmt_of(keys[i : i + CHUNK]))).all())
    return rows


def _derived_candidates(cid: str) -> list[str]:
    code = division_code_of(cid)
    return [c for c in dict.fromkeys([code, code[:6]]) if len(c) >= 6]


async def _check_and_write(
    s: AsyncSession,
    records: list[_Record],
    index: dict[str, int],
    report: ImportReport,
    dry_run: bool,
) -> None:
    # divisions: one pass over all codes named or implied by IDs
    codes: set[str] = set()
    for _, rec, _u, _ok in records:
        if rec.get("division_code"):
            codes.add(rec["division_code"])
        elif "id" in rec:
            codes.update(_derived_candidates(rec["id"]))
    div_names: dict[str, tuple[str | None, int]] = {}  # code -> (name in the file, first row naming it)
    for rowno, rec, _u, _ok in records:
        code, nm = rec.get("division_code"), rec.pop(DIVISION_NAME, None)
        if code and nm is not None:
            first = div_names.setdefault(code, (nm, rowno))
            if first[0] != nm:
                report.add(
                    f"{DIVISION_NAME} differs from row {first[1]} ({first[0]!r}) for the same 行政区划代码 {code}",
                    rowno, DIVISION_NAME, nm,
                )
    # the counties and townships above unknown codes, to create townships and villages under them
    parents = {c[:n] for c in codes if len(c) > 6 for n in (6, 9) if n < len(c)}
    rows = await _chunked(
        s,
        lambda ks: select(Division.code, Division.name, Division.historical).where(Division.code.in_(ks)),
        sorted(codes | parents),
    )
    registered = {code: (name, hist) for code, name, hist in rows}
    known = set(registered) & codes
    villages = shipped_villages(c for c in codes if len(c) == 12 and c not in registered)
    new_divisions = _plan_divisions(records, registered, div_names, villages, report)
    from_list = [d for d in new_divisions if d["source"] == "national"]
    new_divisions = [d for d in new_divisions if d["source"] != "national"]
    if from_list:
        report.warn(
            f"{len(from_list)} village(s) of the national list not loaded yet are added from it: "
            + "、".join(f"{d['code']} {d['name']}" for d in from_list[:10])
            + ("…" if len(from_list) > 10 else ""),
            column="行政区划代码",
        )
    historical = sorted(c for c in known if registered[c][1])
    if historical:
        report.warn(
            "行政区划代码 retired by the national list (kept as historical): " + "、".join(historical[:10])
            + ("…" if len(historical) > 10 else ""),
            column="行政区划代码",
        )
    known |= {d["code"] for d in new_divisions + from_list}
    derived: dict[str, str] = {}
    for rowno, rec, _u, _ok in records:
        code = rec.get("division_code")
        if code:
            if code not in known:
                report.add(
                    "行政区划代码 is not a registered division"
                    + (", nor under a registered county" if len(code) > 6 else "")
                    + " (the national list and the divisions entered here)",
                    rowno, "行政区划代码", code,
                )
        elif "id" in rec:
            derived[rec["id"]] = next((c for c in _derived_candidates(rec["id"]) if c in known), "")
            if "行政区划代码" in index:
                rec["division_code"] = derived[rec["id"]]
    if not report.ok:
        return
    report.new_divisions = [f"{d['code']} {d['name']}" for d in new_divisions]
    if (new_divisions or from_list) and not dry_run:
        await s.execute(insert(Division), sorted(new_divisions + from_list, key=lambda d: str(d["code"])))
    no_division = 0

    # units
    names = list(dict.fromkeys(u for _, _r, u, _ok in records if u))
    units: dict[str, tuple[int | None, str | None]] = {
        name: (uid, dept)
        for uid, name, dept in await _chunked(
            s,
            lambda ks: select(Unit.id, Unit.name, Unit.department).where(Unit.name.in_(ks)),
            names,
        )
    }
    new_units = [n for n in names if n not in units]
    report.new_units = new_units
    if new_units and not dry_run:
        fresh = [Unit(name=n) for n in new_units]
        s.add_all(fresh)
        await s.flush()
        for u in fresh:
            units[u.name] = (u.id, None)
    has_unit = "所属单位" in index
    if has_unit:
        for _, rec, unit, _ok in records:
            uid, dept = units.get(unit, (None, None)) if unit else (None, None)
            rec["unit_id"] = uid
            rec["department"] = dept

    # existing channels
    cols = [getattr(Channel, f) for f in _FIELDS]
    existing: dict[str, tuple[Any, ...]] = {
        r[0]: tuple(r[1:])
        for r in await _chunked(
            s,
            lambda ks: select(Channel.id, *cols).where(Channel.id.in_(ks)),
            [rec["id"] for _, rec, _u, _ok in records],
        )
    }
    now = dt.datetime.now(dt.UTC)
    created: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    pos = {f: i for i, f in enumerate(_FIELDS)}
    for _, rec, _u, _ok in records:
        old = existing.get(rec["id"])
        if old is None:
            if "division_code" not in rec:
                rec["division_code"] = derived.get(rec["id"], "")
            no_division += not rec["division_code"]
            created.append(rec)
            continue
        no_division += "division_code" in rec and not rec["division_code"]
        diff = False
        for k, v in rec.items():
            if k == "id":
                continue
            was = old[pos[k]]
            if isinstance(was, float) or isinstance(v, float):
                if not _same_degrees(was, v):
                    diff = True
                    break
            elif was != v:
                diff = True
                break
        if diff:
            changed.append(rec)
    if no_division:
        report.warn(
            f"{no_division} channel(s) have no 行政区划代码 and their ID names no registered division; "
            "they are stored without one",
            column="行政区划代码",
        )
    report.created = len(created)
    report.updated = len(changed)
    report.unchanged = len(records) - len(created) - len(changed)
    if dry_run:
        return
    for group in (created, changed):
        if group:
            for r in group:
                r["updated_at"] = now
            await _upsert(s, group)


def _plan_divisions(
    records: list[_Record],
    registered: dict[str, tuple[str, bool]],
    names: dict[str, tuple[str | None, int]],
    villages: dict[str, str],
    report: ImportReport,
) -> list[dict[str, Any]]:
    """Townships and villages to create: codes the registry lacks under a registered county.
    A village of the shipped national list comes with its name from there (source national)."""
    out: dict[str, dict[str, Any]] = {}
    for _rowno, rec, _u, _ok in records:
        code = rec.get("division_code")
        if not code or code in registered or code in out or len(code) < 9:
            continue
        if code[:6] not in registered:
            continue  # reported as not registered
        for part in (code[:9], code) if len(code) == 12 else (code,):
            if part in registered or part in out:
                continue
            named = names.get(part, (None, 0))[0]
            national = villages.get(part)
            if national and named and named != national:
                report.warn(
                    f"行政区划名称 differs from the national list's {national!r}, which is used",
                    names[part][1], DIVISION_NAME, named,
                )
            out[part] = {
                "code": part,
                "name": national or named or part,
                "level": vocab.division_level(part),
                "parent_code": vocab.parent_division(part),
                "source": "national" if national else "import",
                "historical": False,
            }
    for code, (nm, rowno) in names.items():
        have = registered.get(code)
        if have is not None and nm and nm != have[0]:
            report.warn(
                f"行政区划名称 differs from the registered name {have[0]!r}, which is kept",
                rowno, DIVISION_NAME, nm,
            )
    return sorted(out.values(), key=lambda d: str(d["code"]))


def _defaults(keys: Sequence[str]) -> dict[str, Any]:
    """Python-side defaults of the NOT NULL columns ``keys`` leaves out (for the COPY path)."""
    out: dict[str, Any] = {}
    for c in Channel.__table__.columns:
        if c.name in keys or c.default is None or c.nullable:
            continue
        d: Any = c.default
        out[c.name] = d.arg(None) if d.is_callable else d.arg
    return out


async def _upsert(s: AsyncSession, rows: list[dict[str, Any]], batch: int = BATCH) -> None:
    """INSERT … ON CONFLICT (id) DO UPDATE the given keys (rows grouped by key set).

    A row whose values equal the stored ones is left alone (``IS DISTINCT FROM``), so its
    ``updated_at`` stays. PostgreSQL goes through COPY into a temporary table and one
    INSERT … SELECT; SQLite through batched executemany.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(sorted(r)), []).append(r)
    dialect = s.get_bind().dialect.name
    for keys, group in groups.items():
        changing = [k for k in keys if k not in ("id", "created_at", "updated_at")]
        if dialect == "postgresql":
            await _upsert_pg(s, keys, changing, group)
            continue
        if dialect != "sqlite":
            raise NotImplementedError(f"bulk upsert is not written for {dialect}")
        table = Channel.metadata.tables["channels"]
        stmt = sqlite.insert(table)
        sets = {k: stmt.excluded[k] for k in keys if k not in ("id", "created_at")}
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.id],
            set_=sets,
            where=or_(*(table.c[k].is_distinct_from(stmt.excluded[k]) for k in changing))
            if changing
            else None,
        )
        conn = await s.connection()  # Core executemany: the ORM would send one statement per row
        for i in range(0, len(group), batch):
            await conn.execute(stmt, group[i : i + batch])


async def _upsert_pg(
    s: AsyncSession, keys: tuple[str, ...], changing: list[str], group: list[dict[str, Any]]
) -> None:
    defaults = _defaults(keys)
    cols = [*keys, *defaults]
    fill = tuple(defaults.values())
    json_at = cols.index("extra") if "extra" in cols else -1
    records = [tuple(r[k] for k in keys) + fill for r in group]
    if json_at >= 0:
        records = [
            (
                *r[:json_at],
                None if r[json_at] is None else json.dumps(r[json_at]),
                *r[json_at + 1 :],
            )
            for r in records
        ]
    conn = await s.connection()
    q = ", ".join(f'"{c}"' for c in cols)
    await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {_TMP}")
    await conn.exec_driver_sql(
        f"CREATE TEMP TABLE {_TMP} ON COMMIT DROP AS SELECT {q} FROM channels WITH NO DATA"
    )
    raw = await conn.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(_TMP, records=records, columns=cols)  # type: ignore[union-attr]
    sets = ", ".join(f'"{k}" = EXCLUDED."{k}"' for k in keys if k not in ("id", "created_at"))
    where = ""
    if changing:
        mine = ", ".join(f'channels."{k}"' for k in changing)
        theirs = ", ".join(f'EXCLUDED."{k}"' for k in changing)
        where = f" WHERE ROW({mine}) IS DISTINCT FROM ROW({theirs})"
    await conn.exec_driver_sql(
        f"INSERT INTO channels ({q}) SELECT {q} FROM {_TMP} ON CONFLICT (id) DO UPDATE SET {sets}{where}"
    )
    await conn.exec_driver_sql(f"DROP TABLE {_TMP}")


async def bulk_upsert_channels(
    sessions: async_sessionmaker[AsyncSession], rows: list[dict[str, Any]]
) -> int:
    """Write channel rows as fast as the database takes them; returns the number of rows written.

    Each row is a dict of :class:`Channel` columns with at least ``id`` and ``name``; the rows are
    trusted (no validation: use :func:`import_channels` for files). ``kind`` and
    ``division_code`` are derived from the ID when absent, ``department`` from ``unit_id`` when
    absent, ``updated_at`` is set (kept where nothing else changed). A later row with the same
    ID wins; the count is of distinct IDs. One transaction; ``INSERT … ON CONFLICT (id) DO
    UPDATE``: on PostgreSQL from a COPY-filled temporary table, on SQLite in batches of
    :data:`BATCH` rows.
    """
    by_id: dict[str, dict[str, Any]] = {}
    for r in rows:
        by_id[r["id"]] = r
    now = dt.datetime.now(dt.UTC)
    out: list[dict[str, Any]] = []
    need_dept: set[int] = set()
    for cid, r in by_id.items():
        r = dict(r)
        if "kind" not in r:
            r["kind"] = "group" if cid[10:13] in ("215", "216") else "camera"
        if "division_code" not in r:
            r["division_code"] = division_code_of(cid)
        if "unit_id" in r and "department" not in r and r["unit_id"] is not None:
            need_dept.add(r["unit_id"])
        r["updated_at"] = now
        out.append(r)
    async with sessions() as s, s.begin():
        if need_dept:
            depts: dict[int, str | None] = {
                uid: d
                for uid, d in await _chunked(
                    s,
                    lambda ks: select(Unit.id, Unit.department).where(Unit.id.in_(ks)),
                    sorted(need_dept),
                )
            }
            for r in out:
                if "unit_id" in r and "department" not in r:
                    r["department"] = depts.get(r["unit_id"]) if r["unit_id"] is not None else None
        await _upsert(s, out)
    return len(out)


def _label(lookup: Lookup, value: object) -> str:
    if value is None:
        return ""
    return lookup.vocab.labels.get(str(value), "")


async def export_channels(
    sessions: async_sessionmaker[AsyncSession], path: Path, filter: ChannelFilter | None = None
) -> int:
    """Write the channel list (xlsx, or csv by the extension) in the import's layout; returns the row count.

    ``filter`` defaults to every camera (groups are left out). Rows are ordered by ID.
    """
    f = filter or ChannelFilter()
    conds = channel_conditions(f)
    rows: list[list[object]] = []
    async with sessions() as s:
        unit_names = {uid: n for uid, n in (await s.execute(select(Unit.id, Unit.name))).all()}
        last = ""
        while True:
            page = (
                await s.execute(
                    select(
                        Channel.id,
                        Channel.name,
                        Channel.unit_id,
                        Channel.division_code,
                        Channel.point_class,
                        Channel.coverage,
                        Channel.tier,
                        Channel.ptz_type,
                        Channel.longitude,
                        Channel.latitude,
                        Channel.address,
                        Channel.key_site,
                    )
                    .where(*conds, Channel.id > last)
                    .order_by(Channel.id)
                    .limit(5000)
                )
            ).all()
            if not page:
                break
            for cid, name, uid, div, pc, cov, tier, ptz, lon, lat, addr, key in page:
                rows.append(
                    [
                        cid,
                        name,
                        unit_names.get(uid, "") if uid is not None else "",
                        div or "",
                        _label(POINT_CLASS, pc),
                        cov or "",
                        _label(TIER, tier),
                        _label(PTZ_TYPE, ptz),
                        lon if lon is not None else "",
                        lat if lat is not None else "",
                        addr or "",
                        "是" if key else "否",
                    ]
                )
            last = page[-1][0]
    spreadsheet.write_table(Path(path), [], CHANNEL_HEADERS, rows, sheet_title="点位清单")
    return len(rows)
