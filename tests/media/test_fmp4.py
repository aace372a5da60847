from __future__ import annotations

import itertools
import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from _media_clips import T0, decode_video, encode, ffprobe, has_encoder

from xueliang.media._bitstream import (
    codec_string,
    length_prefixed,
    parse_sps,
    split_annexb,
)
from xueliang.media.audio import AudioConfig, adts_header
from xueliang.media.fmp4 import Fmp4Muxer
from xueliang.media.frame import Codec, Frame, ParameterSets

H265 = pytest.mark.skipif(not has_encoder(Codec.H265), reason="PyAV without libx265")

# Real encoder output (x264 / x265, 1920x1080: coded 1088 lines, cropped to 1080).
SPS_H264_1080P = bytes.fromhex("67640028acb403c0113f2c20000003002000000641e30654")
SPS_H265_1080P = bytes.fromhex(
    "420101016000000300900000030000030078a003c08010e5964a924cae6808000003000800000300c840"
)
DUMMY_PPS = b"\x68\xee\x3c\x80"


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, bytes]]:
    """(type, body) of the ISO BMFF boxes in data[start:end]; asserts the sizes tile exactly."""
    end = len(data) if end is None else end
    out = []
    pos = start
    while pos < end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        assert size >= 8 and pos + size <= end, (kind, size)
        out.append((kind, data[pos + 8 : pos + size]))
        pos += size
    assert pos == end
    return out


def child(body: bytes, kind: bytes, skip: int = 0) -> bytes:
    found = [b for k, b in boxes(body, skip) if k == kind]
    assert len(found) == 1, (kind, [k for k, _ in boxes(body, skip)])
    return found[0]


def write(path: Path, parts: list[bytes]) -> Path:
    path.write_bytes(b"".join(parts))
    return path


def probe_packets(path: Path, stream: str = "v:0") -> list[dict[str, Any]]:
    res = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            stream,
            "-show_entries",
            "packet=pts,dts,flags",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    packets: list[dict[str, Any]] = json.loads(res.stdout)["packets"]
    return packets


# ------------------------------------------------------------------------- bitstream helpers


def test_split_annexb_handles_3_and_4_byte_start_codes_and_trailing_zeros() -> None:
    data = b"\x00\x00\x00\x01\x67AB\x00\x00\x01\x68C\x00\x00\x00\x00\x01\x65DEF"
    assert [bytes(n) for n in split_annexb(data)] == [b"\x67AB", b"\x68C", b"\x65DEF"]
    assert [bytes(n) for n in split_annexb(b"\x65xyz")] == [b"\x65xyz"]
    assert split_annexb(b"") == []


def test_length_prefixed_drops_parameter_sets_and_aud() -> None:
    data = b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x67AB\x00\x00\x01\x68C\x00\x00\x01\x06S\x00\x00\x01\x65DEF"
    pieces, size = length_prefixed(Codec.H264, data)
    out = b"".join(pieces)
    assert out == b"\x00\x00\x00\x02\x06S\x00\x00\x00\x04\x65DEF"
    assert size == len(out)


def test_codec_string_and_size_from_known_sps() -> None:
    h264 = ParameterSets(sps=SPS_H264_1080P, pps=DUMMY_PPS)
    assert codec_string(Codec.H264, h264) == "avc1.640028"
    info = parse_sps(Codec.H264, SPS_H264_1080P)
    assert (info.width, info.height) == (1920, 1080)  # cropped from 1088

    h265 = ParameterSets(vps=b"\x40\x01\x0c", sps=SPS_H265_1080P, pps=b"\x44\x01\xc1")
    assert codec_string(Codec.H265, h265) == "hvc1.1.6.L120.90"
    info = parse_sps(Codec.H265, SPS_H265_1080P)
    assert (info.width, info.height) == (1920, 1080)
    # Apple's example string: Main, level 3.1, progressive + non-packed + frame-only flags.
    apple = SPS_H265_1080P.replace(b"\x00\x90", b"\x00\xb0", 1).replace(b"\x00\x78", b"\x00\x5d", 1)
    h265.sps = apple
    assert codec_string(Codec.H265, h265) == "hvc1.1.6.L93.B0"


# ------------------------------------------------------------------------------ init segment


