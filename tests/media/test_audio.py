from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from _media_clips import T0, encode

from xueliang.media.audio import (
    AudioConfig,
    G711ToAac,
    _g711_tables,
    adts_header,
    iter_adts,
    parse_adts_header,
)
from xueliang.media.fmp4 import Fmp4Muxer
from xueliang.media.frame import Codec, Frame
from xueliang.media.hls import HlsPackager

G711 = [(Codec.G711A, "pcm_alaw"), (Codec.G711U, "pcm_mulaw")]


def g711_frames(codec: Codec, name: str, seconds: float, freq: float = 1000.0) -> list[Frame]:
    """A sine encoded to G.711 by FFmpeg, in 20 ms frames (160 bytes) on the 90 kHz clock."""
    t = np.arange(int(8000 * seconds)) / 8000
    pcm = (12000 * np.sin(2 * np.pi * freq * t)).astype(np.int16).reshape(1, -1)
    enc: Any = av.CodecContext.create(name, "w")
    enc.sample_rate, enc.layout, enc.format = 8000, "mono", "s16"
    af = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    af.sample_rate = 8000
    data = b"".join(bytes(p) for p in enc.encode(af))
    return [
        Frame(codec, T0 + i * 1800, T0 + i * 1800, data[i * 160 : (i + 1) * 160])
        for i in range(len(data) // 160)
    ]


@pytest.mark.parametrize(("codec", "name"), G711)
def test_g711_tables_match_ffmpeg(codec: Codec, name: str) -> None:
    dec: Any = av.CodecContext.create(name, "r")
    dec.sample_rate, dec.layout = 8000, "mono"
    frames = dec.decode(av.Packet(bytes(range(256))))
    ref = np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32) / 32768
    alaw, ulaw = _g711_tables()
    np.testing.assert_array_equal(alaw if codec is Codec.G711A else ulaw, ref)


@pytest.mark.parametrize(("codec", "name"), G711)
def test_g711_to_aac_decodes_to_the_same_tone(codec: Codec, name: str, tmp_path: Path) -> None:
    source = g711_frames(codec, name, 2.0)
    tx = G711ToAac(codec)
    out = [a for f in source for a in tx.feed(f)] + tx.flush()
    assert all(f.codec is Codec.AAC and f.keyframe for f in out)
    # 90 kHz timestamps, one AAC frame (1024 samples at 8 kHz) apart, anchored to the input
    steps = {b.dts - a.dts for a, b in itertools.pairwise(out)}
    assert steps == {11520}
    assert out[0].dts == T0 - 11520  # the encoder's priming frame
    assert all(f.pts == f.dts for f in out)
    header = parse_adts_header(out[1].data, 0)
    assert (header.sample_rate, header.channels, header.object_type) == (8000, 1, 2)
    assert AudioConfig.from_adts(out[1].data) == tx.config == AudioConfig(Codec.AAC, 8000, 1, 2)

    path = tmp_path / "a.aac"
    path.write_bytes(b"".join(f.data for f in out))
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        assert (stream.codec_context.name, stream.rate, stream.channels) == ("aac", 8000, 1)
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(stream)])
    assert abs(len(pcm) - 16000) <= 2048  # 2 s, give or take priming and padding
    body = pcm[2048:14000]
    spectrum = np.abs(np.fft.rfft(body))
    peak = np.argmax(spectrum) * 8000 / len(body)
    assert abs(peak - 1000) < 10
    assert 0.2 < np.sqrt(np.mean(body**2)) < 0.35  # 12000/32768/√2 ≈ 0.26


def test_g711_to_aac_resamples_and_resyncs_after_a_gap() -> None:
    source = g711_frames(Codec.G711U, "pcm_mulaw", 1.0)
    tx = G711ToAac(Codec.G711U, sample_rate=16000)
    out = [a for f in source for a in tx.feed(f)]
    late = [Frame(f.codec, f.pts + 90000 * 5, f.dts + 90000 * 5, f.data) for f in source]
    after = [a for f in late for a in tx.feed(f)] + tx.flush()
    before = out + [f for f in after if f.dts < T0 + 90000 * 5 - 11520]
    assert {b.dts - a.dts for a, b in itertools.pairwise(before[1:])} == {5760}
    resumed = [f for f in after if f.dts >= T0 + 90000 * 5 - 5760]
    assert resumed and resumed[0].dts == T0 + 90000 * 5 - 5760  # re-anchored, then priming
    assert parse_adts_header(out[0].data, 0).sample_rate == 16000


def test_adts_helpers_split_packed_frames() -> None:
    cfg = AudioConfig(Codec.AAC, 44100, 2)
    assert cfg.audio_specific_config == bytes.fromhex("1210")
    assert cfg.codec_string() == "mp4a.40.2"
    data = adts_header(cfg, 3) + b"abc" + adts_header(cfg, 2) + b"de" + b"\xff\xf1"
    assert [(bytes(p), n) for p, n in iter_adts(data)] == [(b"abc", 1024), (b"de", 1024)]
    with pytest.raises(ValueError):
        parse_adts_header(b"\x00" * 9, 0)
    with pytest.raises(ValueError):
        G711ToAac(Codec.AAC)


def test_transcoded_audio_in_hls_with_video(tmp_path: Path) -> None:
    """The live path: G.711 from the camera → AAC → fMP4 segments next to the video."""
    video, ps = encode(Codec.H264)
    tx = G711ToAac(Codec.G711A)
    aac = [a for f in g711_frames(Codec.G711A, "pcm_alaw", 2.4) for a in tx.feed(f)]
    stream = sorted([*video, *aac], key=lambda f: (f.dts, f.codec is Codec.AAC))
    hls = HlsPackager(Fmp4Muxer(Codec.H264, ps, audio=tx.config), target_duration=1.0)
    for f in stream:
        hls.add(f)
    hls.finish()
    assert len(hls.segments) == 3
    (tmp_path / "init.mp4").write_bytes(hls.init() or b"")
    for s in hls.segments:
        (tmp_path / f"seg{s.sequence}.m4s").write_bytes(s.data)
    (tmp_path / "p.m3u8").write_text(hls.playlist())
    res = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries"]
        + ["stream=codec_name,sample_rate,nb_read_frames", "-of", "json", str(tmp_path / "p.m3u8")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert res.stderr == ""
    streams = {s["codec_name"]: s for s in json.loads(res.stdout)["streams"]}
    assert streams["h264"]["nb_read_frames"] == "60"
    assert streams["aac"]["sample_rate"] == "8000"
    # every AAC frame from the first video frame on reaches the segments
    assert int(streams["aac"]["nb_read_frames"]) == sum(1 for f in aac if f.dts >= video[0].dts)
