"""Playback of the platform's own recordings, end to end: a simulated camera recorded by the
Recorder, played back through the media hub (``record/…``) over HTTP, decoded by PyAV."""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import av
import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from tests.integration.test_live_chain import Live, _live
from xueliang.config import RecordingConfig
from xueliang.db.tables import Recording
from xueliang.recording.playback import frames, video_track
from xueliang.recording.writer import Recorder

# The three tests share one recording (``recorded``, made once for the module), so they run in the
# module's event loop, where its platform runs.
pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

FPS = 25
KEY_FRAME_INTERVAL = 1.0  # the simulator's GOP (s)


class Recorded(NamedTuple):
    live: Live
    ch: str
    rows: list[Recording]
    root: Path  # where the segment files are


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def recorded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Recorded]:
    """A channel of the live chain recorded for a few segments, once for the module: the tests
    only read it (the last one adds a channel of its own beside it)."""
    tmp_path = tmp_path_factory.mktemp("recorded")
    # A playback stream waits for its viewer's GET after the POST that opened it: on a loaded test
    # host more than the live chain's 1 s idle stop can pass between the two (a stream ended idle).
    async for live in _live(tmp_path, {"idle_stop_seconds": 5.0}):
        cfg = RecordingConfig(enabled=True, segment_seconds=2, fragment_seconds=0.5)
        rec = Recorder(cfg, live.platform.sessions, live.platform.media, tmp_path / "recordings")
        await rec.start()
        async with live.client() as c:
            ch = (await c.get("/api/v1/channels")).json()["items"][0]["id"]
        rec.record(ch)
        for _ in range(300):
            if rec.segments_closed >= 4:
                break
            await asyncio.sleep(0.1)
        await rec.stop()
        async with live.platform.sessions() as s:
            rows = list((await s.scalars(select(Recording).where(Recording.channel_id == ch)
                                         .order_by(Recording.start))).all())
        assert len(rows) >= 4
        yield Recorded(live, ch, rows, tmp_path / "recordings")


async def read_all(c: httpx.AsyncClient, url: str, limit: float = 30.0) -> tuple[bytes, float]:
    """Everything the URL sends until it ends (the playback reached its end), and how long."""
    buf = bytearray()
    t0 = time.monotonic()
    async with c.stream("GET", url) as r:
        assert r.status_code == 200, await r.aread()
        async with asyncio.timeout(limit):
            async for chunk in r.aiter_bytes():
                buf += chunk
    return bytes(buf), time.monotonic() - t0


def decoded_times(data: bytes, fmt: str) -> list[float]:
    with av.open(io.BytesIO(data), format=fmt) as f:
        return [float(fr.time) for fr in f.decode(video=0) if fr.time is not None]


def _iso(t: datetime) -> str:
    return t.isoformat()


def expected_frames(root: Path, rows: list[Recording], start: datetime, end: datetime) -> int:
    """What a playback of [start, end) must show, from the segment files as PyAV decodes them:
    from the key frame at or before ``start`` to the last frame before ``end``."""
    walls: list[tuple[datetime, bool]] = []
    for r in rows:
        with av.open(str(root / r.path)) as f:
            walls += [(r.start + timedelta(seconds=float(fr.time)), bool(fr.key_frame))
                      for fr in f.decode(video=0) if fr.time is not None]
    first = max(i for i, (w, key) in enumerate(walls) if key and w <= start)
    return sum(1 for w, _ in walls[first:] if w < end)


async def test_the_demuxer_gives_back_what_the_recorder_wrote(recorded: Recorded) -> None:
    _, _, rows, root = recorded
    data = (root / rows[1].path).read_bytes()
    track = video_track(data)
    assert track is not None and track.parameter_sets and track.timescale == 90000
    fs = list(frames(data, track))
    assert fs[0].keyframe and fs[0].dts == 0
    assert all(b.dts > a.dts for a, b in itertools.pairwise(fs))
    assert rows[1].end is not None
    seconds = (rows[1].end - rows[1].start).total_seconds()
    assert abs(len(fs) / FPS - seconds) < 0.1
    # Annex B, parameter sets in front of each key frame: PyAV decodes every frame
    ctx = av.CodecContext.create(track.codec.value, "r")
    pictures = [p for f in fs for p in ctx.decode(av.Packet(f.data))]
    pictures += ctx.decode(None)
    assert len(pictures) == len(fs)


