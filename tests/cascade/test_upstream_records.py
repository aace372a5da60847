"""RecordInfo for an upper, relayed to a real device: the platform's signalling (SIP over UDP), the
simulator's device (its recording schedule), the platform's own recordings index, and the
answer in the upper's numbering, split into MANSCDP parts."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.integration.conftest import PASSWORD, signalling  # noqa: F401  (the fixture)

from xueliang.cascade.upstream import UpstreamMedia, record_info_parts
from xueliang.config import MediaConfig
from xueliang.db.tables import Recording
from xueliang.gb28181 import manscdp
from xueliang.gb28181.commands import LocalCommands
from xueliang.gb28181.service import SignallingService
from xueliang.media.hub import MediaHub
from xueliang.sim.recordings import RecordingSchedule, format_gb_time
from xueliang.sim.simulator import Simulator

UPPER_NAME = "44030000001320000009"


class Row:
    def __init__(self, channel_id: str, device_id: str) -> None:
        self.id, self.device_id, self.name = channel_id, device_id, "东门"


class OneChannelShare:
    def __init__(self, channel_id: str, device_id: str) -> None:
        self.row = Row(channel_id, device_id)

    async def shared_channel(self, upper_id: int, channel_id: str) -> Any:
        return self.row if upper_id == 1 and channel_id == UPPER_NAME else None


async def test_record_info_from_the_device_and_the_platform(
        signalling: SignallingService, sessions: async_sessionmaker[AsyncSession]) -> None:  # noqa: F811
    sim = Simulator(f"127.0.0.1:{signalling.endpoint.port}", devices=1, channels=1, password=PASSWORD,
                    server_id=signalling.cfg.id, video=False, keepalive=1.0, register_rate=1000)
    async with sim:
        assert await sim.wait_registered(timeout=10)
        dev = sim.devices[0]
        ch = next(iter(dev.channels))
        for _ in range(250):
            if dev.id in signalling.registrar.devices and signalling.registrar.devices[dev.id].online:
                break
            await asyncio.sleep(0.02)
        now = dt.datetime.now().replace(microsecond=0)
        start, end = now - dt.timedelta(hours=3), now
        expected = RecordingSchedule().files(ch, start, end, now=now)
        # one segment the platform recorded itself, inside the range (local time is UTC+8 here)
        seg_start = (start + dt.timedelta(minutes=30)).replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
        async with sessions() as s:
            s.add(Recording(channel_id=ch, start=seg_start.astimezone(dt.UTC),
                            end=(seg_start + dt.timedelta(minutes=5)).astimezone(dt.UTC), size=1000,
                            path=f"{ch}/x.mp4", state="closed"))
            await s.commit()
        hub = MediaHub(MediaConfig(rtp_port=0, rtp_tcp_port=0))
        svc = UpstreamMedia(hub, OneChannelShare(ch, dev.id), sessions=sessions,
                            records=LocalCommands(signalling), utc_offset_hours=8)
        items = await svc.record_info(1, UPPER_NAME, format_gb_time(start), format_gb_time(end))
        from_device = [i for i in items if i.recorder_id == dev.id]
        from_platform = [i for i in items if i.recorder_id == "platform"]
        assert [i.start_time for i in from_device] == [e.start_time for e in expected] and len(expected) >= 2
        assert all(i.device_id == UPPER_NAME for i in items)  # the upper's numbering, never ours
        (p,) = from_platform
        assert (p.start_time, p.end_time) == (format_gb_time(seg_start.replace(tzinfo=None)),
                                              format_gb_time((seg_start + dt.timedelta(minutes=5)).replace(tzinfo=None)))
        parts = [manscdp.decode(b) for b in record_info_parts(9, UPPER_NAME, items)]
        assert {m.sum_num for m in parts} == {len(items)} and sum(len(m.items) for m in parts) == len(items)
        assert {i["DeviceID"] for m in parts for i in m.items} == {UPPER_NAME}
        # not shared: nothing is asked of the device
        with pytest.raises(Exception, match="not shared"):
            await svc.record_info(1, ch, format_gb_time(start), format_gb_time(end))
        await svc.stop()
