"""PS over RTP into the hub: one stream's datagrams in, frames out (the counterpart of
``ps_rtp_out.py``).

Parse, reorder (:class:`RtpReceiver`) and demux (:class:`PsDemuxer`) in one call per datagram,
so that with the compiled build (``_native.py``) the per-packet work runs as C from the socket
read to the frame: what the interpreter sees is one call per packet and one per frame, not the
half-dozen calls and loops per packet of doing these steps in the stream.
"""

from __future__ import annotations

from xueliang.media.frame import Frame
from xueliang.media.ps import PsDemuxer
from xueliang.media.rtp import RtpError, RtpReceiver, parse_rtp

__all__ = ["PsRtpInput"]

#: Reordering: wait for a missing packet up to this many packets or seconds.
REORDER_WINDOW = 64
REORDER_DELAY = 0.2


class PsRtpInput:
    """One stream's PS over RTP: ``feed`` a datagram, get the frames it completes. It counts
    nothing of its own: the stream counts what it takes, the binding what is refused."""

    def __init__(
        self, window: int = REORDER_WINDOW, max_delay: float = REORDER_DELAY, *, max_frame_size: int = 4 << 20
    ) -> None:
        self.receiver = RtpReceiver(window=window, max_delay=max_delay)
        self.demuxer = PsDemuxer(max_frame_size=max_frame_size)

    def feed(self, data: bytes, now: float) -> list[Frame] | None:
        """One datagram: the frames it completes (often none), or None if it is not RTP."""
        try:
            packet = parse_rtp(data)
        except RtpError:
            return None
        ready = self.receiver.push(packet, now)
        if not ready:
            return []
        demuxer = self.demuxer
        if len(ready) == 1:
            p = ready[0]
            return demuxer.feed(p.payload, p.timestamp, p.marker, p.sequence)
        frames: list[Frame] = []
        for p in ready:
            frames.extend(demuxer.feed(p.payload, p.timestamp, p.marker, p.sequence))
        return frames

    def poll(self, now: float) -> list[Frame]:
        """Timer: give up on gaps waiting longer than the reorder delay; the frames that follow."""
        frames: list[Frame] = []
        if not self.receiver.buffered:
            return frames
        demuxer = self.demuxer
        for p in self.receiver.poll(now):
            frames.extend(demuxer.feed(p.payload, p.timestamp, p.marker, p.sequence))
        return frames
