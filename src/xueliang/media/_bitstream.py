"""Private NAL helpers for the output muxers (fMP4, FLV, HLS).

Annex B splitting into zero-copy views, Annex B → 4-byte length-prefixed conversion, and the
decoder configuration records (avcC / hvcC) that MP4 and FLV both carry; SPS parsing is
``nal.py``'s, the demuxer's. Everything here is on the per-frame hot path except the records,
which are built once per parameter-set change.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import Any

from xueliang import _native
from xueliang.media.frame import Codec, ParameterSets
from xueliang.media.nal import H264Sps, H265Sps, parse_h264_sps, parse_h265_sps
from xueliang.media.nal import parse_sps as _parse_sps

_START = b"\x00\x00\x01"
_START_RE = re.compile(re.escape(_START))
_U32 = struct.Struct(">I")


def _start_codes_re(data: bytes) -> list[int]:
    return [m.start() for m in _START_RE.finditer(data)]


_annexb: Any = _native.extension("xueliang.media._annexb")
#: The offsets of every start code in a buffer: memchr in our C extension when it is built
#: (media/_annexb.c, the same list), else one ``re`` scan.
start_codes: Callable[[bytes], list[int]] = _annexb.start_codes if _annexb is not None else _start_codes_re

#: NAL unit types carried out of band (avcC/hvcC, FLV sequence header) and dropped from samples.
#: H.264: 7 SPS, 8 PPS, 9 access unit delimiter. H.265: 32 VPS, 33 SPS, 34 PPS, 35 AUD.
H264_OUT_OF_BAND = frozenset({7, 8, 9})
H265_OUT_OF_BAND = frozenset({32, 33, 34, 35})


def split_annexb(data: bytes) -> list[memoryview]:
    """NAL units of an Annex B buffer, as zero-copy views (start codes and trailing zeros removed).

    Tolerates 3- and 4-byte start codes and a buffer that does not begin with a start code
    (the leading bytes are then taken as one NAL unit, which is what devices that send a bare
    NAL unit mean). The start codes are found in one scan (:data:`start_codes`, on every frame
    of every watched stream).
    """
    view = memoryview(data)
    n = len(data)
    starts = start_codes(data)
    if not starts:
        return [view] if n else []
    nals: list[memoryview] = []
    pos = starts[0]
    if pos > 0:
        end = pos
        while end > 0 and data[end - 1] == 0:
            end -= 1
        if end:
            nals.append(view[:end])
    start = pos + 3
    for k in range(1, len(starts)):
        nxt = starts[k]
        end = nxt
        while end > start and data[end - 1] == 0:
            end -= 1
        if end > start:
            nals.append(view[start:end])
        start = nxt + 3
    if start < n:
        nals.append(view[start:])
    return nals


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


def parse_sps(codec: Codec, nal: bytes) -> H264Sps | H265Sps:
    """nal.py's SPS parser (the demuxer's), for a NAL unit that may still carry its start code."""
    return _parse_sps(codec, _strip_start_code(nal))


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
        info.constraint_indicator_flags.to_bytes(6, "big"),
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


def codec_string(codec: Codec, ps: ParameterSets) -> str:
    """RFC 6381 codecs parameter: ``avc1.PPCCLL`` or ``hvc1.<space><profile>.<compat>.<tier><level>.<constraints>``."""
    nals = _require(codec, ps)
    if codec is Codec.H264:
        sps = nals[7][0]
        return f"avc1.{sps[1]:02x}{sps[2]:02x}{sps[3]:02x}"
    return parse_h265_sps(nals[33][0]).codec_string
