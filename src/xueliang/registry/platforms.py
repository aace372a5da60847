"""Lower platforms (下级平台) among the devices: what makes a registered device a platform.

A device is a platform when its ID says so (type 200, a centre signalling server: GB/T 28181
IDs, gb28181/ids.py) or when it reports itself as one: its catalog holds business groups
(215) or virtual organisations (216), which only platforms report (catalog_store.py keeps them
as ``kind = 'group'`` rows of that device, with the channels under their parents). Nothing is
stored for it: the registry already holds both facts, so a platform that re-registers under
another type, or stops reporting groups, is shown as what it is now.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Device

__all__ = ["PLATFORM_TYPE", "is_platform", "platform_ids"]

#: GB/T 28181 type of a centre signalling server: how platforms register.
PLATFORM_TYPE = "200"
_GROUP_TYPES = ("215", "216")


def _reported_groups() -> Any:
    return select(Channel.device_id).where(Channel.kind == "group", Channel.device_id.is_not(None),
                                           func.substr(Channel.id, 11, 3).in_(_GROUP_TYPES))


def is_platform(platform: bool = True) -> Any:
    """SQL condition on ``devices``: is a platform (or, ``platform=False``, is not)."""
    cond = or_(Device.type_code == PLATFORM_TYPE, Device.id.in_(_reported_groups()))
    return cond if platform else ~cond


async def platform_ids(sessions: async_sessionmaker[AsyncSession], devices: Iterable[Any]) -> set[str]:
    """Which of these device rows (``id``, ``type_code``) are platforms."""
    rows = list(devices)
    out = {d.id for d in rows if getattr(d, "type_code", "") == PLATFORM_TYPE}
    rest = sorted({d.id for d in rows} - out)
    async with sessions() as s:
        for i in range(0, len(rest), 500):
            found = await s.scalars(_reported_groups().where(Channel.device_id.in_(rest[i:i + 500])).distinct())
            out.update(x for x in found.all() if x is not None)
    return out
