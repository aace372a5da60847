"""Catalogs into the registry: only what a catalog really changes is written (the console's maps
poll the channels' update time), and survey fields are only filled where empty."""

from __future__ import annotations

import asyncio
import copy
import random

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Device
from xueliang.gb28181.manscdp import CatalogItem
from xueliang.registry.catalog_store import rows_from_catalog, store_catalog, store_catalogs

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


# ---- many catalogs in one transaction -------------------------------------------------------

DEVS = ["34020000001320000001", "34020000001320000002", "34020000001180000003"]
CHS = [f"3402000000131000010{i}" for i in range(4)]
_COLS = (Channel.id, Channel.device_id, Channel.status, Channel.name, Channel.parent_id, Channel.manufacturer,
         Channel.kind, Channel.division_code)


async def _reset(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Three devices; a channel of the first, a surveyed one of nobody's yet; two not there."""
    async with sessions() as s, s.begin():
        await s.execute(Channel.__table__.delete())
        await s.execute(Device.__table__.delete())
        for d in DEVS:
            await s.execute(insert(Device).values(id=d, name=d, type_code=d[10:13], channel_count=7))
        await s.execute(insert(Channel).values(id=CHS[0], name="north gate", kind="camera", device_id=DEVS[0],
                                               parent_id=DEVS[0], status="ON", division_code="340200"))
        await s.execute(insert(Channel).values(id=CHS[1], name="surveyed", kind="camera", device_id=None,
                                               status="UNKNOWN", division_code="340200"))


async def _snapshot(sessions: async_sessionmaker[AsyncSession]) -> tuple[object, object]:
    async with sessions() as s:
        chans = sorted(tuple(r) for r in (await s.execute(select(*_COLS))).all())
        counts = sorted(tuple(r) for r in (await s.execute(select(Device.id, Device.channel_count))).all())
    return chans, counts


def _random_catalogs(rnd: random.Random) -> list[tuple[str, list[CatalogItem]]]:
    out = []
    for _ in range(rnd.randint(1, 6)):
        items = []
        for ch in rnd.sample(CHS, rnd.randint(1, 3)):
            event = rnd.choice([None, None, "ON", "OFF", "VLOST", "DEL", "UPDATE", "ADD"])
            status_only = event in ("ON", "OFF", "VLOST") and rnd.random() < 0.7
            items.append(CatalogItem(ch, name=None if status_only else rnd.choice(["a", "b", None]),
                                     status=event if status_only else rnd.choice(["ON", "OFF", "VLOST", "DEFECT", ""]),
                                     manufacturer=rnd.choice(["X", "Y", None]), event=event))
        out.append((rnd.choice(DEVS), items))
    return out


async def test_a_batch_of_catalogs_is_stored_as_one_after_another(sessions: async_sessionmaker[AsyncSession]) -> None:
    """store_catalogs (one transaction) against store_catalog for each in turn, over random
    catalogs of three devices sharing four channels: the same rows, the same channel counts,
    the same status changes reported in the same order. Events (DEL, status only), a channel
    another device owns, a surveyed channel nobody owns yet, one channel twice in a batch."""
    for seed in range(30):
        rnd = random.Random(seed)
        catalogs = _random_catalogs(rnd)
        one_by_one: list[tuple[str, str, str]] = []
        await _reset(sessions)
        for device_id, items in catalogs:
            await store_catalog(sessions, device_id, [copy.copy(it) for it in items], on_status=one_by_one.extend)
        expected = await _snapshot(sessions)
        batched: list[tuple[str, str, str]] = []
        await _reset(sessions)
        n = await store_catalogs(sessions, [(d, [copy.copy(it) for it in items]) for d, items in catalogs],
                                 on_status=batched.extend)
        assert await _snapshot(sessions) == expected, (seed, catalogs)
        assert batched == one_by_one, (seed, catalogs)
        assert n == sum(len(rows_from_catalog(d, items)) for d, items in catalogs)


async def test_one_channel_claimed_by_two_devices_in_a_batch_stays_with_the_first(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    await _reset(sessions)
    changes: list[tuple[str, str, str]] = []
    await store_catalogs(sessions, [(DEVS[1], [CatalogItem(CHS[2], name="first", status="ON")]),
                                    (DEVS[2], [CatalogItem(CHS[2], name="second", status="OFF")])],
                         on_status=changes.extend)
    async with sessions() as s:
        ch = await s.get(Channel, CHS[2])
        counts = dict((await s.execute(select(Device.id, Device.channel_count))).all())
    assert ch is not None and (ch.device_id, ch.name, ch.status) == (DEVS[1], "first", "ON")
    assert changes == [(CHS[2], "ON", DEVS[1])]
    # each whole catalog says how many cameras its device has, the claimant's too
    assert counts[DEVS[1]] == 1 and counts[DEVS[2]] == 1 and counts[DEVS[0]] == 7
