"""Low-complexity HLS with fMP4 (CMAF) segments, sans-IO and muxed once per stream.

Frames go in through :meth:`HlsPackager.add`; a segment is cut at the first key frame after
``target_duration`` seconds and muxed once, as one ``moof`` + ``mdat``, by the stream's
:class:`~xueliang.media.fmp4.Fmp4Muxer`. The packager keeps the last ``window`` segments for
the playlist (plus two more still fetchable, for players that loaded the previous playlist),
so memory is bounded; a segment that grows past ``max_segment_bytes`` without a key frame is
dropped and the packager waits for the next key frame.

Resources, as named in the playlist: ``init.mp4`` (``init-<v>.mp4`` after the ``v``-th
parameter-set change, preceded by ``EXT-X-DISCONTINUITY``) and ``seg<N>.m4s``; the API serves
them with :meth:`HlsPackager.resource` and may add a prefix and a query (``?token=...``).
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass

from xueliang.media.fmp4 import Fmp4Muxer
from xueliang.media.frame import Frame, ParameterSets

__all__ = ["HlsPackager", "Segment"]

_RESOURCE = re.compile(r"(?:init(?:-(\d+))?\.mp4|seg(\d+)\.m4s)")


@dataclass(slots=True, frozen=True)
class Segment:
    sequence: int
    duration: float  # seconds
    data: bytes
    init_version: int
    discontinuity: int  # discontinuity sequence number (EXT-X-DISCONTINUITY before it counts)
    keyframe_dts: int  # 90 kHz dts of the key frame that opens the segment


class HlsPackager:
    """Cuts one stream into fMP4 segments and writes its live media playlist.

    The packager owns ``muxer``: give it an :class:`Fmp4Muxer` of its own, not the one that
    feeds MSE readers fragment by fragment (a muxer carries sequence numbers and audio
    timeline state).
    """

    def __init__(
        self,
        muxer: Fmp4Muxer,
        target_duration: float = 2.0,
        window: int = 6,
        *,
        uri_prefix: str = "",
        uri_query: str = "",
        max_segment_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        if target_duration <= 0 or window < 1:
            raise ValueError("target_duration must be > 0 and window ≥ 1")
        self.muxer = muxer
        self.target_duration = target_duration
        self.window = window
        self.uri_prefix = uri_prefix
        self.uri_query = uri_query
        self.max_segment_bytes = max_segment_bytes
        self._target_ticks = round(target_duration * 90000)
        self._playlist_target = math.ceil(target_duration)
        self._segments: deque[Segment] = deque(maxlen=window + 2)
        self._next_sequence = 0
        self._init_version = 0
        self._inits: dict[int, bytes] = {0: muxer.init_segment()}
        self._discontinuity = 0
        self._last_version: int | None = None
        self._pending: list[Frame] = []
        self._pending_bytes = 0
        self._start_dts = 0
        self._last_video_delta = 3600
        self._prev_video_dts: int | None = None
        self._playlist_cache: str | None = None
        self.ended = False

    # ------------------------------------------------------------------------------- input

    def add(self, frame: Frame) -> Segment | None:
        """Add one frame (decode order). Returns the segment this frame's arrival completed."""
        video = frame.codec is self.muxer.video_codec
        done: Segment | None = None
        if self.ended:
            self.ended = False
            self._playlist_cache = None
        if video and frame.keyframe:
            if self._pending and frame.dts - self._start_dts >= self._target_ticks:
                done = self._close(frame.dts)
            if not self._pending:
                self._start_dts = frame.dts
        elif not self._pending:
            return None  # a segment starts at a key frame
        if video:
            if self._prev_video_dts is not None and frame.dts > self._prev_video_dts:
                self._last_video_delta = frame.dts - self._prev_video_dts
            self._prev_video_dts = frame.dts
        self._pending.append(frame)
        self._pending_bytes += len(frame.data)
        if self._pending_bytes > self.max_segment_bytes:
            self._pending.clear()  # no key frame for too long: drop, wait for the next one
            self._pending_bytes = 0
        return done

    def set_parameter_sets(self, parameter_sets: ParameterSets) -> Segment | None:
        """Call when the stream's parameter sets change (before the key frame that uses them).

        Closes the current segment, starts a new init segment version and marks a
        discontinuity. Returns the closed segment, if any. No-op if nothing changed.
        """
        if not self.muxer.needs_new_init(parameter_sets):
            return None
        done = self._close(None) if self._pending else None
        self.muxer.set_parameter_sets(parameter_sets)
        self._init_version += 1
        self._inits[self._init_version] = self.muxer.init_segment()
        self._playlist_cache = None
        return done

    def finish(self) -> Segment | None:
        """End of stream: close the current segment and end the playlist (``EXT-X-ENDLIST``).

        Returns the closed segment, if any. Adding frames afterwards reopens the playlist.
        """
        done = self._close(None) if self._pending else None
        self.ended = True
        self._playlist_cache = None
        return done

    def _close(self, end_dts: int | None) -> Segment:
        frames = self._pending
        video = [f for f in frames if f.codec is self.muxer.video_codec]
        if end_dts is None:
            end_dts = video[-1].dts + self._last_video_delta
        data = self.muxer.fragment(frames, end_dts=end_dts)
        if self._last_version is not None and self._last_version != self._init_version:
            self._discontinuity += 1
        self._last_version = self._init_version
        seg = Segment(
            sequence=self._next_sequence,
            duration=(end_dts - self._start_dts) / 90000,
            data=data,
            init_version=self._init_version,
            discontinuity=self._discontinuity,
            keyframe_dts=self._start_dts,
        )
        self._next_sequence += 1
        self._segments.append(seg)
        self._playlist_target = max(self._playlist_target, round(seg.duration))
        live_versions = {s.init_version for s in self._segments} | {self._init_version}
        for v in [v for v in self._inits if v not in live_versions]:
            del self._inits[v]
        self._pending = []
        self._pending_bytes = 0
        self._playlist_cache = None
        return seg

    # ------------------------------------------------------------------------------ output

    @property
    def segments(self) -> list[Segment]:
        """The segments in the playlist, oldest first."""
        return list(self._segments)[-self.window :]

    @property
    def media_sequence(self) -> int:
        segs = self.segments
        return segs[0].sequence if segs else self._next_sequence

    @staticmethod
    def init_name(version: int) -> str:
        return "init.mp4" if version == 0 else f"init-{version}.mp4"

    def _uri(self, name: str, prefix: str, query: str) -> str:
        return f"{prefix}{name}?{query}" if query else f"{prefix}{name}"

    def playlist(self, *, uri_prefix: str | None = None, uri_query: str | None = None) -> str:
        """The live media playlist; prefix/query override the packager's (e.g. per viewer)."""
        default = uri_prefix is None and uri_query is None
        if default and self._playlist_cache is not None:
            return self._playlist_cache
        prefix = self.uri_prefix if uri_prefix is None else uri_prefix
        query = self.uri_query if uri_query is None else uri_query
        segs = self.segments
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            f"#EXT-X-TARGETDURATION:{self._playlist_target}",
            f"#EXT-X-MEDIA-SEQUENCE:{self.media_sequence}",
        ]
        if segs and segs[0].discontinuity:
            lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{segs[0].discontinuity}")
        lines.append("#EXT-X-INDEPENDENT-SEGMENTS")
        version: int | None = None
        for seg in segs:
            if seg.init_version != version:
                if version is not None:
                    lines.append("#EXT-X-DISCONTINUITY")
                version = seg.init_version
                uri = self._uri(self.init_name(version), prefix, query)
                lines.append(f'#EXT-X-MAP:URI="{uri}"')
            lines.append(f"#EXTINF:{seg.duration:.3f},")
            lines.append(self._uri(f"seg{seg.sequence}.m4s", prefix, query))
        if not segs:
            uri = self._uri(self.init_name(self._init_version), prefix, query)
            lines.append(f'#EXT-X-MAP:URI="{uri}"')
        if self.ended:
            lines.append("#EXT-X-ENDLIST")
        text = "\n".join(lines) + "\n"
        if default:
            self._playlist_cache = text
        return text

    def init(self, version: int | None = None) -> bytes | None:
        """An init segment: the current one, or version ``version`` while still referenced."""
        return self._inits.get(self._init_version if version is None else version)

    def segment(self, n: int) -> bytes | None:
        """Segment ``n`` (its media sequence number), or None if unknown or expired."""
        if not self._segments:
            return None
        i = n - self._segments[0].sequence
        if 0 <= i < len(self._segments):
            return self._segments[i].data
        return None

    def resource(self, name: str) -> bytes | None:
        """Resolve a playlist name (``init.mp4``, ``init-2.mp4``, ``seg17.m4s``) to bytes."""
        m = _RESOURCE.fullmatch(name)
        if m is None:
            return None
        if m.group(2) is not None:
            return self.segment(int(m.group(2)))
        return self.init(int(m.group(1)) if m.group(1) else 0)
