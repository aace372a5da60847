"""The frame every source publishes and every output reads: a value, shared, never changed."""

from __future__ import annotations

import copy
import pickle

import pytest

from xueliang import _native
from xueliang.media import frame as frame_module
from xueliang.media.frame import Codec, Frame


def test_frames_are_equal_and_hash_alike_by_their_fields() -> None:
    a = Frame(Codec.H264, 3600, 0, b"\x00\x00\x00\x01\x65", True)
    same = Frame(codec=Codec.H264, pts=3600, dts=0, data=b"\x00\x00\x00\x01\x65", keyframe=True)
    assert a == same and hash(a) == hash(same) and len({a, same}) == 1
    for other in (
        Frame(Codec.H265, 3600, 0, a.data, True),
        Frame(Codec.H264, 3601, 0, a.data, True),
        Frame(Codec.H264, 3600, 1, a.data, True),
        Frame(Codec.H264, 3600, 0, a.data + b"\x00", True),
        Frame(Codec.H264, 3600, 0, a.data),
    ):
        assert a != other
    assert a != (Codec.H264, 3600, 0, a.data, True)  # not equal to a tuple of the same
    assert Frame(Codec.AAC, 1, 1, b"").keyframe is False
    assert repr(a) == "Frame(codec=<Codec.H264: 'h264'>, pts=3600, dts=0, data=b'\\x00\\x00\\x00\\x01e', keyframe=True)"


def test_a_frame_pickles_and_copies_as_itself() -> None:
    # Frames go to worker processes (picture diagnosis decodes in a process pool).
    f = Frame(Codec.H265, 7, 3, b"\x00\x00\x01\x26", True)
    for back in (pickle.loads(pickle.dumps(f)), copy.copy(f), copy.deepcopy(f)):
        assert back == f and type(back) is Frame and back.keyframe is True and back.codec is Codec.H265


def test_a_compiled_frame_cannot_be_changed() -> None:
    # One frame goes to every output and reader of its stream: a field set by one would reach
    # the others. The suite runs the compiled build (scripts/test.sh requires it).
    assert _native.status == "compiled" and frame_module.__file__ is not None
    assert not frame_module.__file__.endswith(".py")
    f = Frame(Codec.H264, 0, 0, b"x", True)
    for field, value in (("codec", Codec.H265), ("pts", 1), ("dts", 1), ("data", b"y"), ("keyframe", False)):
        with pytest.raises(AttributeError):
            setattr(f, field, value)
    assert f == Frame(Codec.H264, 0, 0, b"x", True)
