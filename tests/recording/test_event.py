"""Event recording: the gate that holds the seconds before a trigger (from a key frame) and lets
the seconds after through; then end to end, simulated cameras over GB/T 28181 through the media
hub, a plan set through the API reaching the running recorder, triggered by the operator's route
and by a device alarm on the bus, into files PyAV decodes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.integration.test_live_chain import Live, _live
from xueliang.config import RecordingConfig
from xueliang.db.tables import Recording
from xueliang.media.frame import Codec, Frame
from xueliang.recording.event_buffer import TICKS, EventGate
from xueliang.recording.writer import Recorder

FPS = 25
STEP = TICKS // FPS  # 3600


def frames(n: int, gop: int = FPS, start: int = 0) -> list[Frame]:
    """Video at 25 fps, a key frame every ``gop`` frames, and an audio frame after each."""
    out = []
    for i in range(start, start + n):
        out.append(Frame(Codec.H264, i * STEP, i * STEP, b"v%d" % i, keyframe=i % gop == 0))
        out.append(Frame(Codec.AAC, i * STEP + 1, i * STEP + 1, b"a%d" % i))
    return out


def feed(gate: EventGate, fs: list[Frame]) -> list[Frame]:
    out: list[Frame] = []
    for f in fs:
        out += gate.push(f, f.codec is Codec.H264)
    return out


def test_idle_it_writes_nothing_and_holds_pre_seconds_from_a_key_frame() -> None:
    gate = EventGate(pre_seconds=2, post_seconds=1)
    assert feed(gate, frames(10 * FPS)) == [] and not gate.recording
    # 2 s before the newest frame (9.96 s) is 7.96 s: the buffer starts at the key frame at 7 s
    video = [f for g in gate._gops for f in g if f.codec is Codec.H264]
    assert video[0].keyframe and video[0].dts == 7 * TICKS and video[-1].dts == (10 * FPS - 1) * STEP
    assert gate.buffered <= 2 * (3 * FPS)  # pre plus one GOP, audio included: bounded


def test_a_trigger_writes_the_buffer_then_post_seconds_and_a_second_one_extends_it() -> None:
    gate = EventGate(pre_seconds=2, post_seconds=1)
    feed(gate, frames(10 * FPS))
    gate.trigger()  # at 9.96 s
    assert gate.recording
    out = feed(gate, frames(3 * FPS, start=10 * FPS))
    video = [f.dts / TICKS for f in out if f.codec is Codec.H264]
    assert video[0] == 7.0 and out[0].keyframe  # from the key frame before the pre-seconds
    assert video[-1] == pytest.approx(10.96)  # to the key frame after 9.96 + 1 s (11 s), which it leaves out
    assert not gate.recording
    # a trigger inside the window extends it by post after the newest frame then
    gate = EventGate(pre_seconds=0, post_seconds=1)
    feed(gate, frames(5 * FPS))
    gate.trigger()  # 4.96 s
    out = feed(gate, frames(FPS // 2, start=5 * FPS))  # to 5.44 s
    gate.trigger()  # until 5.44 + 1
    out += feed(gate, frames(4 * FPS, start=5 * FPS + FPS // 2))
    video = [f.dts / TICKS for f in out if f.codec is Codec.H264]
    assert video[0] == 4.0 and video[-1] == pytest.approx(6.96) and gate.triggers == 2  # to the key frame at 7 s
    assert all(b - a == pytest.approx(STEP / TICKS) for a, b in itertools.pairwise(video))  # none lost


def test_a_trigger_before_any_frame_starts_at_the_first_key_frame() -> None:
    gate = EventGate(pre_seconds=5, post_seconds=1)
    gate.trigger()
    out = feed(gate, frames(3 * FPS, start=3))  # the stream starts mid-GOP
    video = [f for f in out if f.codec is Codec.H264]
    assert video[0].dts == 3 * STEP  # passed through; the writer opens at the first key frame
    assert video[-1].dts / TICKS == pytest.approx(1.96)  # 0.12 + 1 s, to the key frame at 2 s


@given(st.lists(st.integers(0, 300), max_size=6), st.floats(0, 3), st.floats(1, 3), st.sampled_from([5, 25, 50]))
@example([1], 0.0, 1.00001, 5)  # a key frame exactly 1 s after the trigger, a window a hair longer
@settings(max_examples=150, deadline=None)
def test_written_video_is_contiguous_within_an_event_and_covers_each_trigger(
        at: list[int], pre: float, post: float, gop: int) -> None:
    gate = EventGate(pre, post)
    fs = frames(400, gop=gop)
    written: list[int] = []
    triggers = set(at)
    for i, f in enumerate(fs):
        if f.codec is Codec.H264 and i // 2 in triggers:
            gate.trigger()
        written += [x.dts for x in gate.push(f, f.codec is Codec.H264) if x.codec is Codec.H264]
    assert written == sorted(set(written))  # each frame once, in order
    for t in sorted(triggers):
        trig = (t - 1) * STEP  # the newest frame when it came
        if t == 0:
            continue
        # the video from pre before the trigger (back to a key frame) to post after it is written
        want = [d for d in range(0, 400 * STEP, STEP) if trig - pre * TICKS <= d < trig + post * TICKS]
        assert set(want) <= set(written), (t, pre, post)


# ---- end to end ---------------------------------------------------------------------------------


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async for x in _live(tmp_path, {}):
        yield x


def _decode(path: Path) -> list[float]:
    with av.open(str(path)) as f:
        return [float(fr.time) for fr in f.decode(video=0) if fr.time is not None]


async def _closed(live: Live, ch: str) -> list[Recording]:
    async with live.platform.sessions() as s:
        return list((await s.scalars(select(Recording).where(Recording.channel_id == ch, Recording.state == "closed")
                                     .order_by(Recording.start))).all())


async def _wait(cond, seconds: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.1)):
        if await cond():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not in time")


@pytest.mark.slow
async def test_event_recording_end_to_end(live: Live, tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    # plans applied only when the bus says one changed (no periodic pass during the test)
    rec = Recorder(RecordingConfig(enabled=True, plan_seconds=3600, segment_seconds=60), live.platform.sessions,
                   live.platform.media, root, bus=live.platform.bus)
    await rec.start_plans()
    try:
        async with live.client() as c:
            items = (await c.get("/api/v1/channels")).json()["items"]
            ch, dev = items[0]["id"], items[0]["device_id"]
            sibling = next(i["id"] for i in items if i["device_id"] == dev and i["id"] != ch)
            # the trigger route refuses a channel that does not record on event
            assert (await c.post(f"/api/v1/channels/{ch}/recording/trigger")).status_code == 409
            r = await c.put(f"/api/v1/channels/{ch}/recording", json={"mode": "event", "pre_seconds": 2,
                                                                       "post_seconds": 1})
            assert r.status_code == 200 and r.json()["source"] == "channel", r.text

            async def buffering() -> bool:
                gate = rec.gates.get(ch)
                return gate is not None and gate.buffered >= 2 * FPS  # two seconds of video (at least)
            await _wait(buffering)  # the running recorder took the new plan: the stream is open
            assert rec.doing(ch) == ("event", 2.0, 1.0) and not await _closed(live, ch)
            assert not list(root.rglob("*.mp4*"))  # buffering in memory writes nothing

            assert (await c.post(f"/api/v1/channels/{ch}/recording/trigger")).status_code == 202

            async def one() -> bool:
                return len(await _closed(live, ch)) == 1
            await _wait(one)
        row = (await _closed(live, ch))[0]
        times = _decode(root / row.path)
        seconds = (row.end - row.start).total_seconds()  # type: ignore[operator]
        # 2 s before and 1 s after the trigger, each up to a GOP (1 s) more to reach a key frame
        assert 2.9 <= seconds <= 5.2, seconds
        assert abs((times[-1] - times[0] + 0.04) - seconds) < 0.1
        assert len(times) >= 3 * 25 - 2

        # a device alarm on the bus triggers its channels that record on event (the sibling does not)
        live.platform.bus.publish("alarm", dev, device=dev, priority=1, method=2)

        async def two() -> bool:
            return len(await _closed(live, ch)) == 2
        await _wait(two)
        assert rec.triggers == 2 and not await _closed(live, sibling)

        # back to defaults through the API: the recorder stops the channel at once
        async with live.client() as c:
            assert (await c.delete(f"/api/v1/channels/{ch}/recording")).status_code == 204

        async def stopped() -> bool:
            return ch not in rec.recording
        await _wait(stopped)
    finally:
        await rec.stop()
