"""Video to an upper from ports of a configured range (media.upstream_port_range), for the
firewall between a city and a province: the UDP port we send from, the TCP port we listen on
(passive) or connect from (active) are in the range, a used-up range refuses the INVITE with a
clear 503, and the ports come back after BYE. Real sockets on loopback, real x264 frames."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from pydantic import ValidationError
from tests.cascade.test_upstream import (
    CHANNEL,
    NOT_SHARED,
    OTHER_ID,
    UPPER_ID,
    Audit,
    Provider,
    Share,
    Upper,
    wait_for,
)
from tests.media._ps_rtp_peer import RtpPeer
from tests.ports import free_range

from xueliang.cascade.upstream import UpstreamMedia
from xueliang.config import MediaConfig
from xueliang.gb28181.sdp import parse_sdp
from xueliang.media.hub import MediaHub
from xueliang.media.ports import PortPool, PortsExhausted


@pytest.fixture
def provider(hub: MediaHub) -> Provider:
    p = Provider()
    hub.set_provider("live/", p)
    return p


async def service_with(hub: MediaHub, size: int) -> UpstreamMedia:
    return UpstreamMedia(hub, Share(), audit=Audit(), recheck_every=3600, port_range=free_range(size))


def pool(svc: UpstreamMedia) -> PortPool:
    assert svc.ports is not None
    return svc.ports


async def test_udp_leaves_from_a_port_of_the_range_and_returns_it_after_the_bye(
        hub: MediaHub, provider: Provider) -> None:
    svc = await service_with(hub, 2)
    ports = pool(svc)
    upper = Upper(svc, 1, UPPER_ID)
    peer = RtpPeer()
    ok = await upper.final(upper.invite(await peer.udp()))
    assert ok.status == 200
    sdp_port = parse_sdp(ok.body).media_port
    assert ports.first <= sdp_port <= ports.last
    assert ports.in_use == {sdp_port}
    upper.ack(ok)
    await peer.wait_frames(5)
    # what the upper's firewall sees: every packet from the port in our SDP
    assert {port for _, port in peer.got.sources} == {sdp_port}
    upper.bye(ok)
    await wait_for(lambda: not svc.sessions() and not ports.in_use)
    peer.close()
    await svc.stop()


async def test_a_used_up_range_refuses_with_503_and_a_bye_frees_it(hub: MediaHub, provider: Provider) -> None:
    svc = await service_with(hub, 1)
    ports = pool(svc)
    first, second = Upper(svc, 1, UPPER_ID), Upper(svc, 2, OTHER_ID)
    peers = [RtpPeer(), RtpPeer(), RtpPeer()]
    ok = await first.final(first.invite(await peers[0].udp()))
    assert ok.status == 200 and parse_sdp(ok.body).media_port == ports.first
    first.ack(ok)
    busy = await second.final(second.invite(await peers[1].udp(), ssrc="0200000124"))
    assert busy.status == 503
    assert busy.reason == f"no free RTP port in {ports.first}-{ports.last}"
    assert [s["call_id"] for s in svc.sessions()] == [ok.call_id]  # the refused one left nothing
    stream = hub.stream(f"live/{CHANNEL}")
    assert stream is not None and len(stream.output("ps").readers) == 1
    refusal = [r for r in svc.audit.records if r["status"] == 503]  # type: ignore[union-attr]
    assert [(r["action"], r["outcome"], r["actor"]) for r in refusal] == \
        [("cascade.invite", "error", f"upper:{OTHER_ID}")]
    # the first upper hangs up: its port serves the next one
    first.bye(ok)
    await wait_for(lambda: not ports.in_use)
    again = await second.final(second.invite(await peers[2].udp(), ssrc="0200000125"))
    assert again.status == 200 and parse_sdp(again.body).media_port == ports.first
    second.ack(again)
    await peers[2].wait_frames(3)
    for p in peers:
        p.close()
    await svc.stop()
    assert not ports.in_use  # stopping the service hangs up and gives the port back


async def test_a_port_another_process_holds_is_skipped(hub: MediaHub, provider: Provider) -> None:
    svc = await service_with(hub, 2)
    ports = pool(svc)
    squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    squatter.bind(("127.0.0.1", ports.first))
    try:
        upper = Upper(svc, 1, UPPER_ID)
        peer = RtpPeer()
        ok = await upper.final(upper.invite(await peer.udp()))
        assert ok.status == 200 and parse_sdp(ok.body).media_port == ports.last
        peer.close()
    finally:
        squatter.close()
        await svc.stop()


async def test_tcp_passive_listens_on_a_port_of_the_range_only_for_the_upper(
        hub: MediaHub, provider: Provider) -> None:
    svc = await service_with(hub, 2)
    ports = pool(svc)
    upper = Upper(svc, 1, UPPER_ID)
    ok = await upper.final(upper.invite(9, transport="tcp-active"))
    answer = parse_sdp(ok.body)
    assert answer.is_tcp and answer.setup == "passive"
    assert ports.first <= answer.media_port <= ports.last and ports.in_use == {answer.media_port}
    upper.ack(ok)
    # a port in a known range is easier to find: it still serves only the upper's addresses
    intruder = RtpPeer()
    await intruder.connect("127.0.0.1", answer.media_port, source="127.0.0.2")
    await wait_for(lambda: intruder.closed_connections == 1)
    peer = RtpPeer()
    await peer.connect("127.0.0.1", answer.media_port)
    await peer.wait_frames(5)
    assert peer.got.ssrcs == {200000123} and intruder.got.packets == []
    upper.bye(ok)
    await wait_for(lambda: not svc.sessions() and not ports.in_use)
    for p in (peer, intruder):
        p.close()
    await svc.stop()


async def test_tcp_active_connects_from_a_port_of_the_range(hub: MediaHub, provider: Provider) -> None:
    svc = await service_with(hub, 2)
    ports = pool(svc)
    upper = Upper(svc, 1, UPPER_ID)
    peer = RtpPeer()
    ok = await upper.final(upper.invite(await peer.listen(), transport="tcp-passive"))
    answer = parse_sdp(ok.body)
    assert answer.is_tcp and answer.setup == "active" and answer.media_port == 9  # RFC 4145
    (reserved,) = ports.in_use
    upper.ack(ok)
    await peer.wait_frames(5)
    assert {port for _, port in peer.got.sources} == {reserved}
    upper.bye(ok)
    await wait_for(lambda: not svc.sessions() and not ports.in_use)
    peer.close()
    await svc.stop()


async def test_an_invite_outside_the_share_takes_no_port(hub: MediaHub, provider: Provider) -> None:
    """The upper learns nothing about the range, and a refused INVITE cannot use it up."""
    svc = await service_with(hub, 1)
    upper = Upper(svc, 1, UPPER_ID)
    for _ in range(3):
        assert (await upper.final(upper.invite(30000, channel=NOT_SHARED))).status == 404
    assert not pool(svc).in_use and provider.opens == []
    await svc.stop()


def test_pool_round_robin_and_exhaustion() -> None:
    p = PortPool(50000, 50002)
    got = [p.acquire(lambda port: port)[0] for _ in range(3)]
    assert got == [50000, 50001, 50002]
    with pytest.raises(PortsExhausted, match="no free RTP port in 50000-50002"):
        p.acquire(lambda port: port)
    p.release(50001)
    assert p.acquire(lambda port: port)[0] == 50001

    def refuse(port: int) -> int:
        raise OSError("in use")

    p.release(50000)
    with pytest.raises(PortsExhausted):
        p.acquire(refuse)
    assert p.in_use == {50001, 50002}  # a failed bind takes nothing


@pytest.mark.parametrize("bad", [
    {"upstream_port_range": (1000, 2000)},  # below 1024
    {"upstream_port_range": (40010, 40000)},  # reversed
    {"rtp_port": 40005, "upstream_port_range": (40000, 40010)},  # contains the shared RTP port
    {"rtp_tcp_port": 40005, "upstream_port_range": (40000, 40010)},
    {"rtp_port_range": (40008, 40020), "upstream_port_range": (40000, 40010)},  # overlaps
])
def test_bad_ranges_are_refused_at_start(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="upstream_port_range"):
        MediaConfig(**bad)


def test_a_good_range_is_taken() -> None:
    cfg = MediaConfig(rtp_port_range=(30002, 30999), upstream_port_range=(31000, 31099))
    assert cfg.upstream_port_range == (31000, 31099)
