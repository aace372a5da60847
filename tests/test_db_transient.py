"""`db.engine.transient`: a write refused because the database is away (worth trying again)
against one refused for what it holds (never)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import exc

from xueliang.db.engine import transient


class _Pg(Exception):
    """What asyncpg's errors carry: the SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _dbapi(orig: Exception, cls: type[exc.DBAPIError] = exc.DBAPIError) -> exc.DBAPIError:
    return cls("INSERT ...", {}, orig)


@pytest.mark.parametrize("error", [
    _dbapi(sqlite3.OperationalError("database is locked"), exc.OperationalError),
    _dbapi(ConnectionRefusedError(111, "Connection refused"), exc.OperationalError),
    _dbapi(_Pg("57P01")),  # admin shutdown: the server restarts
    _dbapi(_Pg("55000")),  # the database does not take connections now
    _dbapi(_Pg("08006")),  # connection failure
    _dbapi(_Pg("25006")),  # read-only: a standby during a failover
    _dbapi(_Pg("40001")),  # serialization failure
    _dbapi(Exception("connection is closed"), exc.InterfaceError),
    exc.TimeoutError("QueuePool limit reached"),
    ConnectionResetError(104, "reset"),
    TimeoutError(),
])
def test_the_database_away_is_transient(error: BaseException) -> None:
    assert transient(error)


@pytest.mark.parametrize("error", [
    _dbapi(sqlite3.IntegrityError("FOREIGN KEY constraint failed"), exc.IntegrityError),
    _dbapi(_Pg("23503")),  # foreign key violation, under a generic wrapper
    _dbapi(_Pg("22001")),  # value too long
    _dbapi(_Pg("42P01")),  # no such table
    _dbapi(sqlite3.DataError("x"), exc.DataError),
    _dbapi(sqlite3.ProgrammingError("x"), exc.ProgrammingError),
    ValueError("bad item"),
    KeyError("id"),
    RuntimeError("refused"),
])
def test_what_is_written_being_wrong_is_not(error: BaseException) -> None:
    assert not transient(error)
