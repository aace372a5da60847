"""MANSRTSP playback control bodies: exact builders, tolerant parser, round trips, fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xueliang.gb28181 import mansrtsp
from xueliang.gb28181.mansrtsp import MansrtspError, parse_mansrtsp


def test_builders_exact_text() -> None:
    assert mansrtsp.resume(1) == "PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: npt=now-\r\n"
    assert mansrtsp.pause(2) == "PAUSE RTSP/1.0\r\nCSeq: 2\r\nPauseTime: now\r\n"
    assert mansrtsp.seek(3, 120) == "PLAY RTSP/1.0\r\nCSeq: 3\r\nRange: npt=120-\r\n"
    assert mansrtsp.seek(4, 12.5) == "PLAY RTSP/1.0\r\nCSeq: 4\r\nRange: npt=12.5-\r\n"
    assert mansrtsp.speed(5, 2.0) == "PLAY RTSP/1.0\r\nCSeq: 5\r\nScale: 2.0\r\n"
    assert mansrtsp.speed(6, 0.25) == "PLAY RTSP/1.0\r\nCSeq: 6\r\nScale: 0.25\r\n"
    assert mansrtsp.speed(7, -1) == "PLAY RTSP/1.0\r\nCSeq: 7\r\nScale: -1.0\r\n"
    assert mansrtsp.teardown(8) == "TEARDOWN RTSP/1.0\r\nCSeq: 8\r\n"


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: mansrtsp.speed(1, 8), "0.25..4"),
        (lambda: mansrtsp.speed(1, 0.1), "0.25..4"),
        (lambda: mansrtsp.speed(1, 0), "0.25..4"),
        (lambda: mansrtsp.speed(1, float("nan")), "finite"),
        (lambda: mansrtsp.seek(1, -5), ">= 0"),
        (lambda: mansrtsp.pause(-1), "CSeq"),
        (lambda: mansrtsp.resume(2**32), "CSeq"),
    ],
)
def test_builder_errors(call: object, fragment: str) -> None:
    with pytest.raises(MansrtspError, match=fragment):
        call()  # type: ignore[operator]


def test_parse_each_action() -> None:
    r = parse_mansrtsp(mansrtsp.resume(1))
    assert (r.method, r.cseq, r.range_now, r.action) == ("PLAY", 1, True, "resume")
    p = parse_mansrtsp(mansrtsp.pause(2).encode())
    assert (p.method, p.cseq, p.pause_time, p.action) == ("PAUSE", 2, "now", "pause")
    s = parse_mansrtsp(mansrtsp.seek(3, 90.5))
    assert (s.range_start, s.range_now, s.action) == (90.5, False, "seek")
    sp = parse_mansrtsp(mansrtsp.speed(4, -2))
    assert (sp.scale, sp.action) == (-2.0, "speed")
    t = parse_mansrtsp(mansrtsp.teardown(5))
    assert t.action == "teardown"


def test_parse_tolerant_forms() -> None:
    body = "play rtsp/1.0\ncseq:  12 \nrange: NPT = 30-60\nX-Extra: yes\n\n"
    r = parse_mansrtsp(body)
    assert (r.method, r.cseq, r.range_start, r.range_end) == ("PLAY", 12, 30.0, 60.0)
    assert r.headers["x-extra"] == "yes"
    bare = parse_mansrtsp("PLAY RTSP/1.0\r\nCSeq: 3\r\n")
    assert bare.action == "resume" and bare.range_now is False
    both = parse_mansrtsp("PLAY RTSP/1.0\r\nCSeq: 3\r\nScale: 0.5\r\nRange: npt=now-\r\n")
    assert both.scale == 0.5 and both.range_now and both.action == "resume"
    seek_and_speed = parse_mansrtsp(mansrtsp.play(9, seek_seconds=10, scale=4))
    assert (seek_and_speed.range_start, seek_and_speed.scale) == (10.0, 4.0)
    pause_at = parse_mansrtsp("PAUSE MANSRTSP/1.0\r\nCSeq: 1\r\nPauseTime: 15\r\n")
    assert pause_at.pause_time == "15"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("", "empty"),
        ("\r\n\r\n", "empty"),
        ("OPTIONS RTSP/1.0\r\nCSeq: 1\r\n", "unsupported MANSRTSP method"),
        ("PLAY HTTP/1.1\r\nCSeq: 1\r\n", "protocol version"),
        ("PLAY RTSP/1.0\r\nRange: npt=now-\r\n", "missing CSeq"),
        ("PLAY RTSP/1.0\r\nCSeq: one\r\n", "invalid CSeq"),
        ("PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: clock=20240501T000000Z-\r\n", "unsupported Range"),
        ("PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: fast\r\n", "invalid Scale"),
        ("PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: 0\r\n", "invalid Scale"),
        ("PLAY RTSP/1.0\r\nCSeq: 1\r\nScale: inf\r\n", "invalid Scale"),
        ("PLAY RTSP/1.0\r\nCSeq: 1\r\nno colon here\r\n", "malformed header"),
        ("PL@Y RTSP/1.0\r\nCSeq: 1\r\n", "malformed request line"),
        ("PLAY RTSP/1.0\r\nCSeq: 1\r\n" + "X: y\r\n" * 1000, "too long"),
    ],
)
def test_parse_errors(body: str, fragment: str) -> None:
    with pytest.raises(MansrtspError, match=fragment):
        parse_mansrtsp(body)


@given(
    st.integers(0, 2**32 - 1),
    st.one_of(
        st.integers(0, 10**6), st.floats(0, 10**6, allow_nan=False).map(lambda x: round(x, 3))
    ),
)
def test_seek_round_trip(cseq: int, seconds: float) -> None:
    r = parse_mansrtsp(mansrtsp.seek(cseq, seconds))
    assert r.cseq == cseq and r.action == "seek"
    assert r.range_start == pytest.approx(seconds, abs=1e-3)


@given(
    st.integers(0, 2**32 - 1),
    st.floats(0.25, 4.0) | st.floats(-4.0, -0.25),
)
def test_speed_round_trip(cseq: int, scale: float) -> None:
    r = parse_mansrtsp(mansrtsp.speed(cseq, scale))
    assert (r.cseq, r.scale, r.action) == (cseq, scale, "speed")


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=200)
    | st.text(alphabet="PLAYUSE RTSP/1.0CSeqRangnpt=now-:Scale \r\n0123456789.", max_size=80)
)
def test_fuzz_only_mansrtsp_error(data: bytes | str) -> None:
    try:
        r = parse_mansrtsp(data)
    except MansrtspError:
        return
    assert r.method in mansrtsp.METHODS and r.cseq >= 0
