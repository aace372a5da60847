"""Resources other than channels, as authorization sees them (division, department)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.access.policy import Action, Principal, authorize_found, scope_conditions
from xueliang.db.tables import Channel, Device, Event, Unit
from xueliang.errors import NotFound


@dataclass(frozen=True, slots=True)
class DeviceOwner:
    """A GB/T 28181 device (or lower platform) with the scope fields of its owning unit; a device
    not in a unit is placed by the division in its ID and has no department."""

    __tablename__ = "devices"
    id: str
    division_code: str
    department: str | None


async def device_owner(sessions: async_sessionmaker[AsyncSession], device_id: str) -> DeviceOwner:
    from xueliang.gb28181.ids import GbIdError, division_code_of

    async with sessions() as s:
        dev = await s.get(Device, device_id)
        unit = await s.get(Unit, dev.unit_id) if dev is not None and dev.unit_id is not None else None
    if unit is not None:
        return DeviceOwner(device_id, unit.division_code or "", unit.department)
    try:
        div = division_code_of(device_id)
    except GbIdError:
        div = ""
    return DeviceOwner(device_id, div, None)


def devices_seen(p: Principal) -> Select[Any]:
    """IDs of the devices a scoped user sees: those with a camera it may see (own scope and
    sharing grants alike; the same scope as the channel listing)."""
    return select(Channel.device_id).where(Channel.device_id.is_not(None), *scope_conditions(p))


def events_seen(p: Principal) -> list[Any]:
    """Conditions on events for ``p``: events are about devices and channels (online/offline,
    alarms, catalogs), so a scoped user sees those of what it may see; nothing for everyone."""
    if p.unrestricted:
        return []
    return [or_(Event.subject.in_(select(Channel.id).where(*scope_conditions(p))), Event.subject.in_(devices_seen(p)))]


async def channel_or_none(registry: Any, channel_id: str) -> Any:
    """The channel, or None when there is no such channel."""
    try:
        return await registry.get_channel(channel_id)
    except NotFound:
        return None


async def visible_channel(registry: Any, p: Principal, action: Action, channel_id: str) -> Any:
    """The channel ``channel_id`` if ``p`` may do ``action`` on it; a channel outside the
    caller's scope is answered exactly as one that does not exist (never 403 against 404)."""
    channel = await channel_or_none(registry, channel_id)
    authorize_found(p, action, channel, NotFound(f"channel {channel_id} not found"))
    return channel