def test_init_segment_structure_h264_with_aac() -> None:
    _frames, ps = encode(Codec.H264)
    muxer = Fmp4Muxer(Codec.H264, ps, audio=AudioConfig(Codec.AAC, 8000, 1))
    init = muxer.init_segment()
    top = boxes(init)
    assert [k for k, _ in top] == [b"ftyp", b"moov"]
    assert top[0][1] == b"iso5\x00\x00\x02\x00iso5iso6mp41"
    moov = top[1][1]
    assert [k for k, _ in boxes(moov)] == [b"mvhd", b"trak", b"trak", b"mvex"]
    assert [k for k, _ in boxes(child(moov, b"mvex"))] == [b"trex", b"trex"]
    vtrak, atrak = [b for k, b in boxes(moov) if k == b"trak"]
    tkhd = child(vtrak, b"tkhd")
    assert struct.unpack_from(">II", tkhd, 76) == (320 << 16, 240 << 16)
    mdia = child(vtrak, b"mdia")
    assert struct.unpack_from(">I", child(mdia, b"mdhd"), 12)[0] == 90000
    assert child(mdia, b"hdlr")[8:12] == b"vide"
    stbl = child(child(mdia, b"minf"), b"stbl")
    assert [k for k, _ in boxes(stbl)] == [b"stsd", b"stts", b"stsc", b"stsz", b"stco"]
    avc1 = child(child(stbl, b"stsd")[8:], b"avc1")
    assert struct.unpack_from(">HH", avc1, 24) == (320, 240)
    avcc = child(avc1[78:], b"avcC")
    assert avcc[1:4] == ps.sps[1:4] if ps.sps else False
    assert avcc[4] == 0xFF  # 4-byte lengths
    sps_len = struct.unpack_from(">H", avcc, 6)[0]
    assert avcc[8 : 8 + sps_len] == ps.sps
    amdia = child(atrak, b"mdia")
    assert struct.unpack_from(">I", child(amdia, b"mdhd"), 12)[0] == 8000
    mp4a = child(child(child(child(amdia, b"minf"), b"stbl"), b"stsd")[8:], b"mp4a")
    assert bytes.fromhex("1588") in child(mp4a[28:], b"esds")  # AAC LC, 8 kHz, mono
    assert muxer.codec_string() == "avc1.64000d"
    assert muxer.mime_type() == 'video/mp4; codecs="avc1.64000d,mp4a.40.2"'


def test_rejects_bad_configuration() -> None:
    _, ps = encode(Codec.H264)
    with pytest.raises(ValueError):
        Fmp4Muxer(Codec.H264, ParameterSets(sps=ps.sps))
    with pytest.raises(ValueError):
        Fmp4Muxer(Codec.MPEG4, ps)
    with pytest.raises(ValueError):
        Fmp4Muxer(Codec.H264, ps, audio=AudioConfig.g711(Codec.G711A))


# --------------------------------------------------------------------------------- fragments


@pytest.mark.parametrize("codec", [Codec.H264, pytest.param(Codec.H265, marks=H265)])
def test_one_fragment_per_frame_plays(codec: Codec, tmp_path: Path) -> None:
    frames, ps = encode(codec)
    muxer = Fmp4Muxer(codec, ps)
    path = write(tmp_path / "a.mp4", [muxer.init_segment(), *(muxer.fragment([f]) for f in frames)])
    info = ffprobe(path)
    assert info == {
        "codec_name": "h264" if codec is Codec.H264 else "hevc",
        "width": 320,
        "height": 240,
        "nb_read_frames": "60",
    }
    pts = decode_video(path)
    assert len(pts) == 60
    assert pts == sorted(pts) and len(set(pts)) == 60
    # timeline rebased to the first frame's dts; B-frame composition offsets preserved
    base = frames[0].dts
    packets = probe_packets(path)
    assert [(int(p["pts"]), int(p["dts"])) for p in packets] == [
        (f.pts - base, f.dts - base) for f in frames
    ]
    assert [p["flags"].startswith("K") for p in packets] == [f.keyframe for f in frames]
    assert muxer.sequence == 60


