"""Recordings: playback and download by time range, and their control (pause, seek, speed).

A device's recordings are INVITE-d from it (``playback/``, ``download/``); the platform's own
(``source: platform``) are played from its index through the hub (``record/``,
:mod:`xueliang.recording.playback`). Either way the stream is the caller's alone."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from xueliang.access import context
from xueliang.access.policy import Action, Principal
from xueliang.access.resources import visible_channel
from xueliang.access.viewing import check_stream_role
from xueliang.api.deps import MediaCaller, PlatformDep, PrincipalDep, credential_of
from xueliang.api.routers.media import authorize_stream, media_hub
from xueliang.app import Platform
from xueliang.errors import Invalid, NotFound
from xueliang.media.hub import MediaHub
from xueliang.recording.playback import segments

router = APIRouter(tags=["media"])
URL_KINDS = ("live.mp4", "live.flv", "live.m3u8", "live.ws")


class HistoryIn(BaseModel):
    start: datetime
    end: datetime
    transport: Literal["udp", "tcp-passive", "tcp-active"] = "udp"
    #: Download only: how many times real time the device should send (a=downloadspeed).
    speed: int = Field(default=4, ge=1, le=32)
    #: Playback only: the device's recordings, or the platform's own.
    source: Literal["device", "platform"] = "device"


async def _open(platform: Platform, channel_id: str, body: HistoryIn, p: Principal, mode: str) -> dict[str, Any]:
    if body.end <= body.start:
        raise Invalid("end must be after start")
    action = Action.PLAYBACK if mode == "playback" else Action.DOWNLOAD
    ch = await visible_channel(platform.registry, p, action, channel_id)
    params: dict[str, Any]
    if mode == "playback" and body.source == "platform":
        if body.start.tzinfo is None or body.end.tzinfo is None:
            raise Invalid("start and end need a time zone (the platform's recordings are in UTC)")
        hub = media_hub(platform)
        if not await segments(platform.sessions, channel_id, body.start, body.end):
            raise NotFound(f"the platform has no recording of channel {channel_id} "
                           f"between {body.start.isoformat()} and {body.end.isoformat()}")
        name = f"record/{channel_id}/{secrets.token_hex(8)}"
        params = {"channel_id": channel_id, "start": body.start.timestamp(), "end": body.end.timestamp(),
                  "speed": 1.0}
        return await _started(hub, name, params, body, p)
    if body.source != "device":
        raise Invalid("a download is of a device's recording (source: device)")
    if not ch.device_id:
        raise NotFound(f"channel {channel_id} has no GB/T 28181 device with recordings")
    # Unguessable, and the caller's own: nobody else reads or steers it (access/viewing.py).
    name = f"{mode}/{channel_id}/{secrets.token_hex(8)}"
    params = {"channel_id": channel_id, "device_id": ch.device_id, "mode": mode, "transport": body.transport,
              "start": int(body.start.timestamp()), "end": int(body.end.timestamp()), "speed": body.speed}
    return await _started(media_hub(platform), name, params, body, p)


async def _started(hub: MediaHub, name: str, params: dict[str, Any], body: HistoryIn, p: Principal,
                   ) -> dict[str, Any]:
    stream = await hub.acquire(name, params=params)
    ctx = context.current()
    stream.meta["owner"] = p.user_id
    # What allowed it: reading it later stands on this (access/viewing.check_standing).
    stream.meta["opened"] = {
        "purpose": ctx.purpose if ctx is not None else None,
        "case_ref": ctx.case_ref if ctx is not None else None,
        "approval_id": ctx.approval_id if ctx is not None else None,
    }
    base = f"/api/v1/streams/{name}"
    return {"stream": name, "urls": {k.split(".")[1]: f"{base}/{k}" for k in URL_KINDS},
            "start": body.start, "end": body.end}


@router.post("/channels/{channel_id}/playback")
async def start_playback(channel_id: str, body: HistoryIn, platform: PlatformDep, p: PrincipalDep) -> dict[str, Any]:
    """Play a recording for [start, end]: a device's (INVITE with s=Playback) or, with
    ``source: platform``, the platform's own (404 when it has none in the range); returns the
    stream's URLs (readable by the caller only)."""
    return await _open(platform, channel_id, body, p, "playback")


@router.post("/channels/{channel_id}/download")
async def start_download(channel_id: str, body: HistoryIn, platform: PlatformDep, p: PrincipalDep) -> dict[str, Any]:
    """Fetch a device recording faster than real time (s=Download, a=downloadspeed)."""
    return await _open(platform, channel_id, body, p, "download")


class ControlIn(BaseModel):
    #: step: the platform's recordings only, ``value`` frames (1 by default) forward, then paused
    action: Literal["pause", "resume", "seek", "speed", "step"]
    value: float | None = None


@router.post("/streams/{name:path}/control")
async def control_stream(
    name: str, body: ControlIn, request: Request, platform: PlatformDep, p: PrincipalDep
) -> dict[str, Any]:
    """Pause, resume, seek (seconds from the start) or change speed (0.25–4, negative reverses;
    the platform's recordings: 0.25–16) of one's own playback or download."""
    check_stream_role(p, name)
    if not name.startswith(("playback/", "download/", "record/")):
        raise NotFound(f"no playback {name}")
    hub = media_hub(platform)
    stream = hub.stream(name)
    if stream is None:
        raise NotFound(f"no stream {name}")
    opened = await authorize_stream(platform, MediaCaller(p, credential_of(request)), stream)
    if opened.use.action not in (Action.PLAYBACK, Action.DOWNLOAD):
        raise NotFound(f"no playback {name}")
    handle = getattr(stream, "handle", None)
    if handle is None or not hasattr(handle, "control"):
        raise Invalid(f"stream {name} cannot be controlled")
    return dict(await handle.control(body.action, body.value))
