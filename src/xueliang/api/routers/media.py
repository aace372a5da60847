"""Live media over HTTP and WebSocket: fMP4, HTTP-FLV, HLS, snapshots, streams, RTP receivers.

Thin over the media hub (``platform.media``). Every route that touches a channel's media
loads the channel and calls ``authorize(principal, Action.LIVE_VIEW, channel)`` first, so
department and division scopes apply to streams and snapshots exactly as to the registry.
Streams that belong to no channel (RTP receivers opened through the API) are for
unrestricted principals only.

Players that cannot send headers use ``?token=``: a login token, or a short-lived media
token from ``POST .../media-token`` scoped to the channel's (or stream's) URL prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response, WebSocket
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect, WebSocketState

from xueliang.access.policy import ROLES, Action, Principal, authorize, in_scope
from xueliang.api.deps import LiveViewer, PlatformDep, SignallingManager
from xueliang.app import Platform
from xueliang.db.tables import Channel
from xueliang.errors import DomainError, Forbidden, Invalid, NotFound, Unauthorized, Unavailable
from xueliang.media.frame import Codec
from xueliang.media.hub import MediaHub
from xueliang.media.outputs import Reader
from xueliang.media.stream import Stream, StreamEnded
from xueliang.media.transcode import transcode_name

router = APIRouter(tags=["media"])
#: Pages outside /api/v1 (the app factory includes it without prefix).
pages = APIRouter(include_in_schema=False)

PREFIX = "/api/v1"
STATIC = Path(__file__).resolve().parent.parent.parent / "static"
_NO_CACHE = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}

#: How the source sends RTP: GB/T 28181 UDP, TCP passive (we listen) or active (we connect);
#: for RTSP cameras "udp" or any TCP form (interleaved).
Transport = Annotated[Literal["udp", "tcp", "tcp-passive", "tcp-active"] | None, Query()]
Transcode = Annotated[Literal["h264"] | None, Query()]


def _hub(platform: Platform) -> MediaHub:
    hub: MediaHub | None = platform.media
    if hub is None:
        raise Unavailable("the media subsystem is not enabled (media.enabled = false)")
    return hub


def _timeout(platform: Platform) -> float:
    return max(8.0, float(platform.settings.sip.request_timeout) + 2.0)


async def _channel(platform: Platform, p: Principal, channel_id: str) -> Any:
    channel = await platform.registry.get_channel(channel_id)
    authorize(p, Action.LIVE_VIEW, channel)
    return channel


async def _live(
    platform: Platform, p: Principal, channel_id: str, transport: str | None, transcode: str | None
) -> Stream:
    if transport not in (None, "", "udp", "tcp", "tcp-passive", "tcp-active"):
        raise Invalid("transport must be udp, tcp-passive (tcp) or tcp-active")
    channel = await _channel(platform, p, channel_id)
    hub = _hub(platform)
    params: dict[str, Any] = {
        "channel_id": channel.id,
        "device_id": channel.device_id,
        "rtsp_url": channel.rtsp_url,
    }
    if transport:
        params["transport"] = transport
    stream = await hub.acquire(f"live/{channel.id}", params=params, timeout=_timeout(platform))
    return await _transcoded(hub, stream, transcode)


async def _transcoded(hub: MediaHub, stream: Stream, transcode: str | None) -> Stream:
    if transcode is None or stream.codec is not Codec.H265:
        return stream
    return await hub.acquire(transcode_name(stream.name), timeout=15.0)


async def _authorize_stream(platform: Platform, p: Principal, stream: Stream) -> None:
    channel_id = stream.meta.get("channel_id")
    if channel_id:
        await _channel(platform, p, str(channel_id))
        return
    authorize(p, Action.LIVE_VIEW)
    if not p.unrestricted:
        raise Forbidden(f"stream {stream.name} belongs to no channel in your scope")


async def _named(
    platform: Platform, p: Principal, name: str, transcode: str | None = None, *, wait: bool = True
) -> Stream:
    hub = _hub(platform)
    stream = hub.stream(name)
    if stream is None:
        raise NotFound(f"no stream {name}")
    await _authorize_stream(platform, p, stream)
    if wait and not stream.ready:
        stream = await hub.acquire(name, timeout=_timeout(platform))
    return await _transcoded(hub, stream, transcode) if wait else stream


def _reader_info(request: Request | WebSocket, p: Principal) -> dict[str, Any]:
    client = request.client
    return {
        "remote": f"{client.host}:{client.port}" if client else None,
        "user": p.username,
    }


def _reader(stream: Stream, fmt: str, info: dict[str, Any]) -> Reader[Any]:
    try:
        return stream.reader(fmt, info=info)
    except StreamEnded as exc:
        raise Unavailable(f"stream {stream.name} ended ({exc})") from exc


async def _body(reader: Reader[bytes]) -> AsyncIterator[bytes]:
    try:
        while True:
            chunks = await reader.get()
            if not chunks:
                return
            yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        reader.close()


def _fmp4_response(stream: Stream, request: Request, p: Principal) -> StreamingResponse:
    reader = _reader(stream, "fmp4", _reader_info(request, p))
    return StreamingResponse(_body(reader), media_type="video/mp4", headers=_NO_CACHE)


def _flv_response(stream: Stream, request: Request, p: Principal) -> StreamingResponse:
    reader = _reader(stream, "flv", _reader_info(request, p))
    return StreamingResponse(_body(reader), media_type="video/x-flv", headers=_NO_CACHE)


def _passthrough_query(request: Request) -> str:
    keep = {
        k: v
        for k, v in request.query_params.items()
        if k in ("token", "transcode", "purpose", "case")
    }
    return urlencode(keep)


async def _playlist(stream: Stream, request: Request) -> Response:
    try:
        hls = stream.hls()
    except StreamEnded as exc:
        raise Unavailable(f"stream {stream.name} ended ({exc})") from exc
    await hls.wait_for_segments(1, timeout=max(10.0, 3 * hls.packager.target_duration))
    text = hls.playlist("hls/", _passthrough_query(request))
    return Response(
        text, media_type="application/vnd.apple.mpegurl", headers={"Cache-Control": "no-cache"}
    )


def _hls_resource(stream: Stream, resource: str) -> Response:
    hls = stream.hls_output
    if hls is None:
        raise NotFound(f"stream {stream.name} has no HLS output: load the playlist first")
    hls.touch()
    data = hls.resource(resource)
    if data is None:
        raise NotFound(f"{resource} is not (or no longer) available")
    media = "video/mp4" if resource.endswith(".mp4") else "video/iso.segment"
    return Response(data, media_type=media, headers={"Cache-Control": "max-age=60"})


def _info(stream: Stream) -> dict[str, Any]:
    return {
        "stream": stream.name,
        "codec": stream.codec_string(),
        "codec_name": stream.codec.value if stream.codec else None,
        "mime": stream.fmp4_mime(),
        "width": stream.width,
        "height": stream.height,
        "audio": stream.audio_config.codec.value if stream.audio_config else None,
    }


def _media_urls(prefix: str, token: str) -> dict[str, str]:
    q = "?token=" + quote(token, safe="")
    return {
        "mp4": f"{prefix}live.mp4{q}",
        "ws": f"{prefix}live.ws{q}",
        "flv": f"{prefix}live.flv{q}",
        "hls": f"{prefix}live.m3u8{q}",
        "info": f"{prefix}live.info{q}",
        "snapshot": f"{prefix}snapshot.jpg{q}",
    }


def _issue_media_token(platform: Platform, p: Principal, scope: str) -> dict[str, Any]:
    ttl = platform.settings.api.media_token_ttl
    version = platform.users.token_version(p.user_id)
    token = platform.users.media_token(p, version, scope, ttl)
    return {"token": token, "expires_in": ttl, "scope": scope, "urls": _media_urls(scope, token)}


# --------------------------------------------------------------------------- channels


@router.get("/channels/{channel_id}/live.mp4", response_class=StreamingResponse)
async def channel_live_mp4(
    channel_id: str,
    request: Request,
    platform: PlatformDep,
    p: LiveViewer,
    transport: Transport = None,
    transcode: Transcode = None,
) -> StreamingResponse:
    """Fragmented MP4 over HTTP (chunked): init segment, then one fragment per frame."""
    stream = await _live(platform, p, channel_id, transport, transcode)
    return _fmp4_response(stream, request, p)


@router.get("/channels/{channel_id}/live.flv", response_class=StreamingResponse)
async def channel_live_flv(
    channel_id: str,
    request: Request,
    platform: PlatformDep,
    p: LiveViewer,
    transport: Transport = None,
    transcode: Transcode = None,
) -> StreamingResponse:
    """HTTP-FLV (H.265 as enhanced FLV ``hvc1``)."""
    stream = await _live(platform, p, channel_id, transport, transcode)
    return _flv_response(stream, request, p)


@router.get("/channels/{channel_id}/live.m3u8")
async def channel_live_m3u8(
    channel_id: str,
    request: Request,
    platform: PlatformDep,
    p: LiveViewer,
    transport: Transport = None,
    transcode: Transcode = None,
) -> Response:
    """HLS live playlist (fMP4 segments under ``hls/``; ``?token=`` carried into its URIs)."""
    stream = await _live(platform, p, channel_id, transport, transcode)
    return await _playlist(stream, request)


@router.get("/channels/{channel_id}/hls/{resource}")
async def channel_hls_resource(
    channel_id: str,
    resource: str,
    platform: PlatformDep,
    p: LiveViewer,
    transcode: Transcode = None,
) -> Response:
    """``init.mp4`` / ``seg<N>.m4s`` of the channel's HLS playlist."""
    await _channel(platform, p, channel_id)
    hub = _hub(platform)
    name = f"live/{channel_id}"
    stream = hub.stream(transcode_name(name) if transcode else name) or hub.stream(name)
    if stream is None:
        raise NotFound(f"channel {channel_id} is not streaming")
    return _hls_resource(stream, resource)


