"""Reading a segment as a stream (what playback does for a segment wherever it lives): whatever
the bytes and however the store cuts them into chunks, the top-level boxes come out as the
whole-buffer walker finds them, a torn tail is left out, and nothing raises."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.recording.test_tiers import segment_bytes
from xueliang.recording.playback import _boxes as boxes
from xueliang.recording.playback import frames, segment_frames, top_boxes, video_track


async def _chunked(data: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    pos = 0
    for c in cuts:
        if pos >= len(data):
            break
        yield data[pos:pos + c]
        pos += c
    if pos < len(data):
        yield data[pos:]


def _read(data: bytes, cuts: list[int]) -> list[tuple[bytes, bytes]]:
    async def go() -> list[tuple[bytes, bytes]]:
        return [b async for b in top_boxes(_chunked(data, cuts))]
    return asyncio.run(go())


def _expected(data: bytes) -> list[tuple[bytes, bytes]]:
    """What the whole-buffer walker finds, each box whole (header included)."""
    out = []
    pos = 0
    for kind, _, end in boxes(data):
        out.append((kind, data[pos:end]))
        pos = end
    return out


def _make_box(kind: bytes, body: bytes, large: bool) -> bytes:
    """A box with a 32-bit size, or with size 1 and a 64-bit size after the kind."""
    if large:
        return b"\x00\x00\x00\x01" + kind + (len(body) + 16).to_bytes(8, "big") + body
    return (len(body) + 8).to_bytes(4, "big") + kind + body


_box = st.builds(_make_box, st.sampled_from([b"ftyp", b"moov", b"moof", b"mdat", b"free"]),
                 st.binary(max_size=64), st.booleans())


@settings(max_examples=100, deadline=None)
@given(st.lists(_box, max_size=6), st.binary(max_size=24), st.lists(st.integers(1, 40), max_size=30))
def test_any_chunking_gives_the_boxes_the_whole_buffer_has(parts: list[bytes], tail: bytes, cuts: list[int]) -> None:
    data = b"".join(parts) + tail  # whole boxes, then anything (a torn box, garbage)
    assert _read(data, cuts) == _expected(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(1, 64), max_size=20))
def test_garbage_never_raises(data: bytes, cuts: list[int]) -> None:
    assert _read(data, cuts) == _expected(data)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6), st.lists(st.integers(1, 5000), min_size=1, max_size=50))
def test_a_segment_read_in_any_chunks_gives_its_frames(cut: int, cuts: list[int]) -> None:
    data = segment_bytes(0)
    track = video_track(data)
    assert track is not None
    want = [(f.dts, f.pts, f.keyframe, f.data) for f in frames(data, track)]
    torn = data[:cut % (len(data) + 1)]  # a segment still being written: its complete fragments

    async def go(d: bytes) -> list[tuple[int, int, bool, bytes]]:
        return [(f.dts, f.pts, f.keyframe, f.data) async for f in segment_frames(_chunked(d, cuts))]
    assert asyncio.run(go(data)) == want
    got = asyncio.run(go(torn))
    assert got == want[:len(got)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), min_size=1, max_size=12),
       st.lists(st.integers(1, 5000), max_size=10))
def test_a_damaged_segment_never_raises(flips: list[tuple[int, int]], cuts: list[int]) -> None:
    """Bytes changed anywhere (the init, a moof, a sample): frames or nothing, never an error
    that would end the playback of the segments after it."""
    data = bytearray(segment_bytes(0)[:6000])  # the init and the first fragments
    for at, value in flips:
        data[at % len(data)] = value

    async def go() -> int:
        return len([f async for f in segment_frames(_chunked(bytes(data), cuts))])
    assert asyncio.run(go()) >= 0
