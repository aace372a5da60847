"""Live media over HTTP and WebSocket: fMP4, HTTP-FLV, HLS, snapshots, streams, RTP receivers.

Thin over the media hub (``platform.media``). Every way of reading a stream (by its channel,
by its name, any format, snapshot, media token, listing) authorizes the action the stream
exists for on its channel (access/viewing.py decides it from the stream's name: live,
playback, download, receiver), for the caller; playback, download and receiver streams are
their opener's. A channel or stream the caller may not see answers 404 exactly like one that
does not exist. Every reader is a viewing session: re-checked every few seconds (cut when the
rights are gone) and one audit record when it ends.

Players that cannot send headers use ``?token=`` with a media token from
``POST .../media-token``: it reads one stream for one action and cannot mint another; login
and API tokens are refused in URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response, WebSocket
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect, WebSocketState

from xueliang.access import context
from xueliang.access.policy import Action, Principal, check_role, in_scope
from xueliang.access.redact import sees_network
from xueliang.access.resources import channel_or_none, visible_channel
from xueliang.access.viewing import (
    StreamUse,
    ViewingSession,
    ViewingSessions,
    check_any_media_role,
    check_standing,
    check_stream_role,
    listed,
    may_manage_streams,
    owns,
    stream_use,
)
from xueliang.api.deps import (
    LiveViewer,
    MediaCaller,
    MediaCallerDep,
    PlatformDep,
    PrincipalDep,
    SignallingManager,
    authenticate,
    credential_of,
)
from xueliang.api.live_send import LiveResponse
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


def media_hub(platform: Platform) -> MediaHub:
    """The hub, or 503 when media does not run in this process."""
    hub: MediaHub | None = platform.media
    if hub is None:
        raise Unavailable("the media subsystem is not enabled (media.enabled = false)")
    return hub


def _timeout(platform: Platform) -> float:
    return max(8.0, float(platform.settings.sip.request_timeout) + 2.0)


def _opens(caller: MediaCaller, target: str, action: Action) -> None:
    if not caller.credential.opens(target, action.value):
        raise Unauthorized("this media token opens another stream or action")


@dataclass(slots=True)
class Opened:
    """A stream as one caller may read it: what for, on which channel (None: no channel)."""

    stream: Stream
    use: StreamUse
    channel: Any


async def _live(
    platform: Platform, caller: MediaCaller, channel_id: str, transport: str | None,
    transcode: str | None,
) -> Opened:
    if transport not in (None, "", "udp", "tcp", "tcp-passive", "tcp-active"):
        raise Invalid("transport must be udp, tcp-passive (tcp) or tcp-active")
    _opens(caller, f"channel:{channel_id}", Action.LIVE_VIEW)
    channel = await visible_channel(platform.registry, caller.principal, Action.LIVE_VIEW, channel_id)
    hub = media_hub(platform)
    params: dict[str, Any] = {
        "channel_id": channel.id,
        "device_id": channel.device_id,
        "rtsp_url": channel.rtsp_url,
    }
    if transport:
        params["transport"] = transport
    stream = await hub.acquire(f"live/{channel.id}", params=params, timeout=_timeout(platform))
    stream = await _transcoded(hub, stream, transcode)
    use = stream_use(stream.name, stream.meta)
    if use is None or use.channel_id != channel.id:  # never serve another path as this camera
        raise Unavailable(f"stream of channel {channel.id} is not this channel's")
    return Opened(stream, use, channel)


async def _transcoded(hub: MediaHub, stream: Stream, transcode: str | None) -> Stream:
    if transcode is None or stream.codec is not Codec.H265:
        return stream
    return await hub.acquire(transcode_name(stream.name), timeout=15.0)


async def authorize_stream(platform: Platform, caller: MediaCaller, stream: Stream) -> Opened:
    """May ``caller`` read ``stream``? Only for the action it exists for, on its channel, and
    for owned streams (playback, download, receivers) only its owner or a media manager.
    Every refusal that would tell a stream exists answers as if it did not."""
    p = caller.principal
    missing = NotFound(f"no stream {stream.name}")
    use = stream_use(stream.name, stream.meta)
    if use is None:
        check_role(p, Action.MEDIA_MANAGE)
        return Opened(stream, StreamUse(stream.name, "", Action.MEDIA_MANAGE, None, None, True), None)
    check_role(p, use.action)
    if not caller.credential.opens(use.target, use.action.value) or not owns(p, use):
        raise missing
    channel = None
    opened = stream.meta.get("opened")
    if use.channel_id is not None and use.owner == p.user_id and isinstance(opened, dict):
        # One's own playback or download: authorized (rules, purpose, approval use) when it
        # was opened; reading it needs that to stand, not to be asked and used up again.
        channel = await channel_or_none(platform.registry, use.channel_id)
        try:
            check_standing(p, use, channel, opened.get("approval_id"))
        except Forbidden:
            raise missing from None
        if channel is None:
            raise missing
        ctx = context.current()
        if ctx is not None:
            ctx.note(use.action.value, channel, True)
            ctx.purpose = ctx.purpose or opened.get("purpose")
            ctx.case_ref = ctx.case_ref or opened.get("case_ref")
            ctx.approval_id = opened.get("approval_id")
    elif use.channel_id is not None:
        try:
            channel = await visible_channel(platform.registry, p, use.action, use.channel_id)
        except NotFound:
            raise missing from None
    return Opened(stream, use, channel)


async def _named(
    platform: Platform, caller: MediaCaller, name: str, transcode: str | None = None,
    *, wait: bool = True,
) -> Opened:
    check_stream_role(caller.principal, name)  # first: the answer must not depend on the rest
    hub = media_hub(platform)
    stream = hub.stream(name)
    if stream is None:
        raise NotFound(f"no stream {name}")
    opened = await authorize_stream(platform, caller, stream)
    if wait and not stream.ready:
        stream = await hub.acquire(name, timeout=_timeout(platform))
    if wait and transcode is not None:
        opened.stream = await _transcoded(hub, stream, transcode)
    return opened


def _reader(stream: Stream, fmt: str, info: dict[str, Any]) -> Reader[Any]:
    try:
        return stream.reader(fmt, info=info)
    except StreamEnded as exc:
        raise Unavailable(f"stream {stream.name} ended ({exc})") from exc


def _remote(request: Request | WebSocket) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client else ""


def _session(
    platform: Platform, caller: MediaCaller, opened: Opened, fmt: str, remote: str,
    bytes_out: Any, cut: Any, idle_after: float | None = None,
) -> ViewingSession:
    """The viewing session of one reader: re-checked while it runs, one audit record when it
    ends (the request itself is then not recorded separately)."""
    ctx = context.current()
    p, use, channel = caller.principal, opened.use, opened.channel
    approval_id = ctx.approval_id if ctx is not None else None
    if ctx is not None:
        ctx.audited = True

    async def still_allowed(now_p: Principal) -> None:
        check_standing(now_p, use, channel, approval_id)

    return ViewingSession(
        user=p, credential=caller.credential, use=use, fmt=fmt, remote=remote,
        purpose=ctx.purpose if ctx is not None else None,
        case_ref=ctx.case_ref if ctx is not None else None,
        approval_id=approval_id, still_allowed=still_allowed, bytes_out=bytes_out, cut=cut,
        idle_after=idle_after,
    )


def _viewing(platform: Platform) -> ViewingSessions:
    return platform.access.viewing


def _watch(
    platform: Platform, caller: MediaCaller, opened: Opened, fmt: str, remote: str
) -> tuple[Reader[Any], ViewingSession]:
    reader = _reader(opened.stream, fmt, {"remote": remote, "user": caller.principal.username})
    session = _session(
        platform, caller, opened, fmt, remote, lambda: reader.bytes_out, lambda _why: reader.close()
    )
    return reader, _viewing(platform).begin(session)


async def _body(platform: Platform, reader: Reader[bytes], session: ViewingSession) -> AsyncIterator[bytes]:
    reason = "client left"
    try:
        while True:
            chunks = await reader.get()
            if not chunks:
                reason = "end of stream"
                return
            yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        reader.close()
        _viewing(platform).end(session, reason)


def _streaming(
    platform: Platform, caller: MediaCaller, opened: Opened, request: Request, fmt: str
) -> LiveResponse:
    reader, session = _watch(platform, caller, opened, fmt, _remote(request))
    media = "video/mp4" if fmt == "fmp4" else "video/x-flv"
    return LiveResponse(_body(platform, reader, session), target=reader, media_type=media, headers=_NO_CACHE)


def _passthrough_query(request: Request) -> str:
    keep = {
        k: v
        for k, v in request.query_params.items()
        if k in ("token", "transcode", "purpose", "case")
    }
    return urlencode(keep)


def _hls_session(
    platform: Platform, caller: MediaCaller, opened: Opened, request: Request, size: int
) -> None:
    """HLS is many requests: one viewing session per caller, stream and credential, kept while
    the player keeps asking (a segment's duration several times over)."""
    c = caller.credential
    key = (caller.principal.user_id, opened.use.name, c.kind, c.jti, c.api_token, request.client and request.client.host)
    hls = opened.stream.hls_output
    idle = 3 * hls.packager.target_duration + 10 if hls is not None else 30.0

    def make() -> ViewingSession:
        return _session(platform, caller, opened, "hls", _remote(request), lambda: 0,
                        lambda _why: None, idle_after=idle)

    _viewing(platform).hls(key, make, size)


async def _playlist(platform: Platform, caller: MediaCaller, opened: Opened, request: Request) -> Response:
    stream = opened.stream
    try:
        hls = stream.hls()
    except StreamEnded as exc:
        raise Unavailable(f"stream {stream.name} ended ({exc})") from exc
    await hls.wait_for_segments(1, timeout=max(10.0, 3 * hls.packager.target_duration))
    text = hls.playlist("hls/", _passthrough_query(request))
    _hls_session(platform, caller, opened, request, len(text))
    return Response(
        text, media_type="application/vnd.apple.mpegurl", headers={"Cache-Control": "no-cache"}
    )


def _hls_resource(
    platform: Platform, caller: MediaCaller, opened: Opened, request: Request, resource: str
) -> Response:
    stream = opened.stream
    hls = stream.hls_output
    if hls is None:
        raise NotFound(f"stream {stream.name} has no HLS output: load the playlist first")
    hls.touch()
    data = hls.resource(resource)
    if data is None:
        raise NotFound(f"{resource} is not (or no longer) available")
    _hls_session(platform, caller, opened, request, len(data))
    media = "video/mp4" if resource.endswith(".mp4") else "video/iso.segment"
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=60"})


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


def _issue_media_token(
    platform: Platform, request: Request, p: Principal, use: StreamUse, prefix: str
) -> dict[str, Any]:
    """A media token reads one stream for one action, briefly; it cannot mint another."""
    ttl = platform.settings.api.media_token_ttl
    token = platform.users.media_token(p, credential_of(request), use.target, use.action.value, ttl)
    return {
        "token": token, "expires_in": ttl, "stream": use.name, "action": use.action.value,
        "urls": _media_urls(prefix, token),
    }


async def _snapshot(platform: Platform, stream: Stream) -> Response:
    snap = await media_hub(platform).snapshots.take(stream)
    return Response(
        snap.jpeg,
        media_type="image/jpeg",
        headers={
            "Cache-Control": "no-store",
            "X-Snapshot-Width": str(snap.width),
            "X-Snapshot-Height": str(snap.height),
        },
    )


# --------------------------------------------------------------------------- channels


@router.get("/channels/{channel_id}/live.mp4", response_class=StreamingResponse)
async def channel_live_mp4(
    channel_id: str,
    request: Request,
    platform: PlatformDep,
    caller: MediaCallerDep,
    transport: Transport = None,
    transcode: Transcode = None,
) -> StreamingResponse:
    """Fragmented MP4 over HTTP (chunked): init segment, then one fragment per frame."""
    opened = await _live(platform, caller, channel_id, transport, transcode)
    return _streaming(platform, caller, opened, request, "fmp4")


@router.get("/channels/{channel_id}/live.flv", response_class=StreamingResponse)
async def channel_live_flv(
    channel_id: str,
    request: Request,
    platform: PlatformDep,
    caller: MediaCallerDep,
    transport: Transport = None,
    transcode: Transcode = None,
) -> StreamingResponse:
    """HTTP-FLV (H.265 as enhanced FLV ``hvc1``)."""
    opened = await _live(platform, caller, channel_id, transport, transcode)
    return _streaming(platform, caller, opened, request, "flv")


@router.get("/channels/{channel_id}/live.m3u8")
async def channel_live_m3u8(
    channel_id: str,
    request: Request,
    platform: PlatformDep,
    caller: MediaCallerDep,
    transport: Transport = None,
    transcode: Transcode = None,
) -> Response:
    """HLS live playlist (fMP4 segments under ``hls/``; ``?token=`` carried into its URIs)."""
    opened = await _live(platform, caller, channel_id, transport, transcode)
    return await _playlist(platform, caller, opened, request)


@router.get("/channels/{channel_id}/hls/{resource}")
async def channel_hls_resource(
    channel_id: str,
    resource: str,
    request: Request,
    platform: PlatformDep,
    caller: MediaCallerDep,
    transcode: Transcode = None,
) -> Response:
    """``init.mp4`` / ``seg<N>.m4s`` of the channel's HLS playlist."""
    _opens(caller, f"channel:{channel_id}", Action.LIVE_VIEW)
    await visible_channel(platform.registry, caller.principal, Action.LIVE_VIEW, channel_id)
    hub = media_hub(platform)
    name = f"live/{channel_id}"
    stream = hub.stream(transcode_name(name) if transcode else name) or hub.stream(name)
    if stream is None:
        raise NotFound(f"channel {channel_id} is not streaming")
    opened = await authorize_stream(platform, caller, stream)
    return _hls_resource(platform, caller, opened, request, resource)


@router.get("/channels/{channel_id}/live.info")
async def channel_live_info(
    channel_id: str,
    platform: PlatformDep,
    caller: MediaCallerDep,
    transport: Transport = None,
    transcode: Transcode = None,
) -> dict[str, Any]:
    """What a player needs before it opens a SourceBuffer: codec string, MIME type, size."""
    return _info((await _live(platform, caller, channel_id, transport, transcode)).stream)


@router.post("/channels/{channel_id}/media-token")
async def channel_media_token(
    channel_id: str, request: Request, platform: PlatformDep, p: LiveViewer
) -> dict[str, Any]:
    """A short-lived token that reads only this channel's live stream (``?token=`` on its live
    URLs), carrying the purpose stated now; it cannot mint another."""
    channel = await visible_channel(platform.registry, p, Action.LIVE_VIEW, channel_id)
    use = StreamUse(f"live/{channel.id}", "live", Action.LIVE_VIEW, channel.id, None, False)
    return _issue_media_token(platform, request, p, use, f"{PREFIX}/channels/{channel.id}/")


@router.get(
    "/channels/{channel_id}/snapshot.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def channel_snapshot(
    channel_id: str, platform: PlatformDep, caller: MediaCallerDep, transport: Transport = None
) -> Response:
    """JPEG of the latest key frame (opens the stream if needed; 503/504 without video)."""
    return await _snapshot(platform, (await _live(platform, caller, channel_id, transport, None)).stream)


@router.websocket("/channels/{channel_id}/live.ws")
async def channel_live_ws(websocket: WebSocket, channel_id: str) -> None:
    """fMP4 over WebSocket: a JSON text message ``{codec, mime, width, height}``, then binary
    messages: the init segment, then fragments (a new init segment when parameters change).
    The caller is authenticated and authorized before the socket is accepted."""

    async def open_stream(platform: Platform, caller: MediaCaller) -> Opened:
        transport = websocket.query_params.get("transport")
        transcode = websocket.query_params.get("transcode")
        return await _live(platform, caller, channel_id, transport, _transcode_param(transcode))

    await _serve_ws(websocket, open_stream)


# --------------------------------------------------------------------------- streams


@router.get("/streams")
async def list_streams(platform: PlatformDep, p: PrincipalDep) -> list[dict[str, Any]]:
    """Streams in the hub with their readers, bitrate, fps, loss and jitter — those the caller
    may read (their channel in scope for the stream's action; playback, download and receivers
    only their owner's). A listing, not a view: no purpose asked, not audited as one.
    Who watches (user, address) is shown to media managers only."""
    check_any_media_role(p)
    streams = media_hub(platform).streams()
    uses = {s.name: stream_use(s.name, s.meta) for s in streams}
    ids = {u.channel_id for u in uses.values() if u is not None and u.channel_id}
    channels: dict[str, Any] = {}
    if ids:
        async with platform.sessions() as session:
            rows = await session.scalars(select(Channel).where(Channel.id.in_(ids)))
            channels = {c.id: c for c in rows}
    out = []
    for stream in streams:
        use = uses[stream.name]
        channel = channels.get(use.channel_id) if use is not None and use.channel_id else None
        if listed(p, use, channel):
            out.append(_describe(stream, p))
    return out


def _describe(stream: Stream, p: Principal) -> dict[str, Any]:
    d = stream.describe()
    if not may_manage_streams(p):
        d.pop("viewers", None)
    if not sees_network(p.actions) and isinstance(d.get("meta"), dict):
        d["meta"] = {k: v for k, v in d["meta"].items() if k != "url"}  # the camera's address
    return d


@router.get("/media/status")
async def media_status(platform: PlatformDep, _: SignallingManager) -> dict[str, Any]:
    """The hub and its shared RTP ports."""
    hub = media_hub(platform)
    return {**hub.status(), "receivers": sorted(hub.receivers)}


class ReceiverIn(BaseModel):
    #: The SSRC, as a number or as GB/T 28181's 10 decimal digits ("0200000001").
    ssrc: int | str
    transport: Literal["udp", "tcp"] = "udp"
    #: Published as ``rtp/<name>`` (receivers have a namespace of their own).
    name: str | None = Field(default=None, max_length=100)
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
    body: ReceiverIn, platform: PlatformDep, p: SignallingManager
) -> dict[str, Any]:
    """Receive PS over RTP on the shared ports for this SSRC, published as ``/streams/rtp/{name}``:
    a stream of no channel, readable by whoever opened it (and media managers)."""
    hub = media_hub(platform)
    ssrc = int(body.ssrc)
    name = f"rtp/{body.name or ssrc}"
    binding = hub.open_rtp_receiver(
        name, ssrc, transport=body.transport, latch=body.latch, peer=body.peer,
        dedicated=body.dedicated, meta={"owner": p.user_id},
    )
    context.describe("media.receiver.open", "stream", name, ssrc=ssrc)
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
async def list_rtp_receivers(platform: PlatformDep, p: SignallingManager) -> list[dict[str, Any]]:
    """The caller's own receivers (everyone's for media managers)."""
    hub = media_hub(platform)
    out = []
    for name, h in sorted(hub.receivers.items()):
        stream = hub.stream(name)
        use = stream_use(name, stream.meta if stream is not None else {})
        if (use is not None and owns(p, use)) or may_manage_streams(p):
            out.append({"name": name, **(h.binding.describe() if h.binding else {})})
    return out


