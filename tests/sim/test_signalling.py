"""The simulator's signalling against a fake platform: registration, keepalive, queries,
controls, subscriptions and faults."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from xueliang.gb28181 import manscdp, ptz
from xueliang.gb28181.endpoint import SipTimeout
from xueliang.gb28181.manscdp import CatalogItem, RecordItem
from xueliang.sim.device import ChannelSpec
from xueliang.sim.recordings import RecordingSchedule, format_gb_time
from xueliang.sim.simulator import DeviceSpec, Simulator, make_id

from ._platform import FakePlatform


@pytest.fixture
async def platform() -> AsyncIterator[FakePlatform]:
    p = FakePlatform()
    await p.start()
    yield p
    await p.stop()


def _sim(platform: FakePlatform, **kw: Any) -> Simulator:
    kw.setdefault("video", False)
    kw.setdefault("keepalive", 0.3)
    kw.setdefault("summary_interval", 0)
    kw.setdefault("retry_interval", 0.3)
    kw.setdefault("register_rate", 1000)
    return Simulator(platform.address, **kw)


@pytest.mark.parametrize("qop", [True, False])
async def test_register_with_digest_keepalive_and_unregister(qop: bool) -> None:
    platform = FakePlatform(qop=qop)
    await platform.start()
    try:
        async with _sim(platform, devices=3, channels=1, gb_version="mixed") as sim:
            assert await sim.wait_registered(timeout=5)
            ids = [d.id for d in sim.devices]
            assert all(i[10:13] == "132" for i in ids)
            await platform.wait_for(lambda: set(platform.registrations) == set(ids))
            await platform.wait_for(lambda: all(platform.keepalives[i] >= 2 for i in ids), 5)
            versions = {platform.registrations[i].version for i in ids}
            assert versions == {"2.0", "3.0"}
            # challenge first, then success, same Call-ID
            first = [e for e in platform.register_log if e[0] == ids[0]][:2]
            assert [e[1] for e in first] == [401, 200]
            assert first[0][2] == first[1][2] == sim.devices[0].call_id
            assert sim.devices[0].clock_offset == pytest.approx(0, abs=2)
        # stop() unregistered every device (Expires 0)
        assert platform.registrations == {}
    finally:
        await platform.stop()


async def test_refresh_before_expiry_keeps_call_id(platform: FakePlatform) -> None:
    async with _sim(platform, devices=1, expires=2) as sim:
        dev = sim.devices[0]
        await platform.wait_for(lambda: platform.registrations.get(dev.id) is not None)
        await platform.wait_for(lambda: platform.registrations[dev.id].count >= 2, 5)
        assert platform.registrations[dev.id].call_id == dev.call_id


async def test_catalog_one_item_per_message_in_gbk(platform: FakePlatform) -> None:
    async with _sim(platform, devices=1, channels=5, split_catalog=True, gbk=True) as sim:
        await sim.wait_registered()
        dev = sim.devices[0]
        assert dev.id[10:13] == "118"
        assert all(c[10:13] == "131" for c in dev.channels)
        await platform.wait_for(lambda: dev.id in platform.registrations)
        sn = await platform.query(dev.id, "Catalog")
        await platform.wait_for(lambda: len(platform.messages("Catalog", dev.id, sn)) == 5)
        parts = platform.messages("Catalog", dev.id, sn)
        assert all(p.msg.sum_num == 5 and p.msg.list_num == 1 for p in parts)
        assert all(b'encoding="GB2312"' in p.body for p in parts)
        assert any("东湖区".encode("gbk") in p.body for p in parts)
        items = [CatalogItem.from_dict(i) for p in parts for i in p.msg.items]
        assert sorted(i.device_id for i in items) == sorted(dev.channels)
        first = next(i for i in items if i.device_id == next(iter(dev.channels)))
        assert first.name == "东湖区城关镇第一中学校门1"
        assert first.parent_id == dev.id
        assert first.status == "ON" and first.parental == 0
        assert first.longitude is not None and first.latitude is not None
        assert first.ptz_type in (1, 3)
        assert first.manufacturer and first.model and first.owner and first.civil_code
        assert first.address


async def test_catalog_split_by_count_in_utf8(platform: FakePlatform) -> None:
    async with _sim(platform, devices=1, channels=20, catalog_per_message=8) as sim:
        await sim.wait_registered()
        dev = sim.devices[0]
        await platform.wait_for(lambda: dev.id in platform.registrations)
        sn = await platform.query(dev.id, "Catalog")
        await platform.wait_for(lambda: len(platform.messages("Catalog", dev.id, sn)) == 3)
        parts = platform.messages("Catalog", dev.id, sn)
        assert sorted(p.msg.list_num or 0 for p in parts) == [4, 8, 8]
        assert {p.msg.sum_num for p in parts} == {20}
        assert all(b'encoding="UTF-8"' in p.body for p in parts)
        assert any("东湖区".encode() in p.body for p in parts)


async def test_device_info_status_and_record_info(platform: FakePlatform) -> None:
    async with _sim(platform, devices=1, channels=2, catalog_per_message=8) as sim:
        await sim.wait_registered()
        dev = sim.devices[0]
        ch = next(iter(dev.channels))
        await platform.wait_for(lambda: dev.id in platform.registrations)
        sn = await platform.query(dev.id, "DeviceInfo")
        await platform.wait_for(lambda: platform.messages("DeviceInfo", dev.id, sn))
        info = manscdp.DeviceInfo.from_message(platform.messages("DeviceInfo", dev.id, sn)[0].msg)
        assert info.result == "OK" and info.channel == 2 and info.manufacturer
        sn = await platform.query(dev.id, "DeviceStatus")
        await platform.wait_for(lambda: platform.messages("DeviceStatus", dev.id, sn))
        status = manscdp.DeviceStatus.from_message(
            platform.messages("DeviceStatus", dev.id, sn)[0].msg
        )
        assert status.online == "ONLINE" and status.status == "OK" and status.device_time
        now = dt.datetime.now().replace(microsecond=0)
        start, end = now - dt.timedelta(hours=24), now
        expected = RecordingSchedule().files(ch, start, end, now=now)
        sn = await platform.query(
            dev.id,
            "RecordInfo",
            target=ch,
            StartTime=format_gb_time(start),
            EndTime=format_gb_time(end),
            Type="all",
        )
        n_parts = -(-len(expected) // 8)
        await platform.wait_for(lambda: len(platform.messages("RecordInfo", ch, sn)) == n_parts)
        parts = platform.messages("RecordInfo", ch, sn)
        assert {p.msg.sum_num for p in parts} == {len(expected)}
        records = sorted(
            (RecordItem.from_dict(i) for p in parts for i in p.msg.items),
            key=lambda r: r.start_time,
        )
        assert len(records) == len(expected) >= 23
        assert [r.start_time for r in records] == [e.start_time for e in expected]
        first = records[0]
        assert first.device_id == ch and first.file_size and first.type == "time"
        t0 = dt.datetime.strptime(first.start_time, "%Y-%m-%dT%H:%M:%S")
        t1 = dt.datetime.strptime(first.end_time, "%Y-%m-%dT%H:%M:%S")
        assert (t1 - t0).total_seconds() == 600


async def test_ptz_and_device_control(platform: FakePlatform) -> None:
    async with _sim(platform, devices=1, channels=2) as sim:
        await sim.wait_registered()
        dev = sim.devices[0]
        ch = list(dev.channels)[1]
        await platform.wait_for(lambda: dev.id in platform.registrations)
        left = ptz.PtzCommand.move(pan=-1, pan_speed=128)
        sn = await platform.control(dev.id, target=ch, PTZCmd=left.encode())
        await platform.wait_for(lambda: platform.messages("DeviceControl", ch, sn))
        assert platform.messages("DeviceControl", ch, sn)[0].msg.fields["Result"] == "OK"
        channel = sim.channel(ch)
        assert channel.last_ptz is not None and channel.last_ptz.hex == left.encode()
        assert channel.last_ptz.kind == "ptz" and channel.ptz.moving[0] == -1
        assert channel.ptz.pan != 0
        await platform.control(dev.id, target=ch, PTZCmd=ptz.PtzCommand.preset_set(3).encode())
        await platform.control(dev.id, target=ch, PTZCmd=ptz.PtzCommand.stop().encode())
        await platform.control(
            dev.id, target=ch, PTZCmd=ptz.PtzCommand.move(pan=1, tilt=1).encode()
        )
        await platform.control(dev.id, target=ch, PTZCmd=ptz.PtzCommand.preset_call(3).encode())
        await platform.wait_for(lambda: len(channel.ptz_log) == 5)
        assert [r.kind for r in channel.ptz_log] == [
            "ptz",
            "preset_set",
            "ptz",
            "ptz",
            "preset_call",
        ]
        assert channel.ptz.pan == channel.ptz.presets[3][0]
        sn = await platform.control(dev.id, target=ch, PTZCmd="A50F01FFFFFFFFFF")
        await platform.wait_for(lambda: platform.messages("DeviceControl", ch, sn))
        assert platform.messages("DeviceControl", ch, sn)[0].msg.fields["Result"] == "ERROR"
        assert channel.ptz_log[-1].kind == "invalid"
        for fields in (
            {"RecordCmd": "StopRecord"},
            {"GuardCmd": "SetGuard"},
            {"IFameCmd": "Send"},
            {"IFrameCmd": "Send"},
            {"AlarmCmd": "ResetAlarm"},
        ):
            sn = await platform.control(dev.id, target=ch, **fields)
            await platform.wait_for(lambda sn=sn: platform.messages("DeviceControl", ch, sn))
            assert platform.messages("DeviceControl", ch, sn)[0].msg.fields["Result"] == "OK"
        assert channel.recording is False and channel.guard is True


async def test_teleboot_registers_with_a_new_call_id(platform: FakePlatform) -> None:
    async with _sim(platform, devices=1) as sim:
        await sim.wait_registered()
        dev = sim.devices[0]
        await platform.wait_for(lambda: dev.id in platform.registrations)
        old = platform.registrations[dev.id].call_id
        await platform.control(dev.id, TeleBoot="Boot")
        await platform.wait_for(lambda: platform.registrations[dev.id].call_id != old, 5)
        assert platform.registrations[dev.id].call_id == dev.call_id == dev.call_ids[-1]
        assert len(dev.call_ids) == 2
        # restart on command does the same
        sim.restart(dev.id)
        await platform.wait_for(
            lambda: platform.registrations[dev.id].call_id == dev.call_ids[-1] != dev.call_ids[1], 5
        )


async def test_wrong_password_gets_403_and_recovers(platform: FakePlatform) -> None:
    async with _sim(platform, devices=2) as sim:
        await sim.wait_registered()
        bad = sim.devices[1]
        sim.set_fault(bad.id, wrong_password=True)
        sim.restart(bad.id)
        await platform.wait_for(
            lambda: any(e[0] == bad.id and e[1] == 403 for e in platform.register_log), 5
        )
        assert bad.last_register_status == 403 and not bad.registered
        assert sim.devices[0].registered
        sim.set_fault(bad.id, wrong_password=False)
        assert await sim.wait_registered(timeout=5)


async def test_dropped_keepalives_slow_and_missing_answers(platform: FakePlatform) -> None:
    async with _sim(platform, devices=1) as sim:
        await sim.wait_registered()
        dev = sim.devices[0]
        await platform.wait_for(lambda: platform.keepalives[dev.id] >= 1, 5)
        sim.set_fault(dev.id, drop_keepalives=True)
        await asyncio.sleep(0.4)
        before = platform.keepalives[dev.id]
        await asyncio.sleep(1.0)
        assert platform.keepalives[dev.id] == before
        sim.set_fault(dev.id, drop_keepalives=False, answer_delay=0.8)
        t0 = time.monotonic()
        sn = await platform.query(dev.id, "DeviceInfo")
        await platform.wait_for(lambda: platform.messages("DeviceInfo", dev.id, sn), 5)
        assert time.monotonic() - t0 >= 0.75
        sim.set_fault(dev.id, answer_delay=0, no_answers=True)
        sn = await platform.query(dev.id, "DeviceInfo")
        await asyncio.sleep(0.5)
        assert not platform.messages("DeviceInfo", dev.id, sn)
        sim.set_fault(dev.id, no_answers=False, ignore_requests=True)
        with pytest.raises(SipTimeout):
            await platform.send(dev.id, manscdp.encode_query("DeviceInfo", 1, dev.id), timeout=0.5)


async def test_catalog_subscription_notifies_changes(platform: FakePlatform) -> None:
    async with _sim(platform, devices=1, channels=3) as sim:
        await sim.wait_registered()
        dev = sim.devices[0]
        await platform.wait_for(lambda: dev.id in platform.registrations)
        resp, dialog, _ = await platform.subscribe(dev.id, "Catalog")
        assert resp.status == 200 and resp.to_tag
        assert manscdp.decode(resp.body).fields["Result"] == "OK"
        ch = list(dev.channels)[1]
        assert await dev.set_channel_status(ch, "OFF") == 1
        notes = [r for r in platform.received if r.method == "NOTIFY"]
        assert len(notes) == 1 and notes[0].request.call_id == dialog.call_id
        assert notes[0].request.headers.get("Event") == "Catalog"
        assert (notes[0].request.headers.get("Subscription-State") or "").startswith("active")
        item = CatalogItem.from_dict(notes[0].msg.items[0])
        assert (item.device_id, item.event) == (ch, "OFF")
        new_id = make_id("34020000", 131, 9_000_001)
        assert await dev.add_channel(ChannelSpec(new_id, "西山区新华街道人民医院大门9")) == 1
        added = CatalogItem.from_dict(
            [r for r in platform.received if r.method == "NOTIFY"][-1].msg.items[0]
        )
        assert (added.device_id, added.event, added.name) == (
            new_id,
            "ADD",
            "西山区新华街道人民医院大门9",
        )
        assert sim.channel(new_id).parent_id == dev.id


async def test_alarm_and_mobile_position(platform: FakePlatform) -> None:
    async with _sim(platform, devices=1, channels=2) as sim:
        await sim.wait_registered()
        dev = sim.devices[0]
        ch = next(iter(dev.channels))
        assert await dev.send_alarm(ch, priority=1, method=5, description="区域入侵") == 200
        alarm = manscdp.Alarm.from_message(platform.messages("Alarm")[0].msg)
        assert (alarm.device_id, alarm.priority, alarm.method, alarm.description) == (
            ch,
            1,
            5,
            "区域入侵",
        )
        assert await dev.send_position(117.3, 31.9, speed=12.5) == 200
        pos = manscdp.MobilePosition.from_message(platform.messages("MobilePosition")[0].msg)
        assert (pos.device_id, pos.longitude, pos.latitude, pos.speed) == (
            dev.id,
            117.3,
            31.9,
            12.5,
        )


async def test_tcp_signalling(platform: FakePlatform) -> None:
    async with _sim(platform, devices=2, channels=2, transport="tcp") as sim:
        await sim.wait_registered()
        await platform.wait_for(lambda: len(platform.registrations) == 2)
        assert {r.transport for r in platform.registrations.values()} == {"tcp"}
        dev = sim.devices[1]
        await platform.wait_for(lambda: platform.keepalives[dev.id] >= 1, 5)
        sn = await platform.query(dev.id, "Catalog")
        await platform.wait_for(lambda: platform.messages("Catalog", dev.id, sn))
        assert platform.messages("Catalog", dev.id, sn)[0].msg.sum_num == 2


async def test_device_specs_and_unknown_target(platform: FakePlatform) -> None:
    nvr = make_id("34990101", 118, 7)
    chans = [(make_id("34990101", 131, 70 + k), f"雪亮市东湖区路口{k}") for k in range(3)]
    async with _sim(platform, device_specs=[DeviceSpec(nvr, chans, name="测试NVR")]) as sim:
        await sim.wait_registered()
        assert [d.id for d in sim.devices] == [nvr] and sim.devices[0].kind == "NVR"
        assert sim.device(chans[2][0]) is sim.devices[0]
        await platform.wait_for(lambda: nvr in platform.registrations)
        resp = await platform.send(
            nvr, manscdp.encode_query("DeviceInfo", 1, nvr), target=make_id("34990101", 131, 99)
        )
        assert resp.status == 404
