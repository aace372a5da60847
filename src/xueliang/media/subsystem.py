"""Wire the media hub into a platform: ports, providers, routes, start and stop.

Called by :func:`xueliang.subsystems.attach` when ``media.enabled``. It sets
``platform.media`` (the :class:`~xueliang.media.hub.MediaHub`) and registers:

* ``live/`` — one provider for every channel's live stream, which dispatches: a channel with
  an ``rtsp_url`` is pulled over RTSP (:mod:`xueliang.media.rtsp`); any other channel goes
  to ``platform.media_gb_provider`` (the GB/T 28181 INVITE provider, set by the signalling
  side; when it is None the answer is 503 "no source");
* ``transcode/h264/`` — the opt-in H.265 → H.264 transcoder (``media.max_transcodes``).

Routers: the media API (under ``/api/v1``) is appended to ``routers``; the player page
router (``/player``, no prefix) is left in ``platform.page_routers`` for the app factory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xueliang.errors import Unavailable
from xueliang.media.hub import MediaHub, SourceProvider
from xueliang.media.rtsp import RtspProvider
from xueliang.media.snapshot import Snapshots
from xueliang.media.source import SourceHandle
from xueliang.media.transcode import PREFIX as TRANSCODE_PREFIX
from xueliang.media.transcode import TranscodeProvider

if TYPE_CHECKING:
    from xueliang.app import Platform

__all__ = ["LiveProvider", "attach"]


class LiveProvider:
    """``live/<channel id>``: RTSP when the channel has an RTSP URL, else GB/T 28181."""

    def __init__(self, platform: Platform, rtsp: SourceProvider | None = None) -> None:
        self.platform = platform
        self.rtsp = rtsp or RtspProvider()

    async def open(self, hub: MediaHub, name: str, params: dict[str, Any]) -> SourceHandle:
        channel_id = str(params.get("channel_id") or name.removeprefix("live/"))
        params = {**params, "channel_id": channel_id}
        if "rtsp_url" not in params:
            channel = await self.platform.registry.get_channel(channel_id)
            params["rtsp_url"] = channel.rtsp_url
            params.setdefault("device_id", channel.device_id)
        if params.get("rtsp_url"):
            handle = await self.rtsp.open(hub, name, {**params, "url": params["rtsp_url"]})
        else:
            gb: SourceProvider | None = getattr(self.platform, "media_gb_provider", None)
            if gb is None:
                raise Unavailable(
                    f"channel {channel_id} has no source: no RTSP URL, and GB/T 28181 media "
                    "sessions are not available"
                )
            if not params.get("device_id"):
                raise Unavailable(f"channel {channel_id} has no source: no device and no RTSP URL")
            handle = await gb.open(hub, name, params)
        stream = hub.stream(name)
        if stream is not None:
            stream.meta.setdefault("channel_id", channel_id)
        return handle


def attach(platform: Platform, routers: list[object]) -> MediaHub:
    cfg = platform.settings.media
    hub = MediaHub(cfg, platform.bus)
    hub.snapshots = Snapshots(platform.settings.storage.var_dir / "snapshots")
    hub.set_provider("live/", LiveProvider(platform))
    hub.set_provider(TRANSCODE_PREFIX, TranscodeProvider(cfg.max_transcodes))
    platform.media = hub
    if not hasattr(platform, "media_gb_provider"):
        platform.media_gb_provider = None  # type: ignore[attr-defined]
    platform.on_start(hub.start)
    platform.on_stop(hub.stop)

    from xueliang.api.routers import media as media_routes

    routers.append(media_routes.router)
    pages: list[object] = list(getattr(platform, "page_routers", []))
    pages.append(media_routes.pages)
    platform.page_routers = pages  # type: ignore[attr-defined]
    return hub
