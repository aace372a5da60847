"""Async engine and session factory for SQLite (embedded) and PostgreSQL (production)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, echo: bool = False, pool_size: int = 10, connect_timeout: float = 10.0) -> AsyncEngine:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _rec):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            # WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True,
        connect_args={"timeout": connect_timeout},
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


#: SQLSTATE classes that are about what was written (data, constraints, syntax or access), not
#: the database's state: trying again cannot help.
_PERMANENT_SQLSTATE = ("22", "23", "42")


def transient(error: BaseException) -> bool:
    """Whether ``error`` says the database could not do it now (unreachable, restarting, a
    connection lost or refused, read-only during a failover, locked, out of resources) rather
    than that what was asked is wrong. A write that failed so is worth trying again later."""
    if isinstance(error, (exc.IntegrityError, exc.DataError, exc.ProgrammingError)):
        return False
    if isinstance(error, exc.DBAPIError):
        sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
        return not (isinstance(sqlstate, str) and sqlstate[:2] in _PERMANENT_SQLSTATE)
    return isinstance(error, (exc.TimeoutError, exc.DisconnectionError, OSError, TimeoutError))
