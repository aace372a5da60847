"""RTP/PS hot paths: parse, receive + demux, mux. Prints ``name: value unit`` lines.

Encodes a 720p25 H.264 clip at ~2 Mbit/s with PyAV first (a few seconds), then times:
RTP header parsing, RtpReceiver + PsDemuxer per packet (and what 50 such streams at their
real packet rate would cost of one core), the same through PsRtpInput (one call a datagram), PsMuxer per frame, PsTemplate.restamp and
RtpPacketizer per frame (the simulator's per-camera cost).
"""

from __future__ import annotations

import fractions
import platform
import time

import av
import numpy as np

from xueliang.media.frame import Codec, Frame
from xueliang.media.ps import PsDemuxer
from xueliang.media.ps_mux import PsMuxer, PsTemplate
from xueliang.media.ps_rtp_in import PsRtpInput
from xueliang.media.rtp import (
    Rfc4571Deframer,
    RtpPacketizer,
    RtpReceiver,
    frame_rfc4571,
    parse_rtp,
)

WIDTH, HEIGHT, FPS, SECONDS, BITRATE = 1280, 720, 25, 4, 2_000_000
STREAMS = 50


def encode_clip() -> list[Frame]:
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height = WIDTH, HEIGHT
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, FPS)
    ctx.framerate = FPS
    ctx.gop_size = 50
    ctx.bit_rate = BITRATE
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency"}
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    frames: list[Frame] = []
    noise = rng.integers(0, 48, (HEIGHT, WIDTH), dtype=np.uint8)
    for i in range(FPS * SECONDS):
        y = ((xx + 3 * i) ^ (yy - 2 * i)).astype(np.uint8) // 2 + np.roll(noise, i * 7, axis=1)
        u = np.full((HEIGHT // 2, WIDTH // 2), (i * 3) % 256, np.uint8)
        v = np.full((HEIGHT // 2, WIDTH // 2), 128, np.uint8)
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(np.ascontiguousarray(y))
        frame.planes[1].update(u)
        frame.planes[2].update(v)
        frame.pts = i
        packets = list(ctx.encode(frame))
        frames += [_to_frame(p) for p in packets]
    frames += [_to_frame(p) for p in ctx.encode(None)]
    return frames


def _to_frame(p: av.Packet) -> Frame:
    assert p.pts is not None and p.dts is not None
    return Frame(Codec.H264, p.pts * 3600, p.dts * 3600, bytes(p), p.is_keyframe)


def best_of(runs: int, fn: object) -> float:
    assert callable(fn)
    best = float("inf")
    for _ in range(runs):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    t0 = time.perf_counter()
    clip = encode_clip()
    encode_s = time.perf_counter() - t0
    total_bytes = sum(len(f.data) for f in clip)
    duration = len(clip) / FPS
    muxer = PsMuxer()
    chunks = [muxer.mux(f) for f in clip]
    packetizer = RtpPacketizer(0x0200000001)
    packets: list[bytes] = []
    for f, chunk in zip(clip, chunks, strict=True):
        packets += packetizer.packetize(chunk, f.dts)
    pkt_rate = len(packets) / duration
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}"
    )
    print(f"clip_encode_time: {encode_s:.2f} s")
    print(f"clip_frames: {len(clip)} frames")
    print(f"clip_bitrate: {total_bytes * 8 / duration / 1e6:.2f} Mbit/s")
    print(f"clip_packet_rate: {pkt_rate:.0f} packets/s")

    reps = 20

    def parse_all() -> None:
        for _ in range(reps):
            for raw in packets:
                parse_rtp(raw)

    t = best_of(3, parse_all)
    print(f"rtp_parse: {t / (reps * len(packets)) * 1e9:.0f} ns/packet")

    stream = b"".join(frame_rfc4571(p) for p in packets)

    def deframe_all() -> None:
        for _ in range(reps):
            deframer = Rfc4571Deframer()
            got = 0
            for i in range(0, len(stream), 65536):  # TCP reads of 64 KiB
                got += len(deframer.feed(stream[i : i + 65536]))
            assert got == len(packets)

    t = best_of(3, deframe_all)
    print(f"rfc4571_deframe: {t / (reps * len(packets)) * 1e9:.0f} ns/packet")

    def receive_demux() -> None:
        for _ in range(reps):
            rx = RtpReceiver()
            dm = PsDemuxer()
            now = 0.0
            n = 0
            for raw in packets:
                now += 0.005
                for p in rx.push(parse_rtp(raw), now):
                    n += len(dm.feed(p.payload, p.timestamp, p.marker, p.sequence))
            n += len(dm.flush())
            assert n == len(clip), (n, len(clip))

    t = best_of(3, receive_demux)
    per_packet = t / (reps * len(packets))
    print(f"parse_receive_demux: {per_packet * 1e9:.0f} ns/packet")

    def input_feed() -> None:  # the same three steps as the relay runs them: one call a datagram
        for _ in range(reps):
            inp = PsRtpInput()
            now = 0.0
            n = 0
            for raw in packets:
                now += 0.005
                frames = inp.feed(raw, now)
                assert frames is not None
                n += len(frames)
            assert n >= len(clip) - 1, (n, len(clip))

    t = best_of(3, input_feed)
    print(f"ps_rtp_input_feed: {t / (reps * len(packets)) * 1e9:.0f} ns/packet")
    print(f"parse_receive_demux_throughput: {1 / per_packet:.0f} packets/s")
    cpu = STREAMS * pkt_rate * per_packet * 100
    print(f"cpu_50_streams_2mbit: {cpu:.1f} % of one core")

    def mux_all() -> None:
        m = PsMuxer()
        for _ in range(reps):
            for f in clip:
                m.mux(f)

    t = best_of(3, mux_all)
    print(f"ps_mux: {t / (reps * len(clip)) * 1e6:.1f} us/frame")

    templates = [PsTemplate(c) for c in chunks]

    def simulate() -> None:
        pk = RtpPacketizer(1)
        for r in range(reps):
            delta = (r + 1) * len(clip) * 3600
            for f, tpl in zip(clip, templates, strict=True):
                pk.packetize(tpl.restamp(delta), f.dts + delta)

    t = best_of(3, simulate)
    per_frame = t / (reps * len(clip))
    print(f"sim_restamp_packetize: {per_frame * 1e6:.1f} us/frame")
    print(f"sim_cameras_per_core: {1 / (per_frame * FPS):.0f} cameras")


if __name__ == "__main__":
    main()
