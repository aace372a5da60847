"""Catalogs into the registry: only what a catalog really changes is written (the console's maps
poll the channels' update time), and survey fields are only filled where empty."""

from __future__ import annotations

import asyncio

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Device
from xueliang.gb28181.manscdp import CatalogItem
from xueliang.registry.catalog_store import store_catalog

NVR = "34020000001180000001"
CAM = ["34020000001310000001", "34020000001310000002"]


async def _stamps(sessions: async_sessionmaker[AsyncSession]) -> dict[str, object]:
    async with sessions() as s:
        return dict((await s.execute(select(Channel.id, Channel.updated_at).where(Channel.id.in_(CAM)))).all())


async def test_an_unchanged_catalog_writes_nothing(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        await s.execute(insert(Device).values(id=NVR, name="nvr", type_code="118"))
    items = [CatalogItem(c, name=f"cam {i}", status="ON", manufacturer="X", longitude=117.2, latitude=31.8,
                         parent_ids=[NVR]) for i, c in enumerate(CAM)]
    await store_catalog(sessions, NVR, items)
    first = await _stamps(sessions)
    await asyncio.sleep(1.1)  # SQLite's CURRENT_TIMESTAMP has whole seconds
    await store_catalog(sessions, NVR, items)  # the same catalog again (hourly refresh)
    assert await _stamps(sessions) == first
    items[1].status = "OFF"
    await store_catalog(sessions, NVR, items)
    after = await _stamps(sessions)
    assert after[CAM[0]] == first[CAM[0]] and after[CAM[1]] != first[CAM[1]]
    async with sessions() as s:
        assert (await s.get(Channel, CAM[1])).status == "OFF"  # type: ignore[union-attr]
