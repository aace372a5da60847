"""Annex B helpers and SPS parsing, against real x264/x265 output and hand-built SPSs."""

from __future__ import annotations

import fractions
import functools

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xueliang.media._bitstream import split_annexb as bitstream_split_annexb
from xueliang.media.frame import Codec
from xueliang.media.nal import (
    H264Sps,
    NalError,
    annexb_to_length_prefixed,
    extract_parameter_sets,
    guess_video_codec,
    inspect_access_unit,
    is_keyframe,
    length_prefixed_to_annexb,
    nal_type_h264,
    nal_type_h265,
    parse_h264_sps,
    parse_h265_sps,
    parse_sps,
    split_annexb,
    unescape_rbsp,
)


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True


needs_x265 = pytest.mark.skipif(not _has_encoder("libx265"), reason="PyAV built without libx265")


@functools.cache
def encode(
    codec: str, width: int, height: int, frames: int = 3, pix_fmt: str = "yuv420p", **opts: str
) -> tuple[bytes, ...]:
    """Access units (Annex B) of a tiny real clip."""
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, pix_fmt
    ctx.time_base = fractions.Fraction(1, 25)
    ctx.framerate = 25
    ctx.gop_size = 25
    if codec == "libx265":
        opts.setdefault("x265-params", "log-level=error")
    ctx.options = opts
    out: list[bytes] = []
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(frames):
        img = np.stack([(xx + 5 * i) % 256, (yy * 2) % 256, (xx ^ yy) % 256], -1).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=pix_fmt)
        frame.pts = i
        out += [bytes(p) for p in ctx.encode(frame)]
    out += [bytes(p) for p in ctx.encode(None)]
    return tuple(out)


# -- Annex B ------------------------------------------------------------------------------


def test_split_annexb_three_and_four_byte_start_codes() -> None:
    data = b"junk\x00\x00\x00\x01\x67AB\x00\x00\x01\x68CD\x00\x00\x00\x00\x01\x65EF"
    assert split_annexb(data) == [b"\x67AB", b"\x68CD", b"\x65EF"]
    assert split_annexb(b"no start code here") == []
    assert split_annexb(b"") == []
    assert split_annexb(b"\x00\x00\x01") == []
    assert split_annexb(b"\x00\x00\x01\x09\xf0\x00\x00") == [b"\x09\xf0"]


def _escape(rbsp: bytes) -> bytes:
    """Insert emulation prevention bytes, as an encoder does."""
    out = bytearray()
    zeros = 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


nal_bodies = st.lists(
    st.binary(min_size=1, max_size=60).map(lambda b: _escape(b"\x41" + b + b"\x80")),
    min_size=0,
    max_size=8,
)


@given(nal_bodies, st.lists(st.booleans(), min_size=8, max_size=8))
def test_split_and_length_prefix_roundtrip(nals: list[bytes], four: list[bool]) -> None:
    annexb = b"".join(
        (b"\x00\x00\x00\x01" if f else b"\x00\x00\x01") + n
        for n, f in zip(nals, four, strict=False)
    )
    assert split_annexb(annexb) == nals
    prefixed = annexb_to_length_prefixed(annexb)
    assert len(prefixed) == sum(4 + len(n) for n in nals)
    assert split_annexb(length_prefixed_to_annexb(prefixed)) == nals


def test_length_prefixed_overrun_raises() -> None:
    with pytest.raises(NalError):
        length_prefixed_to_annexb(b"\x00\x00\x00\x09abc")
    with pytest.raises(NalError):
        length_prefixed_to_annexb(b"\x00\x00")


def test_nal_types() -> None:
    assert nal_type_h264(b"\x65\x88") == 5
    assert nal_type_h264(0x67) == 7
    assert nal_type_h265(b"\x40\x01") == 32
    assert nal_type_h265(0x26) == 19


def test_unescape_rbsp() -> None:
    assert (
        unescape_rbsp(b"\x00\x00\x03\x01\x00\x00\x03\x00\x00\x03")
        == b"\x00\x00\x01\x00\x00\x00\x00"
    )
    raw = bytes(range(1, 50))
    assert unescape_rbsp(raw) is raw


# -- real encoder output --------------------------------------------------------------------


def test_h264_keyframes_parameter_sets_and_codec_guess() -> None:
    aus = encode("libx264", 320, 240, frames=30)
    keys = [is_keyframe(Codec.H264, au) for au in aus]
    assert keys[0] and keys[25] and sum(keys) == 2
    for au in aus:
        assert guess_video_codec(au) is Codec.H264
    key, params = inspect_access_unit(Codec.H264, aus[0])
    assert key and [nal_type_h264(p) for p in params] == [7, 8]
    ps = extract_parameter_sets(Codec.H264, aus[0])
    assert ps.complete(Codec.H264) and ps.vps is None
    assert extract_parameter_sets(Codec.H264, aus[1]).sps is None


