"""Reading and writing the survey spreadsheets: xlsx, and csv in UTF-8 or GBK whatever it claims.

A sheet is read into rows of strings; the header row is found by the form's required header,
title lines above it (``主管部门：…``) are kept. Every failure is a :class:`SheetError` with a
message a person can act on.

Every xlsx and csv the platform writes passes its cells through :func:`safe_cell` (formula
injection, OWASP "CSV injection"): text that a spreadsheet program would take as a formula —
beginning with ``=``, ``+``, ``-``, ``@``, tab or CR — is written with a leading ``'``, and so is
text that begins with ``'`` itself, so that :func:`unescape_cell` (applied by the readers here)
gives back exactly what was exported. Numbers stay numbers (a negative longitude is a number
cell, or plain ``-118.5`` in csv).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Largest file an import reads. Survey files are small; a bigger one is a mistake or an attack.
MAX_IMPORT_BYTES = 32 * 1024 * 1024
MAX_ROWS = 2_000_000


#: A cell beginning with one of these is a formula (or becomes one) in Excel, LibreOffice, WPS.
FORMULA_TRIGGERS = frozenset("=+-@\t\r")
_ESCAPED = FORMULA_TRIGGERS | {"'"}
#: Text that is a plain number: nothing to evaluate, so written as it is (``-118.5``, ``+86``).
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: Characters XML 1.0 (so xlsx) cannot hold; openpyxl refuses the whole workbook for one.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def safe_cell(v: object, xlsx: bool = False) -> object:
    """The value to write in a cell of an exported sheet (xlsx or csv): text beginning with a
    formula character, or with ``'``, gets a leading ``'``; anything else is unchanged. With
    ``xlsx``, characters XML cannot hold become U+FFFD (else one such user name would make the
    whole export fail)."""
    if not isinstance(v, str) or not v:
        return v
    if xlsx and _XML_ILLEGAL.search(v):
        v = _XML_ILLEGAL.sub("\ufffd", v)
    c = v[0]
    if c == "'" or (c in FORMULA_TRIGGERS and not _NUMBER.fullmatch(v)):
        return "'" + v
    return v


def safe_row(row: Sequence[object], xlsx: bool = False) -> list[object]:
    return [safe_cell(v, xlsx) for v in row]


def unescape_cell(text: str) -> str:
    """What :func:`safe_cell` was given: ``'`` followed by a formula character or ``'`` loses
    the ``'``; other text (a hand-typed ``'abc`` included) is unchanged."""
    if len(text) > 1 and text[0] == "'" and text[1] in _ESCAPED:
        return text[1:]
    return text


class SheetError(Exception):
    """The file as a whole cannot be read."""


@dataclass(slots=True)
class Sheet:
    #: Lines above the header row, joined cell text (e.g. ``主管部门：教育局``).
    title_lines: list[str]
    header: list[str]
    #: (1-based row number in the file, cells aligned with header)
    rows: list[tuple[int, list[str]]]
    #: Lines after the data (e.g. ``填表人``), joined cell text.
    footer_lines: list[str] = field(default_factory=list)

    def title_value(self, *keys: str) -> str | None:
        """Value after ``key：`` or ``key:`` in any title or footer line."""
        for line in self.title_lines + self.footer_lines:
            for key in keys:
                m = re.search(
                    re.escape(key) + r"\s*[:：]\s*([^:：]*?)(?:\s{2,}|\s*\S+[:：]|$)", line
                )
                if m and m.group(1).strip():
                    return m.group(1).strip()
        return None


def _cell_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time() else v.isoformat(sep=" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return unescape_cell(str(v).strip())


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM) if it decodes, else GB18030 (a superset of GBK and GB2312)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise SheetError(
            f"the file is neither UTF-8 nor GBK text (bad byte at offset {exc.start})"
        ) from exc


def read_raw_rows(data: bytes, name: str = "") -> list[list[str]]:
    if not data.strip():
        raise SheetError("the file is empty")
    if len(data) > MAX_IMPORT_BYTES:
        raise SheetError(
            f"the file is {len(data) / 1e6:.1f} MB; imports are limited to {MAX_IMPORT_BYTES // (1024 * 1024)} MB"
        )
    if data[:4] == b"PK\x03\x04":
        return _read_xlsx(data)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise SheetError("this is an old .xls workbook; save it as .xlsx or .csv and import again")
    if name.lower().endswith((".xlsx", ".xlsm")):
        raise SheetError("the file is named .xlsx but is not an xlsx workbook (it may be damaged)")
    if b"\x00" in data[:4096]:
        raise SheetError("the file is binary, not a spreadsheet or csv")
    text = decode_text(data)
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = [[unescape_cell(c.strip()) for c in r] for r in csv.reader(io.StringIO(text), dialect)]
    except csv.Error as exc:
        raise SheetError(f"the csv cannot be read: {exc}") from exc
    if len(rows) > MAX_ROWS:
        raise SheetError(f"the file has {len(rows)} rows; the limit is {MAX_ROWS}")
    return rows


def _read_xlsx(data: bytes) -> list[list[str]]:
    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            total = sum(i.file_size for i in z.infolist())
            if total > 20 * MAX_IMPORT_BYTES:
                raise SheetError("the workbook expands to more than 640 MB; refusing it")
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except SheetError:
        raise
    except Exception as exc:  # openpyxl raises many kinds for damaged files
        raise SheetError(
            f"the xlsx workbook cannot be opened ({type(exc).__name__}: {exc})"
        ) from exc
    try:
        ws = wb.worksheets[0]
        rows: list[list[str]] = []
        for r in ws.iter_rows(values_only=True):
            rows.append([_cell_text(v) for v in r])
            if len(rows) > MAX_ROWS:
                raise SheetError(f"the sheet has more than {MAX_ROWS} rows")
        return rows
    except SheetError:
        raise
    except Exception as exc:
        raise SheetError(f"the xlsx workbook cannot be read ({type(exc).__name__}: {exc})") from exc
    finally:
        wb.close()


def _norm(h: str) -> str:
    return re.sub(r"[\s\u3000]+", "", h).replace("(", "（").replace(")", "）")


def find_sheet(raw: list[list[str]], required: str, known: Sequence[str]) -> Sheet:
    """Locate the header row (the first with ``required``) and map columns to ``known`` headers."""
    want = _norm(required)
    for i, row in enumerate(raw[:50]):
        normed = [_norm(c) for c in row]
        if want in normed:
            header = normed
            titles = ["".join(c for c in r if c) for r in raw[:i] if any(r)]
            data: list[tuple[int, list[str]]] = []
            footer: list[str] = []
            for j, r in enumerate(raw[i + 1 :], start=i + 2):
                if not any(c.strip() for c in r):
                    continue
                cells = (r + [""] * len(header))[: len(header)]
                first = cells[0].strip() if cells else ""
                if footer or re.match(r"^(填表人|联系电话|填报人|审核人)", first):
                    footer.append("  ".join(c for c in r if c))
                    continue
                data.append((j, cells))
            return Sheet(titles, header, data, footer)
    raise SheetError(
        f"no header row with “{required}” found in the first 50 rows (is this the right form?)"
    )


def write_xlsx(
    path: Path | io.BytesIO,
    title_lines: list[str],
    header: list[str],
    rows: list[list[object]],
    footer_lines: Sequence[str] = (),
    sheet_title: str = "Sheet1",
) -> None:
    import openpyxl
    from openpyxl.styles import Font

    wb = openpyxl.Workbook(write_only=False)
    ws = wb.active
    assert ws is not None
    ws.title = sheet_title[:31]
    for t in title_lines:
        ws.append([safe_cell(t, xlsx=True)])
    ws.append(safe_row(header, xlsx=True))
    for c in ws[ws.max_row]:
        c.font = Font(bold=True)
    for r in rows:
        ws.append(safe_row(r, xlsx=True))
    for f in footer_lines:
        ws.append([safe_cell(f, xlsx=True)])
    for i, h in enumerate(header, start=1):
        ws.column_dimensions[openpyxl.utils.get_column_letter(i)].width = max(
            10, min(40, len(h) * 2 + 4)
        )
    wb.save(path)


def write_csv(
    path: Path,
    title_lines: list[str],
    header: list[str],
    rows: list[list[object]],
    footer_lines: Sequence[str] = (),
    encoding: str = "utf-8-sig",
) -> None:
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        for t in title_lines:
            w.writerow([safe_cell(t)])
        w.writerow(safe_row(header))
        for r in rows:
            w.writerow(["" if v is None else safe_cell(v) for v in r])
        for f in footer_lines:
            w.writerow([safe_cell(f)])


def write_table(
    path: Path,
    title_lines: list[str],
    header: list[str],
    rows: list[list[object]],
    footer_lines: Sequence[str] = (),
    sheet_title: str = "Sheet1",
) -> None:
    """xlsx or csv by the file's extension."""
    if path.suffix.lower() == ".csv":
        write_csv(path, title_lines, header, rows, footer_lines)
    else:
        write_xlsx(path, title_lines, header, rows, footer_lines, sheet_title)
