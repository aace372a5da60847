"""Resources other than channels, as authorization sees them (division, department)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Device, Unit


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
