"""Spreadsheet helpers shared by the survey and channel-list tests."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Base

Sessions = async_sessionmaker[AsyncSession]


def xlsx(rows: list[list[Any]]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for r in rows:
        ws.append([ILLEGAL_CHARACTERS_RE.sub("", c) if isinstance(c, str) else c for c in r])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(rows: list[list[Any]], encoding: str = "utf-8") -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode(encoding)


async def dump(sessions: Sessions) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order: two equal dumps mean nothing changed."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with sessions() as s:
        for name, table in Base.metadata.tables.items():
            if name == "alembic_version":
                continue
            rows = (await s.execute(select(table).order_by(*table.primary_key.columns))).all()
            out[name] = [tuple(r) for r in rows]
    return out