def test_h264_with_access_unit_delimiters() -> None:
    aus = encode("libx264", 320, 240, frames=3, aud="1")
    assert all(split_annexb(au)[0][0] & 0x1F == 9 for au in aus)
    assert [is_keyframe(Codec.H264, au) for au in aus] == [True, False, False]
    assert all(guess_video_codec(au) is Codec.H264 for au in aus)


@needs_x265
def test_h265_keyframes_parameter_sets_and_codec_guess() -> None:
    aus = encode("libx265", 320, 240, frames=30)
    keys = [is_keyframe(Codec.H265, au) for au in aus]
    assert keys[0] and sum(keys) >= 1
    assert not all(keys)
    for au in aus:
        assert guess_video_codec(au) is Codec.H265
    ps = extract_parameter_sets(Codec.H265, aus[0])
    assert ps.complete(Codec.H265)
    assert [nal_type_h265(n) for n in (ps.vps, ps.sps, ps.pps) if n] == [32, 33, 34]


def test_guess_codec_unsure_cases() -> None:
    assert guess_video_codec(b"") is None
    assert guess_video_codec(b"\x00\x00\x01\xff\xff") is None  # forbidden bit
    # H.264 SEI (0x06) with a byte that also reads as a valid H.265 TSA_R header: ambiguous.
    assert guess_video_codec(b"\x00\x00\x01\x06\x05\x10") is None


@pytest.mark.parametrize(
    ("width", "height", "pix_fmt", "opts", "profile", "chroma", "progressive"),
    [
        (320, 240, "yuv420p", {}, 100, 1, True),
        (1280, 720, "yuv420p", {}, 100, 1, True),
        (1920, 1080, "yuv420p", {}, 100, 1, True),  # cropped from 1088
        (322, 242, "yuv420p", {}, 100, 1, True),  # cropped right and bottom
        (320, 240, "yuv422p", {}, 122, 2, True),
        (321, 241, "yuv444p", {}, 244, 3, True),  # 4:4:4 crops in luma samples
        (320, 240, "yuv420p", {"x264-params": "interlaced=1"}, 100, 1, False),
        (320, 240, "yuv420p", {"profile": "baseline"}, 66, 1, True),
    ],
)
def test_parse_h264_sps_real(
    width: int,
    height: int,
    pix_fmt: str,
    opts: dict[str, str],
    profile: int,
    chroma: int,
    progressive: bool,
) -> None:
    au = encode("libx264", width, height, 1, pix_fmt, **opts)[0]
    sps_nal = extract_parameter_sets(Codec.H264, au).sps
    assert sps_nal is not None
    sps = parse_h264_sps(sps_nal)
    assert (sps.width, sps.height) == (width, height)
    assert sps.profile_idc == profile
    assert sps.chroma_format_idc == chroma
    assert sps.frame_mbs_only is progressive
    assert sps.codec_string == f"avc1.{sps_nal[1]:02x}{sps_nal[2]:02x}{sps_nal[3]:02x}"
    decoder = av.CodecContext.create("h264", "r")
    decoded = decoder.decode(av.Packet(au)) + decoder.decode(None)
    assert (decoded[0].width, decoded[0].height) == (sps.width, sps.height)


@needs_x265
@pytest.mark.parametrize(("width", "height"), [(320, 240), (1920, 1080), (322, 242)])
def test_parse_h265_sps_real(width: int, height: int) -> None:
    au = encode("libx265", width, height, 1)[0]
    sps_nal = extract_parameter_sets(Codec.H265, au).sps
    assert sps_nal is not None
    sps = parse_h265_sps(sps_nal)
    assert (sps.width, sps.height) == (width, height)
    assert sps.profile_idc == 1 and sps.chroma_format_idc == 1 and sps.bit_depth_luma == 8
    assert sps.codec_string.startswith("hvc1.1.6.L")
    assert parse_sps(Codec.H265, sps_nal) == sps
    # x265 writes one temporal layer, nested: what the hvcC record carries.
    assert (sps.max_sub_layers, sps.temporal_id_nesting) == (1, True)


# -- hand-built SPSs: the branches x264 never takes -------------------------------------------


