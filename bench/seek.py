"""Seeking in the platform's recordings (issue 14): time from a seek to the first frame of the
new place delivered to a viewer, for segments on local disk and segments moved to S3.

    .venv/bin/python bench/seek.py [--seeks 20] [--segments 3] [--bitrate 2000000]

One-minute segments of real H.264 (libx264, 640×360, 25 fps, key frame every 2 s, about
``--bitrate``; one encoded minute written as every segment) are indexed in a SQLite database;
one channel's stay local, another's are moved by the tier job to a real SeaweedFS S3 server on
loopback (``weed``, as the tests start it). A playback of each channel's three minutes runs
through the media hub (``record/…``, :mod:`xueliang.recording.playback`) and a viewer reads its
frames. Each seek goes to a random place (seeded) and the clock stops when the key frame the
picture restarts from reaches the viewer: that frame's bytes are known from the segment, so
it is told apart from the frames before the seek. Seeks are timed while playing (at 1×) and
while paused (scrubbing: the picture at the new place is sent at once).

Prints ``name: value unit`` lines: ``seek_<tier>_<state>_p50`` and ``_p95`` (ms), the segment
size, and the target (500 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.media._media_clips import encode  # noqa: E402
from tests.objects.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedServer  # noqa: E402

from xueliang.config import MediaConfig  # noqa: E402
from xueliang.db.engine import create_engine, session_factory  # noqa: E402
from xueliang.db.migrate import upgrade_async  # noqa: E402
from xueliang.db.tables import Recording  # noqa: E402
from xueliang.media.fmp4 import Fmp4Muxer  # noqa: E402
from xueliang.media.hub import MediaHub  # noqa: E402
from xueliang.objects.s3 import S3Objects  # noqa: E402
from xueliang.recording.index import segment_path  # noqa: E402
from xueliang.recording.playback import RecordedProvider, frames, video_track  # noqa: E402
from xueliang.recording.tiers import Tiering  # noqa: E402

T0 = datetime(2026, 11, 1, 8, tzinfo=UTC)
SEGMENT = 60.0
CHANNELS = {"local": "34020000001320000001", "s3": "34020000001320000002"}


def one_minute(bitrate: int) -> bytes:
    """A minute of video as the recorder writes it (fragments of one second)."""
    fs, ps = encode(width=640, height=360, frames=int(SEGMENT * 25), gop=50, bit_rate=bitrate)
    muxer = Fmp4Muxer(fs[0].codec, ps, base_dts=fs[0].dts)
    data = bytearray(muxer.init_segment())
    for i in range(0, len(fs), 25):
        part = fs[i:i + 25]
        end = fs[i + 25].dts if i + 25 < len(fs) else part[-1].dts + 3600
        data += muxer.fragment(part, end_dts=end)
    return bytes(data)


def key_frames(data: bytes) -> list[tuple[float, bytes]]:
    """(seconds from the segment's start, bytes) of each key frame, as playback sends it."""
    track = video_track(data)
    assert track is not None
    return [(f.dts / 90000, f.data) for f in frames(data, track) if f.keyframe]


def restart_key(keys: list[tuple[float, bytes]], position: float) -> bytes:
    """The key frame a seek to ``position`` (s from the first segment) restarts from."""
    offset = position % SEGMENT
    return [d for t, d in keys if t <= offset][-1]


async def timed_seeks(hub: MediaHub, channel_id: str, segments: int, keys: list[tuple[float, bytes]],
                      n: int, paused: bool, rng: random.Random) -> list[float]:
    name = f"record/{channel_id}/{uuid.uuid4().hex[:16]}"
    end = T0 + timedelta(seconds=SEGMENT * segments)
    stream = await hub.acquire(name, params={"channel_id": channel_id, "start": T0.timestamp(),
                                             "end": end.timestamp(), "speed": 1})
    src: Any = stream.handle
    reader = stream.reader("frames")
    await asyncio.sleep(0.5)
    out: list[float] = []
    for _ in range(n):
        if paused:
            await src.control("pause")
        await asyncio.sleep(0.3)
        reader.get_nowait()  # what came before the seek
        position = rng.uniform(1.0, SEGMENT * segments - 5.0)
        want = restart_key(keys, position)
        t0 = time.perf_counter()
        await src.control("seek", position)
        async with asyncio.timeout(10):
            while not any(f.keyframe and f.data == want for f in await reader.get()):
                pass
        out.append((time.perf_counter() - t0) * 1000)
        if paused:
            await src.control("resume")
    await src.close()
    s = hub.stream(name)
    if s is not None:
        s.end("bench done")
    return out


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeks", type=int, default=20)
    ap.add_argument("--segments", type=int, default=3)
    ap.add_argument("--bitrate", type=int, default=2_000_000)
    ap.add_argument("--move", type=int, default=16, help="segments moved to time the tier job (per run)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="xl-seek-") as tmp_:
        tmp = Path(tmp_)
        weed = SeaweedServer(tmp / "weed").start()
        try:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            await upgrade_async(url)
            engine = create_engine(url)
            sessions = session_factory(engine)
            root = tmp / "recordings"
            data = one_minute(a.bitrate)
            keys = key_frames(data)
            print(f"segment_size: {len(data) / 1e6:.1f} MB ({SEGMENT:g} s, {len(data) * 8 / SEGMENT / 1e6:.2f} Mbit/s)")
            store = S3Objects(bucket="xueliang-bench", endpoint_url=weed.endpoint, access_key=ACCESS_KEY,
                              secret_key=SECRET_KEY)
            await store.start()
            # the tier job's throughput: --move segments, one copy at a time and four at once
            for copies in (1, 4):
                channel_id = f"3402000000132000010{copies}"
                async with sessions() as s, s.begin():
                    for i in range(a.move):
                        start = T0 + timedelta(seconds=SEGMENT * i)
                        rel = segment_path(channel_id, start)
                        (root / rel).parent.mkdir(parents=True, exist_ok=True)
                        (root / rel).write_bytes(data)
                        s.add(Recording(channel_id=channel_id, start=start, size=len(data), path=rel,
                                        end=start + timedelta(seconds=SEGMENT), tier="local", state="closed"))
                t = time.perf_counter()
                moved = await Tiering(sessions, root, store, after_days=1, copies=copies).move(T0 + timedelta(days=1))
                took = time.perf_counter() - t
                print(f"tier_move_{copies}_at_once: {moved.moved / took:.1f} segments/s "
                      f"({moved.bytes / took / 1e6:.0f} MB/s, {moved.moved} segments)")
            # the S3 channel's segments are moved by the tier job; then the local channel's are written
            for tier in ("s3", "local"):
                async with sessions() as s, s.begin():
                    for i in range(a.segments):
                        start = T0 + timedelta(seconds=SEGMENT * i)
                        rel = segment_path(CHANNELS[tier], start)
                        (root / rel).parent.mkdir(parents=True, exist_ok=True)
                        (root / rel).write_bytes(data)
                        s.add(Recording(channel_id=CHANNELS[tier], start=start, size=len(data), path=rel,
                                        end=start + timedelta(seconds=SEGMENT), tier="local", state="closed"))
                if tier == "s3":
                    moved = await Tiering(sessions, root, store, after_days=1).move(T0 + timedelta(days=1))
                    assert moved.moved == a.segments
            hub = MediaHub(MediaConfig())
            hub.set_provider("record/", RecordedProvider(sessions, root, objects=store))
            rng = random.Random(14)
            for tier, channel_id in CHANNELS.items():
                for paused in (False, True):
                    ms = await timed_seeks(hub, channel_id, a.segments, keys, a.seeks, paused, rng)
                    state = "paused" if paused else "playing"
                    print(f"seek_{tier}_{state}_p50: {statistics.median(ms):.0f} ms")
                    print(f"seek_{tier}_{state}_p95: {pct(ms, 0.95):.0f} ms")
                    print(f"seek_{tier}_{state}_max: {max(ms):.0f} ms")
            print("seek_target: 500 ms")
            await store.close()
            await engine.dispose()
        finally:
            weed.stop()


if __name__ == "__main__":
    asyncio.run(main())