@router.get("/channels/{channel_id}/live.info")
async def channel_live_info(
    channel_id: str,
    platform: PlatformDep,
    p: LiveViewer,
    transport: Transport = None,
    transcode: Transcode = None,
) -> dict[str, Any]:
    """What a player needs before it opens a SourceBuffer: codec string, MIME type, size."""
    return _info(await _live(platform, p, channel_id, transport, transcode))


@router.post("/channels/{channel_id}/media-token")
async def channel_media_token(
    channel_id: str, platform: PlatformDep, p: LiveViewer
) -> dict[str, Any]:
    """A short-lived token valid only under ``/api/v1/channels/{id}/``, and the URLs with it."""
    channel = await _channel(platform, p, channel_id)
    return _issue_media_token(platform, p, f"{PREFIX}/channels/{channel.id}/")


@router.get(
    "/channels/{channel_id}/snapshot.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def channel_snapshot(
    channel_id: str, platform: PlatformDep, p: LiveViewer, transport: Transport = None
) -> Response:
    """JPEG of the latest key frame (opens the stream if needed; 503/504 without video)."""
    stream = await _live(platform, p, channel_id, transport, None)
    snap = await _hub(platform).snapshots.take(stream)
    return Response(
        snap.jpeg,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "no-store",
            "X-Snapshot-Width": str(snap.width),
            "X-Snapshot-Height": str(snap.height),
        },
    )


