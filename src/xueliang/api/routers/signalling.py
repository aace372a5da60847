"""GB/T 28181 operations through the API: catalog, device info/status, records, control, PTZ, events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from xueliang.access import context
from xueliang.access.policy import Action, authorize, authorize_found
from xueliang.access.redact import hide_event_network
from xueliang.access.resources import events_seen, visible_channel
from xueliang.api.deps import (
    DeviceController,
    DeviceQuerier,
    PlatformDep,
    PtzOperator,
    RegistryReader,
    SignallingManager,
)
from xueliang.app import Platform
from xueliang.db.tables import AlarmAck, Event
from xueliang.errors import Invalid, NotFound, Unavailable
from xueliang.gb28181.commands import Control, DeviceCommands
from xueliang.gb28181.ptz import PtzCommand

router = APIRouter(tags=["signalling"])


def _devices(platform: Platform) -> DeviceCommands:
    if platform.devices is None:
        raise Unavailable("GB/T 28181 signalling is not enabled (sip.enabled = false)")
    return platform.devices


@router.get("/signalling/status")
async def signalling_status(platform: PlatformDep, _: SignallingManager) -> dict[str, Any]:
    return await _devices(platform).status()


@router.post("/devices/{device_id}/catalog")
async def query_catalog(device_id: str, platform: PlatformDep, p: DeviceQuerier, wait: bool = True) -> dict[str, Any]:
    """Ask the device for its catalog now; with ``wait``, return when it has all arrived."""
    await _device_scope(platform, device_id, p, Action.DEVICE_QUERY)
    return await _devices(platform).query_catalog(device_id, wait)


@router.get("/devices/{device_id}/info")
async def device_info(device_id: str, platform: PlatformDep, p: DeviceQuerier) -> dict[str, Any]:
    await _device_scope(platform, device_id, p, Action.DEVICE_QUERY)
    return await _devices(platform).device_info(device_id)


@router.get("/devices/{device_id}/status")
async def device_status(device_id: str, platform: PlatformDep, p: DeviceQuerier) -> dict[str, Any]:
    await _device_scope(platform, device_id, p, Action.DEVICE_QUERY)
    return await _devices(platform).device_status(device_id)


class ControlIn(BaseModel):
    command: Control
    channel_id: str | None = None


@router.post("/devices/{device_id}/control")
async def device_control(device_id: str, body: ControlIn, platform: PlatformDep, p: DeviceController) -> dict[str, Any]:
    await _device_scope(platform, device_id, p, Action.DEVICE_CONTROL)
    target = body.channel_id or device_id
    if target != device_id:
        if body.command == "teleboot":
            raise Invalid("teleboot restarts the whole device: address the device, not one of its channels")
        # The command goes to this device about one of its channels: the channel must be the
        # device's and within the caller's scope (answered as missing otherwise, like any channel
        # out of scope), or a device in scope would carry a command about anyone's channel.
        ch = await visible_channel(platform.registry, p, Action.DEVICE_CONTROL, target)
        if ch.device_id != device_id:
            raise NotFound(f"channel {target} not found")
    return await _devices(platform).control(device_id, target, body.command)


@router.post("/devices/{device_id}/subscriptions/catalog")
async def subscribe_catalog(device_id: str, platform: PlatformDep, p: DeviceController,
                            expires: Annotated[int, Query(ge=60, le=86400)] = 3600) -> dict[str, Any]:
    await _device_scope(platform, device_id, p, Action.DEVICE_CONTROL)
    return await _devices(platform).subscribe_catalog(device_id, expires)


async def _device_scope(platform: Platform, device_id: str, p: Any, action: Action) -> None:
    """Scoped users reach only devices of their scope (the owning unit's division/department)."""
    from xueliang.access.resources import device_owner

    owner = await device_owner(platform.sessions, device_id)
    authorize_found(p, action, owner, NotFound(f"device {device_id} not found"))


async def _channel_device(platform: Platform, channel_id: str, p: Any, action: Action) -> tuple[str, str]:
    """(the device that answers for a channel, the channel), within the caller's scope."""
    ch = await visible_channel(platform.registry, p, action, channel_id)
    _devices(platform)
    return ch.device_id or ch.id, ch.id


@router.get("/channels/{channel_id}/records")
async def channel_records(channel_id: str, start: datetime, end: datetime, platform: PlatformDep, p: RegistryReader,
                          type: Literal["all", "time", "alarm", "manual"] = "all") -> dict[str, Any]:
    """The device's own recordings of a channel in a time range (RecordInfo)."""
    authorize(p, Action.PLAYBACK)
    device_id, cid = await _channel_device(platform, channel_id, p, Action.PLAYBACK)
    if end <= start:
        raise Invalid("end must be after start")
    fmt = "%Y-%m-%dT%H:%M:%S"
    items = await _devices(platform).record_info(device_id, cid, start.strftime(fmt), end.strftime(fmt), type)
    return {"channel_id": cid, "records": items}


class PtzIn(BaseModel):
    action: Literal["move", "stop", "zoom", "focus", "iris", "preset_call", "preset_set", "preset_delete"]
    pan: float = Field(default=0, ge=-1, le=1)
    tilt: float = Field(default=0, ge=-1, le=1)
    zoom: float = Field(default=0, ge=-1, le=1)
    speed: int = Field(default=128, ge=0, le=255)
    preset: int = Field(default=1, ge=1, le=255)
    direction: int = Field(default=1, ge=-1, le=1)


def ptz_command(b: PtzIn) -> PtzCommand:
    def d(v: float) -> int:
        return 0 if abs(v) < 1e-9 else (1 if v > 0 else -1)

    if b.action == "stop":
        return PtzCommand.stop()
    if b.action in ("move", "zoom"):
        return PtzCommand.move(pan=d(b.pan), tilt=d(b.tilt), zoom=d(b.zoom), speed=b.speed)
    if b.action == "focus":
        return PtzCommand.focus(b.direction, b.speed)
    if b.action == "iris":
        return PtzCommand.iris(b.direction, b.speed)
    if b.action == "preset_call":
        return PtzCommand.preset_call(b.preset)
    if b.action == "preset_set":
        return PtzCommand.preset_set(b.preset)
    return PtzCommand.preset_delete(b.preset)


@router.post("/channels/{channel_id}/ptz")
async def channel_ptz(channel_id: str, body: PtzIn, platform: PlatformDep, p: PtzOperator) -> dict[str, Any]:
    device_id, cid = await _channel_device(platform, channel_id, p, Action.PTZ)
    cmd = ptz_command(body)
    out = await _devices(platform).ptz(device_id, cid, cmd.encode())
    out["ptz_cmd"] = cmd.encode()
    return out


@router.get("/events")
async def list_events(platform: PlatformDep, p: DeviceQuerier, kind: str | None = None, subject: str | None = None,
                      before: int | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Device online/offline, alarms, catalog and stream events, newest first; a scoped user
    sees the events of the devices and cameras in its scope."""
    stmt = select(Event).where(*events_seen(p))
    if kind:
        stmt = stmt.where(Event.kind.like(kind.replace("*", "%")))
    if subject:
        stmt = stmt.where(Event.subject == subject)
    if before:
        stmt = stmt.where(Event.id < before)
    async with platform.sessions() as s:
        rows = list((await s.scalars(stmt.order_by(Event.id.desc()).limit(limit))).all())
        alarm_ids = [r.id for r in rows if r.kind == "alarm"]
        acks = {a.event_id: a for a in (await s.scalars(select(AlarmAck).where(AlarmAck.event_id.in_(alarm_ids))))
                } if alarm_ids else {}
    return {"items": [{"id": r.id, "at": r.at, "kind": r.kind, "subject": r.subject,
                       "data": hide_event_network(dict(r.data or {}), p.actions),
                       **({"ack": _ack(acks.get(r.id))} if r.kind == "alarm" else {})} for r in rows],
            "next_before": rows[-1].id if len(rows) == limit else None}


def _ack(a: AlarmAck | None) -> dict[str, Any] | None:
    return None if a is None else {"by": a.username, "at": a.at, "note": a.note}


class AckIn(BaseModel):
    note: str = Field(default="", max_length=400)


@router.post("/events/{event_id}/ack")
async def acknowledge_alarm(event_id: int, body: AckIn, platform: PlatformDep, p: DeviceQuerier) -> dict[str, Any]:
    """Take an alarm (确认): the other operators see who handles it. Once: a second
    acknowledgement answers with the first."""
    async with platform.sessions() as s:
        ev = await s.scalar(select(Event).where(Event.id == event_id, Event.kind == "alarm", *events_seen(p)))
        if ev is None:
            raise NotFound(f"alarm {event_id} not found")
        ack = await s.get(AlarmAck, event_id)
    if ack is None:
        try:
            async with platform.sessions() as s, s.begin():
                ack = AlarmAck(event_id=event_id, user_id=p.user_id, username=p.username, note=body.note.strip())
                s.add(ack)
        except IntegrityError:  # another operator took it in the same moment: theirs stands
            async with platform.sessions() as s:
                ack = await s.get(AlarmAck, event_id)
    context.describe("alarm.ack", "event", event_id, subject=ev.subject)
    return {"id": event_id, "ack": _ack(ack)}
