"""Event recording (事件录像), sans-IO: the gate between a channel's frames and its segments.

While idle the gate holds the last ``pre`` seconds of frames in memory, from a key frame (whole
GOPs: the buffer starts at the newest key frame at least ``pre`` before the newest frame, so
memory is ``pre`` plus one GOP). A trigger releases the buffer and lets frames through until
``post`` seconds (stream time) after the newest frame at the last trigger, to the next key frame;
a trigger inside that window extends it. Ending at a key frame, which starts the buffer again,
loses no frame and writes none twice when the next trigger comes soon after. Times are the
frames' 90 kHz decode times, so what is written is the video around the trigger, whatever the
delays of delivery.
"""

from __future__ import annotations

import math
from collections import deque

from xueliang.media.frame import Frame

TICKS = 90000


class EventGate:
    def __init__(self, pre_seconds: float, post_seconds: float) -> None:
        # Rounded up to whole ticks: rounded down, a post of 1.00001 s ended the event at the key
        # frame exactly 1 s after the trigger, inside the window it was asked to cover.
        self.pre = math.ceil(pre_seconds * TICKS)
        self.post = math.ceil(post_seconds * TICKS)
        self._gops: deque[list[Frame]] = deque()
        self._newest: int | None = None
        #: Frames pass until this decode time (None: idle, buffering).
        self.until: int | None = None
        self._pending = False
        self.triggers = 0

    @property
    def recording(self) -> bool:
        return self.until is not None or self._pending

    @property
    def buffered(self) -> int:
        return sum(len(g) for g in self._gops)

    def trigger(self) -> None:
        """Record from the buffer to ``post`` after the newest frame seen (or after the next
        frame, when none has come yet)."""
        self.triggers += 1
        if self._newest is None:
            self._pending = True
            return
        self._extend(self._newest)

    def _extend(self, dts: int) -> None:
        until = dts + self.post
        self.until = until if self.until is None else max(self.until, until)

    def push(self, f: Frame, video: bool) -> list[Frame]:
        """One frame in; the frames to write now (none while idle, the buffer on a trigger).
        When :attr:`recording` turns False the event is over: close the segment."""
        if video:
            self._newest = f.dts if self._newest is None else max(self._newest, f.dts)
        if self._pending and video:
            self._pending = False
            self._extend(f.dts)
        if self.until is not None:
            if video and f.keyframe and f.dts >= self.until:  # the window ended: back to buffering
                self.until = None
                self._gops.clear()
                self._hold(f, video)
                return []
            if self._gops:
                out = [x for g in self._gops for x in g]
                self._gops.clear()
                out.append(f)
                return out
            return [f]
        self._hold(f, video)
        return []

    def _hold(self, f: Frame, video: bool) -> None:
        if video and f.keyframe:
            self._gops.append([f])
        elif self._gops:
            self._gops[-1].append(f)
        else:
            return  # nothing before the first key frame is of use
        if video:
            while len(self._gops) > 1 and self._gops[1][0].dts <= f.dts - self.pre:
                self._gops.popleft()
