"""Device takeover over real sockets (issue 10, item 3).

A simulated device registers with its password. The attacker is a second UDP socket on the
camera network (another loopback address); it knows the device's ID and channel IDs, not its
password. Whatever it sends in the device's name must change nothing, and the real device must
go on working: queries reach it, its own alarms land.
"""

from __future__ import annotations

import asyncio
import socket

from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.integration.conftest import PASSWORD
from xueliang.db.tables import Channel, Event
from xueliang.gb28181 import manscdp
from xueliang.gb28181.manscdp import CatalogItem
from xueliang.gb28181.sip import (
    SipResponse,
    format_via,
    generate_branch,
    generate_call_id,
    make_request,
    parse_message,
)
from xueliang.sim.simulator import Simulator

ATTACKER_HOST = "127.0.0.2"


def attacker_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ATTACKER_HOST, 0))
    s.settimeout(3)
    return s


async def spoof(sock: socket.socket, signalling, device_id: str, body: bytes) -> SipResponse:  # type: ignore[no-untyped-def]
    """A MANSCDP MESSAGE in the device's name, from the attacker's own address."""
    port = sock.getsockname()[1]
    cfg = signalling.cfg
    req = make_request("MESSAGE", f"sip:{cfg.id}@{cfg.domain}",
                       via=format_via("UDP", ATTACKER_HOST, port, generate_branch(), rport=True),
                       from_=f"<sip:{device_id}@{cfg.domain}>;tag=66", to=f"<sip:{cfg.id}@{cfg.domain}>",
                       call_id=generate_call_id(ATTACKER_HOST), cseq=1,
                       headers=[("Content-Type", "Application/MANSCDP+xml")], body=body)
    sock.sendto(req.serialize(), ("127.0.0.1", signalling.endpoint.port))
    resp = parse_message(await asyncio.to_thread(sock.recv, 65535))
    assert isinstance(resp, SipResponse)
    return resp


def _refused(kind: str) -> float:
    return REGISTRY.get_sample_value("xueliang_sip_refused_total", {"kind": kind}) or 0.0


async def _channels(sessions, device_id: str) -> dict[str, Channel]:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        return {c.id: c for c in (await s.scalars(select(Channel).where(Channel.device_id == device_id))).all()}


async def _events(signalling, sessions, kind: str) -> list[Event]:  # type: ignore[no-untyped-def]
    await signalling.writer.flush()
    async with sessions() as s:
        return list((await s.scalars(select(Event).where(Event.kind == kind))).all())


async def test_spoofed_keepalive_catalog_and_alarm_change_nothing(signalling, sessions) -> None:  # type: ignore[no-untyped-def]
    sim = Simulator(f"127.0.0.1:{signalling.endpoint.port}", devices=1, channels=2, password=PASSWORD, video=False,
                    keepalive=30)
    attacker = attacker_socket()
    refused_before = _refused("foreign_messages")
    try:
        await sim.start()
        assert await sim.wait_registered(1, timeout=10)
        dev = sim.devices[0]
        session = signalling.registrar.devices[dev.id]
        real_addr = session.addr
        for _ in range(50):
            chans = await _channels(sessions, dev.id)
            if len(chans) == 2:
                break
            await asyncio.sleep(0.1)
        assert len(chans) == 2
        ch = sorted(chans)[0]

        # 1. a keepalive: the device is not moved to the attacker
        resp = await spoof(attacker, signalling, dev.id, manscdp.encode_keepalive(900, dev.id))
        assert resp.status == 404
        assert session.addr == real_addr
        # 2. a catalog answer adding a camera and renaming one: nothing stored
        fake = [CatalogItem(device_id="34020000001320009999", name="fake camera", parent_ids=[dev.id]),
                CatalogItem(device_id=ch, name="renamed by the attacker", parent_ids=[dev.id])]
        resp = await spoof(attacker, signalling, dev.id, manscdp.encode_catalog_response(901, dev.id, 2, fake))
        assert resp.status == 404
        # 3. an alarm on a real channel: no alarm raised
        alarm = manscdp.encode_alarm_notify(902, ch, priority=1, method=5, time="2026-12-03T06:00:00",
                                            description="fake alarm")
        resp = await spoof(attacker, signalling, dev.id, alarm)
        assert resp.status == 404
        # 4. device information: nothing learnt
        info = manscdp.encode_device_info_response(903, dev.id, device_name="attacker's name")
        assert (await spoof(attacker, signalling, dev.id, info)).status == 404

        await asyncio.sleep(0.3)
        assert session.addr == real_addr
        chans = await _channels(sessions, dev.id)
        assert set(chans) == set(sorted(chans)) and "34020000001320009999" not in chans
        assert chans[ch].name != "renamed by the attacker"
        assert not [e for e in await _events(signalling, sessions, "alarm") if e.data.get("description") == "fake alarm"]
        st = signalling.status()
        assert st["foreign_messages"] >= 4
        for _ in range(30):  # and in Prometheus, within the housekeeping second
            if _refused("foreign_messages") - refused_before >= 4:
                break
            await asyncio.sleep(0.1)
        assert _refused("foreign_messages") - refused_before >= 4

        # The real device is still reached where it registered, and still heard.
        info_back = await signalling.device_info(dev.id)
        assert info_back.device_id == dev.id
        await dev.send_alarm(ch, priority=2, method=5, description="real alarm")
        for _ in range(50):
            alarms = [e for e in await _events(signalling, sessions, "alarm") if e.data.get("description") == "real alarm"]
            if alarms:
                break
            await asyncio.sleep(0.1)
        assert alarms and alarms[0].subject == ch
    finally:
        attacker.close()
        await sim.stop()


async def test_a_registered_device_speaks_only_for_its_own_channels(signalling, sessions) -> None:  # type: ignore[no-untyped-def]
    """Device B has its own password and registers properly; it reports device A's camera in
    its catalog and raises an alarm on it. A's camera stays A's (its video is not re-routed to
    B), and no alarm is raised on it."""
    sim = Simulator(f"127.0.0.1:{signalling.endpoint.port}", devices=2, channels=1, password=PASSWORD, video=False,
                    keepalive=30)
    try:
        await sim.start()
        assert await sim.wait_registered(2, timeout=10)
        a, b = sim.devices[0], sim.devices[1]
        for _ in range(50):
            if len(await _channels(sessions, a.id)) == 1 and len(await _channels(sessions, b.id)) == 1:
                break
            await asyncio.sleep(0.1)
        a_cam = next(iter(await _channels(sessions, a.id)))
        b_cam = next(iter(await _channels(sessions, b.id)))
        stolen = [CatalogItem(device_id=a_cam, name="now B's", parent_ids=[b.id], status="ON", event="ADD")]
        assert await b.send_message(manscdp.encode_catalog_notify(700, b.id, stolen)) == 200
        await b.send_message(manscdp.encode_alarm_notify(701, a_cam, priority=1, method=5,
                                                         time="2026-12-03T06:00:00", description="B on A"))
        await b.send_alarm(b_cam, priority=3, method=5, description="B on B")
        for _ in range(50):
            own = [e for e in await _events(signalling, sessions, "alarm") if e.data.get("description") == "B on B"]
            if own:
                break
            await asyncio.sleep(0.1)
        assert own  # B's alarm on its own camera lands
        await asyncio.sleep(0.3)
        assert a_cam in await _channels(sessions, a.id)
        assert not [e for e in await _events(signalling, sessions, "alarm") if e.data.get("description") == "B on A"]
        assert signalling.status()["foreign_subjects"] >= 1
    finally:
        await sim.stop()
