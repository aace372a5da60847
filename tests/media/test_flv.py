from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from _media_clips import T0, decode_video, encode, ffprobe, has_encoder

from xueliang.media.audio import AudioConfig, adts_header
from xueliang.media.flv import FlvMuxer
from xueliang.media.frame import Codec, Frame


def tags(data: bytes) -> list[tuple[int, int, bytes]]:
    """(type, timestamp ms, body) of each tag after the FLV header; checks every PreviousTagSize."""
    assert data[:3] == b"FLV" and struct.unpack_from(">I", data, 5)[0] == 9
    assert struct.unpack_from(">I", data, 9)[0] == 0
    pos = 13
    out = []
    while pos < len(data):
        kind = data[pos]
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | (data[pos + 7] << 24)
        body = data[pos + 11 : pos + 11 + size]
        assert struct.unpack_from(">I", data, pos + 11 + size)[0] == 11 + size
        out.append((kind, ts, body))
        pos += 11 + size + 4
    assert pos == len(data)
    return out


def probe(path: Path, stream: str, entries: str) -> dict[str, Any]:
    res = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", stream]
        + ["-show_entries", entries, "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert res.stderr == ""
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def test_h264_flv_plays(tmp_path: Path) -> None:
    frames, ps = encode(Codec.H264)
    muxer = FlvMuxer(Codec.H264, ps)
    path = tmp_path / "a.flv"
    path.write_bytes(muxer.header() + b"".join(muxer.tag(f) for f in frames))
    assert ffprobe(path) == {
        "codec_name": "h264",
        "width": 320,
        "height": 240,
        "nb_read_frames": "60",
    }
    pts = decode_video(path)
    assert len(pts) == 60 and pts == sorted(pts) and len(set(pts)) == 60

    parsed = tags(path.read_bytes())
    assert parsed[0][0] == 18 and b"onMetaData" in parsed[0][2]
    assert parsed[1][0] == 9 and parsed[1][2][:2] == b"\x17\x00"  # key, AVC, sequence header
    record = parsed[1][2][5:]  # AVCDecoderConfigurationRecord
    assert record[0] == 1 and record[1:4] == (ps.sps or b"")[1:4] and record[4] == 0xFF
    video = parsed[2:]
    assert [t[2][0] >> 4 for t in video] == [1 if f.keyframe else 2 for f in frames]
    # ms timestamps from the first frame; composition time = pts - dts
    assert [t[1] for t in video] == [(f.dts - frames[0].dts) // 90 for f in frames]
    cts = [int.from_bytes(t[2][2:5], "big", signed=True) for t in video]
    assert cts == [(f.pts - f.dts) // 90 for f in frames]
    assert max(cts) > 0  # the clip has B-frames


@pytest.mark.skipif(not has_encoder(Codec.H265), reason="PyAV without libx265")
def test_h265_enhanced_flv_plays(tmp_path: Path) -> None:
    frames, ps = encode(Codec.H265)
    muxer = FlvMuxer(Codec.H265, ps)
    path = tmp_path / "a.flv"
    path.write_bytes(muxer.header() + b"".join(muxer.tag(f) for f in frames))
    parsed = tags(path.read_bytes())
    assert parsed[1][2][:5] == b"\x90hvc1"  # ex-header, key frame, SequenceStart
    assert all(t[2][1:5] == b"hvc1" and t[2][0] & 0x8F == 0x81 for t in parsed[2:])
    # Debian's ffprobe 5.1 predates enhanced FLV; PyAV's FFmpeg (≥ 6.1) reads it.
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "hevc"
        decoded = list(c.decode(stream))
    assert (decoded[0].width, decoded[0].height) == (320, 240)
    assert len(decoded) == 60
    pts = [f.pts for f in decoded]
    assert pts == sorted(pts) and len(set(pts)) == 60


def _g711(codec: Codec, seconds: float) -> list[Frame]:
    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16).reshape(1, -1)
    enc: Any = av.CodecContext.create("pcm_alaw" if codec is Codec.G711A else "pcm_mulaw", "w")
    enc.sample_rate, enc.layout, enc.format = 8000, "mono", "s16"
    af = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    af.sample_rate = 8000
    data = b"".join(bytes(p) for p in enc.encode(af))
    return [
        Frame(codec, T0 + i * 90000 // 50, T0 + i * 90000 // 50, data[i * 160 : (i + 1) * 160])
        for i in range(len(data) // 160)
    ]


@pytest.mark.parametrize(("codec", "name"), [(Codec.G711A, "pcm_alaw"), (Codec.G711U, "pcm_mulaw")])
def test_g711_audio_tags(codec: Codec, name: str, tmp_path: Path) -> None:
    video, ps = encode(Codec.H264)
    audio = _g711(codec, 2.4)
    stream = sorted([*video, *audio], key=lambda f: (f.dts, f.codec is codec))
    muxer = FlvMuxer(Codec.H264, ps, audio=AudioConfig.g711(codec))
    path = tmp_path / "g711.flv"
    path.write_bytes(muxer.header() + b"".join(muxer.tag(f) for f in stream))
    a = probe(path, "a:0", "stream=codec_name,sample_rate,channels")["streams"][0]
    assert (a["codec_name"], a["sample_rate"], a["channels"]) == (name, "8000", 1)
    assert ffprobe(path)["nb_read_frames"] == "60"
    with av.open(str(path)) as c:
        samples = sum(f.samples for f in c.decode(audio=0))
    assert samples == len(audio) * 160
    audio_tags = [t for t in tags(path.read_bytes()) if t[0] == 8]
    assert [t[1] for t in audio_tags] == [(f.dts - T0) // 90 for f in audio]


def test_aac_audio_tags(tmp_path: Path) -> None:
    video, ps = encode(Codec.H264)
    enc: Any = av.CodecContext.create("aac", "w")
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = 16000, "mono", "fltp", 48000
    pcm = np.zeros((1, 16000 * 2), np.float32)
    af = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
    af.sample_rate, af.pts = 16000, 0
    packets = [p for p in [*enc.encode(af), *enc.encode(None)] if p.pts >= 0]
    cfg = AudioConfig(Codec.AAC, 16000, 1)
    raw = [adts_header(cfg, p.size) + bytes(p) for p in packets]
    # two ADTS frames per PES, as some cameras pack them
    audio = [
        Frame(Codec.AAC, T0 + i * 2 * 5760, T0 + i * 2 * 5760, b"".join(raw[i * 2 : i * 2 + 2]))
        for i in range(len(raw) // 2)
    ]
    muxer = FlvMuxer(Codec.H264, ps, audio=cfg)
    stream = sorted([*video, *audio], key=lambda f: (f.dts, f.codec is Codec.AAC))
    path = tmp_path / "aac.flv"
    path.write_bytes(muxer.header() + b"".join(muxer.tag(f) for f in stream))
    parsed = tags(path.read_bytes())
    assert parsed[2][0] == 8 and parsed[2][2] == b"\xaf\x00" + cfg.audio_specific_config
    audio_tags = [t for t in parsed[3:] if t[0] == 8]
    assert len(audio_tags) == 2 * len(audio)
    assert [t[1] for t in audio_tags] == [i * 64 for i in range(len(audio_tags))]  # 1024/16 kHz
    a = probe(path, "a:0", "stream=codec_name,sample_rate,channels,nb_read_frames")["streams"][0]
    assert (a["codec_name"], a["sample_rate"], a["channels"]) == ("aac", "16000", 1)
    assert int(a["nb_read_frames"]) == len(audio_tags)


def test_parameter_set_change_in_band(tmp_path: Path) -> None:
    a_frames, ps_a = encode(Codec.H264)
    b_frames, ps_b = encode(Codec.H264, 352, 288, 30)
    muxer = FlvMuxer(Codec.H264, ps_a)
    assert not muxer.needs_new_header(ps_a) and muxer.needs_new_header(ps_b)
    parts = [muxer.header(), *(muxer.tag(f) for f in a_frames)]
    shift = a_frames[-1].dts + 3600 - b_frames[0].dts + 7200
    parts.append(muxer.set_parameter_sets(ps_b))
    parts += [
        muxer.tag(Frame(f.codec, f.pts + shift, f.dts + shift, f.data, f.keyframe))
        for f in b_frames
    ]
    assert b"\x00\x00\x01" not in parts[-1][16:20]  # length-prefixed, not Annex B
    path = tmp_path / "change.flv"
    path.write_bytes(b"".join(parts))
    with av.open(str(path)) as c:
        sizes = [(f.width, f.height) for f in c.decode(video=0)]
    assert sizes == [(320, 240)] * 60 + [(352, 288)] * 30
    assert b"width\x00@v\x00\x00" in muxer.header()  # onMetaData width = 352.0 for new readers
