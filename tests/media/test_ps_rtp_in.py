"""PsRtpInput: a stream's datagrams in, frames out — the same frames as the parse, reorder and
demux steps one by one, with non-RTP refused and counted (run compiled and as pure Python)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ps import clip, mischief, receive, same, to_rtp

from xueliang.media.ps_rtp_in import PsRtpInput


def _feed(packets: list[bytes], inp: PsRtpInput, *, step: float = 0.001) -> list[object]:
    out: list[object] = []
    for i, raw in enumerate(packets):
        frames = inp.feed(raw, i * step)
        assert frames is not None
        out += frames
    return out


def test_frames_are_those_of_the_steps_one_by_one_even_reordered() -> None:
    frames = clip()
    packets = mischief(to_rtp(frames), seed=7)
    expected, _, rx = receive(packets)  # the reference: parse, reorder, demux separately
    inp = PsRtpInput(window=64, max_delay=10.0)
    got = _feed(packets, inp)
    # Whatever the reference delivers only at its final flush is still held: it is that tail.
    assert len(got) >= len(frames) - 2
    assert same(got, expected[: len(got)])  # type: ignore[arg-type]
    assert inp.receiver.duplicates == rx.duplicates > 0


def test_a_datagram_that_is_not_rtp_is_refused() -> None:
    inp = PsRtpInput()
    assert inp.feed(b"\x00" * 20, 0.0) is None  # version 0
    assert inp.feed(b"\x80\x60", 0.0) is None  # shorter than a header
    assert inp.receiver.buffered == 0 and inp.demuxer.bytes_in == 0  # nothing of them kept


def test_a_gap_is_given_up_by_poll_after_the_delay() -> None:
    frames = clip()
    packets = to_rtp(frames)
    lost = 5
    inp = PsRtpInput(window=1000, max_delay=0.2)
    before = _feed(packets[:lost], inp, step=0.0)
    after = _feed(packets[lost + 1 :], inp, step=0.0)
    assert after == [] and inp.receiver.buffered  # waiting for the lost packet
    assert inp.poll(0.1) == []  # not yet
    late = inp.poll(0.5)
    assert inp.receiver.lost == 1
    # The frame that lost a packet is dropped, every other arrives, in order.
    got = [f.dts for f in before + late]  # type: ignore[attr-defined]
    assert got == sorted(got) and len(got) == len(frames) - 1
    assert len({f.dts for f in frames} - set(got)) == 1
    assert not inp.receiver.buffered and inp.poll(1.0) == []


@pytest.mark.parametrize("window", [1, 64])
@settings(max_examples=300, deadline=None)
@given(datagrams=st.lists(st.binary(max_size=200), max_size=30))
def test_any_datagrams_give_frames_or_a_refusal_never_an_error(window: int, datagrams: list[bytes]) -> None:
    inp = PsRtpInput(window=window)
    for i, d in enumerate(datagrams):
        out = inp.feed(d, i * 0.01)
        assert out is None or isinstance(out, list)
    inp.poll(100.0)