@router.websocket("/channels/{channel_id}/live.ws")
async def channel_live_ws(websocket: WebSocket, channel_id: str) -> None:
    """fMP4 over WebSocket: a JSON text message ``{codec, mime, width, height}``, then binary
    messages: the init segment, then fragments (a new init segment when parameters change)."""

    async def open_stream(platform: Platform, p: Principal) -> Stream:
        transport = websocket.query_params.get("transport")
        transcode = websocket.query_params.get("transcode")
        return await _live(platform, p, channel_id, transport, _transcode_param(transcode))

    await _serve_ws(websocket, open_stream)


# --------------------------------------------------------------------------- streams


@router.get("/streams")
async def list_streams(platform: PlatformDep, p: LiveViewer) -> list[dict[str, Any]]:
    """Streams in the hub with their readers, bitrate, fps, loss and jitter — those of channels
    in the caller's scope (a listing, not a view: checked with ``in_scope``, not audited as one).
    Who watches (user, address) is shown to stream managers only."""
    streams = _hub(platform).streams()
    ids = {str(s.meta["channel_id"]) for s in streams if s.meta.get("channel_id")}
    channels: dict[str, Any] = {}
    if ids:
        async with platform.sessions() as session:
            rows = await session.scalars(select(Channel).where(Channel.id.in_(ids)))
            channels = {c.id: c for c in rows}
    out = []
    for stream in streams:
        channel_id = stream.meta.get("channel_id")
        if channel_id:
            channel = channels.get(str(channel_id))
            if channel is None or not in_scope(p, channel, Action.LIVE_VIEW):
                continue
        elif not p.unrestricted:
            continue
        out.append(_describe(stream, p))
    return out


