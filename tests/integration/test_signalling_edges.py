"""Bad input and hostile traffic at the signalling port: clear answers, no harm to others."""

from __future__ import annotations

import asyncio
import socket

from sqlalchemy import select

from tests.integration.conftest import PASSWORD
from xueliang.db.tables import Channel, Event
from xueliang.gb28181 import manscdp
from xueliang.gb28181.sip import SipResponse, parse_message
from xueliang.sim.simulator import Simulator


def udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(3)
    return s


MALFORMED = (b"MESSAGE sip:34020000002000000001@3402000000 SIP/2.0\r\n"
             b"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1\r\n"
             b"From: <sip:34020000001320000009@3402000000>;tag=1\r\n"
             b"To: <sip:34020000002000000001@3402000000>\r\n"
             b"Call-ID: bad-1\r\nCSeq: 1 MESSAGE\r\nContent-Length: abc\r\n\r\n")


async def test_malformed_gets_400_with_reason_and_unknown_device_404(signalling) -> None:  # type: ignore[no-untyped-def]
    s = udp()
    srv = ("127.0.0.1", signalling.endpoint.port)
    s.sendto(MALFORMED, srv)
    r = await asyncio.to_thread(s.recv, 65535)
    assert r.startswith(b"SIP/2.0 400 ") and b"Content-Length" in r.split(b"\r\n")[0]
    keepalive = manscdp.encode_keepalive(1, "34020000001320000009")
    msg = MALFORMED.replace(b"Content-Length: abc", b"Content-Type: Application/MANSCDP+xml\r\nContent-Length: "
                            + str(len(keepalive)).encode()).replace(b"bad-1", b"ka-1") + keepalive
    s.sendto(msg, srv)
    resp = parse_message(await asyncio.to_thread(s.recv, 65535))
    assert isinstance(resp, SipResponse) and resp.status == 404
    s.sendto(b"\x00\xff garbage" * 50, srv)  # not even SIP: dropped, server still fine
    await asyncio.sleep(0.3)
    assert signalling.endpoint.stats.parse_errors >= 2


async def test_flood_from_one_address_does_not_hurt_other_devices(signalling) -> None:  # type: ignore[no-untyped-def]
    signalling.endpoint.rate_limit = 50.0
    signalling.endpoint.burst = 50.0
    flood = udp()
    srv = ("127.0.0.1", signalling.endpoint.port)
    for i in range(3000):
        flood.sendto(MALFORMED.replace(b"bad-1", f"flood-{i}".encode()), srv)
    # (read as the loop gets to them: on a loaded machine that takes longer than a moment)
    for _ in range(100):
        if signalling.endpoint.stats.rate_limited > 2000:
            break
        await asyncio.sleep(0.1)
    assert signalling.endpoint.stats.rate_limited > 2000
    # the device speaks from another loopback address than the flood
    sim = Simulator(f"127.0.0.1:{signalling.endpoint.port}", devices=1, channels=1, password=PASSWORD,
                    bind="127.0.0.3", video=False)
    try:
        signalling.endpoint.rate_limit = 50.0
        await sim.start()
        assert await sim.wait_registered(1, timeout=10)
    finally:
        await sim.stop()


async def test_split_gbk_catalog_alarm_and_position_land(signalling, sessions) -> None:  # type: ignore[no-untyped-def]
    sim = Simulator(f"127.0.0.1:{signalling.endpoint.port}", devices=1, channels=5, password=PASSWORD,
                    split_catalog=True, gbk=True, video=False, keepalive=5)
    try:
        await sim.start()
        assert await sim.wait_registered(1, timeout=10)
        dev = sim.devices[0]
        for _ in range(50):
            async with sessions() as s:
                rows = (await s.scalars(select(Channel).where(Channel.device_id == dev.id))).all()
            if len(rows) == 5:
                break
            await asyncio.sleep(0.1)
        assert len(rows) == 5 and all("\ufffd" not in r.name and r.name for r in rows)
        assert any(ord(ch) > 0x4E00 for ch in rows[0].name)  # Chinese, decoded from GBK
        ch = rows[0].id
        await dev.send_alarm(ch, priority=1, method=5, description="区域入侵")
        await dev.send_position(118.5, 31.5)
        for _ in range(50):
            await signalling.writer.flush()
            async with sessions() as s:
                alarms = (await s.scalars(select(Event).where(Event.kind == "alarm"))).all()
            if alarms:
                break
            await asyncio.sleep(0.1)
        assert alarms and alarms[0].data["description"] == "区域入侵" and alarms[0].data["priority"] == 1
    finally:
        await sim.stop()
