"""The platform's own recordings (录像) of a channel: the timeline of what was recorded and the
gaps; thin over recording/index.py.

Who may see it: whoever may play the channel's recordings back (playback, the channel in scope,
the access rules included), as for the device's own recordings (GET /channels/{id}/records).
A channel out of scope answers as one that does not exist.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from xueliang.access import context
from xueliang.access.policy import Action, Principal, authorize, scope_conditions
from xueliang.access.resources import visible_channel
from xueliang.api.deps import (
    MediaCallerDep,
    PlatformDep,
    RegistryReader,
    StatsReader,
    credential_of,
    require,
)
from xueliang.config import RecordingPlanSpec
from xueliang.errors import Invalid, Unauthorized
from xueliang.recording.compliance import compliance
from xueliang.recording.download import RangeNotSatisfiable, parse_range, recorded_range
from xueliang.recording.index import timeline
from xueliang.recording.timeline import DEVICE_WAIT, MAX_DEVICE_WAIT, merged_timeline

router = APIRouter(tags=["recordings"])

#: The longest range one timeline covers.
MAX_DAYS = 31


@router.get("/channels/{channel_id}/recordings")
async def channel_recordings(
        channel_id: str, start: datetime, end: datetime, platform: PlatformDep, p: RegistryReader,
        device: bool = True,
        device_wait: Annotated[float, Query(ge=0.1, le=MAX_DEVICE_WAIT)] = DEVICE_WAIT) -> dict[str, Any]:
    """The channel's recordings in [start, end): the platform's segments and (``device``) the
    device's own (RecordInfo, waited for ``device_wait`` s at most), each with its ``source``,
    the gaps where neither has video, and ``device.state`` (ok, or unavailable and why)."""
    authorize(p, Action.PLAYBACK)
    ch = await visible_channel(platform.registry, p, Action.PLAYBACK, channel_id)
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("start and end need a time zone (…Z or +08:00)")
    if end <= start:
        raise Invalid("end must be after start")
    if (end - start).days > MAX_DAYS:
        raise Invalid(f"a timeline covers at most {MAX_DAYS} days")
    if not device:
        return {**await timeline(platform.sessions, channel_id, start, end), "device": {"state": "skipped"}}
    return await merged_timeline(platform.sessions, platform.devices, ch.device_id or ch.id, ch.id, start, end,
                                 wait=device_wait)


def _download_target(channel_id: str) -> str:
    return f"recording/{channel_id}"


@router.post("/channels/{channel_id}/recordings/media-token")
async def recording_download_token(channel_id: str, request: Request, platform: PlatformDep,
                                   p: Annotated[Principal, Depends(require(Action.DOWNLOAD))]) -> dict[str, Any]:
    """A short-lived token for ``?token=`` on this channel's ``recordings/download`` only (a
    plain link: the browser saves the file and shows its progress), carrying the purpose stated
    now; it cannot mint another."""
    channel = await visible_channel(platform.registry, p, Action.DOWNLOAD, channel_id)
    ttl = platform.settings.api.media_token_ttl
    token = platform.users.media_token(p, credential_of(request), _download_target(channel.id),
                                       Action.DOWNLOAD.value, ttl)
    return {"token": token, "expires_in": ttl, "action": Action.DOWNLOAD.value}


async def _downloader(channel_id: str, caller: MediaCallerDep) -> Principal:
    """A bearer token's principal, or a media token's of this channel's recordings (before the
    query is read: another media token is 401 whatever it asks)."""
    if not caller.credential.opens(_download_target(channel_id), Action.DOWNLOAD.value):
        raise Unauthorized("this media token does not open this channel's recordings")
    return caller.principal


@router.get("/channels/{channel_id}/recordings/download")
async def download_recording(channel_id: str, start: datetime, end: datetime, request: Request,
                             platform: PlatformDep,
                             p: Annotated[Principal, Depends(_downloader)]) -> StreamingResponse:
    """[start, end) of the platform's recording as one MP4 (a remux, cut at fragment
    boundaries), streamed with its length known up front; one byte range (Range) answers 206.
    A bearer token, or in ``?token=`` a media token from ``recordings/media-token`` of this channel."""
    authorize(p, Action.DOWNLOAD)
    await visible_channel(platform.registry, p, Action.DOWNLOAD, channel_id)
    mp4 = await recorded_range(platform.sessions, Path(platform.settings.storage.var_dir) / "recordings",
                               channel_id, start, end, platform.objects)
    size = mp4.size
    try:
        wanted = parse_range(request.headers.get("range"), size)
    except ValueError as exc:
        raise RangeNotSatisfiable(str(exc), size=size) from exc
    first, last = wanted or (0, size - 1)
    assert mp4.start is not None and mp4.end is not None
    name = f"{channel_id}_{mp4.start:%Y%m%dT%H%M%SZ}_{mp4.end:%Y%m%dT%H%M%SZ}.mp4"
    headers = {"Content-Length": str(last - first + 1), "Accept-Ranges": "bytes",
               "Content-Disposition": f'attachment; filename="{name}"',
               "X-Recording-Start": mp4.start.isoformat(), "X-Recording-End": mp4.end.isoformat()}
    if wanted is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    ctx = context.current()
    if ctx is not None:  # audited as media.download (the transparency report counts it)
        ctx.detail.update(start=start.isoformat(), end=end.isoformat(), bytes=last - first + 1,
                          segments=mp4.segments)
    return StreamingResponse(mp4.read(first, last), status_code=206 if wanted is not None else 200,
                             media_type="video/mp4", headers=headers)


# ---- recording plans (录像计划) and storage compliance (存储达标率) -------------------------------
RecordingManager = Annotated[Principal, Depends(require(Action.RECORDING_MANAGE))]
RecordingTriggerer = Annotated[Principal, Depends(require(Action.RECORDING_TRIGGER))]


@router.get("/channels/{channel_id}/recording")
async def channel_recording_plan(channel_id: str, platform: PlatformDep, p: RegistryReader) -> dict[str, Any]:
    """The channel's recording plan and where it comes from (its own, its class, division or
    key site), with the days its recordings are kept."""
    channel = await visible_channel(platform.registry, p, Action.REGISTRY_READ, channel_id)
    return (await platform.recording_plans.plan_of(channel)).as_dict()


@router.put("/channels/{channel_id}/recording")
async def set_channel_recording_plan(channel_id: str, body: RecordingPlanSpec, platform: PlatformDep,
                                     p: RecordingManager) -> dict[str, Any]:
    """Give the channel a plan of its own; the recorder applies it at once."""
    channel = await visible_channel(platform.registry, p, Action.RECORDING_MANAGE, channel_id)
    before, plan = await platform.recording_plans.set(channel, body, p.username)
    context.describe("recording.plan.set", "channel", channel_id, plan=plan.as_dict(),
                     before={"mode": before.mode, "source": before.source})
    return plan.as_dict()


@router.delete("/channels/{channel_id}/recording", status_code=204)
async def clear_channel_recording_plan(channel_id: str, platform: PlatformDep, p: RecordingManager) -> None:
    """The channel follows the defaults (class, division, key site) again."""
    channel = await visible_channel(platform.registry, p, Action.RECORDING_MANAGE, channel_id)
    before, plan = await platform.recording_plans.clear(channel, p.username)
    context.describe("recording.plan.clear", "channel", channel_id, plan=plan.as_dict(),
                     before={"mode": before.mode, "source": before.source})


@router.post("/channels/{channel_id}/recording/trigger", status_code=202)
async def trigger_channel_recording(channel_id: str, platform: PlatformDep, p: RecordingTriggerer) -> dict[str, Any]:
    """An operator starts the event recording of a channel that records on event: the seconds
    before (from memory) and after are written. 409 when its plan is not on event."""
    channel = await visible_channel(platform.registry, p, Action.RECORDING_TRIGGER, channel_id)
    plan = await platform.recording_plans.trigger(channel, p.username)
    context.describe("recording.trigger", "channel", channel_id, pre_seconds=plan.pre_seconds,
                     post_seconds=plan.post_seconds)
    return {"channel_id": channel_id, "pre_seconds": plan.pre_seconds, "post_seconds": plan.post_seconds}


@router.get("/recordings/compliance")
async def recording_compliance(
        platform: PlatformDep, p: StatsReader,
        division: Annotated[str | None, Query(pattern=r"^[0-9]{2,12}$")] = None,
        department: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after: Annotated[str | None, Query(max_length=20)] = None) -> dict[str, Any]:
    """Storage compliance from the platform's real recordings (days kept per camera against the
    days required), beside what the survey claims; overall, by class, key sites and division,
    for the cameras in the caller's scope; a page of cameras (``after``: the last channel ID)."""
    return await compliance(platform.sessions, platform.recording_plans.policy, datetime.now(UTC),
                            division=division, department=department, extra=scope_conditions(p),
                            limit=limit, after=after)
