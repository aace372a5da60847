"""Private NAL helpers for the output muxers (fMP4, FLV, HLS).

Annex B splitting, Annex B → 4-byte length-prefixed conversion, SPS parsing (size, profile,
level) and the decoder configuration records (avcC / hvcC) that MP4 and FLV both carry.

A temporary twin of ``nal.py`` so the muxers did not wait for it; to be deduplicated.
Everything here is on the per-frame hot path except SPS parsing and the records, which run
once per parameter-set change.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from xueliang.media.frame import Codec, ParameterSets
from xueliang.media.nal import unescape_rbsp

_START = b"\x00\x00\x01"
_U32 = struct.Struct(">I")

#: NAL unit types carried out of band (avcC/hvcC, FLV sequence header) and dropped from samples.
#: H.264: 7 SPS, 8 PPS, 9 access unit delimiter. H.265: 32 VPS, 33 SPS, 34 PPS, 35 AUD.
H264_OUT_OF_BAND = frozenset({7, 8, 9})
H265_OUT_OF_BAND = frozenset({32, 33, 34, 35})


def split_annexb(data: bytes) -> list[memoryview]:
    """NAL units of an Annex B buffer, as zero-copy views (start codes and trailing zeros removed).

    Tolerates 3- and 4-byte start codes and a buffer that does not begin with a start code
    (the leading bytes are then taken as one NAL unit, which is what devices that send a bare
    NAL unit mean).
    """
    view = memoryview(data)
    find = data.find
    n = len(data)
    pos = find(_START)
    if pos < 0:
        return [view] if n else []
    nals: list[memoryview] = []
    if pos > 0:
        end = pos
        while end > 0 and data[end - 1] == 0:
            end -= 1
        if end:
            nals.append(view[:end])
    start = pos + 3
    while True:
        nxt = find(_START, start)
        if nxt < 0:
            if start < n:
                nals.append(view[start:])
            return nals
        end = nxt
        while end > start and data[end - 1] == 0:
            end -= 1
        if end > start:
            nals.append(view[start:end])
        start = nxt + 3


def nal_type(codec: Codec, nal: bytes | memoryview) -> int:
    """The nal_unit_type of a NAL unit (header included)."""
    if codec is Codec.H265:
        return (nal[0] >> 1) & 0x3F
    return nal[0] & 0x1F


def length_prefixed(codec: Codec, data: bytes) -> tuple[list[bytes | memoryview], int]:
    """Annex B access unit → pieces of a 4-byte length-prefixed sample, and its total size.

    Parameter sets and AUDs are dropped (they live in avcC/hvcC). The pieces are views into
    ``data`` interleaved with 4-byte lengths, so the payload is copied once, by whoever joins
    them.
    """
    drop = H265_OUT_OF_BAND if codec is Codec.H265 else H264_OUT_OF_BAND
    hevc = codec is Codec.H265
    pack = _U32.pack
    pieces: list[bytes | memoryview] = []
    size = 0
    for nal in split_annexb(data):
        t = (nal[0] >> 1) & 0x3F if hevc else nal[0] & 0x1F
        if t in drop:
            continue
        ln = len(nal)
        pieces.append(pack(ln))
        pieces.append(nal)
        size += 4 + ln
    return pieces, size


def _strip_start_code(nal: bytes) -> bytes:
    if nal.startswith(b"\x00\x00\x00\x01"):
        return nal[4:]
    if nal.startswith(_START):
        return nal[3:]
    return nal


def parameter_sets_from_annexb(
    codec: Codec, data: bytes, into: ParameterSets | None = None
) -> ParameterSets:
    """Collect VPS/SPS/PPS from an Annex B buffer (the first of each kind; others to ``extra``)."""
    ps = into if into is not None else ParameterSets()
    for view in split_annexb(data):
        nal = bytes(view)
        t = nal_type(codec, nal)
        if codec is Codec.H265:
            slot = {32: "vps", 33: "sps", 34: "pps"}.get(t)
        else:
            slot = {7: "sps", 8: "pps"}.get(t)
        if slot is None:
            continue
        if getattr(ps, slot) is None:
            setattr(ps, slot, nal)
        elif getattr(ps, slot) != nal and nal not in ps.extra:
            ps.extra.append(nal)
    return ps


def parameter_nals(codec: Codec, ps: ParameterSets) -> dict[int, list[bytes]]:
    """Parameter-set NAL units by NAL type (VPS, SPS, PPS, and any ``extra`` of those types)."""
    if codec is Codec.H265:
        order = {32: [ps.vps], 33: [ps.sps], 34: [ps.pps]}
    else:
        order = {7: [ps.sps], 8: [ps.pps]}
    out: dict[int, list[bytes]] = {
        t: [_strip_start_code(n) for n in v if n] for t, v in order.items()
    }
    for extra in ps.extra:
        nal = _strip_start_code(extra)
        if not nal:
            continue
        t = nal_type(codec, nal)
        if t in out and nal not in out[t]:
            out[t].append(nal)
        elif codec is Codec.H265 and t in (39, 40):  # prefix/suffix SEI may ride in hvcC
            out.setdefault(t, []).append(nal)
    return out


# --------------------------------------------------------------------------- SPS parsing


rbsp = unescape_rbsp  # one unescaper for the demuxer and the muxers


class BitReader:
    """MSB-first bit reader over a small buffer (SPS, VPS); not for payloads."""

    __slots__ = ("_n", "_pos", "_v")

    def __init__(self, data: bytes) -> None:
        self._v = int.from_bytes(data, "big")
        self._n = len(data) * 8
        self._pos = 0

    def u(self, bits: int) -> int:
        if bits == 0:
            return 0
        if self._pos + bits > self._n:
            raise ValueError("bitstream truncated")
        self._pos += bits
        return (self._v >> (self._n - self._pos)) & ((1 << bits) - 1)

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("invalid exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


@dataclass(slots=True, frozen=True)
class SpsInfo:
    """What the muxers need from an SPS."""

    width: int
    height: int
    profile_idc: int
    level_idc: int
    chroma_format_idc: int = 1
    bit_depth_luma: int = 8
    bit_depth_chroma: int = 8
    # H.264: constraint_set flags byte. H.265: the rest of general_profile_tier_level.
    constraint_flags: int = 0
    profile_space: int = 0
    tier_flag: int = 0
    profile_compatibility_flags: int = 0
    max_sub_layers: int = 1
    temporal_id_nesting: int = 1


_H264_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def parse_h264_sps(nal: bytes) -> SpsInfo:
    """Parse an H.264 SPS NAL unit (header byte included), enough for size and avcC."""
    nal = _strip_start_code(nal)
    if len(nal) < 4 or nal[0] & 0x1F != 7:
        raise ValueError("not an H.264 SPS")
    r = BitReader(rbsp(nal[1:]))
    profile_idc = r.u(8)
    constraints = r.u(8)
    level_idc = r.u(8)
    r.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_plane = 0
    bit_depth_luma = bit_depth_chroma = 8
    if profile_idc in _H264_HIGH_PROFILES:
        chroma_format_idc = r.ue()
        if chroma_format_idc == 3:
            separate_colour_plane = r.u(1)
        bit_depth_luma = r.ue() + 8
        bit_depth_chroma = r.ue() + 8
        r.u(1)  # qpprime_y_zero_transform_bypass_flag
        if r.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.u(1):
                    size = 16 if i < 6 else 64
                    last = nxt = 8
                    for _ in range(size):
                        if nxt != 0:
                            nxt = (last + r.se() + 256) % 256
                        last = nxt if nxt != 0 else last
    r.ue()  # log2_max_frame_num_minus4
    poc_type = r.ue()
    if poc_type == 0:
        r.ue()
    elif poc_type == 1:
        r.u(1)
        r.se()
        r.se()
        for _ in range(r.ue()):
            r.se()
    r.ue()  # max_num_ref_frames
    r.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = r.ue() + 1
    height_units = r.ue() + 1
    frame_mbs_only = r.u(1)
    if not frame_mbs_only:
        r.u(1)  # mb_adaptive_frame_field_flag
    r.u(1)  # direct_8x8_inference_flag
    width = width_mbs * 16
    height = (2 - frame_mbs_only) * height_units * 16
    if r.u(1):  # frame_cropping_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        if chroma_format_idc == 0 or separate_colour_plane:
            crop_x, crop_y = 1, 2 - frame_mbs_only
        else:
            sub_w = 1 if chroma_format_idc == 3 else 2
            sub_h = 2 if chroma_format_idc == 1 else 1
            crop_x, crop_y = sub_w, sub_h * (2 - frame_mbs_only)
        width -= crop_x * (left + right)
        height -= crop_y * (top + bottom)
    return SpsInfo(
        width=width,
        height=height,
        profile_idc=profile_idc,
        level_idc=level_idc,
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
        constraint_flags=constraints,
    )


def parse_h265_sps(nal: bytes) -> SpsInfo:
    """Parse an H.265 SPS NAL unit (2-byte header included), enough for size and hvcC."""
    nal = _strip_start_code(nal)
    if len(nal) < 4 or (nal[0] >> 1) & 0x3F != 33:
        raise ValueError("not an H.265 SPS")
    r = BitReader(rbsp(nal[2:]))
    r.u(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = r.u(3)
    temporal_id_nesting = r.u(1)
    profile_space = r.u(2)
    tier = r.u(1)
    profile_idc = r.u(5)
    compat = r.u(32)
    constraints = r.u(48)
    level_idc = r.u(8)
    sub_profile = []
    sub_level = []
    for _ in range(max_sub_layers_minus1):
        sub_profile.append(r.u(1))
        sub_level.append(r.u(1))
    if max_sub_layers_minus1 > 0:
        for _ in range(max_sub_layers_minus1, 8):
            r.u(2)
    for i in range(max_sub_layers_minus1):
        if sub_profile[i]:
            r.u(88)
        if sub_level[i]:
            r.u(8)
    r.ue()  # sps_seq_parameter_set_id
    chroma_format_idc = r.ue()
    separate_colour_plane = r.u(1) if chroma_format_idc == 3 else 0
    width = r.ue()
    height = r.ue()
    if r.u(1):  # conformance_window_flag
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        if chroma_format_idc == 0 or separate_colour_plane:
            sub_w = sub_h = 1
        else:
            sub_w = 1 if chroma_format_idc == 3 else 2
            sub_h = 2 if chroma_format_idc == 1 else 1
        width -= sub_w * (left + right)
        height -= sub_h * (top + bottom)
    bit_depth_luma = r.ue() + 8
    bit_depth_chroma = r.ue() + 8
    return SpsInfo(
        width=width,
        height=height,
        profile_idc=profile_idc,
        level_idc=level_idc,
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
        constraint_flags=constraints,
        profile_space=profile_space,
        tier_flag=tier,
        profile_compatibility_flags=compat,
        max_sub_layers=max_sub_layers_minus1 + 1,
        temporal_id_nesting=temporal_id_nesting,
    )


def parse_sps(codec: Codec, nal: bytes) -> SpsInfo:
    if codec is Codec.H265:
        return parse_h265_sps(nal)
    if codec is Codec.H264:
        return parse_h264_sps(nal)
    raise ValueError(f"no SPS parser for {codec}")


# ------------------------------------------------------------------- configuration records


def _require(codec: Codec, ps: ParameterSets) -> dict[int, list[bytes]]:
    if codec not in (Codec.H264, Codec.H265):
        raise ValueError(f"unsupported video codec for MP4/FLV: {codec}")
    if not ps.complete(codec):
        raise ValueError(f"incomplete parameter sets for {codec}")
    return parameter_nals(codec, ps)


def avc_decoder_configuration_record(ps: ParameterSets) -> bytes:
    """AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3): avcC body, FLV sequence header."""
    nals = _require(Codec.H264, ps)
    sps_list, pps_list = nals[7], nals[8]
    sps = sps_list[0]
    out = [bytes((1, sps[1], sps[2], sps[3], 0xFF, 0xE0 | len(sps_list)))]
    for s in sps_list:
        out.append(struct.pack(">H", len(s)))
        out.append(s)
    out.append(bytes((len(pps_list),)))
    for p in pps_list:
        out.append(struct.pack(">H", len(p)))
        out.append(p)
    if sps[1] in (100, 110, 122, 144):
        info = parse_h264_sps(sps)
        out.append(
            bytes(
                (
                    0xFC | info.chroma_format_idc,
                    0xF8 | (info.bit_depth_luma - 8),
                    0xF8 | (info.bit_depth_chroma - 8),
                    0,
                )
            )
        )
    return b"".join(out)


def hevc_decoder_configuration_record(ps: ParameterSets) -> bytes:
    """HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3): hvcC body, enhanced FLV start."""
    nals = _require(Codec.H265, ps)
    info = parse_h265_sps(nals[33][0])
    head = struct.pack(
        ">BBI6sBHBBBBHB",
        1,
        (info.profile_space << 6) | (info.tier_flag << 5) | info.profile_idc,
        info.profile_compatibility_flags,
        info.constraint_flags.to_bytes(6, "big"),
        info.level_idc,
        0xF000,  # reserved + min_spatial_segmentation_idc 0
        0xFC,  # reserved + parallelismType 0 (unknown)
        0xFC | info.chroma_format_idc,
        0xF8 | (info.bit_depth_luma - 8),
        0xF8 | (info.bit_depth_chroma - 8),
        0,  # avgFrameRate unknown
        (info.max_sub_layers << 3) | (info.temporal_id_nesting << 2) | 3,  # lengthSize 4
    )
    arrays = [(t, v) for t, v in nals.items() if v]
    out = [head, bytes((len(arrays),))]
    for t, units in arrays:
        # array_completeness = 1 for parameter sets: 'hvc1' keeps them out of the samples.
        out.append(struct.pack(">BH", (0x80 if t in (32, 33, 34) else 0) | t, len(units)))
        for u in units:
            out.append(struct.pack(">H", len(u)))
            out.append(u)
    return b"".join(out)


def decoder_configuration_record(codec: Codec, ps: ParameterSets) -> bytes:
    if codec is Codec.H265:
        return hevc_decoder_configuration_record(ps)
    return avc_decoder_configuration_record(ps)


def _reverse32(x: int) -> int:
    return int(f"{x:032b}"[::-1], 2)


def codec_string(codec: Codec, ps: ParameterSets) -> str:
    """RFC 6381 codecs parameter: ``avc1.PPCCLL`` or ``hvc1.<space><profile>.<compat>.<tier><level>.<constraints>``."""
    nals = _require(codec, ps)
    if codec is Codec.H264:
        sps = nals[7][0]
        return f"avc1.{sps[1]:02x}{sps[2]:02x}{sps[3]:02x}"
    info = parse_h265_sps(nals[33][0])
    space = ("", "A", "B", "C")[info.profile_space]
    compat = f"{_reverse32(info.profile_compatibility_flags):x}"
    tier = "H" if info.tier_flag else "L"
    cbytes = info.constraint_flags.to_bytes(6, "big").rstrip(b"\x00")
    parts = [f"hvc1.{space}{info.profile_idc}", compat, f"{tier}{info.level_idc}"]
    parts.extend(f"{b:X}" for b in cbytes)
    return ".".join(parts)
