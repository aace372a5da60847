"""Video to an upper platform in a cluster: the upper's link runs on a signalling node without the
hub, the video leaves from a media node (cascade/remote.py).

Two nodes over one database and a real Redis: a signalling node (the upper's link, the share
check, the audit) and a media node (the hub, the camera's stream, the PS-over-RTP sender from its
``media.upstream_port_range``). The upper is a UDP socket of this test's own (as in
tests/cascade), the camera real H.264 frames standing in for its INVITE (the media node's
``live/`` provider), the video demultiplexed by the platform's PS demuxer and decoded by FFmpeg.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.cascade.test_upstream import Provider
from tests.cascade.test_upstream_links import UdpUpper, final, invite, until
from tests.cascade.test_upstream_ports import free_range
from tests.cluster.redis_server import RedisServer
from tests.gb28181.cascade._cascade_upper import PASSWORD, UPPER_ID
from tests.media._ps_rtp_peer import RtpPeer
from xueliang.app import Platform
from xueliang.cascade.share import Share
from xueliang.cascade.uppers import UpperIn, UpperPatch
from xueliang.config import Settings
from xueliang.db.tables import AuditRecord, Channel, Device
from xueliang.gb28181.sip import SipRequest, SipResponse, make_request

LOCAL_ID = "34020100002000000001"
NVR = "34020100001180000001"
CHANNEL = "34020100001320000001"
OTHER = "34020100001320000002"  # not shared
#: the media node's announce address: what the upper must be told, not the signalling node's
MEDIA_ANNOUNCE = "127.0.0.3"


def settings(db_url: str, redis: str, node: str, var: Path, roles: list[str], **kw: Any) -> Settings:
    return Settings(
        database={"url": db_url}, storage={"var_dir": var}, secret_key="test-secret-0123456789abcdef",
        health={"enabled": False}, scheduler={"enabled": False}, access={"totp_required_roles": []},
        cluster={"redis_url": redis, "node_id": node, "roles": roles, "stream": "xueliang:test-cascade-media",
                 "node_ttl": 2},
        **kw,
    )


@pytest.fixture
async def nodes(db_url: str, redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    first, last = free_range(1)  # one port: the second session finds the range used up
    sig = Platform(settings(db_url, redis_server.url, "cm-sig", tmp_path / "sig", ["signalling"],
                            sip={"enabled": True, "host": "127.0.0.1", "port": 0, "id": LOCAL_ID},
                            media={"enabled": False}))
    med = Platform(settings(db_url, redis_server.url, "cm-media", tmp_path / "media", ["media"],
                            sip={"enabled": False},
                            media={"enabled": True, "host": "127.0.0.1", "announce_ip": MEDIA_ANNOUNCE,
                                   "rtp_port": 0, "rtp_tcp_port": 0, "upstream_port_range": [first, last]}))
    assert sig.media is None and sig.upstream is not None and sig.remote_senders is not None
    assert med.media is not None and med.sender_host is not None and med.cascade is None
    camera = Provider(loops=400)  # the camera's own source is not what is tested here
    med.media.set_provider("live/", camera)
    await med.start(migrate=False)
    await sig.start(migrate=False)
    loop = asyncio.get_running_loop()
    transport, upper = await loop.create_datagram_endpoint(UdpUpper, local_addr=("127.0.0.1", 0))
    try:
        async with sig.sessions() as s:
            s.add(Device(id=NVR, name="NVR", online=True))
            await s.flush()
            for cid in (CHANNEL, OTHER):
                s.add(Channel(id=cid, name="东门", kind="camera", device_id=NVR, division_code="340201", status="ON"))
            await s.commit()
        row = await sig.uppers.create(UpperIn(
            name="省平台", sip_id=UPPER_ID, host="127.0.0.1", port=transport.get_extra_info("sockname")[1],
            password=PASSWORD, keepalive_interval=3600, announce_host="127.0.0.1",
            share=Share(channels=[CHANNEL])))
        assert sig.cascade is not None
        cascade = sig.cascade
        await until(lambda: cascade.status(row)["state"] == "registered", 20.0)
        driver = next(iter(cascade.drivers.values()))
        # the signalling node sees the media node (placement)
        assert sig.placement is not None
        for _ in range(100):
            if await sig.placement.least_loaded() is not None:
                break
            await asyncio.sleep(0.1)
        assert med.upstream_senders is not None and med.upstream_senders.ports is not None
        peer = RtpPeer()  # the upper's RTP receiver
        yield {"sig": sig, "med": med, "upper": upper, "to": ("127.0.0.1", driver.local_port), "row": row,
               "range": (first, last), "camera": camera, "pool": med.upstream_senders.ports, "peer": peer,
               "rtp_port": await peer.udp()}
    finally:
        if "peer" in locals():
            peer.close()
        await sig.stop()  # the upper still listening: its unregistering is answered, not waited out
        if med.started:  # a test may have stopped it (a media node that dies)
            await med.stop()
        transport.close()


def ack(ok: SipResponse, call_id: str) -> SipRequest:
    return make_request(
        "ACK", f"sip:{LOCAL_ID}@127.0.0.1", via=f"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack{call_id}",
        from_=f"<sip:{UPPER_ID}@3402000000>;tag=up{call_id[-1]}", to=f"<sip:{CHANNEL}@3402010000>;tag={ok.to_tag}",
        call_id=call_id, cseq=1)


def bye(ok: SipResponse, call_id: str) -> SipRequest:
    return make_request(
        "BYE", f"sip:{LOCAL_ID}@127.0.0.1", via=f"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKbye{call_id}",
        from_=f"<sip:{UPPER_ID}@3402000000>;tag=up{call_id[-1]}", to=f"<sip:{CHANNEL}@3402010000>;tag={ok.to_tag}",
        call_id=call_id, cseq=2)


def sdp_media(ok: SipResponse) -> tuple[str, int]:
    """(c= address, m= port) of our 200's SDP."""
    text = ok.body.decode()
    host = next(line.split()[-1] for line in text.splitlines() if line.startswith("c="))
    port = int(next(line.split()[1] for line in text.splitlines() if line.startswith("m=video")))
    return host, port


