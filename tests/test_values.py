"""The values a registration storm builds for every device, compiled (issue 18): the registrar's
session and events, the bus's event, presence's record. They were dataclasses whose generated
``__init__`` ran interpreted; now they are compiled classes, and must still be the values they
were: equal by their fields, printable, picklable; and the bus's event and presence's record,
which every listener shares, cannot be changed once made where they are compiled."""

from __future__ import annotations

import copy
import pickle

import pytest

from xueliang import _native, bus, presence
from xueliang.bus import BusEvent, EventBus
from xueliang.gb28181 import registrar
from xueliang.gb28181.registrar import (
    AuthFailed,
    DeviceSession,
    Moved,
    Offline,
    Online,
    Pending,
    Registered,
)
from xueliang.presence import MemoryPresence, Seen

DEV = "34020000001320000001"


def test_the_modules_are_compiled_with_the_hot_path() -> None:
    assert {"xueliang.bus", "xueliang.presence", "xueliang.gb28181.registrar"} <= set(_native.MODULES)


def test_a_bus_event_is_a_value() -> None:
    a = BusEvent("device.online", DEV, {"reason": "register"}, 1.5)
    assert a == BusEvent("device.online", DEV, {"reason": "register"}, 1.5)
    for other in (BusEvent("device.offline", DEV, {"reason": "register"}, 1.5),
                  BusEvent("device.online", DEV + "9", {"reason": "register"}, 1.5),
                  BusEvent("device.online", DEV, {}, 1.5), BusEvent("device.online", DEV, {"reason": "register"}, 2.0)):
        assert a != other
    assert a != ("device.online", DEV, {"reason": "register"}, 1.5)
    assert repr(a) == f"BusEvent(kind='device.online', subject='{DEV}', data={{'reason': 'register'}}, at=1.5)"
    for back in (pickle.loads(pickle.dumps(a)), copy.copy(a), copy.deepcopy(a)):
        assert back == a and type(back) is BusEvent
    with pytest.raises(TypeError):
        hash(a)  # its data is a dict, as the dataclass's was


def test_a_bus_event_defaults_to_no_data_and_now() -> None:
    import time

    before = time.time()
    ev = BusEvent("alarm", DEV)
    assert ev.data == {} and before <= ev.at <= time.time()
    assert BusEvent("alarm", DEV).data is not ev.data  # not one shared dict
    published = EventBus().publish("device.online", DEV, reason="register")
    assert published.kind == "device.online" and published.data == {"reason": "register"}


def test_a_presence_record_is_a_value() -> None:
    s = Seen(DEV, "node-a", 10.0, 12.5)
    assert s == Seen(DEV, "node-a", 10.0, 12.5) and hash(s) == hash(Seen(DEV, "node-a", 10.0, 12.5))
    assert s != Seen(DEV, "node-b", 10.0, 12.5) and s != Seen(DEV, "node-a", 10.0, 13.0)
    assert repr(s) == f"Seen(device_id='{DEV}', node='node-a', since=10.0, seen=12.5)"
    assert pickle.loads(pickle.dumps(s)) == s


async def test_memory_presence_keeps_since_and_moves_seen() -> None:
    p = MemoryPresence("here")
    p.online(DEV, 100.0)
    p.seen(DEV, 130.0)
    assert await p.get(DEV) == Seen(DEV, "here", 100.0, 130.0)
    p.offline(DEV)
    assert await p.get(DEV) is None


def test_the_registrar_events_are_values() -> None:
    s = DeviceSession(DEV)
    assert (s.password, s.admission, s.online, s.addr, s.transport, s.expires_at) == (None, "", False, None, "udp", 0.0)
    full = DeviceSession(DEV, "pw", "accepted", True, True, ("10.0.0.1", 5060), "tcp", "<sip:x>", "c", 1.0, 2.0,
                         "3.0", 4.0)
    assert full == DeviceSession(DEV, password="pw", admission="accepted", online=True, registered=True,
                                 addr=("10.0.0.1", 5060), transport="tcp", contact="<sip:x>", call_id="c",
                                 expires_at=1.0, last_seen=2.0, gb_version="3.0", registered_wall=4.0)
    assert full != s
    cases = [Online(DEV, "register"), Offline(DEV, "expired"), Registered(s, True, False),
             AuthFailed(DEV, "10.0.0.1", True), Pending(DEV, ("10.0.0.1", 5060)),
             Moved(DEV, ("10.0.0.1", 5060), ("10.0.0.2", 5060))]
    again = [Online(DEV, "register"), Offline(DEV, "expired"), Registered(DeviceSession(DEV), True, False),
             AuthFailed(DEV, "10.0.0.1", True), Pending(DEV, ("10.0.0.1", 5060)),
             Moved(DEV, ("10.0.0.1", 5060), ("10.0.0.2", 5060))]
    assert cases == again
    assert Online(DEV, "register") != Offline(DEV, "register")  # the kind matters, not just the fields
    assert Registered(s, True, False) != Registered(s, False, False)
    assert repr(Online(DEV, "register")) == f"Online(device_id='{DEV}', reason='register')"


@pytest.mark.skipif(_native.status != "compiled", reason="pure Python: Final is a promise to mypy only")
def test_compiled_events_cannot_be_changed() -> None:
    # An event goes to every listener: a field one of them set would reach the others.
    for module in (bus, presence, registrar):
        assert module.__file__ is not None and not module.__file__.endswith(".py")
    ev = BusEvent("device.online", DEV, {}, 1.0)
    for field, value in (("kind", "x"), ("subject", "x"), ("data", {}), ("at", 2.0)):
        with pytest.raises(AttributeError):
            setattr(ev, field, value)
    seen = Seen(DEV, "n", 1.0, 2.0)
    for field, value in (("device_id", "x"), ("node", "x"), ("since", 0.0), ("seen", 0.0)):
        with pytest.raises(AttributeError):
            setattr(seen, field, value)
