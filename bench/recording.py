"""The recorder under load: N streams recorded while each is relayed to one viewer; and
retention over months of segments while the writer writes.

Prints ``name: value unit`` lines. In one process (the platform's own: the hub, its viewers and
the recorder share one event loop, as in ``xueliang serve``):

* **streams** — N cameras' H.264 (720p25, ~2 Mbit/s, GOP 2 s: bench/media.py's clip, encoded
  once with PyAV) pushed into the real media hub as ``live/<channel>`` streams, paced per frame
  and staggered;
* **viewers** — one fMP4 reader per stream (the hub's relay to a browser, without the socket);
* **recorder** — the platform's recorder (recording/writer.py) on every stream: fMP4 segments
  on disk, the index in SQLite (or ``--db-url``).

Phase 1 relays without recording, phase 2 with: the CPU added by recording per stream is the
difference of the process's CPU time over equal windows, divided by N. Also: disk write rate,
and loss (frames the recorder's readers were cut back over, segments short of their video).

``--retention``: the index and files of ``--channels`` channels × ``--days`` days (``--per-day``
segments a day) are made first; then ``--writer-streams`` streams are recorded in 2 s segments
with and without retention deleting everything beyond 30 days meanwhile, and the writer's
latency (opening and closing a segment: its file and index row) is compared.

    python bench/recording.py --streams 300 --seconds 20
    python bench/recording.py --retention --channels 300 --days 90 --per-day 24
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from media import CLIP_SECONDS, FPS, encode_clip  # noqa: E402  (bench/media.py's clip)
from xueliang.bus import EventBus  # noqa: E402
from xueliang.config import MediaConfig, RecordingConfig  # noqa: E402
from xueliang.db.engine import create_engine, session_factory  # noqa: E402
from xueliang.db.migrate import upgrade_async  # noqa: E402
from xueliang.media.frame import Codec, Frame  # noqa: E402
from xueliang.media.hub import MediaHub  # noqa: E402
from xueliang.recording.writer import Recorder  # noqa: E402

TICKS = 90000
CHANNEL = "3402000000132{:07d}"


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


class Cameras:
    """N streams fed from the clip at 25 fps, each its own time line, staggered in the frame."""

    def __init__(self, hub: MediaHub, n: int, clip: list[tuple[int, int, bytes, bool]]) -> None:
        self.clip = clip
        self.streams = [hub.publish(f"live/{CHANNEL.format(i)}", kind="bench") for i in range(n)]
        self.pushed = 0
        self.bytes = 0
        self.late = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        n, period = len(self.streams), 1 / FPS
        start = time.monotonic()
        k = 0
        span = self.clip[-1][1] - self.clip[0][1] + TICKS // FPS
        while True:
            pts, dts, data, key = self.clip[k % len(self.clip)]
            shift = (k // len(self.clip)) * span
            due = start + k * period
            # a frame time is one burst for all streams, split in slices across the period
            slices = 8
            for part in range(slices):
                now = time.monotonic()
                at = due + part * period / slices
                if at > now:
                    await asyncio.sleep(at - now)
                else:
                    self.late = max(self.late, now - at)
                for s in self.streams[part * n // slices:(part + 1) * n // slices]:
                    s.push_frame(Frame(Codec.H264, pts + shift, dts + shift, data, key))
                    self.pushed += 1
                    self.bytes += len(data)
            k += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Viewers:
    """One fMP4 reader per stream, drained as a browser would."""

    def __init__(self, cams: Cameras) -> None:
        self.readers = [s.reader("fmp4", info={"purpose": "bench viewer"}) for s in cams.streams]
        self.bytes = 0
        self.tasks = [asyncio.create_task(self._drain(r)) for r in self.readers]

    async def _drain(self, r: Any) -> None:
        while True:
            chunk = await r.get()
            if not chunk:
                return
            self.bytes += sum(len(c) for c in chunk)

    @property
    def cuts(self) -> int:
        return sum(r.cuts for r in self.readers)

    async def stop(self) -> None:
        for r in self.readers:
            r.close()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def database(tmp: Path, url: str | None) -> tuple[Any, Any]:
    url = url or f"sqlite+aiosqlite:///{tmp / 'bench.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    return engine, session_factory(engine)


def recorder_readers(hub: MediaHub) -> list[Any]:
    return [r for s in hub.streams() for r in s.reader_list() if (r.info or {}).get("purpose") == "recording"]


async def load(args: argparse.Namespace) -> dict[str, Any]:
    clip = encode_clip()
    bitrate = sum(len(c[2]) for c in clip) * 8 / CLIP_SECONDS
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        tmp = Path(d)
        engine, sessions = await database(tmp, args.db_url)
        hub = MediaHub(MediaConfig(idle_stop_seconds=3600), EventBus())
        cams = Cameras(hub, args.streams, clip)
        cams.start()
        await asyncio.sleep(2.5)  # a key frame on every stream
        viewers = Viewers(cams)
        await asyncio.sleep(args.warmup)
        # phase 1: relayed only
        c0, t0, p0 = cpu_seconds(), time.monotonic(), cams.pushed
        await asyncio.sleep(args.seconds)
        relay_cpu = (cpu_seconds() - c0) / (time.monotonic() - t0)
        relay_frames = cams.pushed - p0
        # phase 2: relayed and recorded
        rec = Recorder(RecordingConfig(enabled=True, segment_seconds=args.segment_seconds), sessions, hub,
                       tmp / "recordings")
        await rec.start()
        for i in range(args.streams):
            rec.record(CHANNEL.format(i))
        await asyncio.sleep(args.warmup + 2.5)
        cuts0 = sum(r.cuts for r in recorder_readers(hub))
        c0, t0, b0, p0 = cpu_seconds(), time.monotonic(), rec.bytes_written, cams.pushed
        vcuts0, vb0 = viewers.cuts, viewers.bytes
        await asyncio.sleep(args.seconds)
        window = time.monotonic() - t0
        record_cpu = (cpu_seconds() - c0) / window
        written = rec.bytes_written - b0
        rec_frames = cams.pushed - p0
        readers = recorder_readers(hub)
        cuts = sum(r.cuts for r in readers) - cuts0
        dropped = sum(r.dropped for r in readers)
        vcuts = viewers.cuts - vcuts0
        relayed = viewers.bytes - vb0
        await cams.stop()
        await rec.stop()
        await viewers.stop()
        late = cams.late
        from sqlalchemy import func, select

        from xueliang.db.tables import Recording

        async with sessions() as s:
            segs, size = (await s.execute(select(func.count(), func.sum(Recording.size)))).one()
        await engine.dispose()
    return {"bitrate": bitrate, "relay_cpu": relay_cpu, "record_cpu": record_cpu, "written": written,
            "window": window, "relay_fps": relay_frames / args.seconds / args.streams,
            "record_fps": rec_frames / window / args.streams, "cuts": cuts, "dropped": dropped,
            "viewer_cuts": vcuts, "relayed": relayed, "segments": segs, "size": size or 0, "late": late}


# ---- retention over months of segments ----------------------------------------------------------

async def make_backlog(sessions: Any, root: Path, channels: int, days: int, per_day: int) -> int:
    """Index rows and (small) files of ``channels`` × ``days`` days, ``per_day`` segments a day."""
    from sqlalchemy import insert

    from xueliang.db.tables import Channel, Recording
    from xueliang.recording.index import segment_path

    now = datetime.now(UTC)
    step = timedelta(days=1) / per_day
    async with sessions() as s, s.begin():
        await s.execute(insert(Channel), [{"id": CHANNEL.format(i), "name": f"c{i}", "point_class": 2}
                                          for i in range(channels)])
    n = 0
    for c in range(channels):
        cid = CHANNEL.format(c)
        rows = []
        for k in range(days * per_day):
            start = now - timedelta(days=days) + k * step
            rel = segment_path(cid, start)
            rows.append({"channel_id": cid, "start": start, "end": start + step, "size": 1, "path": rel,
                         "tier": "local", "state": "closed"})
        for r in rows:
            p = root / r["path"]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"x")
        async with sessions() as s, s.begin():
            await s.execute(insert(Recording), rows)
        n += len(rows)
    return n


async def retention(args: argparse.Namespace) -> dict[str, Any]:
    from xueliang.recording.retention import Retention

    clip = encode_clip()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        tmp = Path(d)
        engine, sessions = await database(tmp, args.db_url)
        root = tmp / "recordings"
        t = time.monotonic()
        rows = await make_backlog(sessions, root, args.channels, args.days, args.per_day)
        made = time.monotonic() - t
        hub = MediaHub(MediaConfig(idle_stop_seconds=3600), EventBus())
        cams = Cameras(hub, args.writer_streams, clip)
        cams.start()
        await asyncio.sleep(2.5)
        rec = Recorder(RecordingConfig(enabled=True, segment_seconds=2), sessions, hub, root)
        lat: list[float] = []
        opened, closed = rec._open, rec._close

        async def timed_open(*a: Any) -> Any:
            t = time.perf_counter()
            try:
                return await opened(*a)
            finally:
                lat.append(time.perf_counter() - t)

        async def timed_close(*a: Any) -> Any:
            t = time.perf_counter()
            try:
                return await closed(*a)
            finally:
                lat.append(time.perf_counter() - t)

        rec._open, rec._close = timed_open, timed_close  # type: ignore[method-assign]
        await rec.start()
        for i in range(args.writer_streams):
            rec.record(CHANNEL.format(i))
        await asyncio.sleep(5)
        lat.clear()
        await asyncio.sleep(args.seconds)
        quiet = sorted(lat)
        lat.clear()
        job = Retention(rec.policy, sessions, root)
        t = time.monotonic()
        await job.run()  # everything beyond 30 days, while the writer writes
        busy_window = time.monotonic() - t
        busy = sorted(lat)
        deleted = job.deleted
        await cams.stop()
        await rec.stop()
        await engine.dispose()
    return {"rows": rows, "made": made, "deleted": deleted, "retention_seconds": busy_window,
            "quiet": quiet, "busy": busy, "segments_closed": rec.segments_closed}


def pct(xs: list[float], p: float) -> float:
    return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000 if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=15.0, help="each measurement window")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--segment-seconds", type=float, default=60.0)
    ap.add_argument("--db-url", help="the index's database (default: SQLite in the temporary directory)")
    ap.add_argument("--dir", help="where the recordings go (a temporary directory under it)")
    ap.add_argument("--retention", action="store_true", help="the retention benchmark instead")
    ap.add_argument("--channels", type=int, default=300)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--per-day", type=int, default=24, help="segments per channel and day in the backlog")
    ap.add_argument("--writer-streams", type=int, default=20)
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.python_implementation()} "
          f"{platform.python_version()}")
    if args.retention:
        r = asyncio.run(retention(args))
        tag = f"{args.channels}x{args.days}d"
        print(f"recording_retention_backlog_{tag}: {r['rows']} segments")
        print(f"recording_retention_backlog_made_{tag}: {r['made']:.0f} s")
        print(f"recording_retention_deleted_{tag}: {r['deleted']} segments")
        print(f"recording_retention_run_{tag}: {r['retention_seconds']:.1f} s")
        print(f"recording_retention_rate_{tag}: {r['deleted'] / max(r['retention_seconds'], 1e-9):.0f} segments/s")
        for name, xs in (("quiet", r["quiet"]), ("retention", r["busy"])):
            print(f"recording_writer_latency_p50_{name}_{tag}: {pct(xs, 0.5):.1f} ms")
            print(f"recording_writer_latency_p99_{name}_{tag}: {pct(xs, 0.99):.1f} ms")
            print(f"recording_writer_latency_max_{name}_{tag}: {(max(xs) * 1000 if xs else float('nan')):.1f} ms")
            print(f"recording_writer_operations_{name}_{tag}: {len(xs)} opens+closes")
        return
    r = asyncio.run(load(args))
    tag = f"{args.streams}"
    per = (r["record_cpu"] - r["relay_cpu"]) / args.streams * 100
    print(f"recording_clip_bitrate: {r['bitrate'] / 1e6:.2f} Mbit/s")
    print(f"recording_relay_cpu_percent_{tag}: {r['relay_cpu'] * 100:.1f} %")
    print(f"recording_relay_and_record_cpu_percent_{tag}: {r['record_cpu'] * 100:.1f} %")
    print(f"recording_cpu_added_per_stream_{tag}: {per:.3f} % of a core")
    print(f"recording_disk_write_{tag}: {r['written'] / r['window'] / 1e6:.1f} MB/s")
    print(f"recording_frames_per_stream_{tag}: {r['record_fps']:.1f} fps (relay only {r['relay_fps']:.1f})")
    print(f"recording_reader_cuts_{tag}: {r['cuts']} cuts")
    print(f"recording_reader_dropped_{tag}: {r['dropped']} chunks")
    print(f"recording_viewer_cuts_{tag}: {r['viewer_cuts']} cuts")
    print(f"recording_relayed_to_viewers_{tag}: {r['relayed'] * 8 / r['window'] / 1e6:.0f} Mbit/s")
    print(f"recording_segments_{tag}: {r['segments']} segments, {r['size'] / 1e6:.0f} MB")
    print(f"recording_pacer_late_max_{tag}: {r['late'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
