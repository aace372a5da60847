"""``live/<channel id>``: one provider for every channel's live stream, which dispatches.

A channel with an ``rtsp_url`` is pulled over RTSP (:mod:`xueliang.media.rtsp`); any other
channel goes to the GB/T 28181 INVITE provider (``gb``, given by the composition root when
signalling runs; without it the answer is 503 "no source").
"""

from __future__ import annotations

from typing import Any, Protocol

from xueliang.errors import Unavailable
from xueliang.media.hub import MediaHub, SourceProvider
from xueliang.media.rtsp import RtspProvider
from xueliang.media.source import SourceHandle

__all__ = ["ChannelLookup", "LiveProvider"]


class ChannelLookup(Protocol):
    """Where a channel's source is found (the registry service is one)."""

    async def get_channel(self, channel_id: str) -> Any: ...


class LiveProvider:
    """``live/<channel id>``: RTSP when the channel has an RTSP URL, else GB/T 28181."""

    def __init__(
        self, channels: ChannelLookup | None, gb: SourceProvider | None = None,
        rtsp: SourceProvider | None = None,
    ) -> None:
        self.channels = channels
        #: The GB/T 28181 INVITE provider (None: signalling does not run here).
        self.gb = gb
        self.rtsp = rtsp or RtspProvider()

    async def open(self, hub: MediaHub, name: str, params: dict[str, Any]) -> SourceHandle:
        channel_id = str(params.get("channel_id") or name.removeprefix("live/"))
        params = {**params, "channel_id": channel_id}
        if "rtsp_url" not in params:
            if self.channels is None:
                raise Unavailable(f"channel {channel_id}: no registry to find its source in")
            channel = await self.channels.get_channel(channel_id)
            params["rtsp_url"] = channel.rtsp_url
            params.setdefault("device_id", channel.device_id)
        if params.get("rtsp_url"):
            handle = await self.rtsp.open(hub, name, {**params, "url": params["rtsp_url"]})
        else:
            if self.gb is None:
                raise Unavailable(
                    f"channel {channel_id} has no source: no RTSP URL, and GB/T 28181 media "
                    "sessions are not available"
                )
            if not params.get("device_id"):
                raise Unavailable(f"channel {channel_id} has no source: no device and no RTSP URL")
            handle = await self.gb.open(hub, name, params)
        stream = hub.stream(name)
        if stream is not None:
            stream.meta.setdefault("channel_id", channel_id)
        return handle
