"""Shared fixtures. Database tests run against SQLite and, when XUELIANG_TEST_PG_URL is set
(the test command sets it), PostgreSQL too: each test gets a fresh, migrated database."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.objects.seaweed import SeaweedServer
from xueliang.db.engine import create_engine, session_factory
from xueliang.db.migrate import upgrade

PG_URL = os.environ.get("XUELIANG_TEST_PG_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
_counter = itertools.count()
_templates: dict[str, str] = {}


def _sqlite_template(tmp_root: Path) -> Path:
    path = tmp_root / "template.db"
    if not path.exists():
        upgrade(f"sqlite+aiosqlite:///{path}")
    return path


async def _pg_admin(sql: str) -> None:
    import asyncpg

    u = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_template() -> str:
    if "pg" not in _templates:
        name = f"xl_tpl_{os.getpid()}"
        asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name}"))
        asyncio.run(_pg_admin(f"CREATE DATABASE {name}"))
        upgrade(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
        _templates["pg"] = name
    return _templates["pg"]


#: Whole folders whose tests start several processes of the platform each: they run alone,
#: after the parallel part of the suite (scripts/test.sh), so two of them never share the cores.
_SERIAL_DIRS = ("tests/cluster/",)
#: ... but for these modules of theirs, which run the cluster's parts in the test process (against
#: the session's Redis server) and start no platform process: they run in the parallel part.
_IN_PROCESS = tuple(f"tests/cluster/{m}.py::" for m in (
    "test_bus", "test_cascade_cluster", "test_cascade_media_cluster", "test_leadership", "test_limits",
    "test_placement", "test_presence", "test_rpc", "test_sweeper",
))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(_SERIAL_DIRS) and not item.nodeid.startswith(_IN_PROCESS):
            item.add_marker(pytest.mark.serial)


@pytest.fixture(scope="session", autouse=True)
def cheap_argon2() -> Iterator[None]:
    """argon2id with its smallest cost in the test processes: the platform's own parameters
    take about 0.3 s a hash on the test host, and nearly every API test hashes (the bootstrap
    administrator) and verifies (its login) at least once. The algorithm is the same; what is
    tested is who gets in, not the hashing's cost. Platforms the tests start as processes (the
    end-to-end demo, the cluster) keep the real parameters."""
    from xueliang.access import passwords

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        yield


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("db")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_root: Path, tmp_path: Path) -> str:
    """URL of a fresh migrated database (SQLite file, or a PostgreSQL database from a template)."""
    if request.param == "sqlite":
        dst = tmp_path / "test.db"
        shutil.copy(_sqlite_template(tmp_root), dst)
        return f"sqlite+aiosqlite:///{dst}"
    tpl = _pg_template()
    name = f"xl_t_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_pg_admin(f"CREATE DATABASE {name} TEMPLATE {tpl}"))
    request.addfinalizer(
        lambda: asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    )
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(db_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


@pytest.fixture
def registry(sessions: async_sessionmaker[AsyncSession]):  # type: ignore[no-untyped-def]
    from xueliang.registry.service import RegistryService

    return RegistryService(sessions)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A real S3-compatible server (SeaweedFS), one for the session; tests use their own bucket."""
    server = SeaweedServer(Path(tmp_path_factory.mktemp("seaweed"))).start()
    yield server
    server.stop()