def test_gop_fragments_with_end_dts(tmp_path: Path) -> None:
    frames, ps = encode(Codec.H264)
    muxer = Fmp4Muxer(Codec.H264, ps)
    keys = [i for i, f in enumerate(frames) if f.keyframe]
    assert keys == [0, 25, 50]
    bounds = [*keys, len(frames)]
    parts = [muxer.init_segment()]
    for a, b in itertools.pairwise(bounds):
        end = frames[b].dts if b < len(frames) else None
        frag = muxer.fragment(frames[a:b], end_dts=end)
        moof = child(frag, b"moof")
        traf = child(moof, b"traf")
        tfdt = child(traf, b"tfdt")
        assert struct.unpack_from(">Q", tfdt, 4)[0] == frames[a].dts - frames[0].dts
        trun = child(traf, b"trun")
        count, data_offset = struct.unpack_from(">Ii", trun, 4)
        assert count == b - a
        # data_offset points at the first byte of the mdat payload
        assert frag[data_offset - 8 : data_offset] == struct.pack(
            ">I4s", len(frag) - len(moof) - 8, b"mdat"
        )
        first_flags = struct.unpack_from(">I", trun, 12 + 8)[0]
        assert first_flags == 0x02000000
        parts.append(frag)
    path = write(tmp_path / "gop.mp4", parts)
    assert ffprobe(path)["nb_read_frames"] == "60"
    assert len(decode_video(path)) == 60


def test_payload_is_length_prefixed_without_parameter_sets() -> None:
    frames, ps = encode(Codec.H264)
    muxer = Fmp4Muxer(Codec.H264, ps)
    frag = muxer.fragment([frames[0]])
    mdat = child(frag, b"mdat")
    pos, types = 0, []
    while pos < len(mdat):
        n = struct.unpack_from(">I", mdat, pos)[0]
        types.append(mdat[pos + 4] & 0x1F)
        pos += 4 + n
    assert pos == len(mdat)
    assert 5 in types and not {7, 8, 9} & set(types)
    annexb_types = [n[0] & 0x1F for n in split_annexb(frames[0].data)]
    assert 7 in annexb_types and 8 in annexb_types  # they were there, and were stripped


def test_parameter_set_change_needs_new_init() -> None:
    _, ps_a = encode(Codec.H264)
    _, ps_b = encode(Codec.H264, 352, 288, 5)
    frames, _ = encode(Codec.H264)
    muxer = Fmp4Muxer(Codec.H264, ps_a)
    assert not muxer.needs_new_init(ParameterSets(sps=ps_a.sps, pps=ps_a.pps))
    assert muxer.needs_new_init(ps_b)
    first = muxer.fragment([frames[0]])
    muxer.set_parameter_sets(ps_b)
    assert not muxer.needs_new_init(ps_b)
    assert (muxer.width, muxer.height) == (352, 288)
    avc1 = child(
        child(
            child(
                child(child(child(boxes(muxer.init_segment())[1][1], b"trak"), b"mdia"), b"minf"),
                b"stbl",
            ),
            b"stsd",
        )[8:],
        b"avc1",
    )
    assert struct.unpack_from(">HH", avc1, 24) == (352, 288)
    # numbering and timeline continue across the change
    second = muxer.fragment([frames[1]])
    mfhd = [child(child(f, b"moof"), b"mfhd") for f in (first, second)]
    assert [struct.unpack_from(">I", m, 4)[0] for m in mfhd] == [1, 2]
    tfdt = child(child(child(second, b"moof"), b"traf"), b"tfdt")
    assert struct.unpack_from(">Q", tfdt, 4)[0] == frames[1].dts - frames[0].dts


def test_sample_duration_falls_back_to_previous_delta() -> None:
    frames, ps = encode(Codec.H264, bframes=0)
    muxer = Fmp4Muxer(Codec.H264, ps)
    durations = []
    for f in frames[:4]:
        trun = child(child(child(muxer.fragment([f]), b"moof"), b"traf"), b"trun")
        durations.append(struct.unpack_from(">I", trun, 12)[0])
    assert durations == [3600] * 4
    # a 2-frame fragment learns 50 fps from its own deltas and reuses it for the next one
    a = Frame(Codec.H264, frames[4].pts, frames[4].dts, frames[4].data)
    b = Frame(Codec.H264, a.pts + 1800, a.dts + 1800, frames[5].data)
    muxer.fragment([a, b])
    c = Frame(Codec.H264, b.pts + 1800, b.dts + 1800, frames[6].data)
    trun = child(child(child(muxer.fragment([c]), b"moof"), b"traf"), b"trun")
    assert struct.unpack_from(">I", trun, 12)[0] == 1800
    assert muxer.fragment([Frame(Codec.G711A, 0, 0, b"\xd5" * 160)]) == b""


