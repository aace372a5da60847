"""INSERT … ON CONFLICT for both SQLite and PostgreSQL, chosen by the session's dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(session: AsyncSession, table: Table) -> Any:
    name = session.get_bind().dialect.name
    return postgresql.insert(table) if name == "postgresql" else sqlite.insert(table)


def batch_size(session: AsyncSession, columns: int) -> int:
    """Rows per statement within the driver's bind-parameter limit (SQLite 32766, asyncpg 32767)."""
    return max(1, min(5000, 32000 // max(1, columns)))
