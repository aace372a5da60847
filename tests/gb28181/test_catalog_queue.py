"""Finished catalogs go to the registry through one queue: in the order they finished, as many
in a batch as waited, and a catalog the store refuses costs no other its place."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.waiting import until

from xueliang.bus import EventBus
from xueliang.config import SipConfig
from xueliang.db.tables import Channel, Device
from xueliang.gb28181.catalog_queue import CatalogQueue, Kind
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


# ---- the bound while the database is away (catalog_queue.py) ---------------------------------

def _items(device: int, n: int, tag: str = "") -> list[CatalogItem]:
    return [CatalogItem(f"3402000000131{device:03d}{j:04d}", name=f"{tag}{j}", status="ON") for j in range(n)]


def test_past_the_bound_a_replaced_whole_catalog_goes_first() -> None:
    q = CatalogQueue(max_items=10)
    q.add(_dev(2), _items(2, 3), Kind.CHANGE)  # the oldest, but nothing replaces it
    q.add(_dev(1), _items(1, 3, "old"), Kind.WHOLE)
    q.add(_dev(1), _items(1, 3, "new"), Kind.WHOLE)
    assert (len(q), q.items, q.dropped) == (3, 9, 0)  # within the bound: nothing goes
    q.add(_dev(3), _items(3, 3), Kind.WHOLE)
    # 12 > 10: device 1's first whole catalog is replaced by its second, and goes (down to 9)
    assert (q.items, q.dropped, q.superseded) == (9, 1, 1)
    batch = q.take(100)
    assert [(d, it[0].name, k) for d, it, k in batch] == [(_dev(2), "0", Kind.CHANGE), (_dev(1), "new0", Kind.WHOLE),
                                                       (_dev(3), "0", Kind.WHOLE)]
    assert q.items == 0 and len(q) == 0


def test_past_the_bound_with_nothing_replaced_the_oldest_go_and_changes_are_never_replaced() -> None:
    q = CatalogQueue(max_items=10)
    q.add(_dev(1), _items(1, 4), Kind.CHANGE)  # a change before a whole catalog is not replaced by it (a DEL)
    q.add(_dev(2), _items(2, 4), Kind.PARTIAL)
    q.add(_dev(1), _items(1, 4), Kind.WHOLE)
    # 12 > 10, nothing replaced: the oldest go until at most 9 (a tenth under the bound) wait
    assert (len(q), q.items, q.dropped, q.superseded) == (2, 8, 1, 0)
    assert [(d, k) for d, _, k in q.take(100)] == [(_dev(2), Kind.PARTIAL), (_dev(1), Kind.WHOLE)]


def test_a_partial_catalog_is_replaced_by_a_later_whole_one_but_never_replaces() -> None:
    q = CatalogQueue(max_items=10)
    q.add(_dev(2), _items(2, 3), Kind.WHOLE)  # the oldest; a later partial catalog does not replace it
    q.add(_dev(1), _items(1, 3), Kind.PARTIAL)
    q.add(_dev(2), _items(2, 3), Kind.PARTIAL)
    q.add(_dev(1), _items(1, 3), Kind.WHOLE)  # 12: device 1's partial goes, replaced
    assert q.superseded == 1
    assert [(d, k) for d, _, k in q.take(100)] == [(_dev(2), Kind.WHOLE), (_dev(2), Kind.PARTIAL), (_dev(1), Kind.WHOLE)]


def test_the_newest_catalog_stays_however_big() -> None:
    q = CatalogQueue(max_items=10)
    q.add(_dev(1), _items(1, 2), Kind.WHOLE)
    q.add(_dev(2), _items(2, 30), Kind.WHOLE)
    assert (len(q), q.items, q.dropped) == (1, 30, 1)


def test_a_batch_put_back_counts_again_and_keeps_its_place() -> None:
    q = CatalogQueue(max_items=100)
    for i in range(5):
        q.add(_dev(i), _items(i, 2), Kind.WHOLE)
    batch = q.take(5)  # two catalogs' worth: 4 items
    assert [d for d, _, _ in batch] == [_dev(0), _dev(1)] and q.items == 6
    q.add(_dev(9), _items(9, 1), Kind.CHANGE)
    q.put_back(batch[1:])  # the first was stored, the second not
    assert q.items == 9
    assert [d for d, _, _ in q.take(100)] == [_dev(1), _dev(2), _dev(3), _dev(4), _dev(9)]


_OPS = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(0, 4), st.integers(1, 6), st.sampled_from(list(Kind))),
    st.tuples(st.just("take"), st.integers(1, 12)),
    st.tuples(st.just("fail"), st.integers(1, 12)),  # taken, and put back: the database refused
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(_OPS, st.integers(3, 20))
def test_the_queue_keeps_its_count_its_order_and_its_bound(ops: list[tuple[object, ...]], bound: int) -> None:
    """Whatever arrives and whatever the store refuses: the item count is the items waiting, what
    waits is in arrival order, it holds at most the bound (or one catalog), nothing is taken
    twice, and a whole catalog is only replaced by a later whole catalog of its device."""
    q = CatalogQueue(max_items=bound)
    serial = 0
    stored: list[int] = []
    arrived: dict[int, tuple[str, Kind]] = {}
    for op in ops:
        if op[0] == "add":
            _, dev, n, kind = op
            assert isinstance(dev, int) and isinstance(n, int) and isinstance(kind, Kind)
            serial += 1
            items = _items(dev, n, f"{serial}:")
            arrived[serial] = (_dev(dev), kind)
            q.add(_dev(dev), items, kind)
        elif len(q):
            assert isinstance(op[1], int)
            batch = q.take(op[1])
            if op[0] == "fail":
                q.put_back(batch)
            else:
                stored.extend(int(str(it[0].name).split(":")[0]) for _, it, _ in batch)
        waiting = [int(str(it[0].name).split(":")[0]) for _, it, _ in list(q._entries)]
        assert q.items == sum(len(it) for _, it, _ in q._entries)
        assert q.items <= bound or len(q) == 1
        assert waiting == sorted(waiting) and len(set(stored + waiting)) == len(stored) + len(waiting)
        assert not stored or not waiting or max(stored) < min(waiting)
    gone = set(arrived) - set(stored) - {int(str(it[0].name).split(":")[0]) for _, it, _ in q._entries}
    assert len(gone) == q.dropped
    # a change is never replaced, only dropped as one of the oldest
    assert sum(arrived[s][1] is Kind.CHANGE for s in gone) <= q.dropped - q.superseded
    # what was replaced had a later whole catalog of its device
    replaceable = [s for s in gone if arrived[s][1] is not Kind.CHANGE
                   and any(t > s and arrived[t] == (arrived[s][0], Kind.WHOLE) for t in arrived)]
    assert q.superseded <= len(replaceable)


async def test_while_the_database_is_away_the_waiting_catalogs_stay_within_the_bound(
        svc: SignallingService, caplog: pytest.LogCaptureFixture) -> None:
    """A long outage: catalogs keep finishing; a device's replaced catalog goes, the status says
    how many went and how many items wait, and once the database is back what was kept is stored,
    in order."""
    from sqlalchemy.exc import OperationalError

    away = True
    stored: list[tuple[str, str]] = []

    async def sink(catalogs: list[tuple[str, list[CatalogItem]]]) -> None:
        if away:
            raise OperationalError("INSERT INTO channels ...", {}, ConnectionRefusedError(111, "Connection refused"))
        stored.extend((d, str(items[0].name)) for d, items in catalogs)

    svc.set_catalog_sink(sink)
    svc._catalog_queue.max_items = 10
    with caplog.at_level(logging.ERROR, logger="xueliang.signalling"):
        svc._queue_catalog(_dev(40), _items(40, 4, "first"), Kind.WHOLE)
        await until(lambda: svc.catalog_store_retries >= 1)  # refused: waiting
        svc._queue_catalog(_dev(41), _items(41, 4), Kind.CHANGE)
        svc._queue_catalog(_dev(40), _items(40, 4, "second"), Kind.WHOLE)
        await until(lambda: svc.status()["catalogs_dropped"] == 1)
    status = svc.status()
    assert (status["catalogs_waiting"], status["catalog_items_waiting"]) == (2, 8)
    assert any("dropped 1 replaced" in r.getMessage() for r in caplog.records)
    away = False
    await until(lambda: len(stored) == 2, timeout=40)
    assert stored == [(_dev(41), "0"), (_dev(40), "second0")]
    assert svc.status()["catalog_items_waiting"] == 0
