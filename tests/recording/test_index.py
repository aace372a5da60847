"""The index and the disk: torn ``.part`` files are cut at their last complete fragment (a
property over every cut), lost files leave the index, unknown files enter it; gaps."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.media._media_clips import encode
from xueliang.db.tables import Recording
from xueliang.media.fmp4 import Fmp4Muxer
from xueliang.recording.index import (
    PART,
    contents,
    gaps,
    reconcile,
    reconcile_disk,
    repair,
    segment_path,
)

PER_FRAGMENT = 10


@cache
def _segment() -> tuple[bytes, tuple[int, ...], tuple[int, ...]]:
    """A segment as the writer makes it: (bytes, fragment boundaries, video end ticks at each)."""
    frames, ps = encode(frames=50, gop=25)
    muxer = Fmp4Muxer(frames[0].codec, ps, base_dts=frames[0].dts)
    data = bytearray(muxer.init_segment())
    bounds = [len(data)]
    ends = [0]
    for i in range(0, len(frames), PER_FRAGMENT):
        part = frames[i:i + PER_FRAGMENT]
        end = frames[i + PER_FRAGMENT].dts if i + PER_FRAGMENT < len(frames) else part[-1].dts + 3600
        data += muxer.fragment(part, end_dts=end)
        bounds.append(len(data))
        ends.append(end - frames[0].dts)
    return bytes(data), tuple(bounds), tuple(ends)


def test_a_whole_segment_parses_to_its_end() -> None:
    data, bounds, ends = _segment()
    c = contents(data)
    assert (c.complete, c.fragments, c.end_ticks) == (len(data), len(bounds) - 1, ends[-1])
    assert ends[-1] == 50 * 3600  # 50 frames at 25 fps: 2 s


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=10**9))
def test_a_torn_part_is_cut_at_its_last_complete_fragment(cut: int) -> None:
    data, bounds, ends = _segment()
    cut %= len(data) + 1
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "1.mp4.part"
        path.write_bytes(data[:cut])
        c = repair(path)
        kept = [i for i, b in enumerate(bounds) if b <= cut]
        if not kept:  # not even the init segment
            assert c.complete == 0 and c.fragments == 0
            return
        last = kept[-1]
        assert c.complete == bounds[last] and c.fragments == last and c.end_ticks == ends[last]
        assert path.read_bytes() == data[:bounds[last]]  # the torn tail is gone, the rest intact
        again = contents(path.read_bytes())
        assert again.complete == path.stat().st_size  # what remains parses whole


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=10**9), tail=st.binary(max_size=64),
       flip=st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)))
def test_any_bytes_never_crash_and_never_count_beyond_what_is_there(cut: int, tail: bytes,
                                                                    flip: tuple[int, int]) -> None:
    data, _, _ = _segment()
    buf = bytearray(data[:cut % (len(data) + 1)] + tail)
    if buf:
        buf[flip[0] % len(buf)] ^= flip[1]
    c = contents(bytes(buf))
    assert 0 <= c.complete <= len(buf) and c.fragments >= 0 and c.end_ticks >= 0
    if c.complete:
        assert contents(bytes(buf[:c.complete])).complete == c.complete


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=10**9), tail=st.binary(max_size=32))
def test_reconcile_never_indexes_a_torn_fragment(cut: int, tail: bytes) -> None:
    """The disk side of reconcile over a crashed .part: indexed up to its last complete fragment
    (size and end as that fragment leaves them), or dropped when it has none."""
    data, bounds, ends = _segment()
    cut %= len(data) + 1
    t0 = datetime(2026, 12, 4, 7, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        rel = segment_path("34020000001320000001", t0)
        (root / rel).parent.mkdir(parents=True)
        (root / (rel + PART)).write_bytes(data[:cut] + (b"\x00\x00\xff\xffmoof" + tail if cut > bounds[0] else b""))
        upserts, dropped, report = reconcile_disk(root, {})
        kept = [i for i, b in enumerate(bounds) if b <= cut]
        assert not (root / (rel + PART)).exists()
        if len(kept) < 2:  # no complete fragment: nothing to index
            assert upserts == [] and dropped == [rel] and report.dropped == 1
            assert not (root / rel).exists()
            return
        last = kept[-1]
        assert upserts == [(rel, "34020000001320000001", t0, t0 + timedelta(seconds=ends[last] / 90000), bounds[last])]
        assert (root / rel).read_bytes() == data[:bounds[last]] and report.repaired == 1


def test_gaps_are_what_lies_between_segments() -> None:
    t = datetime(2026, 12, 4, tzinfo=UTC)
    s = [(t + timedelta(seconds=10), t + timedelta(seconds=20)), (t + timedelta(seconds=20), t + timedelta(seconds=30)),
         (t + timedelta(seconds=35), t + timedelta(seconds=50))]
    assert gaps(s, t, t + timedelta(seconds=60)) == [
        (t, t + timedelta(seconds=10)), (t + timedelta(seconds=30), t + timedelta(seconds=35)),
        (t + timedelta(seconds=50), t + timedelta(seconds=60))]
    assert gaps(s, t + timedelta(seconds=10), t + timedelta(seconds=50), tolerance=timedelta(seconds=5)) == []
    assert gaps([], t, t + timedelta(seconds=1)) == [(t, t + timedelta(seconds=1))]


async def test_reconcile_closes_torn_parts_drops_lost_files_and_indexes_unknown_ones(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    data, bounds, ends = _segment()
    root = tmp_path / "recordings"
    t0 = datetime(2026, 12, 4, 7, tzinfo=UTC)

    def put(ch: str, start: datetime, body: bytes, part: bool) -> str:
        rel = segment_path(ch, start)
        p = root / (rel + (PART if part else ""))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)
        return rel

    torn = put("34020000001320000001", t0, data[:bounds[3] + 100], part=True)  # 3 fragments and a torn 4th
    empty = put("34020000001320000001", t0 + timedelta(minutes=1), data[:bounds[0] + 5], part=True)
    unknown = put("34020000001320000002", t0, data, part=False)
    lost = segment_path("34020000001320000003", t0)
    async with sessions() as s, s.begin():
        s.add(Recording(channel_id="34020000001320000001", start=t0, size=0, path=torn + PART, state="open"))
        s.add(Recording(channel_id="34020000001320000001", start=t0 + timedelta(minutes=1), size=0,
                        path=empty + PART, state="open"))
        s.add(Recording(channel_id="34020000001320000003", start=t0, end=t0 + timedelta(minutes=1), size=10,
                        path=lost, state="closed"))

    report = await reconcile(sessions, root)
    assert (report.repaired, report.dropped, report.indexed, report.removed) == (1, 1, 1, 2)
    async with sessions() as s:
        rows = {r.path: r for r in (await s.scalars(select(Recording))).all()}
    assert set(rows) == {torn, unknown}
    r = rows[torn]
    assert r.state == "closed" and r.size == bounds[3] == (root / torn).stat().st_size
    assert r.end == t0 + timedelta(seconds=ends[3] / 90000)
    assert not (root / (torn + PART)).exists() and not (root / (empty + PART)).exists()
    u = rows[unknown]
    assert u.state == "closed" and u.size == len(data) and u.end == t0 + timedelta(seconds=2)
    assert u.tier == "local" and u.channel_id == "34020000001320000002"
    again = await reconcile(sessions, root)  # idempotent
    assert (again.repaired, again.dropped, again.indexed, again.removed) == (0, 0, 0, 0)


async def test_reconcile_at_start_looks_at_recent_days_and_every_open_segment(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    data, bounds, _ = _segment()
    root = tmp_path / "recordings"
    now = datetime(2026, 12, 4, 7, tzinfo=UTC)
    old = now - timedelta(days=20)
    ch = "34020000001320000001"

    def put(start: datetime, body: bytes, part: bool) -> str:
        rel = segment_path(ch, start)
        p = root / (rel + (PART if part else ""))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)
        return rel

    old_torn = put(old, data[:bounds[2] + 7], part=True)  # a crash 20 days ago, never reconciled
    old_unknown = put(old + timedelta(minutes=5), data, part=False)
    recent_unknown = put(now - timedelta(hours=30), data, part=False)
    old_lost = segment_path(ch, old + timedelta(minutes=9))
    async with sessions() as s, s.begin():
        s.add(Recording(channel_id=ch, start=old, size=0, path=old_torn + PART, state="open"))
        s.add(Recording(channel_id=ch, start=old + timedelta(minutes=9), end=old + timedelta(minutes=10), size=1,
                        path=old_lost, state="closed"))
    report = await reconcile(sessions, root, recent_days=2, now=now)
    assert (report.repaired, report.indexed, report.removed) == (1, 2, 0)
    async with sessions() as s:
        rows = {r.path: r for r in (await s.scalars(select(Recording))).all()}
    # the open one is repaired wherever it lies (its day is looked at, so its neighbours too);
    # a lost row of an old day is left to a full reconcile
    assert rows[old_torn].state == "closed" and rows[old_torn].size == bounds[2]
    assert old_unknown in rows and recent_unknown in rows and old_lost in rows
    full = await reconcile(sessions, root)
    assert full.removed == 1
    async with sessions() as s:
        assert old_lost not in set((await s.scalars(select(Recording.path))).all())