def _describe(stream: Stream, p: Principal) -> dict[str, Any]:
    d = stream.describe()
    if Action.SIGNALLING_MANAGE not in ROLES.get(p.role, frozenset()):
        d.pop("viewers", None)
    return d


@router.get("/media/status")
async def media_status(platform: PlatformDep, _: SignallingManager) -> dict[str, Any]:
    """The hub and its shared RTP ports."""
    hub = _hub(platform)
    return {**hub.status(), "receivers": sorted(hub.receivers)}


class ReceiverIn(BaseModel):
    #: The SSRC, as a number or as GB/T 28181's 10 decimal digits ("0200000001").
    ssrc: int | str
    transport: Literal["udp", "tcp"] = "udp"
    name: str | None = Field(default=None, max_length=200)
    #: Adopt the first unknown SSRC arriving (devices that send another SSRC or 0).
    latch: bool = False
    #: Only latch on packets from this host.
    peer: str | None = None
    #: A UDP port of its own (media.rtp_port_range) instead of the shared one.
    dedicated: bool = False

    @field_validator("ssrc")
    @classmethod
    def _ssrc(cls, v: int | str) -> int:
        try:
            n = int(v)
        except ValueError:
            raise ValueError("SSRC must be a number") from None
        if not 0 <= n <= 0xFFFFFFFF:
            raise ValueError("SSRC must fit in 32 bits")
        return n


@router.post("/media/rtp-receivers", status_code=201)
async def open_rtp_receiver(
    body: ReceiverIn, platform: PlatformDep, _: SignallingManager
) -> dict[str, Any]:
    """Receive PS over RTP on the shared ports for this SSRC, published as ``/streams/{name}``."""
    hub = _hub(platform)
    ssrc = int(body.ssrc)
    name = body.name or f"rtp/{ssrc}"
    binding = hub.open_rtp_receiver(
        name, ssrc, transport=body.transport, latch=body.latch, peer=body.peer, dedicated=body.dedicated
    )
    return {
        "name": name,
        "ssrc": binding.ssrc,
        "transport": body.transport,
        "ip": hub.rtp.announce_ip,
        "udp_port": binding.port or hub.rtp.udp_port,
        "tcp_port": hub.rtp.tcp_port,
        "urls": {k: f"{PREFIX}/streams/{name}/live.{k}" for k in ("mp4", "flv", "m3u8", "ws")},
    }


@router.get("/media/rtp-receivers")
async def list_rtp_receivers(platform: PlatformDep, _: SignallingManager) -> list[dict[str, Any]]:
    hub = _hub(platform)
    return [
        {"name": name, **(h.binding.describe() if h.binding else {})}
        for name, h in sorted(hub.receivers.items())
    ]


@router.delete("/media/rtp-receivers/{name:path}", status_code=204)
async def close_rtp_receiver(name: str, platform: PlatformDep, _: SignallingManager) -> Response:
    await _hub(platform).close_rtp_receiver(name)
    return Response(status_code=204)


@router.get("/streams/{name:path}/live.mp4", response_class=StreamingResponse)
async def stream_live_mp4(
    name: str, request: Request, platform: PlatformDep, p: LiveViewer, transcode: Transcode = None
) -> StreamingResponse:
    return _fmp4_response(await _named(platform, p, name, transcode), request, p)


@router.get("/streams/{name:path}/live.flv", response_class=StreamingResponse)
async def stream_live_flv(
    name: str, request: Request, platform: PlatformDep, p: LiveViewer, transcode: Transcode = None
) -> StreamingResponse:
    return _flv_response(await _named(platform, p, name, transcode), request, p)


@router.get("/streams/{name:path}/live.m3u8")
async def stream_live_m3u8(
    name: str, request: Request, platform: PlatformDep, p: LiveViewer, transcode: Transcode = None
) -> Response:
    return await _playlist(await _named(platform, p, name, transcode), request)


@router.get("/streams/{name:path}/hls/{resource}")
async def stream_hls_resource(
    name: str, resource: str, platform: PlatformDep, p: LiveViewer, transcode: Transcode = None
) -> Response:
    stream = await _named(platform, p, name, wait=False)
    if transcode:
        stream = _hub(platform).stream(transcode_name(name)) or stream
    return _hls_resource(stream, resource)