async def audited(sig: Platform, action: str) -> list[AuditRecord]:
    await sig.access.audit.flush()
    async with sig.sessions() as s:
        return list((await s.execute(select(AuditRecord).where(AuditRecord.action == action)
                                     .order_by(AuditRecord.seq))).scalars())


async def test_a_signalling_node_serves_the_upper_from_a_media_node(nodes: dict[str, Any], tmp_path: Path) -> None:
    sig, med, upper, to = nodes["sig"], nodes["med"], nodes["upper"], nodes["to"]
    pool, peer, rtp_port = nodes["pool"], nodes["peer"], nodes["rtp_port"]
    assert med.upstream_senders is not None
    # outside the share: refused as in one process (404, audited as the upper)
    upper.send(invite(OTHER, rtp_port, 1), to)
    refused = await final(upper, "call-1")
    assert (refused.status, refused.reason) == (404, "Not in this upper's share")

    upper.send(invite(CHANNEL, rtp_port, 2), to)
    ok = await final(upper, "call-2")
    assert ok.status == 200, (ok.status, ok.reason)
    host, port = sdp_media(ok)
    assert host == MEDIA_ANNOUNCE  # the media node's address, not the signalling node's
    assert port == nodes["range"][0] and pool.in_use == {port}  # from the media node's range
    upper.send(ack(ok, "call-2"), to)
    await peer.wait_frames(15, timeout=20)
    assert peer.got.ssrcs == {200000777}
    frames = peer.got.frames()
    assert frames and {f.codec for f in frames} == {"h264"}
    codec, width, height, decoded = peer.got.decode(tmp_path)
    assert (codec, width, height) == ("h264", 320, 240) and decoded >= 10
    (session,) = sig.upstream.sessions() if sig.upstream is not None else []
    assert session["node"] == med.node and session["state"] == "sending"

    # the range (one port) is used up: 503, as in one process
    peer2 = RtpPeer()
    try:
        upper.send(invite(CHANNEL, await peer2.udp(), 3), to)
        busy = await final(upper, "call-3")
        assert busy.status == 503, (busy.status, busy.reason)
    finally:
        peer2.close()

    # the upper's BYE: the media node stops sending and frees its port
    upper.send(bye(ok, "call-2"), to)
    await until(lambda: not pool.in_use, 10.0)
    assert not med.upstream_senders.running
    assert sig.upstream is not None and not sig.upstream.sessions()
    await asyncio.sleep(0.3)
    n = len(peer.got.packets)
    await asyncio.sleep(0.5)
    assert len(peer.got.packets) == n  # nothing more sent

    invites = await audited(sig, "cascade.invite")
    assert [(r.actor, r.role, r.resource_id, r.outcome, r.status) for r in invites] == [
        (f"upper:{UPPER_ID}", "upper", OTHER, "denied", 404),
        (f"upper:{UPPER_ID}", "upper", CHANNEL, "ok", 200),
        (f"upper:{UPPER_ID}", "upper", CHANNEL, "error", 503)]
    assert json.loads(invites[1].detail)["node"] == med.node
    # The session's end is audited on the signalling node with the media node's counts.
    ends: list[AuditRecord] = []

    async def ended() -> bool:
        ends[:] = await audited(sig, "cascade.session")
        return bool(ends)

    await until(ended, 10.0)
    assert [(r.actor, r.resource_id) for r in ends] == [(f"upper:{UPPER_ID}", CHANNEL)]
    figures = json.loads(ends[0].detail)
    assert figures["packets"] >= len(peer.got.packets) > 0 and figures["bytes"] > 0
    assert figures["node"] == med.node


