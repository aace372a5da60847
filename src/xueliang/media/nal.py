"""H.264 / H.265 NAL unit helpers: Annex B splitting, key frames, parameter sets, SPS parsing.

Everything works on whole ``bytes`` with ``bytes.find`` (C speed); nothing loops per byte in
Python except the SPS bit reader, which runs once per parameter-set change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from xueliang.media.frame import Codec, ParameterSets

__all__ = [
    "H264Sps",
    "H265Sps",
    "NalError",
    "annexb_to_length_prefixed",
    "extract_parameter_sets",
    "guess_video_codec",
    "inspect_access_unit",
    "is_keyframe",
    "iter_nal_spans",
    "length_prefixed_to_annexb",
    "nal_type_h264",
    "nal_type_h265",
    "parse_h264_sps",
    "parse_h265_sps",
    "parse_sps",
    "split_annexb",
    "unescape_rbsp",
]

_START = b"\x00\x00\x01"

# H.264 NAL unit types
H264_SLICE = 1
H264_IDR = 5
H264_SEI = 6
H264_SPS = 7
H264_PPS = 8
H264_AUD = 9
# H.265 NAL unit types
H265_IRAP_FIRST = 16
H265_IRAP_LAST = 21
H265_VPS = 32
H265_SPS = 33
H265_PPS = 34
H265_AUD = 35


class NalError(ValueError):
    """A malformed NAL unit (typically a truncated or corrupt SPS)."""


def nal_type_h264(nal: bytes | bytearray | memoryview | int) -> int:
    """nal_unit_type of an H.264 NAL unit (or of its first byte)."""
    b0 = nal if isinstance(nal, int) else nal[0]
    return b0 & 0x1F


def nal_type_h265(nal: bytes | bytearray | memoryview | int) -> int:
    """nal_unit_type of an H.265 NAL unit (or of its first byte)."""
    b0 = nal if isinstance(nal, int) else nal[0]
    return (b0 >> 1) & 0x3F


def iter_nal_spans(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each NAL unit in an Annex B buffer, start codes and trailing zero
    bytes excluded. Bytes before the first start code are ignored."""
    find = data.find
    i = find(_START)
    while i >= 0:
        start = i + 3
        j = find(_START, start)
        end = len(data) if j < 0 else j
        while end > start and data[end - 1] == 0:
            end -= 1
        if end > start:
            yield start, end
        i = j


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B buffer (3- or 4-byte start codes), without start codes."""
    return [data[s:e] for s, e in iter_nal_spans(data)]


def annexb_to_length_prefixed(data: bytes, length_size: int = 4) -> bytes:
    """Annex B → NAL units each prefixed by its big-endian length (MP4 ``avcC``/FLV form)."""
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    for s, e in iter_nal_spans(data):
        parts.append((e - s).to_bytes(length_size, "big"))
        parts.append(view[s:e])
    return b"".join(parts)


def length_prefixed_to_annexb(data: bytes, length_size: int = 4) -> bytes:
    """Length-prefixed NAL units → Annex B with 4-byte start codes. Raises NalError when a
    length overruns the buffer."""
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    pos = 0
    n = len(data)
    while pos < n:
        if pos + length_size > n:
            raise NalError("truncated NAL length")
        size = int.from_bytes(view[pos : pos + length_size], "big")
        pos += length_size
        if pos + size > n:
            raise NalError("NAL length overruns the buffer")
        parts.append(b"\x00\x00\x00\x01")
        parts.append(view[pos : pos + size])
        pos += size
    return b"".join(parts)


def inspect_access_unit(codec: Codec, data: bytes) -> tuple[bool, list[bytes]]:
    """(key frame?, parameter-set NAL units) of one Annex B access unit.

    Only the NAL units before the first slice are looked at, so this costs a few
    ``bytes.find`` calls however large the frame. Key frame: H.264 IDR slice or an SPS
    present; H.265 IRAP slice (types 16–21); MPEG-4 Part 2 I-VOP.
    """
    if codec is Codec.H264:
        h265 = False
    elif codec is Codec.H265:
        h265 = True
    elif codec is Codec.MPEG4:
        i = data.find(b"\x00\x00\x01\xb6")
        return (i >= 0 and i + 4 < len(data) and data[i + 4] >> 6 == 0), []
    else:
        return False, []
    params: list[bytes] = []
    key = False
    find = data.find
    n = len(data)
    i = find(_START)
    while 0 <= i < n - 3:
        start = i + 3
        b0 = data[start]
        if h265:
            t = (b0 >> 1) & 0x3F
            if t < 32:
                key = key or H265_IRAP_FIRST <= t <= H265_IRAP_LAST
                break
            param = H265_VPS <= t <= H265_PPS
        else:
            t = b0 & 0x1F
            if 1 <= t <= 5:
                key = key or t == H264_IDR
                break
            param = t == H264_SPS or t == H264_PPS
            if t == H264_SPS:
                key = True
        j = find(_START, start)
        if param:
            end = n if j < 0 else j
            while end > start and data[end - 1] == 0:
                end -= 1
            params.append(data[start:end])
        i = j
    return key, params


def is_keyframe(codec: Codec, data: bytes) -> bool:
    """Whether an Annex B access unit can start decoding (see :func:`inspect_access_unit`)."""
    return inspect_access_unit(codec, data)[0]


def extract_parameter_sets(codec: Codec, data: bytes) -> ParameterSets:
    """The VPS/SPS/PPS found before the first slice of an access unit."""
    ps = ParameterSets()
    for nal in inspect_access_unit(codec, data)[1]:
        if codec is Codec.H265:
            t = nal_type_h265(nal)
            if t == H265_VPS:
                ps.vps = nal
            elif t == H265_SPS:
                ps.sps = nal
            else:
                ps.pps = nal
        elif nal_type_h264(nal) == H264_SPS:
            ps.sps = nal
        else:
            ps.pps = nal
    return ps


_H265_VALID_TYPES = frozenset((*range(10), *range(16, 22), *range(32, 41)))


def guess_video_codec(data: bytes, max_nals: int = 8) -> Codec | None:
    """H.264 or H.265, judged from the NAL headers of an Annex B buffer; None if unsure.

    Each NAL header is checked against both syntaxes (forbidden bit, types in use, nal_ref_idc
    rules of H.264, layer id 0 and TemporalId ≥ 1 of H.265). Real streams almost never fit
    both; when they do, parameter sets or IRAP slices decide.
    """
    h264_ok = h265_ok = True
    h264_strong = h265_strong = False
    seen = 0
    for s, e in iter_nal_spans(data):
        b0 = data[s]
        b1 = data[s + 1] if e - s > 1 else 0
        if b0 & 0x80:
            return None
        t4 = b0 & 0x1F
        nri = b0 >> 5
        if t4 == 0 or 2 <= t4 <= 4 or t4 >= 13:
            h264_ok = False  # unspecified, data partitions, extensions, reserved
        elif t4 in (6, 9, 10, 11, 12) and nri:
            h264_ok = False  # SEI/AUD/end/filler must have nal_ref_idc 0
        elif t4 in (5, 7, 8) and not nri:
            h264_ok = False  # IDR/SPS/PPS must have nal_ref_idc != 0
        elif t4 in (5, 7, 8):
            h264_strong = True
        t5 = (b0 >> 1) & 0x3F
        layer = ((b0 & 1) << 5) | (b1 >> 3)
        if e - s < 2 or (b1 & 7) == 0 or layer or t5 not in _H265_VALID_TYPES:
            h265_ok = False
        elif t5 >= 32 or H265_IRAP_FIRST <= t5 <= H265_IRAP_LAST:
            h265_strong = True
        seen += 1
        if seen >= max_nals or not (h264_ok or h265_ok):
            break
    if not seen:
        return None
    if h264_ok and not h265_ok:
        return Codec.H264
    if h265_ok and not h264_ok:
        return Codec.H265
    if h264_ok and h265_ok and h264_strong != h265_strong:
        return Codec.H264 if h264_strong else Codec.H265
    return None


# ---------------------------------------------------------------------------------------
# SPS parsing


def unescape_rbsp(data: bytes) -> bytes:
    """Remove emulation prevention bytes (00 00 03 → 00 00)."""
    if b"\x00\x00\x03" not in data:
        return data
    return data.replace(b"\x00\x00\x03", b"\x00\x00")


class _Bits:
    """MSB-first bit reader over an RBSP held as one big int."""

    __slots__ = ("_pos", "_total", "_value")

    def __init__(self, data: bytes) -> None:
        self._value = int.from_bytes(data, "big")
        self._total = len(data) * 8
        self._pos = 0

    def u(self, n: int) -> int:
        if n == 0:
            return 0
        end = self._pos + n
        if end > self._total:
            raise NalError("SPS truncated")
        self._pos = end
        return (self._value >> (self._total - end)) & ((1 << n) - 1)

    def flag(self) -> bool:
        return self.u(1) == 1

    def skip(self, n: int) -> None:
        self._pos += n
        if self._pos > self._total:
            raise NalError("SPS truncated")

    def ue(self) -> int:
        left = self._total - self._pos
        rest = self._value & ((1 << left) - 1)
        if rest == 0:
            raise NalError("SPS truncated (exp-Golomb)")
        zeros = left - rest.bit_length()
        if zeros > 31:
            raise NalError("exp-Golomb value too large")
        self._pos += zeros
        return self.u(zeros + 1) - 1

    def se(self) -> int:
        k = self.ue()
        return (k + 1) >> 1 if k & 1 else -(k >> 1)


@dataclass(slots=True, frozen=True)
class H264Sps:
    width: int
    height: int
    profile_idc: int
    constraint_flags: int
    level_idc: int
    sps_id: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    frame_mbs_only: bool

    @property
    def codec_string(self) -> str:
        """RFC 6381 ``avc1.PPCCLL`` for MP4/MSE."""
        return f"avc1.{self.profile_idc:02x}{self.constraint_flags:02x}{self.level_idc:02x}"


@dataclass(slots=True, frozen=True)
class H265Sps:
    width: int
    height: int
    profile_space: int
    tier_flag: int
    profile_idc: int
    profile_compatibility_flags: int
    constraint_indicator_flags: int  # 48 bits
    level_idc: int
    sps_id: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    #: For the hvcC record (numTemporalLayers, temporalIdNested).
    max_sub_layers: int = 1
    temporal_id_nesting: bool = True

    @property
    def codec_string(self) -> str:
        """RFC 6381 / ISO 14496-15 ``hvc1.P.C.TL.B`` for MP4/MSE."""
        space = ("", "A", "B", "C")[self.profile_space]
        compat = int(f"{self.profile_compatibility_flags:032b}"[::-1], 2)
        constraint = self.constraint_indicator_flags.to_bytes(6, "big")
        constraint = constraint.rstrip(b"\x00")
        tail = "".join(f".{b:X}" for b in constraint)
        tier = "H" if self.tier_flag else "L"
        return f"hvc1.{space}{self.profile_idc}.{compat:X}.{tier}{self.level_idc}{tail}"


_HIGH_PROFILES = frozenset((100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135))


def _scaling_list(bits: _Bits, size: int) -> None:
    last = next_scale = 8
    for _ in range(size):
        if next_scale:
            delta = bits.se()
            next_scale = (last + delta + 256) % 256
        last = next_scale or last


def parse_h264_sps(nal: bytes) -> H264Sps:
    """Parse an H.264 SPS NAL unit (with its 1-byte header). Raises NalError if malformed."""
    if len(nal) < 4 or nal[0] & 0x1F != H264_SPS:
        raise NalError("not an H.264 SPS")
    bits = _Bits(unescape_rbsp(nal[1:]))
    profile = bits.u(8)
    constraints = bits.u(8)
    level = bits.u(8)
    sps_id = bits.ue()
    chroma = 1
    separate_planes = False
    depth_luma = depth_chroma = 8
    if profile in _HIGH_PROFILES:
        chroma = bits.ue()
        if chroma > 3:
            raise NalError("bad chroma_format_idc")
        if chroma == 3:
            separate_planes = bits.flag()
        depth_luma = bits.ue() + 8
        depth_chroma = bits.ue() + 8
        bits.skip(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma != 3 else 12):
                if bits.flag():
                    _scaling_list(bits, 16 if i < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        bits.skip(1)
        bits.se()
        bits.se()
        cycle = bits.ue()
        if cycle > 255:
            raise NalError("bad num_ref_frames_in_pic_order_cnt_cycle")
        for _ in range(cycle):
            bits.se()
    elif poc_type != 2:
        raise NalError("bad pic_order_cnt_type")
    bits.ue()  # max_num_ref_frames
    bits.skip(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.flag()
    if not frame_mbs_only:
        bits.skip(1)  # mb_adaptive_frame_field_flag
    bits.skip(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = height_units * 16 * (1 if frame_mbs_only else 2)
    if bits.flag():  # frame_cropping_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        array_type = 0 if separate_planes else chroma
        if array_type == 0:
            unit_x, unit_y = 1, 1
        else:
            unit_x = 1 if array_type == 3 else 2
            unit_y = 2 if array_type == 1 else 1
        unit_y *= 1 if frame_mbs_only else 2
        width -= (left + right) * unit_x
        height -= (top + bottom) * unit_y
    if width <= 0 or height <= 0:
        raise NalError("bad SPS dimensions")
    return H264Sps(
        width,
        height,
        profile,
        constraints,
        level,
        sps_id,
        chroma,
        depth_luma,
        depth_chroma,
        frame_mbs_only,
    )


def parse_h265_sps(nal: bytes) -> H265Sps:
    """Parse an H.265 SPS NAL unit (with its 2-byte header). Raises NalError if malformed."""
    if len(nal) < 4 or (nal[0] >> 1) & 0x3F != H265_SPS:
        raise NalError("not an H.265 SPS")
    bits = _Bits(unescape_rbsp(nal[2:]))
    bits.skip(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = bits.u(3)
    temporal_id_nesting = bits.flag()
    # profile_tier_level(1, max_sub_layers_minus1)
    profile_space = bits.u(2)
    tier = bits.u(1)
    profile = bits.u(5)
    compat = bits.u(32)
    constraint = bits.u(48)
    level = bits.u(8)
    sub_profile = []
    sub_level = []
    for _ in range(max_sub_layers_minus1):
        sub_profile.append(bits.flag())
        sub_level.append(bits.flag())
    if max_sub_layers_minus1 > 0:
        bits.skip(2 * (8 - max_sub_layers_minus1))
    for i in range(max_sub_layers_minus1):
        if sub_profile[i]:
            bits.skip(88)
        if sub_level[i]:
            bits.skip(8)
    sps_id = bits.ue()
    if sps_id > 15:
        raise NalError("bad sps_seq_parameter_set_id")
    chroma = bits.ue()
    if chroma > 3:
        raise NalError("bad chroma_format_idc")
    if chroma == 3:
        bits.skip(1)  # separate_colour_plane_flag
    width = bits.ue()
    height = bits.ue()
    if bits.flag():  # conformance_window_flag
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        sub_w = 2 if chroma in (1, 2) else 1
        sub_h = 2 if chroma == 1 else 1
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    depth_luma = bits.ue() + 8
    depth_chroma = bits.ue() + 8
    if width <= 0 or height <= 0:
        raise NalError("bad SPS dimensions")
    return H265Sps(
        width,
        height,
        profile_space,
        tier,
        profile,
        compat,
        constraint,
        level,
        sps_id,
        chroma,
        depth_luma,
        depth_chroma,
        max_sub_layers_minus1 + 1,
        temporal_id_nesting,
    )


def parse_sps(codec: Codec, nal: bytes) -> H264Sps | H265Sps:
    """Parse the SPS of an H.264 or H.265 stream."""
    if codec is Codec.H265:
        return parse_h265_sps(nal)
    if codec is Codec.H264:
        return parse_h264_sps(nal)
    raise NalError(f"no SPS parser for {codec}")