@router.get("/streams/{name:path}/live.info")
async def stream_live_info(
    name: str, platform: PlatformDep, p: LiveViewer, transcode: Transcode = None
) -> dict[str, Any]:
    return _info(await _named(platform, p, name, transcode))


@router.get(
    "/streams/{name:path}/snapshot.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def stream_snapshot(name: str, platform: PlatformDep, p: LiveViewer) -> Response:
    stream = await _named(platform, p, name)
    snap = await _hub(platform).snapshots.take(stream)
    return Response(snap.jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.post("/streams/{name:path}/media-token")
async def stream_media_token(name: str, platform: PlatformDep, p: LiveViewer) -> dict[str, Any]:
    stream = await _named(platform, p, name, wait=False)
    return _issue_media_token(platform, p, f"{PREFIX}/streams/{stream.name}/")


@router.websocket("/streams/{name:path}/live.ws")
async def stream_live_ws(websocket: WebSocket, name: str) -> None:
    async def open_stream(platform: Platform, p: Principal) -> Stream:
        return await _named(
            platform, p, name, _transcode_param(websocket.query_params.get("transcode"))
        )

    await _serve_ws(websocket, open_stream)


@router.get("/streams/{name:path}")
async def get_stream(name: str, platform: PlatformDep, p: LiveViewer) -> dict[str, Any]:
    stream = await _named(platform, p, name, wait=False)
    return _describe(stream, p)


@router.delete("/streams/{name:path}", status_code=204)
async def stop_stream(name: str, platform: PlatformDep, _: SignallingManager) -> Response:
    """Stop a stream now: its readers get end of stream, its source is closed."""
    hub = _hub(platform)
    if hub.stream(name) is None:
        raise NotFound(f"no stream {name}")
    if name in hub.receivers:
        await hub.close_rtp_receiver(name)
    else:
        await hub.close(name, "stopped by API")
    return Response(status_code=204)


# --------------------------------------------------------------------------- WebSocket


def _transcode_param(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value != "h264":
        raise Invalid("transcode must be h264")
    return value


async def _ws_principal(websocket: WebSocket, platform: Platform) -> Principal:
    header = websocket.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return await platform.users.principal_for_token(header[7:].strip())
    token = websocket.query_params.get("token", "")
    if not token:
        raise Unauthorized("log in first: send a bearer token or ?token=")
    return await platform.users.principal_for_token(token, path=websocket.url.path)


async def _serve_ws(websocket: WebSocket, open_stream: Any) -> None:
    platform: Platform = websocket.app.state.platform
    await websocket.accept()
    reader: Reader[bytes] | None = None
    try:
        p = await _ws_principal(websocket, platform)
        authorize(p, Action.LIVE_VIEW)
        stream: Stream = await open_stream(platform, p)
        reader = _reader(stream, "fmp4", _reader_info(websocket, p))
        out = reader.output
        meta = {
            "stream": stream.name,
            "codec": stream.codec_string(),
            "mime": getattr(out, "mime_type", stream.fmp4_mime)(),
            "width": stream.width,
            "height": stream.height,
        }
        await websocket.send_text(json.dumps(meta))
    except DomainError as exc:
        await websocket.close(code=4000 + exc.status, reason=exc.detail[:120])
        return

    async def pump() -> None:
        assert reader is not None
        while True:
            chunks = await reader.get()
            if not chunks:
                return
            await websocket.send_bytes(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    async def drain() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                msg = await websocket.receive()
                if msg["type"] == "websocket.disconnect":
                    return

    pump_task = asyncio.create_task(pump())
    drain_task = asyncio.create_task(drain())
    try:
        done, _ = await asyncio.wait({pump_task, drain_task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (pump_task, drain_task):
            t.cancel()
        for t in (pump_task, drain_task):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        reader.close()
    if pump_task in done and websocket.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code=1000, reason="end of stream")


# --------------------------------------------------------------------------- player


@pages.get("/player")
async def player_page() -> FileResponse:
    """The minimal player: login (or ``?token=``), then ``?channel=<id>`` or ``?stream=<name>``."""
    return FileResponse(
        STATIC / "player.html", media_type="text/html", headers={"Cache-Control": "no-cache"}
    )


@pages.get("/player.js")
async def player_script() -> FileResponse:
    """The player's script (served from 'self': the CSP forbids inline scripts)."""
    return FileResponse(
        STATIC / "player.js", media_type="text/javascript", headers={"Cache-Control": "no-cache"}
    )
