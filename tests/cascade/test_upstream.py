"""Video up to an upper platform, driven end to end inside one process: the upper's INVITE (as
bytes), the hub stream (real x264 frames), the RTP that reaches the upper's receiver (decoded by
FFmpeg), ACK, BYE both ways, the share checked at the INVITE and while the upper watches, the
audit, and one camera stream for every viewer and upper."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.media._media_clips import encode
from tests.media._ps_rtp_peer import RtpPeer

from xueliang.bus import EventBus
from xueliang.cascade import upstream as upstream_module
from xueliang.cascade.upstream import UpperMedia, UpstreamMedia, record_info_parts
from xueliang.gb28181 import manscdp
from xueliang.gb28181.cascade.invite import Outgoing, Reply
from xueliang.gb28181.mansrtsp import pause
from xueliang.gb28181.sdp import make_offer, parse_sdp
from xueliang.gb28181.sip import SipRequest, SipResponse, make_request, parse_message
from xueliang.media.frame import Codec, Frame
from xueliang.media.hub import MediaHub
from xueliang.media.stream import Stream

UPPER_ID = "34020000002000000001"
OTHER_ID = "34030000002000000001"
LOCAL_ID = "34020100002000000001"
CHANNEL = "34020100001320000001"
NOT_SHARED = "34020100001320000002"
ANNOUNCE = "198.51.100.20"  # our address as the upper must see it (NAT)


def looped(frames: tuple[Frame, ...], loops: int) -> list[Frame]:
    span = max(f.dts for f in frames) - frames[0].dts + 3600
    return [Frame(f.codec, f.pts + k * span, f.dts + k * span, f.data, f.keyframe)
            for k in range(loops) for f in frames]


class Source:
    """A camera's (or a recording's) frames pushed into its stream, with playback control."""

    def __init__(self, stream: Stream, frames: list[Frame], interval: float) -> None:
        self.stream = stream
        self.controls: list[tuple[str, float | None]] = []
        self.closed = False
        self.task = asyncio.create_task(self._run(frames, interval))

    async def _run(self, frames: list[Frame], interval: float) -> None:
        for f in frames:
            self.stream.push_frame(f)
            await asyncio.sleep(interval)
        self.stream.end("end of recording")

    async def control(self, action: str, value: float | None = None) -> dict[str, Any]:
        self.controls.append((action, value))
        return {"ok": True}

    async def close(self) -> None:
        self.closed = True
        self.task.cancel()


class Provider:
    """Opens a stream of real frames for a name (counts the opens: one per camera stream)."""

    def __init__(self, loops: int = 30, interval: float = 0.01) -> None:
        self.opens: list[tuple[str, dict[str, Any]]] = []
        self.sources: list[Source] = []
        self.loops, self.interval = loops, interval

    async def open(self, hub: MediaHub, name: str, params: dict[str, Any]) -> Source:
        self.opens.append((name, params))
        frames, _ = encode(Codec.H264, 320, 240, 50, 25, 0)
        src = Source(hub.publish(name, kind="test", meta={"channel_id": params.get("channel_id")}),
                     looped(frames, self.loops), self.interval)
        self.sources.append(src)
        return src


@dataclass
class Channel:
    id: str
    device_id: str | None = "34020100001110000001"
    name: str = "东门"


class Share:
    """Which upper sees which channels (what cascade/share.py decides; changed by the tests)."""

    def __init__(self) -> None:
        self.shared: dict[int, set[str]] = {1: {CHANNEL}, 2: {CHANNEL}}

    async def shared_channel(self, upper_id: int, channel_id: str) -> Channel | None:
        return Channel(channel_id) if channel_id in self.shared.get(upper_id, set()) else None


class Audit:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def append(self, action: str, outcome: str = "ok", **kw: Any) -> None:
        """What AuditLog.append takes; kept to read back (the AuditLog itself: test_upstream_links.py)."""
        self.records.append({"action": action, "outcome": outcome, **kw})


class Upper:
    """The upper platform's side: its requests as bytes, our answers parsed back from bytes."""

    def __init__(self, service: UpstreamMedia, upper_id: int, sip_id: str, prefer: str | None = None) -> None:
        self.sip_id = sip_id
        self.replies: list[SipResponse] = []
        self.requests: list[SipRequest] = []
        self.media: UpperMedia = service.attach(
            upper_id=upper_id, sip_id=sip_id, name=f"upper{upper_id}", local_id=LOCAL_ID,
            contact_host=ANNOUNCE, contact_port=5060, sip_transport="UDP", peer_host="127.0.0.1",
            send=self.send, media_host=ANNOUNCE, prefer=prefer)
        self.n = 0

    def send(self, o: Reply | Outgoing) -> None:
        if isinstance(o, Reply):
            msg = parse_message(o.response.serialize())
            assert isinstance(msg, SipResponse)
            self.replies.append(msg)
        else:
            req = parse_message(o.request.serialize())
            assert isinstance(req, SipRequest)
            self.requests.append(req)

    def invite(self, port: int, *, channel: str = CHANNEL, ssrc: str = "0200000123", **kw: Any) -> str:
        self.n += 1
        call_id = f"{self.sip_id}-{self.n}"
        body = make_offer(self.sip_id, "127.0.0.1", port, ssrc, **kw)
        req = make_request(
            "INVITE", f"sip:{channel}@3402010000", via=f"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{call_id}",
            from_=f"<sip:{self.sip_id}@{self.sip_id[:10]}>;tag=t{self.n}", to=f"<sip:{channel}@3402010000>",
            call_id=call_id, cseq=1, contact=f"<sip:{self.sip_id}@127.0.0.1:5060>",
            headers=[("Subject", f"{channel}:{ssrc},{self.sip_id}:0"), ("Content-Type", "APPLICATION/SDP")],
            body=body.encode())
        self.media.receive(req)
        return call_id

    async def final(self, call_id: str, timeout: float = 10.0) -> SipResponse:
        for _ in range(int(timeout / 0.02)):
            for r in self.replies:
                if r.call_id == call_id and r.status >= 200 and r.cseq[1] == "INVITE":
                    return r
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no final answer to {call_id}: {[r.status for r in self.replies]}")

    def in_dialog(self, method: str, ok: SipResponse, cseq: int = 2, body: bytes = b"",
                  ctype: str | None = None) -> SipRequest:
        return make_request(
            method, f"sip:{LOCAL_ID}@{ANNOUNCE}:5060", via=f"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{method}{cseq}",
            from_=f"<sip:{self.sip_id}@{self.sip_id[:10]}>;tag={ok.from_tag}",
            to=f"<sip:{CHANNEL}@3402010000>;tag={ok.to_tag}", call_id=ok.call_id,
            cseq=1 if method == "ACK" else cseq, headers=[("Content-Type", ctype)] if ctype else [], body=body)

    def ack(self, ok: SipResponse) -> None:
        self.media.receive(self.in_dialog("ACK", ok))

    def bye(self, ok: SipResponse) -> None:
        self.media.receive(self.in_dialog("BYE", ok))


