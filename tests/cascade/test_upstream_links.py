"""An upper platform watching one of our cameras, end to end on loopback: the upper's row and
share in the database (SQLite and PostgreSQL), its link registered over real UDP, its INVITE
naming the channel by the upper's own numbering, RTP decoded at its receiver, RecordInfo from
the platform's recordings, the share withdrawn while it watches (our BYE), and the audit rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.cascade.test_upstream import Provider
from tests.gb28181.cascade._cascade_upper import PASSWORD, UPPER_ID, Upper
from tests.media._ps_rtp_peer import RtpPeer
from tests.waiting import until

from xueliang.access.audit import AuditLog
from xueliang.cascade.links import CascadeLinks
from xueliang.cascade.share import Share
from xueliang.cascade.uppers import UpperIn, UpperPatch, UpperService
from xueliang.cascade.upstream import RegistryShare, UpstreamMedia
from xueliang.config import MediaConfig
from xueliang.db.tables import AuditRecord, Channel, Device, Recording
from xueliang.gb28181 import manscdp
from xueliang.gb28181.cascade import Backoff
from xueliang.gb28181.sdp import make_offer, parse_sdp
from xueliang.gb28181.sip import SipRequest, SipResponse, make_request, make_response, parse_message
from xueliang.media.hub import MediaHub
from xueliang.registry.service import RegistryService
from xueliang.sealing import Sealer

LOCAL_ID = "34020100002000000001"
CHANNEL = "34020100001320000001"  # ours
AS_UPPER_KNOWS = "44030000001320000009"  # the same camera in the upper's numbering
OTHER = "34020100001320000002"  # not shared


class UdpUpper(asyncio.DatagramProtocol):
    """The upper's SIP socket: registration answered by `Upper`; everything else recorded, and
    our BYE answered 200."""

    def __init__(self) -> None:
        self.upper = Upper()
        self.transport: asyncio.DatagramTransport | None = None
        self.responses: list[SipResponse] = []
        self.requests: list[SipRequest] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        msg = parse_message(data)
        assert self.transport is not None
        if isinstance(msg, SipResponse):
            self.responses.append(msg)
            return
        if msg.method == "REGISTER" or (msg.method == "MESSAGE" and b"Keepalive" in msg.body):
            answer = self.upper.handle(msg, 0.0)
            if answer is not None:
                self.transport.sendto(answer, addr)
            return
        self.requests.append(msg)
        self.transport.sendto(make_response(msg, 200).serialize(), addr)

    def send(self, request: SipRequest, to: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(request.serialize(), to)




@asynccontextmanager
async def world_at(sessions: async_sessionmaker[AsyncSession], upper_port: int, *, registered: bool = True,
                   ) -> AsyncIterator[dict[str, Any]]:
    """The platform's side: a camera (and another), a platform recording, the hub, the upper's
    row with its share at ``upper_port``, its link running, the media side wired in."""
    async with sessions() as s:
        s.add(Device(id="34020100001180000001", name="NVR", online=True))
        await s.flush()
        for cid in (CHANNEL, OTHER):
            s.add(Channel(id=cid, name="东门", kind="camera", device_id="34020100001180000001",
                          division_code="340201", status="ON"))
        s.add(Recording(channel_id=CHANNEL, start=datetime(2026, 12, 4, 0, 0, tzinfo=UTC),
                        end=datetime(2026, 12, 4, 0, 10, tzinfo=UTC), size=4096, path=f"{CHANNEL}/a.mp4",
                        state="closed"))
        await s.commit()
    hub = MediaHub(MediaConfig(rtp_port=0, rtp_tcp_port=0, idle_stop_seconds=0.3, rtp_timeout=5, host="127.0.0.1",
                               announce_ip="127.0.0.1"), tick_interval=0.05)
    await hub.start()
    provider = Provider()
    hub.set_provider("live/", provider)
    audit = AuditLog(sessions, None, flush_seconds=0.05)
    uppers = UpperService(sessions, Sealer(b"cascade-test-secret-0123456789"))
    upstream = UpstreamMedia(hub, RegistryShare(uppers, RegistryService(sessions), LOCAL_ID), sessions=sessions,
                             audit=audit, uppers=uppers, recheck_every=3600)
    uppers.on_change.append(lambda _id: upstream.changed())
    links = CascadeLinks(uppers, local_id=LOCAL_ID, sip_host="127.0.0.1",
                         backoff=Backoff(initial=1.0, maximum=4.0, jitter=0.0), audit=audit)
    links.media = upstream.handle
    await links.start()
    row = await uppers.create(UpperIn(
        name="province", sip_id=UPPER_ID, host="127.0.0.1", port=upper_port, password=PASSWORD,
        keepalive_interval=3600, announce_host="127.0.0.1",
        share=Share(channels=[CHANNEL], id_map={CHANNEL: AS_UPPER_KNOWS})))
    await links.settled()
    driver = links.drivers[row.id]
    if registered:
        await until(lambda: driver.status()["state"] == "registered")
    try:
        yield {"hub": hub, "provider": provider, "audit": audit, "uppers": uppers, "upstream": upstream,
               "links": links, "row": row, "to": ("127.0.0.1", driver.local_port), "sessions": sessions}
    finally:
        await upstream.stop()
        await links.stop()
        await hub.stop()
        await audit.stop()


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(UdpUpper, local_addr=("127.0.0.1", 0))
    async with world_at(sessions, transport.get_extra_info("sockname")[1]) as w:
        yield {**w, "upper": proto}
    transport.close()


def invite(channel: str, rtp_port: int, n: int) -> SipRequest:
    body = make_offer(UPPER_ID, "127.0.0.1", rtp_port, "0200000777")
    return make_request(
        "INVITE", f"sip:{channel}@3402010000", via=f"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKinv{n}",
        from_=f"<sip:{UPPER_ID}@3402000000>;tag=up{n}", to=f"<sip:{channel}@3402010000>", call_id=f"call-{n}",
        cseq=1, contact=f"<sip:{UPPER_ID}@127.0.0.1:5060>",
        headers=[("Subject", f"{channel}:0200000777,{UPPER_ID}:0"), ("Content-Type", "APPLICATION/SDP")],
        body=body.encode())


async def final(upper: UdpUpper, call_id: str) -> SipResponse:
    await until(lambda: any(r.call_id == call_id and r.status >= 200 for r in upper.responses))
    return next(r for r in upper.responses if r.call_id == call_id and r.status >= 200)


async def test_an_upper_watches_a_shared_camera_until_the_share_is_withdrawn(
        world: dict[str, Any], tmp_path: Path) -> None:
    upper: UdpUpper = world["upper"]
    to = world["to"]
    peer = RtpPeer()
    rtp_port = await peer.udp()
    # not shared, and the shared camera named by our own number (the upper must not know it): 404
    upper.send(invite(OTHER, rtp_port, 1), to)
    upper.send(invite(CHANNEL, rtp_port, 2), to)
    assert (await final(upper, "call-1")).status == 404
    assert (await final(upper, "call-2")).status == 404
    assert world["provider"].opens == []
    # the upper's own number for it: served
    upper.send(invite(AS_UPPER_KNOWS, rtp_port, 3), to)
    ok = await final(upper, "call-3")
    assert ok.status == 200, (ok.status, ok.reason)
    answer = parse_sdp(ok.body)
    assert answer.ssrc == "0200000777" and answer.media_address == "127.0.0.1"
    assert answer.origin is not None and answer.origin.username == AS_UPPER_KNOWS
    ack = make_request("ACK", f"sip:{LOCAL_ID}@127.0.0.1", via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack3",
                       from_=f"<sip:{UPPER_ID}@3402000000>;tag=up3",
                       to=f"<sip:{AS_UPPER_KNOWS}@3402010000>;tag={ok.to_tag}", call_id="call-3", cseq=1)
    upper.send(ack, to)
    await peer.wait_frames(20)
    assert peer.got.ssrcs == {200000777} and peer.got.sequence_gaps() == 0
    assert peer.got.decode(tmp_path)[:3] == ("h264", 320, 240)
    assert world["provider"].opens[0][0] == f"live/{CHANNEL}"
    (session,) = world["upstream"].sessions()
    assert session["channel_id"] == CHANNEL and session["upper_channel_id"] == AS_UPPER_KNOWS

    # RecordInfo, in the upper's numbering, from the platform's recordings
    query = manscdp.encode_query("RecordInfo", 42, AS_UPPER_KNOWS, StartTime="2026-12-04T07:00:00",
                                 EndTime="2026-12-04T09:00:00", Secrecy=0, Type="all")
    upper.send(make_request("MESSAGE", f"sip:{LOCAL_ID}@127.0.0.1", via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKri",
                            from_=f"<sip:{UPPER_ID}@3402000000>;tag=ri", to=f"<sip:{LOCAL_ID}@3402010000>",
                            call_id="ri-1", cseq=1, headers=[("Content-Type", "Application/MANSCDP+xml")],
                            body=query), to)
    await until(lambda: any(b"RecordInfo" in r.body for r in upper.requests))
    assert (await final(upper, "ri-1")).status == 200
    reply = manscdp.decode(next(r for r in upper.requests if b"RecordInfo" in r.body).body)
    assert reply.sn == 42 and reply.device_id == AS_UPPER_KNOWS and reply.sum_num == 1
    (item,) = reply.items
    assert item["DeviceID"] == AS_UPPER_KNOWS
    assert (item["StartTime"], item["EndTime"]) == ("2026-12-04T08:00:00", "2026-12-04T08:10:00")  # UTC+8

    # the channel leaves the share: our BYE, the RTP stops
    await world["uppers"].update(world["row"].id, UpperPatch(share=Share(channels=[])))
    await until(lambda: any(r.method == "BYE" for r in upper.requests))
    bye = next(r for r in upper.requests if r.method == "BYE")
    assert bye.call_id == "call-3" and bye.to_tag == "up3" and bye.from_tag == ok.to_tag
    await asyncio.sleep(0.1)
    n = len(peer.got.packets)
    await asyncio.sleep(0.3)
    assert len(peer.got.packets) == n and world["upstream"].sessions() == []
    peer.close()

    audit: AuditLog = world["audit"]
    await audit.flush()
    async with world["sessions"]() as s:
        rows = (await s.scalars(select(AuditRecord).where(AuditRecord.action.like("cascade.%"))
                                .order_by(AuditRecord.seq))).all()
    mine = [(r.action, r.outcome, r.resource_id) for r in rows
            if r.action in ("cascade.invite", "cascade.session", "cascade.record_info")]
    # the two refusals were decided concurrently: in either order
    assert sorted(mine[:2]) == [("cascade.invite", "denied", CHANNEL), ("cascade.invite", "denied", OTHER)]
    assert mine[2:] == [("cascade.invite", "ok", CHANNEL), ("cascade.record_info", "ok", CHANNEL),
                        ("cascade.session", "ok", CHANNEL)]
    assert {r.actor for r in rows if r.action.startswith("cascade.")} == {f"upper:{UPPER_ID}"}
    ended = next(r for r in rows if r.action == "cascade.session")
    assert "channel no longer shared" in (ended.detail or "") and ended.role == "upper"


def playback_invite(channel: str, rtp_port: int, n: int, start: int, end: int) -> SipRequest:
    req = invite(channel, rtp_port, n)
    req.body = make_offer(UPPER_ID, "127.0.0.1", rtp_port, "1200000777", session="Playback", channel_id=channel,
                          start=start, end=end).encode()
    return req


async def test_playback_comes_from_the_platform_when_it_holds_the_range_else_the_device(
        world: dict[str, Any]) -> None:
    upper: UdpUpper = world["upper"]
    recorded, device = Provider(), Provider()
    world["hub"].set_provider("record/", recorded)
    world["hub"].set_provider("playback/", device)
    peer = RtpPeer()
    port = await peer.udp()
    held = int(datetime(2026, 12, 4, 0, 2, tzinfo=UTC).timestamp())  # inside the recording
    upper.send(playback_invite(AS_UPPER_KNOWS, port, 7, held, held + 60), world["to"])
    assert (await final(upper, "call-7")).status == 200
    ((name, params),) = recorded.opens
    assert name.startswith(f"record/{CHANNEL}/") and params["start"] == held and params["speed"] == 1.0
    later = held + 86400  # a day the platform did not record
    upper.send(playback_invite(AS_UPPER_KNOWS, port, 8, later, later + 60), world["to"])
    assert (await final(upper, "call-8")).status == 200
    ((name, params),) = device.opens
    assert name.startswith(f"playback/{CHANNEL}/") and params["device_id"] == "34020100001180000001"
    # each a stream of its own, for media managers only: no owner, the upper named in its meta
    stream = world["hub"].stream(name)
    assert stream is not None and "owner" not in stream.meta and stream.meta["upper"]["name"] == "province"
    peer.close()


async def test_registry_share_reads_the_share_fresh(world: dict[str, Any]) -> None:
    share = RegistryShare(world["uppers"], RegistryService(world["sessions"]), LOCAL_ID)
    row = world["row"]
    got = await share.shared_channel(row.id, AS_UPPER_KNOWS)
    assert got is not None and got.id == CHANNEL
    assert await share.shared_channel(row.id, CHANNEL) is None  # mapped: our number is not its
    assert await share.shared_channel(row.id, OTHER) is None
    assert await share.shared_channel(row.id + 1, AS_UPPER_KNOWS) is None  # no such upper
    await world["uppers"].update(row.id, UpperPatch(enabled=False))
    assert await share.shared_channel(row.id, AS_UPPER_KNOWS) is None
    await world["uppers"].update(row.id, UpperPatch(enabled=True))
    assert await share.shared_channel(row.id, AS_UPPER_KNOWS) is not None
    async with world["sessions"]() as s:  # the camera deleted
        await s.delete(await s.get(Channel, CHANNEL))
        await s.commit()
    assert await share.shared_channel(row.id, AS_UPPER_KNOWS) is None


async def test_a_camera_deleted_while_the_upper_watches_ends_with_our_bye(world: dict[str, Any]) -> None:
    upper: UdpUpper = world["upper"]
    peer = RtpPeer()
    upper.send(invite(AS_UPPER_KNOWS, await peer.udp(), 9), world["to"])
    ok = await final(upper, "call-9")
    assert ok.status == 200
    upper.send(make_request("ACK", f"sip:{LOCAL_ID}@127.0.0.1", via="SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKack9",
                            from_=f"<sip:{UPPER_ID}@3402000000>;tag=up9",
                            to=f"<sip:{AS_UPPER_KNOWS}@3402010000>;tag={ok.to_tag}", call_id="call-9", cseq=1),
               world["to"])
    await peer.wait_frames(5)
    async with world["sessions"]() as s:
        await s.delete(await s.get(Channel, CHANNEL))
        await s.commit()
    assert await world["upstream"].recheck() == 1  # the periodic round (or a registry event) finds it
    await until(lambda: any(r.method == "BYE" and r.call_id == "call-9" for r in upper.requests))
    assert world["upstream"].sessions() == []
    peer.close()