class _BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> None:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, value: int) -> None:
        v = value + 1
        self.u(2 * v.bit_length() - 1, v)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def rbsp(self) -> bytes:
        bits = [*self.bits, 1]
        bits += [0] * (-len(bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def _h264_sps(
    *,
    profile: int = 100,
    scaling: bool = False,
    poc_type: int = 0,
    width_mbs: int = 20,
    height_units: int = 15,
    crop: tuple[int, int, int, int] | None = None,
    sps_id: int = 0,
) -> bytes:
    w = _BitWriter()
    w.u(8, profile)
    w.u(8, 0)
    w.u(8, 31)
    w.ue(sps_id)
    if profile == 100:
        w.ue(1)  # chroma_format_idc
        w.ue(0)
        w.ue(0)
        w.u(1, 0)
        w.u(1, 1 if scaling else 0)
        if scaling:
            for _ in range(8):
                w.u(1, 1)  # list present: 8 → 12 → 10 → 0 (a zero next_scale ends the list)
                w.se(4)
                w.se(-2)
                w.se(-10)
    w.ue(0)  # log2_max_frame_num_minus4
    w.ue(poc_type)
    if poc_type == 0:
        w.ue(2)
    elif poc_type == 1:
        w.u(1, 0)
        w.se(-3)
        w.se(4)
        w.ue(2)
        w.se(1)
        w.se(-1)
    w.ue(1)  # max_num_ref_frames
    w.u(1, 0)
    w.ue(width_mbs - 1)
    w.ue(height_units - 1)
    w.u(1, 1)  # frame_mbs_only
    w.u(1, 1)  # direct_8x8
    if crop:
        w.u(1, 1)
        for c in crop:
            w.ue(c)
    else:
        w.u(1, 0)
    w.u(1, 0)  # no VUI
    return b"\x67" + _escape(w.rbsp())


def test_h264_sps_scaling_lists_and_poc_type_1() -> None:
    sps = parse_h264_sps(_h264_sps(scaling=True, poc_type=1, crop=(1, 2, 3, 4)))
    assert (sps.width, sps.height) == (320 - 2 * 3, 240 - 2 * 7)
    assert sps.level_idc == 31


def test_h264_sps_emulation_prevention() -> None:
    # ue(65535) is sixteen zero bits in a row: the encoder must escape the 00 00.
    nal = _h264_sps(profile=66, width_mbs=65536, height_units=65536, poc_type=2)
    assert b"\x00\x00\x03" in nal
    sps = parse_h264_sps(nal)
    assert (sps.width, sps.height) == (65536 * 16, 65536 * 16)
    assert sps.profile_idc == 66 and sps.chroma_format_idc == 1


def test_sps_rejects_garbage() -> None:
    with pytest.raises(NalError):
        parse_h264_sps(b"\x68\x00\x00\x00")  # a PPS
    with pytest.raises(NalError):
        parse_h264_sps(b"\x67\x64\x00\x1f")  # truncated
    with pytest.raises(NalError):
        parse_h265_sps(b"\x42\x01\x01")
    with pytest.raises(NalError):
        parse_sps(Codec.MPEG4, b"\x00\x00\x01\xb0")


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_sps_parsers_fuzz_only_raise_nal_error(body: bytes) -> None:
    for nal in (b"\x67" + body, b"\x42\x01" + body):
        try:
            sps = parse_sps(Codec.H264 if nal[0] == 0x67 else Codec.H265, nal)
        except NalError:
            continue
        assert sps.width > 0 and sps.height > 0


@settings(max_examples=200)
@given(st.data())
def test_sps_parser_mutated_real_sps(data: st.DataObject) -> None:
    real = extract_parameter_sets(Codec.H264, encode("libx264", 320, 240, 1)[0]).sps
    assert real is not None
    mutated = bytearray(real)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(1, len(mutated) - 1))
        mutated[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(2, len(mutated)))
    try:
        sps = parse_h264_sps(bytes(mutated[:cut]))
    except NalError:
        return
    assert isinstance(sps, H264Sps)


def _split_annexb_reference(data: bytes) -> list[bytes]:
    """The obvious splitter (three-byte search), to hold _bitstream's faster one against."""
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i)
        i = data.find(b"\x00\x00\x01", i + 3)
    if not starts:
        return [data] if data else []
    bounds = [(0, starts[0])] if starts[0] > 0 else []
    bounds += [(s + 3, e) for s, e in zip(starts, [*starts[1:], len(data)], strict=True)]
    out = []
    for k, (s, e) in enumerate(bounds):
        last = k == len(bounds) - 1 and e == len(data)
        if not last:
            while e > s and data[e - 1] == 0:
                e -= 1
        if e > s:
            out.append(data[s:e])
    return out


@settings(max_examples=2000)
@given(st.lists(st.sampled_from([b"\x00", b"\x01", b"\x03", b"\x65", b"\xff", b"\x00\x00\x01",
                                 b"\x00\x00\x00\x01", b"\x00\x00\x03", b"\x00\x00"]), max_size=40))
def test_bitstream_split_annexb_finds_every_start_code(pieces: list[bytes]) -> None:
    # _bitstream searches for 00 00 then looks at the next byte: it must split exactly where
    # the three-byte search does, whatever runs of zeros and ones surround the codes.
    data = b"".join(pieces)
    assert [bytes(v) for v in bitstream_split_annexb(data)] == _split_annexb_reference(data)
