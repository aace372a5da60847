"""The unit that flows through the media hub: one access unit of one elementary stream.

Sources (PS over RTP, RTSP) publish frames; muxers (fMP4, FLV, HLS) read them. Timestamps are
on the 90 kHz clock for video and audio alike, which is what RTP/PS carry; muxers rescale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


class Codec(StrEnum):
    H264 = "h264"
    H265 = "h265"
    MPEG4 = "mpeg4"
    SVAC = "svac"
    AAC = "aac"
    G711A = "g711a"
    G711U = "g711u"
    G722_1 = "g722.1"
    G729 = "g729"
    UNKNOWN = "unknown"

    @property
    def is_video(self) -> bool:
        return self in (Codec.H264, Codec.H265, Codec.MPEG4, Codec.SVAC)


#: PS stream_type (program stream map) → codec. Real devices sometimes lie; see ps.py.
STREAM_TYPES: dict[int, Codec] = {
    0x1B: Codec.H264,
    0x24: Codec.H265,
    0x10: Codec.MPEG4,
    0x80: Codec.SVAC,
    0x0F: Codec.AAC,
    0x90: Codec.G711A,
    0x91: Codec.G711U,
    0x92: Codec.G722_1,
    0x99: Codec.G729,
}


class Frame:
    """One access unit.

    Video ``data`` is Annex B (start-code delimited NAL units, parameter sets included in key
    frames when the source sent them). AAC ``data`` is ADTS; G.711 is raw samples.
    ``pts``/``dts`` are 90 kHz ticks, unwrapped (monotonic, may exceed 2**33).

    Immutable: one frame goes to every output of its stream. A plain class with ``Final``
    fields rather than a frozen dataclass: compiled with mypyc (src/xueliang/_native.py), the
    fields cannot be set, and building one per frame is a native call, where a dataclass keeps
    the ``__init__`` that ``dataclasses`` generates in Python. Same equality, hash and repr.
    """

    __slots__ = ("codec", "data", "dts", "keyframe", "pts")

    def __init__(self, codec: Codec, pts: int, dts: int, data: bytes, keyframe: bool = False) -> None:
        self.codec: Final = codec
        self.pts: Final = pts
        self.dts: Final = dts
        self.data: Final = data
        self.keyframe: Final = keyframe

    def _fields(self) -> tuple[Codec, int, int, bytes, bool]:
        return (self.codec, self.pts, self.dts, self.data, self.keyframe)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self) -> tuple[type[Frame], tuple[Codec, int, int, bytes, bool]]:
        # Frames cross to worker processes (picture diagnosis decodes in a pool): a compiled
        # class is rebuilt through its __init__, so pickle gets the fields to call it with.
        return (Frame, self._fields())

    def __repr__(self) -> str:
        return (
            f"Frame(codec={self.codec!r}, pts={self.pts!r}, dts={self.dts!r}, data={self.data!r}, "
            f"keyframe={self.keyframe!r})"
        )


@dataclass(slots=True)
class ParameterSets:
    """Latest VPS/SPS/PPS seen on a video stream, so a new reader can start at a key frame."""

    vps: bytes | None = None
    sps: bytes | None = None
    pps: bytes | None = None
    extra: list[bytes] = field(default_factory=list)

    def complete(self, codec: Codec) -> bool:
        if codec is Codec.H265:
            return self.vps is not None and self.sps is not None and self.pps is not None
        return self.sps is not None and self.pps is not None
