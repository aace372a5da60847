"""Finished catalogs go to the registry through one queue: in the order they finished, as many
in a batch as waited, and a catalog the store refuses costs no other its place."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.waiting import until

from xueliang.bus import EventBus
from xueliang.config import SipConfig
from xueliang.db.tables import Channel, Device
from xueliang.gb28181.manscdp import CatalogItem
from xueliang.gb28181.service import SignallingService
from xueliang.registry.catalog_store import store_catalogs

BAD = "34020000001320000013"


def _dev(i: int) -> str:
    return f"340200000013200000{i:02d}"


def _cam(i: int) -> str:
    return f"340200000013100000{i:02d}"


@pytest.fixture
async def svc(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[SignallingService]:
    s = SignallingService(SipConfig(host="127.0.0.1", port=0, password="queue-pass-1", admission="open"),
                          sessions, EventBus(), nonce_secret=b"q" * 32)
    await s.start()
    yield s
    await s.stop()


async def test_catalogs_waiting_together_are_stored_together_in_order(
        svc: SignallingService, sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s, s.begin():
        for i in range(40):
            await s.execute(insert(Device).values(id=_dev(i), name=_dev(i), type_code="132"))
    batches: list[list[str]] = []

    async def sink(catalogs: list[tuple[str, list[CatalogItem]]]) -> None:
        await store_catalogs(sessions, catalogs)
        batches.append([d for d, _ in catalogs])  # once stored

    svc.set_catalog_sink(sink)
    for i in range(40):  # as a storm's one-camera catalogs finish, within one turn of the loop
        svc._queue_catalog(_dev(i), [CatalogItem(_cam(i), name=f"cam {i}", status="ON")])
    # the same device's next catalog after: stored after its first
    svc._queue_catalog(_dev(3), [CatalogItem(_cam(3), name="renamed by its device", status="OFF")])
    await until(lambda: sum(map(len, batches)) == 41)
    assert [d for b in batches for d in b] == [_dev(i) for i in range(40)] + [_dev(3)]
    assert len(batches) <= 2  # not a transaction per catalog
    async with sessions() as s:
        rows = dict((await s.execute(select(Channel.id, Channel.status))).all())
        assert len(rows) == 40 and rows[_cam(3)] == "OFF" and rows[_cam(4)] == "ON"
        assert (await s.get(Device, _dev(7))).channel_count == 1  # type: ignore[union-attr]


async def test_a_refused_catalog_costs_the_others_nothing(
        svc: SignallingService, sessions: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture) -> None:
    stored: list[str] = []
    calls: list[int] = []

    async def sink(catalogs: list[tuple[str, list[CatalogItem]]]) -> None:
        calls.append(len(catalogs))
        if any(d == BAD for d, _ in catalogs):
            raise RuntimeError("refused")
        stored.extend(d for d, _ in catalogs)

    svc.set_catalog_sink(sink)
    with caplog.at_level(logging.ERROR, logger="xueliang.signalling"):
        for i in range(10, 17):
            svc._queue_catalog(_dev(i), [CatalogItem(_cam(i), name="cam", status="ON")])
        await until(lambda: len(stored) == 6)
        await asyncio.sleep(0.05)
    assert stored == [_dev(i) for i in range(10, 17) if _dev(i) != BAD]
    assert calls[0] == 7 and calls[1:] == [1] * 7  # the batch, then each alone
    assert any(BAD in r.getMessage() for r in caplog.records)


async def test_a_catalog_bigger_than_a_batch_goes_alone(
        svc: SignallingService, sessions: async_sessionmaker[AsyncSession]) -> None:
    sizes: list[list[int]] = []

    async def sink(catalogs: list[tuple[str, list[CatalogItem]]]) -> None:
        sizes.append([len(items) for _, items in catalogs])

    svc.set_catalog_sink(sink)
    big = [CatalogItem(f"3402000000131{i:07d}", name="c", status="ON") for i in range(20_001)]
    svc._queue_catalog(_dev(1), [CatalogItem(_cam(1), name="c", status="ON")])
    svc._queue_catalog(_dev(2), big)
    svc._queue_catalog(_dev(3), [CatalogItem(_cam(3), name="c", status="ON")])
    await until(lambda: sum(map(len, sizes)) == 3)
    assert sizes == [[1], [20_001], [1]]


async def test_catalogs_wait_while_the_database_is_away_and_none_is_lost(
        svc: SignallingService, caplog: pytest.LogCaptureFixture) -> None:
    """The database refuses for a reason of its own (a restart, a failover): the catalogs wait at
    the head of the queue, in order, and are stored once it is back; none is dropped."""
    from sqlalchemy.exc import OperationalError

    stored: list[str] = []
    calls: list[list[str]] = []

    async def sink(catalogs: list[tuple[str, list[CatalogItem]]]) -> None:
        calls.append([d for d, _ in catalogs])
        if len(calls) <= 3:
            raise OperationalError("INSERT INTO channels ...", {}, ConnectionRefusedError(111, "Connection refused"))
        stored.extend(d for d, _ in catalogs)

    svc.set_catalog_sink(sink)
    with caplog.at_level(logging.WARNING, logger="xueliang.signalling"):
        for i in range(20, 26):
            svc._queue_catalog(_dev(i), [CatalogItem(_cam(i), name="cam", status="ON")])
        await until(lambda: len(stored) == 6, timeout=15)
    assert stored == [_dev(i) for i in range(20, 26)]
    assert calls[:3] == [[_dev(i) for i in range(20, 26)]] * 3  # the whole batch again, not each alone
    assert svc.catalog_store_retries == 3 and svc.status()["catalogs_waiting"] == 0
    assert any("unavailable" in r.getMessage() for r in caplog.records)


async def test_a_postgresql_outage_delays_catalogs_and_loses_none(
        svc: SignallingService, sessions: async_sessionmaker[AsyncSession], db_url: str) -> None:
    """A real outage: the test's PostgreSQL database stops taking connections and its sessions
    are ended; catalogs that finish meanwhile are in the registry once it takes them again."""
    if not db_url.startswith("postgresql"):
        pytest.skip("an outage of a PostgreSQL database (SQLite is a file in this process)")
    from sqlalchemy.engine import make_url
    from tests.conftest import _pg_admin

    name = make_url(db_url).database
    async with sessions() as s, s.begin():
        for i in range(30, 36):
            await s.execute(insert(Device).values(id=_dev(i), name=_dev(i), type_code="132"))
    svc.set_catalog_sink(lambda catalogs: store_catalogs(sessions, catalogs))
    await _pg_admin(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
    await _pg_admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
    try:
        for i in range(30, 36):
            svc._queue_catalog(_dev(i), [CatalogItem(_cam(i), name=f"cam {i}", status="ON")])
        await until(lambda: svc.catalog_store_retries >= 2, timeout=15)  # refused, and waiting
    finally:
        await _pg_admin(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")

    async def all_landed() -> bool:
        async with sessions() as s:
            return len((await s.execute(select(Channel.id))).all()) == 6

    await until(all_landed, timeout=20, every=0.2)
    async with sessions() as s:
        rows = dict((await s.execute(select(Channel.id, Channel.name))).all())
    assert rows == {_cam(i): f"cam {i}" for i in range(30, 36)}
    assert svc.status()["catalogs_waiting"] == 0
