"""A PostgreSQL that accepts the connection and never answers (a hung primary, a half-open
firewall) costs a request database.connect_timeout seconds and an error, not asyncpg's 60."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text

from xueliang.config import load_settings
from xueliang.db.engine import create_engine


async def test_a_silent_postgresql_is_given_up_after_the_connect_timeout() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.append(w)  # hold it open, say nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = load_settings(database={"url": f"postgresql+asyncpg://x:y@127.0.0.1:{port}/db", "connect_timeout": 1.0})
    engine = create_engine(settings.database.url, connect_timeout=settings.database.connect_timeout)
    t0 = time.monotonic()
    try:
        with pytest.raises((TimeoutError, OSError)):
            async with asyncio.timeout(20), engine.connect() as c:
                await c.execute(text("SELECT 1"))
        took = time.monotonic() - t0
    finally:
        await engine.dispose()
        server.close()
        for w in accepted:
            w.close()
    assert accepted, "the engine never reached the server"
    assert 0.8 < took < 10, took  # the configured second, not asyncpg's 60 (nor the test's 20)
