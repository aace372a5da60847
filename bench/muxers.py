"""Output muxers' hot paths. Prints ``name: value unit`` lines.

Encodes a 720p25 H.264 clip at ~2 Mbit/s with PyAV first (a few seconds), then times, per
video frame: an fMP4 fragment per frame (MSE, lowest latency), an fMP4 fragment per GOP,
an FLV tag, and the HLS packager (fragment per segment); and what 50 streams at 25 fps would
cost of one core for each. Also G.711 → AAC transcoding per 20 ms audio frame (the only
transcoding on the live path, optional), and its cost for 50 streams.
"""

from __future__ import annotations

import fractions
import itertools
import platform
import time
from collections.abc import Callable
from typing import Any

import av
import numpy as np

from xueliang.media._bitstream import parameter_sets_from_annexb, split_annexb
from xueliang.media.audio import G711ToAac
from xueliang.media.flv import FlvMuxer
from xueliang.media.fmp4 import Fmp4Muxer
from xueliang.media.frame import Codec, Frame, ParameterSets
from xueliang.media.hls import HlsPackager

WIDTH, HEIGHT, FPS, SECONDS, BITRATE, GOP = 1280, 720, 25, 8, 2_000_000, 50
STREAMS = 50


def encode_clip() -> tuple[list[Frame], ParameterSets]:
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height = WIDTH, HEIGHT
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, FPS)
    ctx.framerate = fractions.Fraction(FPS, 1)
    ctx.gop_size = GOP
    ctx.bit_rate = BITRATE
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency"}
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    noise = rng.integers(0, 48, (HEIGHT, WIDTH), dtype=np.uint8)
    packets: list[Any] = []
    for i in range(FPS * SECONDS):
        y = ((xx + 3 * i) ^ (yy - 2 * i)).astype(np.uint8) // 2 + np.roll(noise, i * 7, axis=1)
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(y.tobytes())
        frame.planes[1].update(bytes([(i * 3) % 256]) * (WIDTH * HEIGHT // 4))
        frame.planes[2].update(bytes([128]) * (WIDTH * HEIGHT // 4))
        frame.pts = i
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    frames = []
    ps = ParameterSets()
    for p in packets:
        assert p.pts is not None and p.dts is not None
        data = bytes(p)
        if p.is_keyframe:
            parameter_sets_from_annexb(Codec.H264, data, ps)
        frames.append(Frame(Codec.H264, p.pts * 3600, p.dts * 3600, data, p.is_keyframe))
    return frames, ps


def best_of(runs: int, fn: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    t0 = time.perf_counter()
    clip, ps = encode_clip()
    encode_s = time.perf_counter() - t0
    duration = len(clip) / FPS
    total = sum(len(f.data) for f in clip)
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}"
    )
    print(f"clip_encode_time: {encode_s:.2f} s")
    print(f"clip_frames: {len(clip)} frames")
    print(f"clip_bitrate: {total * 8 / duration / 1e6:.2f} Mbit/s")
    print(f"clip_mean_frame: {total / len(clip) / 1000:.1f} kB")

    reps = 10
    span = len(clip) * 3600

    def timeline(r: int) -> list[Frame]:
        return [
            Frame(f.codec, f.pts + r * span, f.dts + r * span, f.data, f.keyframe) for f in clip
        ]

    runs = [timeline(r) for r in range(reps)]
    keys = [i for i, f in enumerate(clip) if f.keyframe] + [len(clip)]
    gops = [(a, b) for a, b in itertools.pairwise(keys) if b > a]

    def fmp4_per_frame() -> None:
        m = Fmp4Muxer(Codec.H264, ps, 1280, 720)
        for run in runs:
            for f in run:
                m.fragment([f])

    def fmp4_per_gop() -> None:
        m = Fmp4Muxer(Codec.H264, ps, 1280, 720)
        for run in runs:
            for a, b in gops:
                m.fragment(run[a:b])

    def flv_tags() -> None:
        m = FlvMuxer(Codec.H264, ps)
        for run in runs:
            for f in run:
                m.tag(f)

    def hls() -> None:
        h = HlsPackager(Fmp4Muxer(Codec.H264, ps, 1280, 720), target_duration=2.0, window=6)
        for run in runs:
            for f in run:
                h.add(f)

    def annexb_split() -> None:  # the NAL scan every muxer does per frame
        for run in runs:
            for f in run:
                split_annexb(f.data)

    def annexb_find() -> None:  # the same scan by bytes.find from code to code, for comparison
        for run in runs:
            for f in run:
                data = f.data
                i = data.find(b"\x00\x00\x01")
                while i >= 0:
                    i = data.find(b"\x00\x00\x01", i + 3)

    results: dict[str, float] = {}
    for name, fn in [
        ("annexb_split", annexb_split),
        ("annexb_find_loop", annexb_find),
        ("fmp4_fragment_per_frame", fmp4_per_frame),
        ("fmp4_fragment_per_gop", fmp4_per_gop),
        ("flv_tag", flv_tags),
        ("hls_add", hls),
    ]:
        per_frame = best_of(5, fn) / (reps * len(clip))
        results[name] = per_frame
        print(f"{name}: {per_frame * 1e6:.1f} us/frame")
        print(f"{name}_cpu_50x25fps: {per_frame * STREAMS * FPS * 100:.2f} % of one core")
    all_three = results["fmp4_fragment_per_frame"] + results["flv_tag"] + results["hls_add"]
    print(f"all_outputs_cpu_50x25fps: {all_three * STREAMS * FPS * 100:.2f} % of one core")

    # G.711 → AAC: 20 ms frames of µ-law, a tone over background noise, 8 kHz mono
    t = np.arange(8000 * 10) / 8000
    noisy = 8000 * np.sin(2 * np.pi * 440 * t) + 1500 * np.random.default_rng(2).standard_normal(
        len(t)
    )
    pcm = noisy.astype(np.int16).reshape(1, -1)
    enc = av.CodecContext.create("pcm_mulaw", "w")
    enc.sample_rate, enc.layout, enc.format = 8000, "mono", "s16"
    af = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    af.sample_rate = 8000
    law = b"".join(bytes(p) for p in enc.encode(af))
    g711 = [
        Frame(Codec.G711U, i * 1800, i * 1800, law[i * 160 : (i + 1) * 160])
        for i in range(len(law) // 160)
    ]

    def transcode() -> None:
        tx = G711ToAac(Codec.G711U)
        for f in g711:
            tx.feed(f)
        tx.flush()

    per_audio = best_of(3, transcode) / len(g711)
    print(f"g711_to_aac: {per_audio * 1e6:.1f} us/20ms-frame")
    print(f"g711_to_aac_cpu_50_streams: {per_audio * 50 * STREAMS * 100:.2f} % of one core")


if __name__ == "__main__":
    main()