async def _stop(platform: Platform, p: Principal, name: str, *, receiver: bool) -> None:
    """Stop a stream: one's own (playback, download, receivers), or anyone's with media.manage;
    a stream one may not stop answers as one that does not exist."""
    check_stream_role(p, name)
    hub = media_hub(platform)
    stream = hub.stream(name)
    missing = NotFound(f"no {'RTP receiver' if receiver else 'stream'} {name}")
    if stream is None or (receiver and name not in hub.receivers):
        raise missing
    use = stream_use(name, stream.meta)
    channel = await channel_or_none(platform.registry, use.channel_id) if use and use.channel_id else None
    if not (use is not None and use.owned and use.owner == p.user_id):
        if may_manage_streams(p):
            # Anyone's stream, within the manager's own scope: a scoped administrator does not
            # stop another division's cameras.
            if use is not None and use.channel_id is not None and (
                channel is None or not in_scope(p, channel, use.action)
            ):
                raise missing
        else:
            if use is not None and listed(p, use, channel):
                raise Forbidden(f"stopping {name} needs media.manage: it is not yours")
            raise missing
    context.describe("media.stream.stop", "stream", name)
    if name in hub.receivers:
        await hub.close_rtp_receiver(name)
    else:
        await hub.close(name, f"stopped by {p.username}")


