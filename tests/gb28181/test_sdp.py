"""GB28181 SDP: exact offers, device answers, tolerant parsing, SSRC, round trips, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xueliang.gb28181.sdp import (
    SdpError,
    answer_offer,
    make_answer,
    make_offer,
    make_ssrc,
    parse_sdp,
)

PLATFORM = "34020000002000000001"
CHANNEL = "34020000001320000001"
DEVICE = "34020000001180000001"


def test_make_ssrc() -> None:
    assert make_ssrc("3402000000", 1, False) == "0200000001"
    assert make_ssrc(PLATFORM, 1, False) == "0200000001"
    assert make_ssrc("4403061200", 9999, True) == "1306129999"
    for bad_seq in (-1, 10000):
        with pytest.raises(SdpError, match=r"0\.\.9999"):
            make_ssrc(PLATFORM, bad_seq, False)
    with pytest.raises(SdpError):
        make_ssrc("34", 1, False)


def test_play_udp_offer_exactly_as_spec() -> None:
    offer = make_offer(PLATFORM, "192.168.1.10", 30000, "0200000001")
    assert offer == (
        "v=0\r\n"
        f"o={PLATFORM} 0 0 IN IP4 192.168.1.10\r\n"
        "s=Play\r\n"
        "c=IN IP4 192.168.1.10\r\n"
        "t=0 0\r\n"
        "m=video 30000 RTP/AVP 96 97 98 99\r\n"
        "a=recvonly\r\n"
        "a=rtpmap:96 PS/90000\r\n"
        "a=rtpmap:98 H264/90000\r\n"
        "a=rtpmap:97 MPEG4/90000\r\n"
        "a=rtpmap:99 H265/90000\r\n"
        "y=0200000001\r\n"
    )


def test_tcp_offers() -> None:
    passive = make_offer(PLATFORM, "10.0.0.1", 30002, "0200000002", transport="tcp-passive")
    assert "m=video 30002 TCP/RTP/AVP 96 97 98 99\r\n" in passive
    assert passive.endswith("a=setup:passive\r\na=connection:new\r\ny=0200000002\r\n")
    active = make_offer(PLATFORM, "10.0.0.1", 30002, "0200000002", transport="tcp-active")
    assert "a=setup:active\r\na=connection:new\r\n" in active
    assert "a=setup" not in make_offer(PLATFORM, "10.0.0.1", 1, "0200000002")


def test_playback_and_download_offers() -> None:
    pb = make_offer(
        PLATFORM,
        "10.0.0.1",
        30004,
        "1200000001",
        session="Playback",
        channel_id=CHANNEL,
        start=1714521600,
        end=1714525200,
    )
    lines = pb.split("\r\n")
    assert lines[2:6] == [
        "s=Playback",
        f"u={CHANNEL}:0",
        "c=IN IP4 10.0.0.1",
        "t=1714521600 1714525200",
    ]
    assert "a=downloadspeed" not in pb
    dl = make_offer(
        PLATFORM,
        "10.0.0.1",
        30006,
        "1200000002",
        session="Download",
        transport="tcp-passive",
        channel_id=CHANNEL,
        start=1,
        end=2,
        download_speed=4,
    )
    assert "s=Download\r\n" in dl
    assert "a=setup:passive\r\na=connection:new\r\na=downloadspeed:4\r\ny=1200000002\r\n" in dl


def test_ipv6_offer() -> None:
    offer = make_offer(PLATFORM, "2001:db8::1", 30000, "0200000001")
    assert f"o={PLATFORM} 0 0 IN IP6 2001:db8::1\r\n" in offer
    assert "c=IN IP6 2001:db8::1\r\n" in offer
    sd = parse_sdp(offer)
    assert sd.address_type == "IP6" and sd.connection_address == "2001:db8::1"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"session": "Live"}, "session"),
        ({"transport": "sctp"}, "transport"),
        ({"session": "Playback"}, "channel_id"),
        ({"port": 70000}, "port"),
        ({"ssrc": "12345"}, "SSRC"),
        ({"media_ip": ""}, "media address"),
        ({"session": "Playback", "channel_id": CHANNEL, "start": 10, "end": 5}, "time range"),
        (
            {"session": "Download", "channel_id": CHANNEL, "download_speed": 0},
            "download_speed",
        ),
    ],
)
def test_offer_errors(kwargs: dict[str, object], fragment: str) -> None:
    args: dict[str, object] = {
        "platform_id": PLATFORM,
        "media_ip": "10.0.0.1",
        "port": 30000,
        "ssrc": "0200000001",
    }
    args.update(kwargs)
    with pytest.raises(SdpError, match=fragment):
        make_offer(**args)  # type: ignore[arg-type]


# A Hikvision-style answer: LF endings, f= line, its own SSRC, extra attributes.
HIK_ANSWER = f"""v=0
o={CHANNEL} 0 0 IN IP4 192.168.1.64
s=Play
c=IN IP4 192.168.1.64
t=0 0
m=video 15060 RTP/AVP 96
a=sendonly
a=rtpmap:96 PS/90000
a=username:{CHANNEL}
a=password:12345678
a=filesize:0
y=0200000099
f=v/2/4/25/1/4096a///
"""


def test_parse_device_answer() -> None:
    sd = parse_sdp(HIK_ANSWER)
    assert sd.version == "0"
    assert sd.origin is not None and sd.origin.username == CHANNEL
    assert sd.origin.address == "192.168.1.64"
    assert sd.session_name == "Play"
    assert sd.connection_address == "192.168.1.64" and sd.media_address == "192.168.1.64"
    assert sd.media_port == 15060
    assert sd.protocol == "RTP/AVP" and not sd.is_tcp and sd.transport == "udp"
    assert sd.payload_types == [96]
    assert sd.rtpmap == {96: "PS/90000"}
    assert sd.media_direction == "sendonly"
    assert sd.ssrc == "0200000099" and sd.ssrc_int == 200000099
    assert sd.f == "v/2/4/25/1/4096a///"
    assert sd.file_size == 0
    assert ("username", CHANNEL) in sd.video.attributes


def test_parse_tolerates_missing_y_short_y_media_level_c_and_no_c() -> None:
    no_y = HIK_ANSWER.replace("y=0200000099\n", "")
    assert parse_sdp(no_y).ssrc is None
    short = parse_sdp(HIK_ANSWER.replace("y=0200000099", "y=123456789"))
    assert short.ssrc == "0123456789" and short.ssrc_raw == "123456789"
    junk = parse_sdp(HIK_ANSWER.replace("y=0200000099", "y=0x1234"))
    assert junk.ssrc is None and junk.ssrc_raw == "0x1234"
    media_c = (
        "v=0\r\no=x 0 0 IN IP4 1.1.1.1\r\ns=Play\r\nt=0 0\r\n"
        "m=video 9000 TCP/RTP/AVP 96\r\nc=IN IP4 2.2.2.2\r\na=setup:active\r\n"
        "a=connection:new\r\na=rtpmap:96 PS/90000\r\n"
    )
    sd = parse_sdp(media_c.encode())
    assert sd.connection_address is None and sd.media_address == "2.2.2.2"
    assert sd.is_tcp and sd.setup == "active" and sd.connection == "new"
    assert sd.transport == "tcp-active"
    no_c = parse_sdp("v=0\no=dev 0 0 IN IP4 3.3.3.3\ns=Play\nm=video 9000 RTP/AVP 96\n")
    assert no_c.media_address == "3.3.3.3"


def test_parse_blank_lines_bom_spaces_port_count_and_audio() -> None:
    text = (
        "\ufeffv=0\r\n\r\n  o=dev 0 0 IN IP4 4.4.4.4  \r\nnot a line\r\ns=Play\r\n"
        "c=IN IP4 4.4.4.4/127\r\nt=0 0\r\nm=audio 8000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
        "m=video 9000/2 RTP/AVP 96 x 98\r\na=rtpmap:96 PS/90000\r\na=recvonly\r\n"
    )
    sd = parse_sdp(text)
    assert sd.connection_address == "4.4.4.4"
    assert sd.media_port == 9000 and sd.payload_types == [96, 98]
    assert sd.media[0].media == "audio" and sd.media[0].rtpmap == {8: "PCMA/8000"}
    assert sd.media_direction == "recvonly"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "no m= line"),
        ("v=0\r\ns=Play\r\nc=IN IP4 1.1.1.1\r\n", "no m= line"),
        ("v=0\r\nc=IN IP4 1.1.1.1\r\nm=video abc RTP/AVP 96\r\n", "media port"),
        ("v=0\r\nc=IN IP4 1.1.1.1\r\nm=video 70000 RTP/AVP 96\r\n", "media port"),
        ("v=0\r\nc=IN IP4 1.1.1.1\r\nm=video\r\n", "malformed m="),
        ("v=0\r\nm=video 9000 RTP/AVP 96\r\n", "no connection address"),
        (
            "v=0\r\nm=video 9000 RTP/AVP 96\r\nm=audio 9002 RTP/AVP 8\r\nc=IN IP4 1.1.1.1\r\n",
            "no connection address",
        ),
        ("m=video 1 RTP/AVP 96\n" * 10000, "too long"),
    ],
)
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(SdpError, match=fragment):
        parse_sdp(text)


def test_make_answer_and_answer_offer() -> None:
    ans = make_answer(CHANNEL, "192.168.1.64", 15060, "0200000001", f="v/2/4/25/1/4096a///")
    sd = parse_sdp(ans)
    assert sd.media_direction == "sendonly" and sd.ssrc == "0200000001"
    assert sd.f == "v/2/4/25/1/4096a///" and sd.rtpmap == {96: "PS/90000"}
    assert ans.endswith("y=0200000001\r\nf=v/2/4/25/1/4096a///\r\n")

    offer = parse_sdp(
        make_offer(
            PLATFORM,
            "10.0.0.1",
            30000,
            "1200000007",
            session="Playback",
            transport="tcp-passive",
            channel_id=CHANNEL,
            start=100,
            end=200,
        )
    )
    reply = parse_sdp(answer_offer(offer, CHANNEL, "192.168.1.64", 15060))
    assert reply.session_name == "Playback"
    assert (reply.start_time, reply.end_time) == (100, 200)
    assert reply.ssrc == "1200000007"
    assert reply.is_tcp and reply.setup == "active"
    assert reply.media_direction == "sendonly"
    udp = parse_sdp(make_offer(PLATFORM, "10.0.0.1", 30000, "0200000003"))
    own = parse_sdp(answer_offer(udp, CHANNEL, "192.168.1.64", 15060, ssrc="0200000099"))
    assert own.ssrc == "0200000099" and not own.is_tcp
    with pytest.raises(SdpError, match="setup"):
        make_answer(CHANNEL, "1.1.1.1", 1, "0200000001", setup="both")


_ids = st.text(alphabet="0123456789", min_size=20, max_size=20)


@settings(max_examples=150, deadline=None)
@given(
    platform=_ids,
    ip=st.ip_addresses().map(str),
    port=st.integers(0, 65535),
    ssrc=st.text(alphabet="0123456789", min_size=10, max_size=10),
    session=st.sampled_from(["Play", "Playback", "Download"]),
    transport=st.sampled_from(["udp", "tcp-passive", "tcp-active"]),
    channel=_ids,
    start=st.integers(0, 2**32),
    length=st.integers(0, 86400),
    speed=st.none() | st.integers(1, 8),
)
def test_offer_round_trip(
    platform: str,
    ip: str,
    port: int,
    ssrc: str,
    session: str,
    transport: str,
    channel: str,
    start: int,
    length: int,
    speed: int | None,
) -> None:
    text = make_offer(
        platform,
        ip,
        port,
        ssrc,
        session=session,
        transport=transport,
        channel_id=channel,
        start=start,
        end=start + length,
        download_speed=speed,
    )
    sd = parse_sdp(text)
    assert sd.origin is not None and sd.origin.username == platform
    assert sd.connection_address == ip
    assert sd.address_type == ("IP6" if ":" in ip else "IP4")
    assert sd.session_name == session
    assert sd.media_port == port
    assert sd.ssrc == ssrc
    assert sd.payload_types == [96, 97, 98, 99]
    assert sd.rtpmap == {96: "PS/90000", 98: "H264/90000", 97: "MPEG4/90000", 99: "H265/90000"}
    assert sd.media_direction == "recvonly"
    assert sd.transport == transport
    if session == "Play":
        assert (sd.start_time, sd.end_time, sd.uri) == (0, 0, None)
    else:
        assert (sd.start_time, sd.end_time) == (start, start + length)
        assert sd.uri == f"{channel}:0"
    assert sd.download_speed == (speed if session == "Download" else None)


def _parse_only_sdp_error(text: str | bytes) -> None:
    try:
        sd = parse_sdp(text)
    except SdpError:
        return
    assert sd.media and 0 <= sd.media_port <= 65535
    assert sd.media_address is not None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    _parse_only_sdp_error(data)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(HIK_ANSWER.splitlines())
        | st.text(alphabet="vosctmayfu=0123456789 /:.INP4RTAV\r\n", max_size=30),
        max_size=20,
    )
)
def test_fuzz_shuffled_and_random_lines(lines: list[str]) -> None:
    _parse_only_sdp_error("\n".join(lines))
