"""The box parser of recorded segments (recording/mp4.py), property-tested: every tfhd/trun
layout written here parses back to what was written; a re-timed moof keeps its size and moves
only its decode times; whatever the bytes, it answers or raises Mp4Error, never anything else.
Its fuzz target is ``mp4`` (tests/fuzz)."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.recording._segments import segment_bytes
from xueliang.recording.index import contents
from xueliang.recording.mp4 import (
    Mp4Error,
    boxes,
    parse_init,
    parse_moof,
    parse_traf,
    retimed_moof,
)


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full(kind: bytes, version: int, flags: int, body: bytes) -> bytes:
    return box(kind, struct.pack(">I", version << 24 | flags) + body)


samples_st = st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                                st.integers(-2**31, 2**31 - 1)), max_size=20)


@st.composite
def trafs(draw: st.DrawFn) -> tuple[bytes, dict[str, object]]:
    track = draw(st.integers(1, 2**32 - 1))
    tf_flags = draw(st.sampled_from([0, 0x1, 0x8, 0x10, 0x20, 0x38, 0x20000, 0x20038]))
    defaults = draw(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)))
    tfhd = struct.pack(">I", track)
    if tf_flags & 0x1:
        tfhd += struct.pack(">Q", 12345)
    for bit, v in zip((0x8, 0x10, 0x20), defaults, strict=True):
        if tf_flags & bit:
            tfhd += struct.pack(">I", v)
    tr_flags = draw(st.integers(0, 0xF05)) & 0xF05
    version = draw(st.integers(0, 1))
    samples = draw(samples_st)
    first_flags = draw(st.integers(0, 2**32 - 1))
    offset = draw(st.integers(-2**31, 2**31 - 1))
    trun = struct.pack(">I", len(samples))
    if tr_flags & 0x1:
        trun += struct.pack(">i", offset)
    if tr_flags & 0x4:
        trun += struct.pack(">I", first_flags)
    for d, size, fl, cts in samples:
        if tr_flags & 0x100:
            trun += struct.pack(">I", d)
        if tr_flags & 0x200:
            trun += struct.pack(">I", size)
        if tr_flags & 0x400:
            trun += struct.pack(">I", fl)
        if tr_flags & 0x800:
            trun += struct.pack(">i" if version else ">I", cts if version else cts & 0xFFFFFFFF)
    tfdt_v = draw(st.integers(0, 1))
    decode = draw(st.integers(0, 2**64 - 1 if tfdt_v else 2**32 - 1))
    tfdt = full(b"tfdt", tfdt_v, 0, struct.pack(">Q" if tfdt_v else ">I", decode))
    data = box(b"traf", full(b"tfhd", 0, tf_flags, tfhd) + tfdt + full(b"trun", version, tr_flags, trun))
    want = []
    for i, (d, size, fl, cts) in enumerate(samples):
        want.append((
            d if tr_flags & 0x100 else (defaults[0] if tf_flags & 0x8 else 0),
            size if tr_flags & 0x200 else (defaults[1] if tf_flags & 0x10 else 0),
            fl if tr_flags & 0x400 else (first_flags if i == 0 and tr_flags & 0x4 else
                                          (defaults[2] if tf_flags & 0x20 else 0)),
            (cts if version else cts & 0xFFFFFFFF) if tr_flags & 0x800 else 0,
        ))
    return data, {"track": track, "decode": decode, "samples": want,
                  "offset": offset if tr_flags & 0x1 else None, "base": 12345 if tf_flags & 0x1 else None}


@given(trafs())
def test_every_traf_layout_parses_back_to_what_was_written(t: tuple[bytes, dict[str, object]]) -> None:
    data, want = t
    traf = parse_traf(data, 8, len(data))
    assert traf.track_id == want["track"] and traf.decode_time == want["decode"]
    assert traf.base_data_offset == want["base"]
    (run,) = traf.runs
    assert run.data_offset == want["offset"]
    assert [(s.duration, s.size, s.flags, s.cts) for s in run.samples] == want["samples"]
    assert traf.end == want["decode"] + sum(s[0] for s in want["samples"])  # type: ignore[attr-defined, operator]


@given(st.lists(trafs(), min_size=1, max_size=3), st.integers(0, 2**32 - 1), st.data())
def test_a_retimed_moof_keeps_its_size_and_moves_only_its_decode_times(
        ts: list[tuple[bytes, dict[str, object]]], sequence: int, data: st.DataObject) -> None:
    moof = box(b"moof", full(b"mfhd", 0, 0, struct.pack(">I", 1)) + b"".join(t for t, _ in ts))
    before = parse_moof(moof, 8, len(moof))
    shift = {t.track_id: data.draw(st.integers(-10**6, 10**6)) for t in before.trafs}
    try:
        out = retimed_moof(moof, shift, sequence)
    except Mp4Error:
        # only when a decode time would leave its field
        assert any(not 0 <= t.decode_time + shift[t.track_id] < 2 ** (64 if t.tfdt_version else 32)  # type: ignore[operator]
                   for t in before.trafs)
        return
    assert len(out) == len(moof)
    after = parse_moof(out, 8, len(out))
    assert after.sequence == sequence
    for a, b in zip(before.trafs, after.trafs, strict=True):
        assert b.decode_time == a.decode_time + shift[a.track_id]  # type: ignore[operator]
        # tracks sharing an ID take the same shift; everything else is untouched
        assert (b.runs, b.track_id, b.flags) == (a.runs, a.track_id, a.flags)


@settings(max_examples=300)
@given(st.binary(max_size=400), st.integers(0, 400))
def test_any_bytes_answer_or_raise_mp4_error(data: bytes, cut: int) -> None:
    for _kind, p, e in boxes(data):
        assert 8 <= e - p + 8 and e <= len(data)
        for parse in (parse_moof, parse_traf):
            try:
                parse(data, p, e)
            except Mp4Error:
                pass
    try:
        parse_init(data[:cut])
    except Mp4Error:
        pass
    try:
        retimed_moof(data, {1: 5}, 1)
    except Mp4Error:
        pass


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.binary(max_size=64))
def test_a_real_segment_cut_anywhere_or_fouled_never_breaks_the_parser(cut: int, junk: bytes) -> None:
    seg = segment_bytes(4)
    data = seg[:cut % (len(seg) + 1)] + junk
    for kind, p, e in boxes(data):
        if kind == b"moof":
            try:
                parse_moof(data, p, e)
            except Mp4Error:
                pass
    contents(data)


def test_a_trun_of_defaults_cannot_claim_billions_of_samples() -> None:
    """Found by the fuzzer: with no per-sample field the box's size bounds nothing."""
    trun = full(b"trun", 0, 0, struct.pack(">I", 0xFFFFFFF0))
    data = box(b"traf", full(b"tfhd", 0, 0, struct.pack(">I", 1)) + trun)
    try:
        parse_traf(data, 8, len(data))
    except Mp4Error as exc:
        assert "more than a fragment holds" in str(exc)
    else:
        raise AssertionError("accepted")


def test_a_real_segment_parses_as_the_writer_wrote_it() -> None:
    seg = segment_bytes(4)
    init = parse_init(seg)
    assert init.video is not None and init.video.timescale == 90000 and init.video.track_id == 1
    moofs = [parse_moof(seg, p, e) for k, p, e in boxes(seg) if k == b"moof"]
    assert len(moofs) == 4 and [m.sequence for m in moofs] == [1, 2, 3, 4]
    ends = [m.trafs[0].end for m in moofs]
    assert ends == [90000, 180000, 270000, 360000]
    assert [m.trafs[0].runs[0].samples[0].sync for m in moofs] == [True, False, True, False]  # key frames every 2 s
    assert contents(seg).end_ticks == 360000 and contents(seg).fragments == 4
    assert init.same_encoding(parse_init(segment_bytes(2)))
    assert not init.same_encoding(parse_init(segment_bytes(4, width=192, height=128)))