@router.delete("/media/rtp-receivers/{name:path}", status_code=204)
async def close_rtp_receiver(name: str, platform: PlatformDep, p: PrincipalDep) -> Response:
    await _stop(platform, p, name, receiver=True)
    return Response(status_code=204)


@router.get("/streams/{name:path}/live.mp4", response_class=StreamingResponse)
async def stream_live_mp4(
    name: str, request: Request, platform: PlatformDep, caller: MediaCallerDep,
    transcode: Transcode = None,
) -> StreamingResponse:
    opened = await _named(platform, caller, name, transcode)
    return _streaming(platform, caller, opened, request, "fmp4")


@router.get("/streams/{name:path}/live.flv", response_class=StreamingResponse)
async def stream_live_flv(
    name: str, request: Request, platform: PlatformDep, caller: MediaCallerDep,
    transcode: Transcode = None,
) -> StreamingResponse:
    opened = await _named(platform, caller, name, transcode)
    return _streaming(platform, caller, opened, request, "flv")


@router.get("/streams/{name:path}/live.m3u8")
async def stream_live_m3u8(
    name: str, request: Request, platform: PlatformDep, caller: MediaCallerDep,
    transcode: Transcode = None,
) -> Response:
    opened = await _named(platform, caller, name, transcode)
    return await _playlist(platform, caller, opened, request)