async def test_the_session_ends_with_our_bye_when_the_share_or_the_media_node_goes(nodes: dict[str, Any]) -> None:
    sig, med, upper, to = nodes["sig"], nodes["med"], nodes["upper"], nodes["to"]
    pool, peer, rtp_port = nodes["pool"], nodes["peer"], nodes["rtp_port"]
    assert med.upstream_senders is not None and med.media is not None
    # the camera's stream ends on the media node: the sender ends there, our BYE from here
    upper.send(invite(CHANNEL, rtp_port, 4), to)
    ok = await final(upper, "call-4")
    assert ok.status == 200, (ok.status, ok.reason)
    upper.send(ack(ok, "call-4"), to)
    await peer.wait_frames(5, timeout=20)
    await med.media.close(f"live/{CHANNEL}", "camera gone")
    await until(lambda: any(r.method == "BYE" and r.call_id == "call-4" for r in upper.requests), 10.0)
    await until(lambda: not pool.in_use, 10.0)

    # the channel leaves the share: our BYE, the port freed on the media node
    upper.send(invite(CHANNEL, rtp_port, 5), to)
    ok = await final(upper, "call-5")
    assert ok.status == 200, (ok.status, ok.reason)
    upper.send(ack(ok, "call-5"), to)
    await until(lambda: bool(pool.in_use), 10.0)
    await sig.uppers.update(nodes["row"].id, UpperPatch(share=Share(channels=[OTHER])))
    await until(lambda: any(r.method == "BYE" and r.call_id == "call-5" for r in upper.requests), 15.0)
    await until(lambda: not pool.in_use, 10.0)

    # the media node dies: the session ends with our BYE
    await sig.uppers.update(nodes["row"].id, UpperPatch(share=Share(channels=[CHANNEL])))
    upper.send(invite(CHANNEL, rtp_port, 6), to)
    ok = await final(upper, "call-6")
    assert ok.status == 200, (ok.status, ok.reason)
    upper.send(ack(ok, "call-6"), to)
    await until(lambda: bool(pool.in_use), 10.0)
    await med.stop()
    await until(lambda: any(r.method == "BYE" and r.call_id == "call-6" for r in upper.requests), 20.0)
    assert sig.upstream is not None and not sig.upstream.sessions()
