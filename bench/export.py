"""Evidence export and download of the platform's recordings. Prints ``name: value unit`` lines.

    python bench/export.py [--minutes 60]

Makes an hour (``--minutes``) of one 2 Mbit/s camera quickly from real encoded video: a 720p25
H.264 clip (8 s, PyAV, ~2 Mbit/s) is muxed as the writer does (fMP4, one-second fragments)
again and again with its times moved on, into one-minute segments — about 900 MB for the hour,
each segment a file of its own (copies, not links), indexed in a SQLite database. Then:

- download: ``GET /channels/{id}/recordings/download`` of the whole range over real HTTP
  (uvicorn on 127.0.0.1, curl reading it to /dev/null): throughput, and the server process's
  peak RSS before and after (the streaming never builds the file in memory);
- export: the same range as an evidence export job (no watermark), from queued to done (remux
  with SHA-256, manifest, signature), and ``xueliang export verify`` of the folder; then
  ``--watermark-minutes`` (1) of it with the watermark, which transcodes.

The segments are fresh in the page cache (just written): the figures are the remux's and
hashing's cost, not a cold disk's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from xueliang.media._bitstream import parameter_sets_from_annexb  # noqa: E402
from xueliang.media.fmp4 import Fmp4Muxer  # noqa: E402
from xueliang.media.frame import Codec, Frame, ParameterSets  # noqa: E402

WIDTH, HEIGHT, FPS, CLIP_SECONDS, BITRATE, GOP = 1280, 720, 25, 8, 2_000_000, 50
CH = "34020000001310000001"
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def encode_clip() -> tuple[list[Frame], ParameterSets]:
    ctx: Any = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height = WIDTH, HEIGHT
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = fractions.Fraction(1, FPS)
    ctx.framerate = fractions.Fraction(FPS, 1)
    ctx.gop_size = GOP
    ctx.bit_rate = BITRATE
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "nal-hrd": "cbr", "maxrate": "2M", "bufsize": "2M"}
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    noise = rng.integers(0, 48, (HEIGHT, WIDTH), dtype=np.uint8)
    packets: list[Any] = []
    for i in range(FPS * CLIP_SECONDS):
        y = ((xx + 3 * i) ^ (yy - 2 * i)).astype(np.uint8) // 2 + np.roll(noise, i * 7, axis=1)
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(y.tobytes())
        frame.planes[1].update(bytes([(i * 3) % 256]) * (WIDTH * HEIGHT // 4))
        frame.planes[2].update(bytes([128]) * (WIDTH * HEIGHT // 4))
        frame.pts = i
        packets += ctx.encode(frame)
    packets += ctx.encode(None)
    frames, ps = [], ParameterSets()
    for p in packets:
        data = bytes(p)
        if p.is_keyframe:
            parameter_sets_from_annexb(Codec.H264, data, ps)
        frames.append(Frame(Codec.H264, p.pts * 3600, p.dts * 3600, data, p.is_keyframe))
    return frames, ps


def minute_segment(frames: list[Frame], ps: ParameterSets) -> bytes:
    """60 s of video: the clip repeated with its times moved on, one-second fragments."""
    mux = Fmp4Muxer(Codec.H264, ps, base_dts=0)
    step = CLIP_SECONDS * 90000
    out = [mux.init_segment()]
    seq = [Frame(f.codec, f.pts + k * step, f.dts + k * step, f.data, f.keyframe)
           for k in range(60 // CLIP_SECONDS + 1) for f in frames]
    seq = [f for f in seq if f.dts < 60 * 90000]
    for i in range(0, len(seq), FPS):
        chunk = seq[i:i + FPS]
        end = seq[i + FPS].dts if i + FPS < len(seq) else chunk[-1].dts + 3600
        out.append(mux.fragment(chunk, end_dts=end))
    return b"".join(out)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def run(minutes: int, tmp: Path, watermark_minutes: int) -> None:
    import uvicorn
    from sqlalchemy import insert

    from xueliang.app import Platform
    from xueliang.config import Settings
    from xueliang.db.tables import EvidenceExport, Recording
    from xueliang.evidence.verify import verify_export
    from xueliang.recording.index import segment_path
    from xueliang.registry.models import ChannelIn

    t = time.perf_counter()
    frames, ps = encode_clip()
    seg = minute_segment(frames, ps)
    print(f"export.clip_encode: {time.perf_counter() - t:.1f} s")
    print(f"export.segment_bitrate: {len(seg) * 8 / 60 / 1e6:.2f} Mbit/s")
    root = tmp / "recordings"
    t = time.perf_counter()
    rows = []
    for i in range(minutes):
        start = T0 + timedelta(minutes=i)
        rel = segment_path(CH, start)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(seg)
        rows.append({"channel_id": CH, "start": start, "end": start + timedelta(minutes=1), "size": len(seg),
                     "path": rel, "tier": "local", "state": "closed"})
    total = len(seg) * minutes
    print(f"export.segments: {minutes} files")
    print(f"export.recorded: {total / 1e6:.0f} MB")
    print(f"export.lay_out: {time.perf_counter() - t:.1f} s")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(database={"url": f"sqlite+aiosqlite:///{tmp / 'bench.db'}"}, storage={"var_dir": tmp},
                        secret_key="bench-secret-0123456789abcdef", bootstrap_admin="root",
                        bootstrap_password="Root-pass-1", sip={"enabled": False}, media={"enabled": False},
                        access={"totp_required_roles": []}, api={"port": port})
    from xueliang.server import build

    platform: Platform
    platform, app = build(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn has no event for it)
        await asyncio.sleep(0.05)
    try:
        await platform.registry.create_channel(ChannelIn(id=CH, name="bench"))
        async with platform.sessions() as s, s.begin():
            await s.execute(insert(Recording), rows)
        import httpx

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            r = await c.post("/api/v1/auth/login", json={"username": "root", "password": "Root-pass-1"})
            token = r.json()["access_token"]
        end = T0 + timedelta(minutes=minutes)
        url = (f"http://127.0.0.1:{port}/api/v1/channels/{CH}/recordings/download"
               f"?start={T0.isoformat().replace('+', '%2B')}&end={end.isoformat().replace('+', '%2B')}")
        before = current_rss_mb()
        samples: list[float] = []

        async def sample() -> None:
            while True:
                samples.append(current_rss_mb())
                await asyncio.sleep(0.02)

        sampler = asyncio.create_task(sample())
        t = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            "curl", "-s", "-o", "/dev/null", "-H", f"Authorization: Bearer {token}",
            "-w", "%{http_code} %{size_download}", url, stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        took = time.perf_counter() - t
        sampler.cancel()
        code, size = out.decode().split()
        assert code == "200" and int(size) > total * 0.99, out
        print(f"download.bytes: {int(size) / 1e6:.0f} MB")
        print(f"download.seconds: {took:.1f} s")
        print(f"download.throughput: {int(size) / took / 1e6:.0f} MB/s")
        print(f"download.server_rss_before: {before:.0f} MB")
        print(f"download.server_rss_peak_during: {max(samples):.0f} MB ({len(samples)} samples)")
        print(f"download.server_rss_growth: {max(samples) - before:.1f} MB")

        from xueliang.access.policy import Principal

        p = Principal(user_id=1, username="root", role="administrator")
        t = time.perf_counter()
        e = await platform.exports.create(p, [CH], T0, end, "bench", "BENCH-1", hold=False)
        seen: set[float] = set()
        while True:
            async with platform.sessions() as s:
                row = await s.get(EvidenceExport, e.id)
            assert row is not None
            seen.add(row.progress)
            if row.state in ("done", "failed"):
                break
            await asyncio.sleep(0.05)
        took = time.perf_counter() - t
        assert row.state == "done", row.error
        print(f"export.seconds: {took:.1f} s (target < 30 s for 1 h of one 2 Mbit/s camera)")
        print(f"export.throughput: {total / took / 1e6:.0f} MB/s")
        print(f"export.progress_values_seen: {len(seen)} ({', '.join(f'{v:.2f}' for v in sorted(seen))})")
        t = time.perf_counter()
        v = await asyncio.to_thread(verify_export, tmp / "exports" / str(e.id))
        assert v.ok, v.problems
        print(f"export.verify_seconds: {time.perf_counter() - t:.1f} s")
        print(f"export.peak_rss: {rss_mb():.0f} MB")
        if watermark_minutes:  # the watermark transcodes (ffmpeg drawtext, libx264 veryfast)
            t = time.perf_counter()
            e = await platform.exports.create(p, [CH], T0, T0 + timedelta(minutes=watermark_minutes), "bench",
                                              "BENCH-2", watermark=True, hold=False)
            while True:
                async with platform.sessions() as s:
                    row = await s.get(EvidenceExport, e.id)
                assert row is not None
                if row.state in ("done", "failed"):
                    break
                await asyncio.sleep(0.2)
            took = time.perf_counter() - t
            assert row.state == "done", row.error
            print(f"export.watermark_seconds: {took:.1f} s for {watermark_minutes} min of 720p25")
            print(f"export.watermark_speed: {watermark_minutes * 60 / took:.2f} x real time")
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--watermark-minutes", type=int, default=1, help="then this much with a watermark (0: none)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="xl-bench-export-"))
    try:
        print(f"machine: {os.cpu_count()} cores (shared), python {sys.version.split()[0]}")
        asyncio.run(run(args.minutes, tmp, args.watermark_minutes))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
