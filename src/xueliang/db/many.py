"""One statement over many rows, run the way the driver does it cheapest.

The hot writers (the signalling writer, the state history) hand thousands of plain tuples to
the driver at once. asyncpg pipelines an ``executemany`` in C. Python's sqlite3 module steps
each row as a statement of its own (reset, bind, step, the GIL given up and taken back around
each step), which cost about as much as SQLite's own work on the row (issue 18).

So on SQLite the rows go as multi-row statements, a few hundred rows each: an INSERT with many
``VALUES`` tuples, an UPDATE joined to a ``VALUES`` list (``UPDATE … FROM``, SQLite 3.33+).
Statement sizes come from a fixed ladder so that sqlite3's statement cache holds them all.
bench/storm_rows.py measures both forms (``storm_rows_sqlite_cpu_s`` and
``storm_rows_sqlite_executemany_cpu_s``).

A statement's rows must not match one table row twice (an UPDATE's keys, an upsert's
conflict keys, are distinct): which of two would win is not defined.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

#: Rows per SQLite statement, largest first: a batch is cut greedily into these sizes. 256 rows
#: of the widest statement here (14 columns) stay far below SQLite's 32,766 parameters.
LADDER = (256, 64, 16, 4, 1)

_PLACEHOLDERS: dict[str, Callable[[int], str]] = {
    "qmark": lambda i: "?",
    "numeric_dollar": lambda i: f"${i}",
    "numeric": lambda i: f":{i}",
    "format": lambda i: "%s",
    "pyformat": lambda i: "%s",
}


class Many:
    """A statement for many rows (each the same number of values): ``run`` writes them all.

    Build one with :meth:`insert` or :meth:`update`; ``sql`` is the one-row statement (what
    other drivers get with ``executemany``)."""

    def __init__(self, dialect: Dialect, one_row: str, rows_of: Callable[[int], str] | None) -> None:
        self.sql = one_row
        self._rows_of = rows_of
        #: Multi-row statements (SQLite); else the one-row statement through ``executemany``
        #: (bench/storm_rows.py turns it off on SQLite to compare).
        self.multi_row = dialect.name == "sqlite" and rows_of is not None
        self._sized: dict[int, str] = {}

    @classmethod
    def insert(cls, dialect: Dialect, table: str, columns: Sequence[str], values: Sequence[str] | None = None,
               tail: str = "") -> Many:
        """``INSERT INTO table (columns) VALUES (…)`` and ``tail`` (an ON CONFLICT clause).
        ``values``: each column's value as SQL, ``?`` for a parameter (default: all parameters),
        e.g. ``NULL`` for one that is always empty."""
        q = dialect.identifier_preparer.quote
        vals = list(values) if values is not None else ["?"] * len(columns)
        if len(vals) != len(columns):
            raise ValueError("one value per column")
        width = vals.count("?")
        head = f"INSERT INTO {q(table)} ({', '.join(q(c) for c in columns)}) VALUES "

        def row(place: Callable[[int], str], first: int) -> str:
            n = iter(range(first, first + width))
            return "(" + ", ".join(place(next(n)) if v == "?" else v for v in vals) + ")"

        place = _PLACEHOLDERS[dialect.paramstyle]
        qmark = _PLACEHOLDERS["qmark"]
        return cls(dialect, head + row(place, 1) + tail,
                   lambda n: head + ", ".join([row(qmark, 1)] * n) + tail)

    @classmethod
    def update(cls, dialect: Dialect, table: str, columns: Sequence[str], where: Sequence[str],
               keep: Sequence[str] = (), extra: str = "") -> Many:
        """``UPDATE table SET columns WHERE where``: a row gives the ``columns``' values, then the
        ``where`` columns' (each compared with ``=``, unless written with its operator, as
        ``"start <"``). A column in ``keep`` keeps its value where the row's is NULL; ``extra``
        is more of the condition, on the table's own columns."""
        q = dialect.identifier_preparer.quote
        place = _PLACEHOLDERS[dialect.paramstyle]
        conds = [(w.split()[0], w.split()[1] if " " in w else "=") for w in where]

        def sets(value: Callable[[int], str]) -> str:
            return ", ".join(f"{q(c)} = COALESCE({value(i)}, {q(c)})" if c in keep else f"{q(c)} = {value(i)}"
                             for i, c in enumerate(columns))

        def condition(value: Callable[[int], str], prefix: str) -> str:
            parts = [f"{prefix}{q(c)} {op} {value(len(columns) + i)}" for i, (c, op) in enumerate(conds)]
            return " AND ".join(parts + ([extra.format(t=prefix)] if extra else []))

        one = f"UPDATE {q(table)} SET {sets(lambda i: place(i + 1))} WHERE {condition(lambda i: place(i + 1), '')}"
        width = len(columns) + len(conds)
        row = "(" + ", ".join(["?"] * width) + ")"
        prefix = f"{q(table)}."

        def rows_of(n: int) -> str:
            # SQLite names a VALUES list's columns column1, column2, …
            def value(i: int) -> str:
                return f"v.column{i + 1}"
            return (f"UPDATE {q(table)} SET {sets(value)} FROM (VALUES {', '.join([row] * n)}) AS v "
                    f"WHERE {condition(value, prefix)}")

        return cls(dialect, one, rows_of)

    def statement(self, n: int) -> str:
        """The statement for ``n`` rows (SQLite), made once."""
        assert self._rows_of is not None
        sql = self._sized.get(n)
        if sql is None:
            sql = self._sized[n] = self._rows_of(n)
        return sql

    def statements(self, rows: Sequence[tuple[Any, ...]]) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """SQLite's statements for ``rows``, in order, with their parameters: a statement per
        step of :data:`LADDER`."""
        i, total = 0, len(rows)
        for size in LADDER:
            while total - i >= size:
                yield self.statement(size), tuple(chain.from_iterable(rows[i:i + size]))
                i += size

    async def run(self, conn: AsyncConnection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Every row written, in order."""
        if not rows:
            return
        if not self.multi_row:
            await conn.exec_driver_sql(self.sql, list(rows))
            return
        statements = list(self.statements(rows))
        aio: Any = (await conn.get_raw_connection()).driver_connection
        in_thread = getattr(aio, "_execute", None)
        if in_thread is not None and isinstance(getattr(aio, "_connection", None), sqlite3.Connection):
            # aiosqlite: every statement in one turn of its thread, not three hand-offs each
            # (cursor, execute, close) through SQLAlchemy and the event loop.
            raw: sqlite3.Connection = aio._connection

            def write() -> None:
                for sql, params in statements:
                    try:
                        raw.execute(sql, params)
                    except sqlite3.Error as e:  # as SQLAlchemy would raise it (db/engine.py's transient())
                        raise exc.DBAPIError.instance(sql, None, e, sqlite3.Error) from e

            await in_thread(write)
            return
        for sql, params in statements:
            await conn.exec_driver_sql(sql, params)