def _aac_frames(seconds: float, start: int) -> tuple[list[Frame], int]:
    enc: Any = av.CodecContext.create("aac", "w")
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = 16000, "mono", "fltp", 48000
    t = np.arange(int(16000 * seconds)) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32).reshape(1, -1)
    af = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
    af.sample_rate, af.pts = 16000, 0
    packets = [*enc.encode(af), *enc.encode(None)]
    cfg = AudioConfig(Codec.AAC, 16000, 1)
    out = []
    for p in packets:
        ts = start + p.pts * 90000 // 16000  # the priming frame is before start
        out.append(Frame(Codec.AAC, ts, ts, adts_header(cfg, p.size) + bytes(p), True))
    return out, len(packets)


def test_audio_and_video_fragments(tmp_path: Path) -> None:
    video, ps = encode(Codec.H264)
    audio, n_audio = _aac_frames(2.4, T0)
    stream = sorted([*video, *audio], key=lambda f: (f.dts, f.codec is Codec.AAC))
    muxer = Fmp4Muxer(Codec.H264, ps, audio=AudioConfig.from_adts(audio[0].data))
    parts = [muxer.init_segment()]
    batch: list[Frame] = []
    for f in stream:  # one fragment per video frame, with the audio that came before it
        batch.append(f)
        if f.codec is Codec.H264:
            parts.append(muxer.fragment(batch))
            batch = []
    if batch:
        parts.append(muxer.fragment(batch))
    path = write(tmp_path / "av.mp4", parts)
    assert ffprobe(path)["nb_read_frames"] == "60"
    res = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=codec_name,sample_rate,channels,nb_read_frames",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert res.stderr == ""
    a = json.loads(res.stdout)["streams"][0]
    assert (a["codec_name"], a["sample_rate"], a["channels"]) == ("aac", "16000", 1)
    # the encoder's priming frame lies before the first video frame, the timeline's origin
    assert audio[0].dts < video[0].dts <= audio[1].dts
    assert int(a["nb_read_frames"]) == n_audio - 1
    # audio decode times are contiguous 1024-sample steps on the shared origin
    apk = probe_packets(path, "a:0")
    dts = [int(p["dts"]) for p in apk]
    assert dts[0] == 0 and all(b - a == 1024 for a, b in itertools.pairwise(dts))
    with av.open(str(path)) as c:
        samples = sum(fr.samples for fr in c.decode(audio=0))
    assert samples >= 2.4 * 16000


def test_audio_timeline_snaps_jitter_and_bridges_gaps() -> None:
    _, ps = encode(Codec.H264)
    cfg = AudioConfig(Codec.AAC, 8000, 1)
    muxer = Fmp4Muxer(Codec.H264, ps, audio=cfg, base_dts=T0)
    adts = adts_header(cfg, 4) + b"\x21\x10\x04\x60"

    def aac(dts: int) -> Frame:
        return Frame(Codec.AAC, dts, dts, adts, True)

    def traf(frag: bytes) -> tuple[int, list[int]]:
        t = child(child(frag, b"moof"), b"traf")
        trun = child(t, b"trun")
        count = struct.unpack_from(">I", trun, 4)[0]
        durations = [struct.unpack_from(">I", trun, 12 + 8 * i)[0] for i in range(count)]
        return struct.unpack_from(">Q", child(t, b"tfdt"), 4)[0], durations

    step = 11520  # 1024 samples at 8 kHz in 90 kHz ticks
    assert traf(muxer.fragment([aac(T0), aac(T0 + step)])) == (0, [1024, 1024])
    # 3 ms of clock jitter: the next fragment continues exactly where the last one ended
    assert traf(muxer.fragment([aac(T0 + 2 * step + 270)])) == (2048, [1024])
    # a 1 s hole inside a fragment stretches the sample before it, keeping A/V sync
    tfdt, durations = traf(muxer.fragment([aac(T0 + 3 * step), aac(T0 + 4 * step + 90000)]))
    assert (tfdt, durations) == (3072, [1024 + 8000, 1024])
    # a hole between fragments starts the next one at its own time
    assert traf(muxer.fragment([aac(T0 + 10 * 90000)])) == (80000, [1024])
