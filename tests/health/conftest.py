"""A small city for the health tests: two units of two departments, devices and cameras."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Device, Unit


async def make_city(sessions: async_sessionmaker[AsyncSession], devices: int = 2, per_device: int = 2,
                    *, division: str = "340102", point_class: int = 1) -> dict[str, Any]:
    """Devices 3402000000111xxxxxxx of unit A (甲局) then B (乙局), half each; cameras under them."""
    async with sessions() as s, s.begin():
        ua = Unit(name="甲单位", department="甲局", division_code=division)
        ub = Unit(name="乙单位", department="乙局", division_code=division)
        s.add_all([ua, ub])
        await s.flush()
        devs, chans = [], []
        for d in range(devices):
            did = f"34020000001110{d:06d}"
            unit = ua if d < max(1, devices // 2) else ub
            devs.append({"id": did, "name": did, "type_code": "111", "unit_id": unit.id, "admission": "accepted",
                         "online": False, "channel_count": per_device})
            for c in range(per_device):
                cid = f"3402000000131{d:05d}{c:02d}"
                chans.append({"id": cid, "name": cid, "kind": "camera", "device_id": did, "unit_id": unit.id,
                              "department": unit.department, "division_code": division + f"{d % 3:03d}",
                              "point_class": point_class, "status": "ON"})
        for i in range(0, len(devs), 2000):
            await s.execute(insert(Device), devs[i:i + 2000])
        for i in range(0, len(chans), 2000):
            await s.execute(insert(Channel), chans[i:i + 2000])
        by_device: dict[str, list[str]] = {d["id"]: [] for d in devs}
        for c in chans:  # one pass: a scan of every channel for each device took 6 s at 10,000
            by_device[c["device_id"]].append(c["id"])
        return {"unit_a": ua.id, "unit_b": ub.id, "devices": [d["id"] for d in devs],
                "channels": [c["id"] for c in chans], "by_device": by_device}


@pytest.fixture
async def city(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    return await make_city(sessions)
