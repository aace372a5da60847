"""The start-code scan every muxer makes per frame: the memchr module (media/_annexb.c) and the
``re`` scan it replaces give the same offsets, for any bytes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xueliang import _native
from xueliang.media import _bitstream

_mod = _native.extension("xueliang.media._annexb")
needs_module = pytest.mark.skipif(_mod is None, reason="the _annexb module is not built or not loaded")


def _reference(data: bytes) -> list[int]:
    return [m.start() for m in re.finditer(b"\x00\x00\x01", data)]


# Bytes rich in 0x00 and 0x01, so that start codes, near misses (00 01, 00 00 00 01, 00 00 01 01)
# and runs of them at both ends are common.
_dense = st.lists(st.sampled_from([0, 0, 0, 1, 1, 2, 0x65, 0xFF]), max_size=300).map(bytes)


@needs_module
@settings(max_examples=1500, deadline=None)
@given(st.one_of(_dense, st.binary(max_size=3000)))
def test_the_module_finds_what_re_finds(data: bytes) -> None:
    assert _mod is not None
    assert _mod.start_codes(data) == _reference(data)


@needs_module
def test_edges_and_buffers() -> None:
    assert _mod is not None
    for data, want in [
        (b"", []), (b"\x01", []), (b"\x00\x01", []), (b"\x00\x00\x01", [0]), (b"\x00\x00\x00\x01", [1]),
        (b"\x00\x00\x01\x00\x00\x01", [0, 3]), (b"\x01\x00\x00\x01\x01", [1]), (b"\x00" * 10, []),
    ]:
        assert _mod.start_codes(data) == want, data
    assert _mod.start_codes(bytearray(b"ab\x00\x00\x01")) == [2]
    assert _mod.start_codes(memoryview(b"xx\x00\x00\x01yy")[2:]) == [0]
    with pytest.raises(TypeError):
        _mod.start_codes("00 00 01")
    with pytest.raises(TypeError):
        _mod.start_codes(None)


@given(_dense)
@settings(max_examples=300, deadline=None)
def test_split_annexb_is_the_same_with_either_scan(data: bytes) -> None:
    # _bitstream uses the module when loaded (the pure Python pass of scripts/test.sh uses re).
    assert _bitstream._start_codes_re(data) == _reference(data)
    assert _bitstream.start_codes(data) == _reference(data)
    assert [bytes(v) for v in _bitstream.split_annexb(data)] == [bytes(v) for v in _bitstream.split_annexb(data)]


def test_the_module_is_used_when_it_may_load() -> None:
    assert (_bitstream.start_codes is _bitstream._start_codes_re) == (_mod is None)
