"""db/many.py: many rows in few statements must store exactly what one statement a row did.

The property tests run the SQLite statements straight through sqlite3 beside the one-row
statement through ``executemany`` and compare the tables; the last tests run ``Many.run`` on
each backend (PostgreSQL keeps ``executemany``) through the platform's engine."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from xueliang.db.engine import create_engine
from xueliang.db.many import LADDER, Many

_SQLITE = sqlite.dialect()
_TABLE = 'CREATE TABLE t (k VARCHAR(8) PRIMARY KEY, a INTEGER, b TEXT, "end" TEXT, since TEXT)'

_keys = st.text("abcdefgh", min_size=1, max_size=8)
_values = st.one_of(st.none(), st.integers(-2**40, 2**40), st.text(max_size=12))


def _tables() -> tuple[sqlite3.Connection, sqlite3.Connection]:
    out = []
    for _ in range(2):
        c = sqlite3.connect(":memory:", isolation_level=None)
        c.execute(_TABLE)
        out.append(c)
    return out[0], out[1]


def _rows(c: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return c.execute('SELECT k, a, b, "end", since FROM t ORDER BY k').fetchall()


def _apply(many: Many, rows: list[tuple[Any, ...]], multi: sqlite3.Connection, one: sqlite3.Connection) -> None:
    for sql, params in many.statements(rows):
        assert sql.count("?") == len(params)
        multi.execute(sql, params)
    one.executemany(many.sql, rows)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_keys, _values, _values), max_size=700))
def test_an_upsert_stores_what_a_row_at_a_time_does(rows: list[tuple[Any, ...]]) -> None:
    upsert = Many.insert(_SQLITE, "t", ("k", "a", "b", "end", "since"), ("?", "?", "?", "NULL", "?"),
                         ' ON CONFLICT (k) DO UPDATE SET a = excluded.a, b = excluded.b')
    multi, one = _tables()
    # the same keys twice in a batch only across statements' calls (the writers' batches are keyed)
    seen: set[str] = set()
    first = [r for r in rows if not (r[0] in seen or seen.add(r[0]))]  # type: ignore[func-returns-value]
    # a value spelled in the SQL (NULL) takes no parameter: the row has one value fewer
    _apply(upsert, [(k, a, b, "x") for k, a, b in first], multi, one)
    _apply(upsert, [(k, b, a, "y") for k, a, b in first[::3]], multi, one)  # conflicts: updated
    assert _rows(multi) == _rows(one)
    assert len(_rows(multi)) == len(first)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_keys, st.tuples(_values, _values, st.text("0123", min_size=1, max_size=2)), max_size=600),
       st.sampled_from(["", "{t}\"end\" IS NULL"]))
def test_an_update_with_kept_values_and_a_range_stores_what_a_row_at_a_time_does(
    changes: dict[str, tuple[Any, Any, str]], extra: str,
) -> None:
    multi, one = _tables()
    for c in (multi, one):
        c.executemany('INSERT INTO t VALUES (?, 1, ?, ?, ?)',
                      [(k, "old", None if i % 3 else "done", str(i % 4)) for i, k in enumerate(changes)])
        c.execute("INSERT INTO t VALUES ('zzz', 7, 'untouched', NULL, '0')")
    update = Many.update(_SQLITE, "t", ("a", "b"), ("k", "since <"), keep=("b",), extra=extra)
    _apply(update, [(a, b, k, bound) for k, (a, b, bound) in changes.items()], multi, one)
    assert _rows(multi) == _rows(one)
    assert ("zzz", 7, "untouched", None, "0") in _rows(multi)


@given(st.integers(0, 5000))
def test_the_statements_take_every_row_once_in_order_in_sizes_of_the_ladder(n: int) -> None:
    many = Many.insert(_SQLITE, "t", ("k", "a"))
    rows = [(str(i), i) for i in range(n)]
    out: list[Any] = []
    for sql, params in many.statements(rows):
        size = len(params) // 2
        assert size in LADDER and sql == many.statement(size)
        out.extend(params)
    assert out == [v for r in rows for v in r]
    assert len(many._sized) <= len(LADDER)  # sqlite3's statement cache holds them all


def test_other_dialects_get_the_one_row_statement_in_their_own_placeholders() -> None:
    pg = postgresql.asyncpg.dialect()  # type: ignore[attr-defined]
    ins = Many.insert(pg, "health_intervals", ("subject", "end", "start"), ("?", "NULL", "?"), " ON CONFLICT DO NOTHING")
    assert ins.sql == 'INSERT INTO health_intervals (subject, "end", start) VALUES ($1, NULL, $2) ON CONFLICT DO NOTHING'
    assert not ins.multi_row
    upd = Many.update(pg, "t", ("end",), ("subject", "start <"), keep=("end",), extra='{t}"end" IS NULL')
    assert upd.sql == 'UPDATE t SET "end" = COALESCE($1, "end") WHERE subject = $2 AND start < $3 AND "end" IS NULL'
    with pytest.raises(ValueError):
        Many.insert(pg, "t", ("a", "b"), ("?",))


async def test_run_writes_every_row_on_each_backend(engine: AsyncEngine) -> None:
    n = LADDER[0] + LADDER[1] + 3  # three sizes of statement on SQLite
    async with engine.begin() as conn:
        await conn.exec_driver_sql("CREATE TABLE many_t (k VARCHAR(8) PRIMARY KEY, a INTEGER, b VARCHAR(20))")
        ins = Many.insert(conn.dialect, "many_t", ("k", "a", "b"), tail=" ON CONFLICT (k) DO UPDATE SET a = excluded.a")
        assert ins.multi_row == (conn.dialect.name == "sqlite")
        await ins.run(conn, [(f"k{i}", i, f"b{i}") for i in range(n)])
        await ins.run(conn, [(f"k{i}", -i, "ignored") for i in range(0, n, 2)])
        upd = Many.update(conn.dialect, "many_t", ("b",), ("k",), keep=("b",))
        await upd.run(conn, [(None if i % 4 else f"new{i}", f"k{i}") for i in range(0, n, 2)])
        got = {k: (a, b) for k, a, b in (await conn.exec_driver_sql("SELECT k, a, b FROM many_t")).all()}
    assert len(got) == n
    for i in range(n):
        a = -i if i % 2 == 0 else i
        b = f"new{i}" if i % 4 == 0 else f"b{i}"
        assert got[f"k{i}"] == (a, b), i


async def test_on_sqlite_the_statements_go_in_one_turn_of_the_drivers_thread_and_errors_are_sqlalchemys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'many.db'}")
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE many_t (k VARCHAR(8) PRIMARY KEY, a INTEGER NOT NULL)")
        # not through SQLAlchemy's execution (three hand-offs between threads a statement)
        monkeypatch.setattr(AsyncConnection, "exec_driver_sql", _refused)
        ins = Many.insert(engine.dialect, "many_t", ("k", "a"))
        async with engine.begin() as conn:
            await ins.run(conn, [(f"k{i}", i) for i in range(300)])
        with pytest.raises(exc.IntegrityError):  # NOT NULL: transient() tells it from a lock
            async with engine.begin() as conn:
                await ins.run(conn, [("new", 1), ("bad", None)])
        monkeypatch.undo()
        async with engine.connect() as conn:
            keys = [k for (k,) in (await conn.exec_driver_sql("SELECT k FROM many_t")).all()]
        assert len(keys) == 300 and "new" not in keys  # the failed batch rolled back whole
    finally:
        await engine.dispose()


async def _refused(*_args: Any, **_kwargs: Any) -> None:
    raise AssertionError("a statement went through SQLAlchemy's execution")
