"""PS mux/demux over RTP, end to end with real encoder output, device quirks and fuzzing.

Real clip → PsMuxer → RtpPacketizer → (network mischief) → RtpReceiver → PsDemuxer → frames,
then the frames go back into a real decoder.
"""

from __future__ import annotations

import fractions
import functools
import random
import struct

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xueliang.media.frame import Codec, Frame
from xueliang.media.ps import PsDemuxer
from xueliang.media.ps_mux import (
    PsMuxer,
    PsTemplate,
    crc32_mpeg2,
    encode_pes_timestamp,
    restamp,
)
from xueliang.media.rtp import (
    Rfc4571Deframer,
    RtpPacketizer,
    RtpReceiver,
    parse_rtp,
)

WIDTH, HEIGHT, FRAMES, GOP = 320, 240, 50, 25
BASE = 90000  # keeps DTS positive despite B-frames


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True


needs_x265 = pytest.mark.skipif(not _has_encoder("libx265"), reason="PyAV built without libx265")


@functools.cache
def clip(encoder: str = "libx264", **opts: str) -> tuple[Frame, ...]:
    """50 frames of 320x240 25 fps test pattern, GOP 25, with B-frames (PTS ≠ DTS)."""
    codec = Codec.H265 if encoder == "libx265" else Codec.H264
    ctx = av.CodecContext.create(encoder, "w")
    ctx.width, ctx.height, ctx.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    ctx.time_base = fractions.Fraction(1, 25)
    ctx.framerate = 25
    ctx.gop_size = GOP
    if encoder == "libx265":
        opts.setdefault("x265-params", f"log-level=error:keyint={GOP}:min-keyint={GOP}:scenecut=0")
    else:
        opts.setdefault("x264-params", "scenecut=0")
    ctx.options = opts
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    packets = []
    for i in range(FRAMES):
        img = np.stack(
            [(xx + 4 * i) % 256, (yy + 2 * i) % 256, ((xx // 16 + yy // 16 + i) % 2) * 255], -1
        ).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        packets += list(ctx.encode(frame))
    packets += list(ctx.encode(None))
    frames = []
    for p in packets:
        assert p.pts is not None and p.dts is not None
        frames.append(
            Frame(codec, BASE + p.pts * 3600, BASE + p.dts * 3600, bytes(p), p.is_keyframe)
        )
    assert len(frames) == FRAMES
    return tuple(frames)


def to_rtp(
    frames: tuple[Frame, ...] | list[Frame],
    muxer: PsMuxer | None = None,
    *,
    mtu: int = 1400,
    marker: bool = True,
    sequence: int = 0,
    rfc4571: bool = False,
) -> list[bytes]:
    muxer = muxer or PsMuxer()
    packetizer = RtpPacketizer(
        0x0200000001 & 0xFFFFFFFF, mtu=mtu, sequence=sequence, rfc4571=rfc4571
    )
    out: list[bytes] = []
    for f in frames:
        out += packetizer.packetize(muxer.mux(f), f.dts, marker=marker)
    return out


def receive(
    packets: list[bytes],
    demuxer: PsDemuxer | None = None,
    *,
    use_sequence: bool = True,
    set_marker: bool | None = None,
) -> tuple[list[Frame], PsDemuxer, RtpReceiver]:
    rx = RtpReceiver(window=64, max_delay=10.0)
    dm = demuxer or PsDemuxer()
    out: list[Frame] = []
    delivered = []
    for i, raw in enumerate(packets):
        delivered += rx.push(parse_rtp(raw), i * 0.001)
    delivered += rx.flush()
    for p in delivered:
        marker = p.marker if set_marker is None else set_marker
        out += dm.feed(p.payload, p.timestamp, marker, p.sequence if use_sequence else None)
    out += dm.flush()
    return out, dm, rx


def same(a: list[Frame] | tuple[Frame, ...], b: list[Frame] | tuple[Frame, ...]) -> bool:
    return [(f.codec, f.pts, f.dts, f.keyframe, f.data) for f in a] == [
        (f.codec, f.pts, f.dts, f.keyframe, f.data) for f in b
    ]


def decode(frames: list[Frame], codec: str = "h264") -> list[av.VideoFrame]:
    ctx = av.CodecContext.create(codec, "r")
    pictures: list[av.VideoFrame] = []
    for f in frames:
        pictures += ctx.decode(av.Packet(f.data))
    pictures += ctx.decode(None)
    return pictures


def mischief(packets: list[bytes], seed: int, dup: float = 0.05, span: int = 6) -> list[bytes]:
    """Reorder within a small span and duplicate some packets; lose none. The first packet
    stays first: the receiver starts its sequence there."""
    rng = random.Random(seed)
    out = list(packets)
    for i in range(1, len(out) - 1):
        if rng.random() < 0.3:
            j = min(len(out) - 1, i + rng.randrange(1, span))
            out[i], out[j] = out[j], out[i]
    result: list[bytes] = []
    for p in out:
        result.append(p)
        if rng.random() < dup:
            result.append(p)
    return result


# -- end to end -----------------------------------------------------------------------------


def test_h264_roundtrip_reordered_duplicated() -> None:
    frames = clip()
    packets = to_rtp(frames)
    assert len(packets) > FRAMES  # key frames span several packets
    out, dm, rx = receive(mischief(packets, seed=1))
    assert same(out, frames)
    assert [i for i, f in enumerate(out) if f.keyframe] == [0, 25]
    assert any(f.pts != f.dts for f in out)
    assert (dm.width, dm.height) == (WIDTH, HEIGHT)
    assert dm.video_codec is Codec.H264 and dm.parameter_sets.complete(Codec.H264)
    assert dm.stream_types == {0xE0: 0x1B}
    assert (dm.video_frames, dm.key_frames, dm.errors, dm.resyncs) == (FRAMES, 2, 0, 0)
    assert rx.duplicates > 0 and rx.reordered > 0 and rx.lost == 0
    pictures = decode(out)
    assert len(pictures) == FRAMES
    assert {(p.width, p.height) for p in pictures} == {(WIDTH, HEIGHT)}


@needs_x265
def test_h265_roundtrip() -> None:
    frames = clip("libx265")
    out, dm, _ = receive(mischief(to_rtp(frames), seed=2))
    assert same(out, frames)
    assert [i for i, f in enumerate(out) if f.keyframe] == [0, 25]
    assert dm.video_codec is Codec.H265 and dm.parameter_sets.complete(Codec.H265)
    assert (dm.width, dm.height) == (WIDTH, HEIGHT)
    assert dm.stream_types == {0xE0: 0x24}
    pictures = decode(out, "hevc")
    assert len(pictures) == FRAMES and pictures[0].width == WIDTH


def test_h264_with_aud_first() -> None:
    frames = clip(aud="1")
    assert frames[0].data.startswith(b"\x00\x00\x00\x01\x09")
    out, dm, _ = receive(to_rtp(frames))
    assert same(out, frames) and dm.key_frames == 2 and dm.width == WIDTH


def test_loss_drops_only_damaged_frames() -> None:
    frames = clip()
    packetizer = RtpPacketizer(99, mtu=600)
    muxer = PsMuxer()
    packets: list[bytes] = []
    owner: list[int] = []  # frame index of each packet
    for i, f in enumerate(frames):
        chunk = packetizer.packetize(muxer.mux(f), f.dts)
        packets += chunk
        owner += [i] * len(chunk)
    rng = random.Random(7)
    lost = {i for i in range(len(packets)) if rng.random() < 0.04}
    lost |= {0, len(packets) - 1, owner.index(25)}  # first, last, key frame's first packet
    damaged = {owner[i] for i in lost}
    kept_ids = [i for i in range(len(packets)) if i not in lost]
    out, dm, rx = receive([packets[i] for i in kept_ids])
    expected = [f for i, f in enumerate(frames) if i not in damaged]
    assert len(expected) < FRAMES - 3
    assert same(out, expected)
    # Losses before the first and after the last packet received are invisible.
    assert rx.lost == sum(kept_ids[0] < i < kept_ids[-1] for i in lost)
    assert dm.dropped_frames >= 1
    assert dm.resyncs == 0  # losses are found by sequence numbers, not by tripping over bytes


def test_truncated_frame_without_sequence_numbers() -> None:
    """No sequence numbers given: an incomplete PES at the timestamp change drops the frame."""
    frames = clip()
    packets = to_rtp(frames, mtu=500)
    by_frame: dict[int, list[int]] = {}
    for i, raw in enumerate(packets):
        by_frame.setdefault(parse_rtp(raw).timestamp, []).append(i)
    victim = frames[25]  # the second key frame: several packets
    assert len(by_frame[victim.dts]) > 1
    drop = by_frame[victim.dts][-1]  # the frame's last packet (with the marker)
    out, dm, _ = receive([p for i, p in enumerate(packets) if i != drop], use_sequence=False)
    assert same(out, [f for i, f in enumerate(frames) if i != 25])
    assert dm.dropped_frames == 1 and dm.errors >= 1


def test_marker_less_sender() -> None:
    frames = clip()
    packets = to_rtp(frames, marker=False)
    assert not any(parse_rtp(p).marker for p in packets)
    out, dm, _ = receive(packets)
    assert same(out, frames) and dm.errors == 0
    # Without flush() the last frame waits for a timestamp change that never comes.
    dm2 = PsDemuxer()
    got = []
    for raw in packets:
        p = parse_rtp(raw)
        got += dm2.feed(p.payload, p.timestamp, p.marker)
    assert same(got, frames[:-1])
    assert same(dm2.flush(), frames[-1:])


def test_marker_on_every_packet() -> None:
    frames = clip()
    out, dm, _ = receive(to_rtp(frames, mtu=400), set_marker=True)
    assert same(out, frames) and dm.errors == 0


def test_psm_missing() -> None:
    frames = clip()
    packets = to_rtp(frames, PsMuxer(psm=False))
    assert not any(b"\x00\x00\x01\xbc" in parse_rtp(p).payload for p in packets)
    out, dm, _ = receive(packets)
    assert same(out, frames) and dm.stream_types == {} and dm.video_codec is Codec.H264
    assert len(decode(out)) == FRAMES


@needs_x265
def test_psm_missing_h265_detected_from_nal_headers() -> None:
    frames = clip("libx265")
    out, dm, _ = receive(to_rtp(frames, PsMuxer(psm=False)))
    assert same(out, frames) and dm.video_codec is Codec.H265 and dm.width == WIDTH


@needs_x265
def test_wrong_stream_type_h265_declared_as_h264() -> None:
    frames = clip("libx265")
    out, dm, _ = receive(to_rtp(frames, PsMuxer(stream_types={Codec.H265: 0x1B})))
    assert dm.stream_types == {0xE0: 0x1B}
    assert same(out, frames) and dm.video_codec is Codec.H265 and dm.codec_mismatches >= 1


def test_wrong_stream_type_h264_declared_as_h265_or_audio() -> None:
    frames = clip()
    for wrong in (0x24, 0x90):
        out, dm, _ = receive(to_rtp(frames, PsMuxer(stream_types={Codec.H264: wrong})))
        assert same(out, frames) and dm.video_codec is Codec.H264
        assert (dm.width, dm.height) == (WIDTH, HEIGHT)


@pytest.mark.parametrize("pts_on_every_pes", [False, True])
def test_frames_over_several_pes_and_pes_over_several_rtp_packets(pts_on_every_pes: bool) -> None:
    frames = clip()
    muxer = PsMuxer(max_pes_payload=700, pts_on_every_pes=pts_on_every_pes)
    chunk = PsMuxer(max_pes_payload=700).mux(frames[0])
    assert chunk.count(b"\x00\x00\x01\xe0") == -(-len(frames[0].data) // 700)
    out, dm, _ = receive(mischief(to_rtp(frames, muxer, mtu=333), seed=3))
    assert same(out, frames) and dm.errors == 0


def test_tcp_dollar_prefix_fed_byte_by_byte() -> None:
    frames = clip()[:12]
    framed = to_rtp(frames, rfc4571=True)
    # Turn every other 2-byte prefix into the 4-byte "$" interleaved form.
    stream = b"".join(b"$\x00" + f if i % 2 else f for i, f in enumerate(framed))
    deframer = Rfc4571Deframer()
    packets: list[bytes] = []
    for i in range(len(stream)):
        packets += deframer.feed(stream[i : i + 1])
    assert len(packets) == len(framed) and deframer.resyncs == 0
    out, _, _ = receive(packets)
    assert same(out, frames)


def test_sequence_wraparound() -> None:
    frames = clip()
    packets = to_rtp(frames, sequence=65500, mtu=300)
    seqs = [parse_rtp(p).sequence for p in packets]
    assert 65535 in seqs and 0 in seqs
    out, dm, rx = receive(mischief(packets, seed=4))
    assert same(out, frames) and rx.lost == 0 and dm.errors == 0


def test_pts_33_bit_wraparound_is_unwrapped() -> None:
    offset = (1 << 33) - 20 * 3600 - BASE
    frames = [Frame(f.codec, f.pts + offset, f.dts + offset, f.data, f.keyframe) for f in clip()]
    out, _, _ = receive(to_rtp(frames))
    assert same(out, frames)
    assert out[-1].pts > 1 << 33


# -- audio ----------------------------------------------------------------------------------


def _adts(payload: bytes) -> bytes:
    length = len(payload) + 7
    return (
        bytes(
            (
                0xFF,
                0xF1,
                0x50,
                0x80 | (length >> 11),
                (length >> 3) & 0xFF,
                ((length & 7) << 5) | 0x1F,
                0xFC,
            )
        )
        + payload
    )


def _with_audio(audio_codec: Codec, make: object) -> list[Frame]:
    assert callable(make)
    video = clip()[:10]
    merged: list[Frame] = []
    for i, f in enumerate(video):
        merged.append(f)
        merged.append(
            Frame(audio_codec, BASE + i * 3600 + 1800, BASE + i * 3600 + 1800, make(i), True)
        )
    return merged


def test_audio_g711a_interleaved_in_own_chunks() -> None:
    frames = _with_audio(Codec.G711A, lambda i: bytes([0xD5 ^ i]) * 320)
    out, dm, _ = receive(to_rtp(frames, PsMuxer(audio=Codec.G711A)))
    assert same(out, frames)
    assert dm.audio_codec is Codec.G711A and dm.audio_frames == 10
    assert dm.stream_types == {0xE0: 0x1B, 0xC0: 0x90}


def test_audio_without_psm_default_g711a_and_aac_by_adts() -> None:
    frames = _with_audio(Codec.G711A, lambda i: bytes([0xFF, 0xF1]) + bytes(300))
    out, dm, _ = receive(to_rtp(frames, PsMuxer(psm=False)))
    assert same(out, frames) and dm.audio_codec is Codec.G711A
    frames = _with_audio(Codec.AAC, lambda i: _adts(bytes([i]) * 100) + _adts(b"\x01" * 50))
    out, dm, _ = receive(to_rtp(frames, PsMuxer(psm=False)))
    assert same(out, frames) and dm.audio_codec is Codec.AAC


def _pes(sid: int, payload: bytes, pts: int | None = None, dts: int | None = None) -> bytes:
    fields = b""
    flags = 0
    if pts is not None and dts is not None:
        fields = encode_pes_timestamp(3, pts) + encode_pes_timestamp(1, dts)
        flags = 0xC0
    elif pts is not None:
        fields = encode_pes_timestamp(2, pts)
        flags = 0x80
    return (
        struct.pack(">IHBBB", 0x100 | sid, 3 + len(fields) + len(payload), 0x80, flags, len(fields))
        + fields
        + payload
    )


def _pack(stuffing: int = 0) -> bytes:
    return (
        PsMuxer().mux(Frame(Codec.G711A, 0, 0, b""))[:13]
        + bytes((0xF8 | stuffing,))
        + b"\xff" * stuffing
    )


def _feed_chunks(
    chunks: list[bytes], mtu: int = 200, demuxer: PsDemuxer | None = None
) -> tuple[list[Frame], PsDemuxer]:
    dm = demuxer or PsDemuxer()
    out: list[Frame] = []
    seq = 0
    for k, chunk in enumerate(chunks):
        parts = [chunk[i : i + mtu] for i in range(0, len(chunk), mtu)]
        for j, part in enumerate(parts):
            out += dm.feed(part, 1000 + k * 3600, j == len(parts) - 1, seq & 0xFFFF)
            seq += 1
    return out + dm.flush(), dm


def test_audio_pes_inside_a_video_frame_and_skipped_streams() -> None:
    """Audio interleaved between a frame's PES; padding and private streams skipped;
    pack header with stuffing bytes."""
    f0, f1 = clip()[0], clip()[1]
    half = len(f0.data) // 2
    chunk0 = (
        _pack(stuffing=3)
        + _pes(0xE0, f0.data[:half], f0.pts, f0.dts)
        + _pes(0xC0, b"\x55" * 160, f0.pts)
        + _pes(0xBE, b"\xff" * 40)  # padding
        + _pes(0xBD, b"private")  # private stream 1
        + _pes(0xE0, f0.data[half:])  # continuation, no PTS
    )
    chunk1 = _pack() + _pes(0xBF, b"x" * 10) + _pes(0xE0, f1.data, f1.pts, f1.dts)
    out, dm = _feed_chunks([chunk0, chunk1], mtu=97)
    video = [f for f in out if f.codec.is_video]
    audio = [f for f in out if not f.codec.is_video]
    assert same(video, [f0, f1])
    assert [(a.codec, a.pts, a.data) for a in audio] == [(Codec.G711A, f0.pts, b"\x55" * 160)]
    assert dm.errors == 0


def test_mpeg1_pack_and_pes_headers_tolerated() -> None:
    f0 = clip()[0]
    mpeg1_pack = bytes.fromhex("000001ba 2100010001 800001")  # 12 bytes
    assert len(mpeg1_pack) == 12
    pts = encode_pes_timestamp(2, f0.pts)
    mpeg1_pes = (
        b"\x00\x00\x01\xe0"
        + (len(f0.data) + 2 + 2 + 5).to_bytes(2, "big")
        + b"\xff\xff"  # stuffing
        + b"\x40\x00"  # STD buffer
        + pts
        + f0.data
    )
    out, dm = _feed_chunks([mpeg1_pack + mpeg1_pes, mpeg1_pack + _pes(0xC0, b"\x01" * 8)])
    assert [(f.pts, f.data, f.keyframe) for f in out if f.codec.is_video] == [
        (f0.pts, f0.data, True)
    ]
    assert dm.errors == 0 and dm.audio_frames == 1


def test_unbounded_video_pes() -> None:
    """PES_packet_length 0: the payload runs to the next PS start code or the frame's end."""
    f0, f1 = clip()[0], clip()[1]

    def unbounded(f: Frame) -> bytes:
        fields = encode_pes_timestamp(3, f.pts) + encode_pes_timestamp(1, f.dts)
        return b"\x00\x00\x01\xe0\x00\x00\x80\xc0\x0a" + fields + f.data

    chunk0 = _pack() + unbounded(f0) + _pes(0xC0, b"\x02" * 20, f0.pts)
    out, dm = _feed_chunks([chunk0, _pack() + unbounded(f1)])
    assert same([f for f in out if f.codec.is_video], [f0, f1])
    assert dm.audio_frames == 1 and dm.errors == 0


def test_pes_without_pts_uses_rtp_clock() -> None:
    f0, f1, f2 = clip()[0], clip()[1], clip()[2]
    out, _ = _feed_chunks([_pack() + _pes(0xE0, f.data) for f in (f0, f1, f2)])
    assert [f.data for f in out] == [f0.data, f1.data, f2.data]
    assert [f.pts for f in out] == [1000, 1000 + 3600, 1000 + 7200]


def test_pack_header_separates_frames_without_pts_or_timestamp_change() -> None:
    """A sender that keeps one RTP timestamp, never sets the marker and omits PTS."""
    f0, f1 = clip()[0], clip()[1]
    dm = PsDemuxer()
    out = dm.feed(_pack() + _pes(0xE0, f0.data), 5, False)
    out += dm.feed(_pack() + _pes(0xE0, f1.data), 5, False)
    assert [f.data for f in out] == [f0.data]
    assert [f.data for f in dm.flush()] == [f1.data]


def test_garbage_inside_a_frame_resyncs_at_next_pack() -> None:
    frames = clip()[:8]
    chunks = [
        PsMuxer().mux(f) if i == 0 else PsMuxer(psm=False).mux(f) for i, f in enumerate(frames)
    ]
    chunks[3] = chunks[3][:40] + b"\x12\x34garbage garbage" + chunks[3][40:]
    chunks[5] = b"\x99" * 50 + chunks[5]
    out, dm = _feed_chunks(chunks, mtu=1400)
    # Frame 3's PES length swallows the garbage, the next start code is not where it should
    # be: frame 3 is dropped, not passed on damaged. Frame 5's leading junk is skipped.
    assert same(out, [f for i, f in enumerate(frames) if i != 3])
    assert dm.resyncs == 2 and dm.dropped_frames == 1


def test_frame_size_cap_drops_oversized_frames() -> None:
    frames = clip()
    cap = 2000
    small = [f for f in frames if len(f.data) <= cap - 200]
    assert 0 < len(small) < len(frames)
    dm = PsDemuxer(max_frame_size=cap)
    out, _, _ = receive(to_rtp(frames), dm)
    assert same(out, [f for f in frames if len(f.data) <= cap])
    assert dm.dropped_frames == sum(len(f.data) > cap for f in frames)


# -- re-stamping ------------------------------------------------------------------------------


def test_restamp_equals_muxing_shifted_frames() -> None:
    frames = clip()
    delta = 12345 * 3600
    for f in frames[:30]:
        chunk = PsMuxer().mux(f)
        template = PsTemplate(chunk)
        shifted = Frame(f.codec, f.pts + delta, f.dts + delta, f.data, f.keyframe)
        assert template.restamp(delta) == PsMuxer().mux(shifted)
        assert template.restamp(0) is chunk
        assert restamp(chunk, -delta) == PsMuxer().mux(
            Frame(f.codec, f.pts - delta, f.dts - delta, f.data, f.keyframe)
        )


def test_simulator_loop_restamped_plays_continuously() -> None:
    frames = clip()
    templates = [PsTemplate(PsMuxer().mux(f)) for f in frames]
    packetizer = RtpPacketizer(42)
    duration = FRAMES * 3600
    packets: list[bytes] = []
    for loop in range(2):
        for f, t in zip(frames, templates, strict=True):
            packets += packetizer.packetize(t.restamp(loop * duration), f.dts + loop * duration)
    out, dm, _ = receive(packets)
    assert len(out) == 2 * FRAMES and dm.errors == 0
    assert [f.pts for f in out[FRAMES:]] == [f.pts + duration for f in frames]
    assert len(decode(out)) == 2 * FRAMES


def test_template_rejects_unwalkable_chunk() -> None:
    with pytest.raises(ValueError):
        PsTemplate(b"\x00\x00\x02\xba")
    with pytest.raises(ValueError):
        PsTemplate(PsMuxer().mux(clip()[1])[:-1] + b"")  # ends inside a packet


# -- fuzzing and bounds -------------------------------------------------------------------------


@functools.cache
def _sample_payloads() -> tuple[bytes, ...]:
    frames = _with_audio(Codec.G711A, lambda i: bytes(160))[:8]
    return tuple(bytes(parse_rtp(p).payload) for p in to_rtp(frames, mtu=300))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.binary(max_size=400), st.integers(0, 3), st.booleans(), st.integers(0, 5)),
        max_size=30,
    )
)
def test_demuxer_fuzz_random_input_never_raises(
    items: list[tuple[bytes, int, bool, int]],
) -> None:
    dm = PsDemuxer(max_frame_size=4096)
    for payload, ts, marker, seq in items:
        for f in dm.feed(payload, ts, marker, seq):
            assert isinstance(f.data, bytes) and len(f.data) <= 4096
        assert dm.buffered <= 4096 + (1 << 20) + 2048
    dm.flush()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_demuxer_fuzz_mutated_stream_never_raises(data: st.DataObject) -> None:
    payloads = list(_sample_payloads())
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(payloads) - 1))
        p = bytearray(payloads[i])
        op = data.draw(st.integers(0, 3))
        if op == 0 and p:
            k = data.draw(st.integers(0, len(p) - 1))
            p[k] ^= 1 << data.draw(st.integers(0, 7))
        elif op == 1:
            p = p[: data.draw(st.integers(0, len(p)))]
        elif op == 2:
            payloads.insert(i, data.draw(st.binary(max_size=50)))
        else:
            payloads.pop(i)
            continue
        payloads[i] = bytes(p)
    use_seq = data.draw(st.booleans())
    dm = PsDemuxer()
    frames = []
    for k, payload in enumerate(payloads):
        frames += dm.feed(
            payload, 1000 + (k // 3) * 3600, data.draw(st.booleans()), k if use_seq else None
        )
    frames += dm.flush()
    assert dm.frames == len(frames)
    assert all(f.codec in Codec for f in frames)


def test_demuxer_memory_bounded_under_megabytes_of_garbage() -> None:
    rng = random.Random(11)
    dm = PsDemuxer(max_frame_size=256 * 1024)
    highest = 0
    for k in range(2000):  # ~2.8 MB of garbage, plus start codes sprinkled in
        junk = bytearray(rng.randbytes(1400))
        for _ in range(3):
            at = rng.randrange(0, 1390)
            junk[at : at + 4] = rng.choice(
                [b"\x00\x00\x01\xba", b"\x00\x00\x01\xe0", b"\x00\x00\x01\xc0"]
            )
        dm.feed(bytes(junk), k // 50, False, None)
        highest = max(highest, dm.buffered)
    assert highest <= 256 * 1024 + (1 << 20) + 2048
    assert dm.resyncs > 0
    # ... and a real stream after it is demuxed.
    frames = clip()[:5]
    out, _, _ = receive(to_rtp(frames), dm)
    assert same(out[-4:], frames[1:])


def test_psm_crc_and_system_header() -> None:
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7  # the CRC-32/MPEG-2 check value
    chunk = PsMuxer(audio=Codec.G711A).mux(clip()[0])
    assert chunk[14:18] == b"\x00\x00\x01\xbb"
    at = chunk.index(b"\x00\x00\x01\xbc")
    length = int.from_bytes(chunk[at + 4 : at + 6], "big")
    psm = chunk[at : at + 6 + length]
    assert int.from_bytes(psm[-4:], "big") == crc32_mpeg2(psm[:-4])
    assert psm[12:20] == bytes((0x1B, 0xE0, 0, 0, 0x90, 0xC0, 0, 0))
    # A P-frame carries neither system header nor PSM.
    assert b"\x00\x00\x01\xbc" not in PsMuxer().mux(clip()[1])
