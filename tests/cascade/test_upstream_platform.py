"""The whole platform as `xueliang serve` builds it (signalling and media in one process): an
upper configured through the API with a share, its INVITE served through app.py's wiring, the
session seen in the stream listing by an administrator (who, which upper, where to) and not by
an operator, and the upper's acts in the audit records through the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.api.conftest import login
from tests.cascade.test_upstream import Provider
from tests.cascade.test_upstream_links import UdpUpper, final, invite
from tests.gb28181.cascade._cascade_upper import PASSWORD, UPPER_ID
from tests.media._ps_rtp_peer import RtpPeer

from xueliang.app import Platform
from xueliang.config import Settings
from xueliang.db.tables import Channel, Device
from xueliang.gb28181.sip import make_request

LOCAL_ID = "34020100002000000001"
CHANNEL = "34020100001320000001"


@pytest.fixture
async def upper_udp() -> AsyncIterator[tuple[asyncio.DatagramTransport, UdpUpper]]:
    """The upper's SIP socket. The platform below asks for it, so it closes after the platform
    stopped: the platform's BYE and unregistering at its stop are answered, not waited out."""
    loop = asyncio.get_running_loop()
    transport, upper = await loop.create_datagram_endpoint(UdpUpper, local_addr=("127.0.0.1", 0))
    yield transport, upper
    transport.close()


@pytest.fixture
async def platform(db_url: str, tmp_path: Path,
                   upper_udp: tuple[asyncio.DatagramTransport, UdpUpper]) -> AsyncIterator[Platform]:
    settings = Settings(
        database={"url": db_url}, storage={"var_dir": tmp_path}, secret_key="test-secret-0123456789abcdef",
        bootstrap_admin="root", bootstrap_password="Root-pass-1",
        sip={"enabled": True, "host": "127.0.0.1", "port": 0, "id": LOCAL_ID},
        media={"enabled": True, "host": "127.0.0.1", "announce_ip": "127.0.0.1", "rtp_port": 0, "rtp_tcp_port": 0},
        access={"totp_required_roles": []},
    )
    p = Platform(settings)
    await p.start(migrate=False)
    yield p
    await p.stop()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the database's part: test_upstream_links.py
async def test_an_upper_configured_through_the_api_is_served_and_listed_for_administrators(
        platform: Platform, upper_udp: tuple[asyncio.DatagramTransport, UdpUpper]) -> None:
    from xueliang.api.main import create_app

    assert platform.upstream is not None and platform.cascade is not None
    assert platform.media is not None
    # the camera's own source is not what is tested here: real frames stand in for its INVITE
    platform.media.set_provider("live/", Provider())
    async with platform.sessions() as s:
        s.add(Device(id="34020100001180000001", name="NVR", online=True))
        await s.flush()
        s.add(Channel(id=CHANNEL, name="东门", kind="camera", device_id="34020100001180000001",
                      division_code="340201", status="ON"))
        await s.commit()
    transport, upper = upper_udp
    port = transport.get_extra_info("sockname")[1]
    peer = RtpPeer()
    rtp_port = await peer.udp()
    app = create_app(platform, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            admin = await login(client)
            r = await client.post("/api/v1/cascade/uppers", headers=admin, json={
                "name": "省平台", "sip_id": UPPER_ID, "host": "127.0.0.1", "port": port, "password": PASSWORD,
                "keepalive_interval": 3600, "announce_host": "127.0.0.1", "share": {"channels": [CHANNEL]}})
            assert r.status_code == 201, r.text
            await platform.cascade.settled()
            driver = next(iter(platform.cascade.drivers.values()))
            to = ("127.0.0.1", driver.local_port)
            upper.send(invite(CHANNEL, rtp_port, 1), to)
            ok = await final(upper, "call-1")
            assert ok.status == 200, (ok.status, ok.reason)
            upper.send(make_request(
                "ACK", f"sip:{LOCAL_ID}@127.0.0.1", via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack1",
                from_=f"<sip:{UPPER_ID}@3402000000>;tag=up1", to=f"<sip:{CHANNEL}@3402010000>;tag={ok.to_tag}",
                call_id="call-1", cseq=1), to)
            await peer.wait_frames(10)
            assert peer.got.ssrcs == {200000777}

            listed = (await client.get("/api/v1/streams", headers=admin)).json()
            (live,) = [s for s in listed if s["name"] == f"live/{CHANNEL}"]
            (viewer,) = live["viewers"]
            assert viewer["format"] == "ps" and viewer["upper"] == "省平台"
            assert viewer["actor"] == f"upper:{UPPER_ID}" and viewer["remote"] == f"127.0.0.1:{rtp_port}"
            # an operator may list the stream (the camera is in scope) but not who watches it
            await platform.users.create("op", "Operator-pass-9", "operator", enforce_policy=False)
            op = await login(client, "op", "Operator-pass-9")
            seen = (await client.get("/api/v1/streams", headers=op)).json()
            assert [x["name"] for x in seen] == [f"live/{CHANNEL}"] and "viewers" not in seen[0]

            await platform.access.audit.flush()
            records: list[dict[str, Any]] = (await client.get(
                "/api/v1/audit/records", params={"action": "cascade.invite"}, headers=admin)).json()["items"]
            assert [(r["actor"], r["role"], r["resource_id"], r["outcome"]) for r in records] == \
                [(f"upper:{UPPER_ID}", "upper", CHANNEL, "ok")]
    finally:
        peer.close()
