"""Downloading a time range of the platform's recording as one MP4: a remux of real segments,
read back by ffprobe and PyAV; length known up front, byte ranges, cuts at fragment boundaries
from a key frame, gaps kept in time, an encoding change told (409), audited. SQLite and
PostgreSQL (the db_url fixture)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from tests.api.conftest import admin, client, platform  # noqa: F401  (fixtures)
from tests.recording._segments import lay_out, segment_bytes
from xueliang.app import Platform
from xueliang.db.tables import AuditRecord, Recording
from xueliang.registry.models import ChannelIn

CH = "34020000001310000001"
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _q(a: datetime, b: datetime) -> dict[str, str]:
    return {"start": a.isoformat(), "end": b.isoformat()}


def probe(path: Path) -> dict[str, Any]:
    exe = shutil.which("ffprobe")
    assert exe, "ffprobe missing"
    res = subprocess.run([exe, "-v", "error", "-count_packets", "-show_entries",
                          "format=duration:stream=codec_name,width,height,nb_read_packets", "-of", "json", str(path)],
                         capture_output=True, text=True, timeout=120, check=True)
    assert res.stderr.strip() == "", res.stderr
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def first_frames(path: Path, n: int = 5) -> list[Any]:
    with av.open(str(path)) as f:
        out = []
        for fr in f.decode(video=0):
            out.append(fr)
            if len(out) == n:
                break
        return out


async def _channel(p: Platform) -> None:
    await p.registry.create_channel(ChannelIn(id=CH, name="cam"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the remux does not depend on the database
async def test_two_hours_of_segments_download_as_one_mp4_that_ffprobe_reads(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    await _channel(platform)
    root = tmp_path / "recordings"
    await lay_out(platform.sessions, root, CH, T0, 120)
    url = f"/api/v1/channels/{CH}/recordings/download"
    r = await client.get(url, params=_q(T0, T0 + timedelta(hours=2)), headers=admin)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4" and r.headers["accept-ranges"] == "bytes"
    assert int(r.headers["content-length"]) == len(r.content)
    seg = segment_bytes()
    init_size = seg.index(b"moof") - 4
    assert len(r.content) == init_size + 120 * (len(seg) - init_size)  # a remux: every fragment, nothing else
    out = tmp_path / "two-hours.mp4"
    out.write_bytes(r.content)
    info = probe(out)
    assert abs(float(info["format"]["duration"]) - 7200.0) < 0.1, info
    (stream,) = info["streams"]
    assert stream["codec_name"] == "h264" and (stream["width"], stream["height"]) == (160, 96)
    assert int(stream["nb_read_packets"]) == 120 * 60 * 25
    assert first_frames(out)[0].key_frame
    assert r.headers["content-disposition"] == f'attachment; filename="{CH}_20261130T080000Z_20261130T100000Z.mp4"'

    # one byte range, a suffix range, one that cannot be satisfied
    part = await client.get(url, params=_q(T0, T0 + timedelta(hours=2)), headers={**admin, "Range": "bytes=1000-1999999"})
    assert part.status_code == 206 and part.content == r.content[1000:2000000]
    assert part.headers["content-range"] == f"bytes 1000-1999999/{len(r.content)}"
    tail = await client.get(url, params=_q(T0, T0 + timedelta(hours=2)), headers={**admin, "Range": "bytes=-5000"})
    assert tail.status_code == 206 and tail.content == r.content[-5000:]
    bad = await client.get(url, params=_q(T0, T0 + timedelta(hours=2)), headers={**admin, "Range": f"bytes={len(r.content)}-"})
    assert bad.status_code == 416 and bad.headers["content-type"] == "application/problem+json", bad.text

    await platform.access.audit.flush()
    async with platform.sessions() as s:
        recs = (await s.scalars(select(AuditRecord).where(AuditRecord.action == "media.download"))).all()
    # one record per answer (the second range of the same download within seconds is folded into the first)
    assert sorted((x.resource_id, x.status) for x in recs) == [(CH, 200), (CH, 206), (CH, 416)]
    assert "segments" in (recs[0].detail or "")


async def test_a_range_is_cut_at_fragments_from_a_key_frame_and_keeps_gaps_in_time(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    await _channel(platform)
    root = tmp_path / "recordings"
    # two segments, a minute's gap, two more: key frames every 2 s, fragments of 1 s
    await lay_out(platform.sessions, root, CH, T0, 4, gap_after=1)
    url = f"/api/v1/channels/{CH}/recordings/download"
    r = await client.get(url, params=_q(T0 + timedelta(seconds=31.5), T0 + timedelta(seconds=90.2)), headers=admin)
    assert r.status_code == 200, r.text
    # from the key-frame fragment at 30 s (the one at 31 s starts without one) to the end of 90-91 s
    assert r.headers["x-recording-start"] == (T0 + timedelta(seconds=30)).isoformat()
    assert r.headers["x-recording-end"] == (T0 + timedelta(seconds=91)).isoformat()
    out = tmp_path / "cut.mp4"
    out.write_bytes(r.content)
    assert abs(float(probe(out)["format"]["duration"]) - 61.0) < 0.1
    assert first_frames(out)[0].key_frame
    # across the gap: the file's timeline keeps the minute nobody recorded
    r = await client.get(url, params=_q(T0 + timedelta(seconds=100), T0 + timedelta(minutes=3, seconds=30)),
                         headers=admin)
    assert r.status_code == 200, r.text
    out.write_bytes(r.content)
    with av.open(str(out)) as f:
        times = [float(p.dts * p.time_base) for p in f.demux(video=0) if p.dts is not None]
    jump = max(b - a for a, b in itertools.pairwise(times))
    assert abs(jump - 60.04) < 0.01, jump  # one frame's duration + the minute's gap
    # nothing recorded in the range: a clear 404; a bad range: 422
    none = await client.get(url, params=_q(T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1)), headers=admin)
    assert none.status_code == 404 and "nothing recorded" in none.json()["detail"]
    assert (await client.get(url, params=_q(T0, T0 + timedelta(hours=25)), headers=admin)).status_code == 422
    assert (await client.get(url, params={"start": "2026-11-30T08:00:00", "end": "2026-11-30T09:00:00"},
                             headers=admin)).status_code == 422


async def test_a_range_across_an_encoding_change_is_refused_with_where_it_changes(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    await _channel(platform)
    root = tmp_path / "recordings"
    await lay_out(platform.sessions, root, CH, T0, 2, seconds=4, data=segment_bytes(4))
    later = T0 + timedelta(seconds=8)
    await lay_out(platform.sessions, root, CH, later, 2, seconds=4, data=segment_bytes(4, width=192, height=128))
    url = f"/api/v1/channels/{CH}/recordings/download"
    r = await client.get(url, params=_q(T0, T0 + timedelta(seconds=16)), headers=admin)
    assert r.status_code == 409, r.text
    assert r.json()["changes_at"] == later.isoformat()
    # each side of the change downloads
    for a, b, size in ((T0, later, (160, 96)), (later, later + timedelta(seconds=8), (192, 128))):
        r = await client.get(url, params=_q(a, b), headers=admin)
        assert r.status_code == 200, r.text
        out = tmp_path / "side.mp4"
        out.write_bytes(r.content)
        assert (first_frames(out)[0].width, first_frames(out)[0].height) == size


async def test_segments_moved_to_the_object_store_download_as_the_local_ones_did(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    from xueliang.recording.tiers import object_key

    await _channel(platform)
    root = tmp_path / "recordings"
    rows = await lay_out(platform.sessions, root, CH, T0, 4, seconds=4, data=segment_bytes(4))
    url = f"/api/v1/channels/{CH}/recordings/download"
    q = _q(T0 + timedelta(seconds=3), T0 + timedelta(seconds=14))
    local = await client.get(url, params=q, headers=admin)
    assert local.status_code == 200, local.text
    # the first three move to the object store (as recording/tiers.py moves them); the last stays
    for row in rows[:3]:
        key = object_key(row.path)
        await platform.objects.put_file(key, root / row.path)
        (root / row.path).unlink()
        async with platform.sessions() as s, s.begin():
            await s.execute(update(Recording).where(Recording.path == row.path).values(tier="object", object_key=key))
    moved = await client.get(url, params=q, headers=admin)
    assert moved.status_code == 200, moved.text
    assert moved.content == local.content and moved.headers["content-length"] == local.headers["content-length"]
    part = await client.get(url, params=q, headers={**admin, "Range": "bytes=700-300000"})
    assert part.status_code == 206 and part.content == local.content[700:300001]
    # an object gone from the store is a gap, as a deleted file is
    await platform.objects.delete(object_key(rows[1].path))
    gap = await client.get(url, params=q, headers=admin)
    assert gap.status_code == 200 and len(gap.content) < len(local.content)


def _rows(root: Path, count: int) -> list[Recording]:
    """``count`` 4-second segments back to back from T0, on disk (no database needed)."""
    from xueliang.recording.index import segment_path

    data = segment_bytes(4)
    rows = []
    for i in range(count):
        start = T0 + timedelta(seconds=4 * i)
        rel = segment_path(CH, start)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if not (root / rel).exists():
            (root / rel).write_bytes(data)
        rows.append(Recording(channel_id=CH, start=start, end=start + timedelta(seconds=4), size=len(data), path=rel,
                              tier="local", state="closed"))
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.integers(-3000, 17000), length=st.integers(1, 20000), first=st.integers(0, 10**6),
       span=st.integers(0, 10**6))
def test_any_range_is_cut_at_key_frame_fragments_covering_it(tmp_path: Path, a: int, length: int, first: int,
                                                             span: int) -> None:
    from xueliang.errors import NotFound
    from xueliang.recording.download import Segments, plan

    rows = _rows(tmp_path, 4)  # 16 s: key frames every 2 s, fragments of 1 s
    start, end = T0 + timedelta(milliseconds=a), T0 + timedelta(milliseconds=a + length)
    recorded_end = T0 + timedelta(seconds=16)
    try:
        mp4 = plan(Segments(tmp_path), rows, start, end)
    except NotFound:
        assert end <= T0 or start >= recorded_end
        return
    assert mp4.start is not None and mp4.end is not None
    # from a key-frame fragment (every 2 s) at or before the start, to the fragment holding the end
    offset = (mp4.start - T0).total_seconds()
    assert offset == int(offset) and int(offset) % 2 == 0
    assert mp4.start <= max(start, T0) and mp4.start > max(start, T0) - timedelta(seconds=2)
    assert mp4.end >= min(end, recorded_end) and mp4.end < min(end, recorded_end) + timedelta(seconds=1)
    assert mp4.fragments == round((mp4.end - mp4.start).total_seconds())
    whole = b"".join(mp4.read())
    assert len(whole) == mp4.size
    lo = first % mp4.size
    hi = min(mp4.size - 1, lo + span)
    assert b"".join(mp4.read(lo, hi)) == whole[lo:hi + 1]


@settings(max_examples=300)
@given(header=st.one_of(st.text(max_size=40), st.from_regex(r"bytes=-?[0-9]{0,6}-?[0-9]{0,6}", fullmatch=True)),
       size=st.integers(1, 10**6))
def test_any_range_header_is_one_satisfiable_range_none_or_value_error(header: str, size: int) -> None:
    from xueliang.recording.download import parse_range

    try:
        got = parse_range(header, size)
    except ValueError:
        return
    if got is not None:
        first, last = got
        assert 0 <= first <= last < size
