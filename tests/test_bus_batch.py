"""The in-process bus's batch subscription (bus.Batch): what an ordinary subscription takes,
appended and taken at once."""

from __future__ import annotations

import asyncio

import pytest

from xueliang.bus import EventBus


async def test_a_batch_takes_its_kinds_and_prefixes_in_order() -> None:
    bus = EventBus()
    b = bus.subscribe_batch("device.online", "alarm")
    p = bus.subscribe_batch("stream")  # a prefix, as subscribe() takes it
    plain = bus.subscribe("device.online", "alarm")
    for i in range(5):
        bus.publish("device.online", f"d{i}")
        bus.publish("device.offline", f"d{i}")
        bus.publish("stream.up", f"s{i}")
    bus.publish("alarm", "c1")
    assert not b.empty()
    got = b.take(100)
    assert [(e.kind, e.subject) for e in got] == [("device.online", f"d{i}") for i in range(5)] + [("alarm", "c1")]
    assert b.empty() and b.take(10) == []
    assert [e.subject for e in p.take(100)] == [f"s{i}" for i in range(5)]
    same = []
    while not plain.queue.empty():
        same.append(plain.queue.get_nowait())
    assert same == got  # the same events as an ordinary subscription sees


async def test_a_batch_is_taken_in_pieces_and_bounded() -> None:
    bus = EventBus()
    b = bus.subscribe_batch("device.online", maxsize=4)
    for i in range(6):
        bus.publish("device.online", f"d{i}")
    assert b.dropped == 2  # full: the oldest dropped and counted, as a subscription does
    assert [e.subject for e in b.take(3)] == ["d2", "d3", "d4"]
    assert [e.subject for e in b.take(3)] == ["d5"]


async def test_a_batch_waits_for_the_next_event_and_closes() -> None:
    bus = EventBus()
    b = bus.subscribe_batch("device.online")
    waiter = asyncio.create_task(b.get())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    bus.publish("device.offline", "x")  # not its kind: still waiting
    await asyncio.sleep(0.01)
    assert not waiter.done()
    bus.publish("device.online", "d1")
    assert (await asyncio.wait_for(waiter, 1)).subject == "d1"
    bus.publish("device.online", "d2")
    await asyncio.wait_for(b.wait(), 1)  # an event there: returns at once
    assert [e.subject for e in b.take(10)] == ["d2"]
    b.close()
    bus.publish("device.online", "d3")
    assert b.empty()


def test_a_batch_names_its_kinds() -> None:
    with pytest.raises(ValueError):
        EventBus().subscribe_batch()
