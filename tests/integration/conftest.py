from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.bus import EventBus
from xueliang.config import SipConfig
from xueliang.gb28181.service import SignallingService
from xueliang.registry.catalog_store import store_catalogs

PASSWORD = "sipp-pass-1"


@pytest.fixture
async def signalling(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[SignallingService]:
    cfg = SipConfig(host="127.0.0.1", port=0, password=PASSWORD, admission="open", keepalive_interval=1.0,
                    keepalive_misses=3, request_timeout=8.0)
    svc = SignallingService(cfg, sessions, EventBus(), nonce_secret=b"t" * 32)
    svc.set_catalog_sink(lambda catalogs: store_catalogs(sessions, catalogs))
    await svc.start()
    yield svc
    await svc.stop()