async def test_a_range_of_the_platforms_recording_plays_in_the_browser(recorded: Recorded) -> None:
    live, ch, rows, root = recorded
    start = rows[0].start + timedelta(seconds=1.3)
    end = start + timedelta(seconds=4)  # across segment boundaries, ending inside one
    want = expected_frames(root, rows, start, end)
    assert 4 * FPS <= want <= (4 + KEY_FRAME_INTERVAL) * FPS + 1, want
    async with live.client(timeout=30) as c:
        r = await c.post(f"/api/v1/channels/{ch}/playback",
                         json={"start": _iso(start), "end": _iso(end), "source": "platform"})
        assert r.status_code == 200, r.text
        body = r.json()
        name = body["stream"]
        assert name.startswith(f"record/{ch}/") and body["urls"]["flv"] == f"/api/v1/streams/{name}/live.flv"
        data, took = await read_all(c, body["urls"]["flv"])
        times = decoded_times(data, "flv")
        # paced in real time (not dumped at once), and ended at ``end`` (the read returned)
        assert 3.0 <= took <= 8.0, took
        span = times[-1] - times[0] + 1 / FPS
        assert abs(span - 4.0) <= KEY_FRAME_INTERVAL + 0.1, (span, len(times))
        assert abs(len(times) - 4 * FPS) <= KEY_FRAME_INTERVAL * FPS + 2, len(times)
        assert abs(len(times) - want) <= 2, (len(times), want)  # exactly the range's frames
        assert live.platform.media.stream(name) is None  # ended with the range

        # speed 4×, then the same range in about a quarter of the time, every frame still there
        r = await c.post(f"/api/v1/channels/{ch}/playback",
                         json={"start": _iso(start), "end": _iso(end), "source": "platform"})
        name, urls = r.json()["stream"], r.json()["urls"]
        got = await c.post(f"/api/v1/streams/{name}/control", json={"action": "speed", "value": 4})
        assert got.status_code == 200, got.text
        bad = await c.post(f"/api/v1/streams/{name}/control", json={"action": "speed", "value": 32})
        assert bad.status_code == 422
        data, took = await read_all(c, urls["mp4"])
        times = decoded_times(data, "mp4")
        assert took < 2.5, took
        assert abs(len(times) - want) <= 2, (len(times), want)

        # pause holds it (no frames, not timed out), resume goes on; seek skips ahead
        r = await c.post(f"/api/v1/channels/{ch}/playback",
                         json={"start": _iso(rows[0].start), "end": _iso(rows[0].start + timedelta(seconds=6)),
                               "source": "platform"})
        name, urls = r.json()["stream"], r.json()["urls"]
        stream = live.platform.media.stream(name)
        assert stream is not None
        reading = asyncio.create_task(read_all(c, urls["flv"]))
        for _ in range(100):
            if stream.readers:
                break
            await asyncio.sleep(0.02)
        assert (await c.post(f"/api/v1/streams/{name}/control", json={"action": "pause"})).status_code == 200
        before = stream.video_frames
        await asyncio.sleep(1.5)  # paused: no frames for longer than rtp_timeout/2 here, and not ended for it
        assert stream.video_frames - before <= 1 and not stream.ended
        assert (await c.post(f"/api/v1/streams/{name}/control", json={"action": "resume"})).status_code == 200
        seek = await c.post(f"/api/v1/streams/{name}/control", json={"action": "seek", "value": 4})
        assert seek.status_code == 200
        data, took = await reading
        # from 4 s (back to its key frame) to 6 s: about 2 s of video, not 6
        times = decoded_times(data, "flv")
        assert 1.5 * FPS <= len(times) <= 3 * FPS + 5 and took < 1.5 + 4.5, (len(times), took)
        out = await c.post(f"/api/v1/streams/{name}/control", json={"action": "seek", "value": 99})
        assert out.status_code == 404  # ended: it is gone


async def test_a_range_without_recordings_is_404_and_a_device_download_stays_a_device_one(
        recorded: Recorded) -> None:
    live, ch, rows, root = recorded
    before = rows[0].start - timedelta(hours=2)
    async with live.client() as c:
        r = await c.post(f"/api/v1/channels/{ch}/playback",
                         json={"start": _iso(before), "end": _iso(before + timedelta(hours=1)), "source": "platform"})
        assert r.status_code == 404 and "no recording" in r.json()["detail"], r.text
        r = await c.post(f"/api/v1/channels/{ch}/download",
                         json={"start": _iso(rows[0].start), "end": _iso(rows[-1].start), "source": "platform"})
        assert r.status_code == 422, r.text
    # a channel without a device: nothing to INVITE, but the platform's recording plays
    from xueliang.registry.models import ChannelIn

    lone = "34020000001310009991"
    await live.platform.registry.create_channel(ChannelIn(id=lone, name="no device"))
    async with live.platform.sessions() as s, s.begin():
        for r in (rows[0], rows[2]):  # with a gap where rows[1] was
            rel = r.path.replace(ch, lone, 1)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes((root / r.path).read_bytes())
            s.add(Recording(channel_id=lone, start=r.start, end=r.end, size=r.size, path=rel, tier="local",
                            state="closed"))
    span = {"start": _iso(rows[0].start), "end": _iso(rows[0].start + timedelta(seconds=2))}
    async with live.client(timeout=30) as c:
        r = await c.post(f"/api/v1/channels/{lone}/playback", json=span)
        assert r.status_code == 404 and "no GB/T 28181 device" in r.json()["detail"], r.text
        r = await c.post(f"/api/v1/channels/{lone}/playback", json={**span, "source": "platform"})
        assert r.status_code == 200, r.text
        data, _ = await read_all(c, r.json()["urls"]["flv"])
        assert abs(len(decoded_times(data, "flv")) - 2 * FPS) <= KEY_FRAME_INTERVAL * FPS + 2
        # across the gap: skipped, not waited through; every recorded frame shown
        assert rows[2].end is not None
        whole = {"start": _iso(rows[0].start), "end": _iso(rows[2].end), "source": "platform"}
        r = await c.post(f"/api/v1/channels/{lone}/playback", json=whole)
        assert r.status_code == 200, r.text
        data, took = await read_all(c, r.json()["urls"]["flv"])
        times = decoded_times(data, "flv")
        lone_rows = [Recording(start=x.start, end=x.end, path=x.path) for x in (rows[0], rows[2])]
        want = expected_frames(root, lone_rows, rows[0].start, rows[2].end)
        assert abs(len(times) - want) <= 2, (len(times), want)
        assert rows[0].end is not None
        gap = (rows[2].start - rows[0].end).total_seconds()
        assert gap > 1.5 and took < (rows[2].end - rows[0].start).total_seconds() - 1.0, (gap, took)
        # the output's timeline has no hole either: consecutive frames, one frame apart
        assert max(b - a for a, b in itertools.pairwise(times)) < 0.2