@router.get("/streams/{name:path}/hls/{resource}")
async def stream_hls_resource(
    name: str, resource: str, request: Request, platform: PlatformDep, caller: MediaCallerDep,
    transcode: Transcode = None,
) -> Response:
    opened = await _named(platform, caller, name, wait=False)
    if transcode:
        transcoded = media_hub(platform).stream(transcode_name(name))
        if transcoded is not None:
            opened.stream = transcoded
    return _hls_resource(platform, caller, opened, request, resource)


@router.get("/streams/{name:path}/live.info")
async def stream_live_info(
    name: str, platform: PlatformDep, caller: MediaCallerDep, transcode: Transcode = None
) -> dict[str, Any]:
    return _info((await _named(platform, caller, name, transcode)).stream)


@router.get(
    "/streams/{name:path}/snapshot.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def stream_snapshot(name: str, platform: PlatformDep, caller: MediaCallerDep) -> Response:
    return await _snapshot(platform, (await _named(platform, caller, name)).stream)


@router.post("/streams/{name:path}/media-token")
async def stream_media_token(
    name: str, request: Request, platform: PlatformDep, p: PrincipalDep
) -> dict[str, Any]:
    """A short-lived token that reads only this stream, for the action it exists for."""
    opened = await _named(platform, MediaCaller(p, credential_of(request)), name, wait=False)
    return _issue_media_token(platform, request, p, opened.use, f"{PREFIX}/streams/{name}/")


@router.websocket("/streams/{name:path}/live.ws")
async def stream_live_ws(websocket: WebSocket, name: str) -> None:
    async def open_stream(platform: Platform, caller: MediaCaller) -> Opened:
        return await _named(
            platform, caller, name, _transcode_param(websocket.query_params.get("transcode"))
        )

    await _serve_ws(websocket, open_stream)


@router.get("/streams/{name:path}")
async def get_stream(name: str, request: Request, platform: PlatformDep, p: PrincipalDep) -> dict[str, Any]:
    opened = await _named(platform, MediaCaller(p, credential_of(request)), name, wait=False)
    return _describe(opened.stream, p)


@router.delete("/streams/{name:path}", status_code=204)
async def stop_stream(name: str, platform: PlatformDep, p: PrincipalDep) -> Response:
    """Stop a stream now: its readers get end of stream, its source is closed. One's own
    playback, download or receiver; anyone's with media.manage."""
    await _stop(platform, p, name, receiver=False)
    return Response(status_code=204)


# --------------------------------------------------------------------------- WebSocket


def _transcode_param(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value != "h264":
        raise Invalid("transcode must be h264")
    return value


async def _ws_caller(websocket: WebSocket, platform: Platform) -> MediaCaller:
    header = websocket.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
    access = platform.access
    await access.ready()
    p, cred = await authenticate(
        platform, access, bearer, websocket.query_params.get("token"), media=True
    )
    return MediaCaller(p, cred)


async def _refuse_ws(websocket: WebSocket, exc: DomainError) -> None:
    """Refuse the handshake (never accepted, so nothing was served): as an HTTP problem where
    the server can send one, else a close before accept (HTTP 403)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        body = {"type": exc.extra.get("type", "about:blank"), "title": exc.title,
                "status": exc.status, "detail": exc.detail, "instance": websocket.url.path}
        await websocket.send_denial_response(
            JSONResponse(body, status_code=exc.status, media_type="application/problem+json")
        )
    else:
        await websocket.close(code=4000 + exc.status, reason=exc.detail[:120])


async def _serve_ws(websocket: WebSocket, open_stream: Any) -> None:
    platform: Platform = websocket.app.state.platform
    try:
        caller = await _ws_caller(websocket, platform)
        opened: Opened = await open_stream(platform, caller)
        reader, session = _watch(platform, caller, opened, "fmp4", _remote(websocket))
    except DomainError as exc:
        await _refuse_ws(websocket, exc)
        return
    cut: list[str] = []

    def cut_session(why: str) -> None:
        cut.append(why)
        reader.close()

    session.cut = cut_session
    stream = opened.stream
    reason = "client left"
    try:
        await websocket.accept()
        out = reader.output
        meta = {
            "stream": stream.name,
            "codec": stream.codec_string(),
            "mime": getattr(out, "mime_type", stream.fmp4_mime)(),
            "width": stream.width,
            "height": stream.height,
        }
        await websocket.send_text(json.dumps(meta))

        async def pump() -> None:
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
        if pump_task in done:
            reason = f"cut: {cut[0]}" if cut else "end of stream"
            if websocket.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    # 1008 policy violation: the viewer's rights were withdrawn.
                    await websocket.close(code=1008 if cut else 1000,
                                          reason=(cut[0] if cut else "end of stream")[:120])
    finally:
        reader.close()
        _viewing(platform).end(session, reason)


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