@pytest.fixture
def provider(hub: MediaHub) -> Provider:
    p = Provider()
    hub.set_provider("live/", p)
    hub.set_provider("playback/", p)
    hub.set_provider("download/", p)
    return p


@pytest.fixture
async def service(hub: MediaHub) -> Any:
    svc = UpstreamMedia(hub, Share(), audit=Audit(), recheck_every=3600)
    yield svc
    await svc.stop()


def audit_of(svc: UpstreamMedia) -> list[dict[str, Any]]:
    assert isinstance(svc.audit, Audit)
    return svc.audit.records


async def wait_for(cond: Any, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("condition not met")


# -- live ----------------------------------------------------------------------------------------


async def test_live_to_an_upper_by_udp_decodes_with_its_ssrc(hub: MediaHub, provider: Provider,
                                                              service: UpstreamMedia, tmp_path: Path) -> None:
    upper = Upper(service, 1, UPPER_ID)
    peer = RtpPeer()
    port = await peer.udp()
    call = upper.invite(port, ssrc="0200000123")
    ok = await upper.final(call)
    assert ok.status == 200
    assert [r.status for r in upper.replies] == [100, 200]
    assert ok.headers.get("Contact") == f"<sip:{LOCAL_ID}@{ANNOUNCE}:5060>"
    answer = parse_sdp(ok.body)
    assert answer.media_address == ANNOUNCE and answer.ssrc == "0200000123" and not answer.is_tcp
    await asyncio.sleep(0.1)
    assert peer.got.packets == []  # nothing before the ACK
    upper.ack(ok)
    await peer.wait_frames(30)
    got = peer.got
    assert got.ssrcs == {200000123} and got.sequence_gaps() == 0
    assert got.decode(tmp_path)[:3] == ("h264", 320, 240)
    # the upper is one more reader of live/<channel>, visible in the stream listing
    stream = hub.stream(f"live/{CHANNEL}")
    assert stream is not None
    (viewer,) = stream.describe()["viewers"]
    assert viewer["format"] == "ps" and viewer["upper"] == "upper1" and viewer["actor"] == f"upper:{UPPER_ID}"
    (session,) = service.sessions()
    assert session["state"] == "sending" and session["channel_id"] == CHANNEL
    assert session["sender"]["packets"] > 0
    # the upper hangs up
    upper.bye(ok)
    assert upper.replies[-1].status == 200 and upper.replies[-1].cseq == (2, "BYE")
    await wait_for(lambda: not stream.describe()["viewers"])
    await asyncio.sleep(0.1)  # what was already on its way
    n = len(peer.got.packets)
    await asyncio.sleep(0.2)
    assert len(peer.got.packets) == n  # it stopped
    assert service.sessions() == []
    actions = [(r["action"], r["outcome"], r["actor"], r["resource_id"]) for r in audit_of(service)]
    assert actions == [("cascade.invite", "ok", f"upper:{UPPER_ID}", CHANNEL),
                       ("cascade.session", "ok", f"upper:{UPPER_ID}", CHANNEL)]
    end = audit_of(service)[1]["detail"]
    assert end["reason"] == "the upper hung up" and end["bytes"] > 0
    peer.close()


async def test_two_uppers_and_a_local_viewer_share_one_camera_stream(
        hub: MediaHub, provider: Provider, service: UpstreamMedia, tmp_path: Path) -> None:
    local = await hub.acquire(f"live/{CHANNEL}", params={"channel_id": CHANNEL})
    viewer = local.reader("fmp4")
    uppers = [Upper(service, 1, UPPER_ID), Upper(service, 2, OTHER_ID)]
    peers = [RtpPeer(), RtpPeer()]
    for i, (u, p) in enumerate(zip(uppers, peers, strict=True)):
        port = await p.udp()
        call = u.invite(port, ssrc=f"020000012{i}")
        u.ack(await u.final(call))
    for i, p in enumerate(peers):
        await p.wait_frames(20)
        assert p.got.ssrcs == {200000120 + i} and p.got.sequence_gaps() == 0
    assert len(provider.opens) == 1  # one INVITE to the camera for everyone
    formats = sorted(v["format"] for v in local.describe()["viewers"])
    assert formats == ["fmp4", "ps", "ps"]
    assert len(local.output("ps").readers) == 2  # muxed once for both uppers
    viewer.close()
    for p in peers:
        p.close()


async def test_a_channel_outside_the_share_is_404_and_opens_nothing(
        hub: MediaHub, provider: Provider, service: UpstreamMedia) -> None:
    upper = Upper(service, 1, UPPER_ID)
    call = upper.invite(30000, channel=NOT_SHARED)
    ok = await upper.final(call)
    assert ok.status == 404
    assert provider.opens == [] and hub.stream(f"live/{NOT_SHARED}") is None and service.sessions() == []
    (rec,) = audit_of(service)
    assert (rec["action"], rec["outcome"], rec["status"], rec["resource_id"]) == \
        ("cascade.invite", "denied", 404, NOT_SHARED)
    # another upper's share does not lend itself: upper 2 shares CHANNEL, upper 3 shares nothing
    other = Upper(service, 3, "34050000002000000001")
    assert (await other.final(other.invite(30000))).status == 404


async def test_channel_removed_from_the_share_while_watched_ends_with_our_bye(
        hub: MediaHub, provider: Provider, service: UpstreamMedia) -> None:
    upper = Upper(service, 1, UPPER_ID)
    peer = RtpPeer()
    port = await peer.udp()
    ok = await upper.final(upper.invite(port))
    upper.ack(ok)
    await peer.wait_frames(5)
    assert isinstance(service.share, Share)
    service.share.shared[1].discard(CHANNEL)
    assert await service.recheck() == 1
    (bye,) = upper.requests
    assert bye.method == "BYE" and bye.call_id == ok.call_id
    assert bye.from_tag == ok.to_tag and bye.to_tag == ok.from_tag
    await asyncio.sleep(0.1)
    n = len(peer.got.packets)
    await asyncio.sleep(0.2)
    assert len(peer.got.packets) == n
    end = audit_of(service)[-1]
    assert end["action"] == "cascade.session" and end["detail"]["reason"] == "channel no longer shared"
    # the upper's 200 to our BYE, and its late BYE, change nothing
    upper.media.receive(upper.in_dialog("BYE", ok))
    assert upper.replies[-1].status == 200
    peer.close()


# -- TCP, as the upper's SDP says ------------------------------------------------------------


async def test_upper_asks_tcp_active_while_we_prefer_passive_we_follow_it(
        hub: MediaHub, provider: Provider, service: UpstreamMedia, tmp_path: Path) -> None:
    """The upper's offer says a=setup:passive (it listens: we connect) while our configuration
    says we listen: the offer wins."""
    upper = Upper(service, 1, UPPER_ID, prefer="tcp-passive")
    peer = RtpPeer()
    port = await peer.listen()
    ok = await upper.final(upper.invite(port, transport="tcp-passive"))
    answer = parse_sdp(ok.body)
    assert answer.is_tcp and answer.setup == "active"
    upper.ack(ok)
    await peer.wait_frames(20)
    assert peer.connections == 1 and peer.got.sequence_gaps() == 0
    assert peer.got.decode(tmp_path)[:3] == ("h264", 320, 240)
    peer.close()


async def test_upper_asks_tcp_passive_while_we_prefer_active_we_listen(
        hub: MediaHub, provider: Provider, service: UpstreamMedia, tmp_path: Path) -> None:
    """The reverse: the upper's offer says a=setup:active (it connects); we listen on a port of
    our own that only the upper's addresses may use."""
    upper = Upper(service, 1, UPPER_ID, prefer="tcp-active")
    ok = await upper.final(upper.invite(9, transport="tcp-active"))
    answer = parse_sdp(ok.body)
    assert answer.is_tcp and answer.setup == "passive" and answer.media_port not in (0, 9)
    upper.ack(ok)
    intruder = RtpPeer()
    await intruder.connect("127.0.0.1", answer.media_port, source="127.0.0.2")
    await wait_for(lambda: intruder.closed_connections == 1)
    peer = RtpPeer()
    await peer.connect("127.0.0.1", answer.media_port)
    await peer.wait_frames(20)
    assert peer.got.ssrcs == {200000123} and intruder.got.packets == []
    assert peer.got.decode(tmp_path)[:3] == ("h264", 320, 240)
    (session,) = service.sessions()
    assert session["sender"]["refused_connections"] == 1
    for p in (peer, intruder):
        p.close()


# -- playback --------------------------------------------------------------------------------


async def test_playback_of_a_device_recording_with_pause_and_its_end(
        hub: MediaHub, service: UpstreamMedia, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(upstream_module, "END_GRACE", 0.2)
    provider = Provider(loops=2, interval=0.005)
    hub.set_provider("playback/", provider)
    upper = Upper(service, 1, UPPER_ID)
    peer = RtpPeer()
    port = await peer.udp()
    call = upper.invite(port, ssrc="1200000123", session="Playback", channel_id=CHANNEL,
                        start=1764800000, end=1764803600)
    ok = await upper.final(call)
    assert parse_sdp(ok.body).session_name == "Playback"
    ((name, params),) = provider.opens
    assert name.startswith(f"playback/{CHANNEL}/") and params["start"] == 1764800000 and params["end"] == 1764803600
    assert params["device_id"] == "34020100001110000001" and params["mode"] == "playback"
    upper.ack(ok)
    upper.media.receive(upper.in_dialog("INFO", ok, body=pause(1).encode(), ctype="Application/MANSRTSP"))
    assert upper.replies[-1].status == 200
    await wait_for(lambda: provider.sources[0].controls == [("pause", None)])
    # the recording ends: MediaStatus 121 in the dialog, then our BYE (the upper stayed)
    await wait_for(lambda: [r.method for r in upper.requests] == ["MESSAGE", "BYE"])
    status = manscdp.decode(upper.requests[0].body)
    assert status.cmd_type == "MediaStatus" and status.get("NotifyType") == "121"
    assert peer.got.frames() and peer.got.ssrcs == {1200000123}
    # the session's record comes once its sender is closed, after the BYE has gone (it failed
    # once under a loaded CI run when read at once)
    await wait_for(lambda: len(audit_of(service)) >= 3)
    assert [r["action"] for r in audit_of(service)] == ["cascade.invite", "cascade.playback_control",
                                                         "cascade.session"]
    peer.close()


# -- RecordInfo --------------------------------------------------------------------------------


class Device:
    """Answers RecordInfo as gb28181.commands.LocalCommands does (its plain shape)."""

    async def record_info(self, device_id: str, channel_id: str, start: str, end: str,
                          type_: str) -> list[dict[str, Any]]:
        assert (device_id, channel_id) == ("34020100001110000001", CHANNEL)
        return [{"name": "东门", "start": start, "end": end, "type": "time", "file_path": "/a.mp4", "size": 1024,
                 "secrecy": 0}]


async def test_record_info_of_a_shared_channel_in_parts(hub: MediaHub) -> None:
    svc = UpstreamMedia(hub, Share(), records=Device())
    items = await svc.record_info(1, CHANNEL, "2026-12-04T08:00:00", "2026-12-04T09:00:00")
    assert [(i.device_id, i.start_time) for i in items] == [(CHANNEL, "2026-12-04T08:00:00")]
    with pytest.raises(Exception, match="not shared"):
        await svc.record_info(1, NOT_SHARED, "2026-12-04T08:00:00", "2026-12-04T09:00:00")
    parts = record_info_parts(7, CHANNEL, items * 9, per_message=4)
    decoded = [manscdp.decode(p) for p in parts]
    assert [len(d.items) for d in decoded] == [4, 4, 1]
    assert all(d.sum_num == 9 and d.sn == 7 and d.cmd_type == "RecordInfo" for d in decoded)
    empty = manscdp.decode(record_info_parts(8, CHANNEL, [])[0])
    assert empty.sum_num == 0 and empty.items == []
    await svc.stop()


async def test_a_change_on_the_bus_rechecks_at_once(hub: MediaHub, provider: Provider,
                                                   service: UpstreamMedia) -> None:
    """The upper's row changed (another node's API), or a channel or device did: the sessions
    are checked within a moment, not at the next periodic round (an hour in this fixture)."""
    bus = EventBus()
    service.listen(bus)
    upper = Upper(service, 1, UPPER_ID)
    peer = RtpPeer()
    ok = await upper.final(upper.invite(await peer.udp()))
    upper.ack(ok)
    await peer.wait_frames(3)
    assert isinstance(service.share, Share)
    service.share.shared[1].clear()
    bus.publish("stream.up", "unrelated")  # not a change of shares: nothing
    await asyncio.sleep(0.4)
    assert upper.requests == []
    bus.publish("channel.deleted", CHANNEL)
    await wait_for(lambda: [r.method for r in upper.requests] == ["BYE"], timeout=2.0)
    peer.close()


async def test_closing_the_service_hangs_up_every_upper(hub: MediaHub, provider: Provider) -> None:
    svc = UpstreamMedia(hub, Share(), recheck_every=3600)
    uppers = [Upper(svc, 1, UPPER_ID), Upper(svc, 2, OTHER_ID)]
    for u in uppers:
        u.ack(await u.final(u.invite(30000 + u.n)))
    await svc.stop()
    assert [[r.method for r in u.requests] for u in uppers] == [["BYE"], ["BYE"]]
    assert svc.sessions() == []


async def test_download_asks_the_device_at_the_upper_speed(hub: MediaHub, service: UpstreamMedia) -> None:
    provider = Provider(loops=2, interval=0.005)
    hub.set_provider("download/", provider)
    upper = Upper(service, 1, UPPER_ID)
    ok = await upper.final(upper.invite(30000, ssrc="1200000124", session="Download", channel_id=CHANNEL,
                                        start=1764800000, end=1764800600, download_speed=8))
    assert ok.status == 200 and parse_sdp(ok.body).session_name == "Download"
    ((name, params),) = provider.opens
    assert name.startswith(f"download/{CHANNEL}/") and params["mode"] == "download" and params["speed"] == 8
