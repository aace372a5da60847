"""The shared catalog (共享目录) as the upper sees it: read from the registry through the share.

`SharedCatalog` turns the channels a share takes into catalog items in the upper's numbering
and tree (cascade/share.py), finds one shared channel by the ID the upper names, and counts
them. Every lookup goes through the same SQL condition (`UpperScope.sql`), so what a listing
never shows, a single lookup never finds.

`CatalogDiff` remembers what an upper was last told and turns a fresh read into the catalog
NOTIFY items: ADD (new), DEL (gone), ON/OFF (only the status changed), UPDATE (anything else).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.gb28181.manscdp import CatalogItem

from .share import UpperScope

__all__ = ["CatalogDiff", "SharedCatalog", "SharedChannel"]

_COLUMNS = (
    "channels.id, channels.name, channels.kind, channels.device_id, channels.department, "
    "channels.division_code, channels.point_class, channels.ptz_type, channels.longitude, "
    "channels.latitude, channels.address, channels.status, channels.manufacturer, channels.model, "
    "devices.online, channels.parent_id"
)
#: How deep a lower platform's 215/216 tree is climbed (deeper levels hang from the top).
MAX_GROUP_DEPTH = 12
#: The group types a lower platform's catalog tree is made of (GB/T 28181: business group,
#: virtual organisation).
_GROUP_TYPES = ("215", "216")


@dataclass(frozen=True, slots=True)
class SharedChannel:
    """One shared channel row (what match, the tree and the item need)."""

    id: str
    name: str
    kind: str
    device_id: str | None
    department: str | None
    division_code: str
    point_class: int | None
    ptz_type: int | None
    longitude: float | None
    latitude: float | None
    address: str | None
    status: str
    manufacturer: str | None
    model: str | None
    device_online: bool | None
    #: what its device reported it under (a 215/216 group of a lower platform, or the device)
    parent_id: str | None = None

    @property
    def online(self) -> bool:
        """What the upper is told: the channel reports ON, or (status unknown: an RTSP or
        never-catalogued camera) its device is online; and a device that is offline takes its
        channels with it."""
        if self.device_online is False:
            return False
        return self.status == "ON" or (self.status == "UNKNOWN" and self.device_online is True)


def _civil_code(ch: SharedChannel) -> str:
    code = ch.division_code or ""
    return code if code.isdigit() else ch.id[:6]


def channel_item(scope: UpperScope, ch: SharedChannel, groups: frozenset[str] | set[str] = frozenset()) -> CatalogItem:
    """The item the upper is told; ``groups``: the lower platforms' groups passed up with it
    (a channel sits under its reported group when the share places it nowhere else)."""
    parent = scope.placement_of(ch) or (ch.parent_id if ch.parent_id in groups else None) or scope.top
    return CatalogItem(
        device_id=scope.upper_id(ch.id),
        name=ch.name or ch.id,
        manufacturer=ch.manufacturer or "",
        model=ch.model or "",
        owner="",
        civil_code=_civil_code(ch),
        address=ch.address or "",
        parental=0,
        parent_ids=[parent],
        safety_way=0,
        register_way=1,
        secrecy=0,
        status="ON" if ch.online else "OFF",
        longitude=ch.longitude,
        latitude=ch.latitude,
        ptz_type=ch.ptz_type,
        business_group_id=scope.business_group or "",
    )


def group_items(scope: UpperScope) -> list[CatalogItem]:
    return [
        CatalogItem(device_id=g["id"], name=g["name"], parent_ids=[g["parent_id"]],
                    business_group_id=g["business_group"] or "")
        for g in scope.group_items()
    ]


class SharedCatalog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def _rows(self, scope: UpperScope, extra: str = "", params: dict[str, Any] | None = None,
                    limit: int | None = None) -> list[SharedChannel]:
        p: dict[str, Any] = dict(params or {})
        where = scope.sql(p)
        if extra:
            where = f"({where}) AND {extra}"
        sql = (f"SELECT {_COLUMNS} FROM channels LEFT JOIN devices ON devices.id = channels.device_id "
               f"WHERE {where} ORDER BY channels.id")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        async with self.sessions() as s:
            result = await s.execute(text(sql), p)
            return [SharedChannel(r[0], r[1] or "", r[2] or "camera", r[3], r[4], r[5] or "", r[6], r[7],
                                  r[8], r[9], r[10], (r[11] or "UNKNOWN").upper(), r[12], r[13],
                                  None if r[14] is None else bool(r[14]), r[15])
                    for r in result.all()]

    async def channels(self, scope: UpperScope) -> list[SharedChannel]:
        return await self._rows(scope)

    async def lower_groups(self, scope: UpperScope, rows: Sequence[SharedChannel]) -> list[CatalogItem]:
        """The 215/216 groups lower platforms (or devices) reported the shared channels under,
        and their ancestors, as the upper sees them: parents first, each under its reported
        parent when that is passed up too, else under the share's top (its business group,
        else our platform). Only groups of the channel's own device; never one whose ID the
        upper's view already uses; only what shared channels need (an empty group is not shown)."""
        wanted = {(ch.parent_id, ch.device_id) for ch in rows
                  if ch.parent_id and ch.parent_id[10:13] in _GROUP_TYPES and scope.placement_of(ch) is None}
        found: dict[str, tuple[str, str | None, str | None]] = {}  # id → name, parent, device
        for _ in range(MAX_GROUP_DEPTH):
            ask = sorted({g for g, _ in wanted if g not in found and not scope.reserved(g)})
            if not ask:
                break
            got: dict[str, tuple[str, str | None, str | None]] = {}
            async with self.sessions() as s:
                for i in range(0, len(ask), 500):
                    part = ask[i:i + 500]
                    params = {f"g{k}": v for k, v in enumerate(part)}
                    names = ", ".join(":" + k for k in params)
                    result = await s.execute(text(
                        f"SELECT id, name, parent_id, device_id FROM channels WHERE kind = 'group' AND id IN ({names})"),
                        params)
                    for gid, name, parent, device in result.all():
                        got[gid] = (name or gid, parent, device)
            nxt: set[tuple[str, str | None]] = set()
            for gid, device in wanted:
                g = got.get(gid)
                if g is None or gid in found or g[2] != device:
                    continue
                found[gid] = g
                if g[1] and g[1][10:13] in _GROUP_TYPES:
                    nxt.add((g[1], device))
            wanted = nxt
        out: list[CatalogItem] = []
        emitted: set[str] = set()

        def add(gid: str, visiting: frozenset[str]) -> None:
            if gid in emitted:
                return
            name, parent, _ = found[gid]
            up = parent if parent is not None and parent in found and parent != gid else None
            if up is not None and up not in emitted:
                if up in visiting or len(visiting) >= MAX_GROUP_DEPTH:
                    up = None  # a cycle (or a chain too deep) in what a lower reported: cut here
                else:
                    add(up, visiting | {gid})
            emitted.add(gid)
            out.append(CatalogItem(device_id=gid, name=name, parent_ids=[up or scope.top],
                                   business_group_id=scope.business_group or ""))

        for gid in sorted(found):
            add(gid, frozenset())
        return out

    async def items(self, scope: UpperScope) -> list[CatalogItem]:
        """The whole catalog the upper sees: the share's 215/216 groups and the lower
        platforms' groups passed up (parents first), then the shared channels in ID order."""
        rows = await self._rows(scope)
        lower = await self.lower_groups(scope, rows)
        passed = {g.device_id for g in lower}
        return group_items(scope) + lower + [channel_item(scope, ch, passed) for ch in rows]

    async def items_under(self, scope: UpperScope, device_id: str) -> list[CatalogItem]:
        """A Catalog query about one ID: our platform, the whole catalog; a group of the tree,
        what sits directly under it; a shared channel, itself; anything else, nothing (the same
        answer for an ID outside the share as for one that does not exist)."""
        if device_id == scope.platform_id:
            return await self.items(scope)
        if scope.is_group(device_id) or (len(device_id) == 20 and device_id[10:13] in _GROUP_TYPES
                                         and not scope.reserved(device_id)):
            everything = await self.items(scope)
            return [it for it in everything if device_id in it.parent_ids]
        ch = await self.channel(scope, device_id)
        if ch is None:
            return []
        passed = {g.device_id for g in await self.lower_groups(scope, [ch])}
        return [channel_item(scope, ch, passed)]

    async def channel(self, scope: UpperScope, upper_id: str) -> SharedChannel | None:
        """The shared channel the upper names ``upper_id`` (its numbering), or None."""
        local = scope.local_id(upper_id)
        if local is None:
            return None
        rows = await self._rows(scope, "channels.id = :cascade_id", {"cascade_id": local}, limit=1)
        return rows[0] if rows else None

    async def by_local_ids(self, scope: UpperScope, ids: Iterable[str]) -> list[SharedChannel]:
        wanted = sorted(set(ids))
        if not wanted:
            return []
        params = {f"cascade_id{i}": v for i, v in enumerate(wanted)}
        names = ", ".join(":" + k for k in params)
        return await self._rows(scope, f"channels.id IN ({names})", params)

    async def count(self, scope: UpperScope) -> int:
        p: dict[str, Any] = {}
        async with self.sessions() as s:
            return int(await s.scalar(text(f"SELECT COUNT(*) FROM channels WHERE {scope.sql(p)}"), p) or 0)


def _fingerprint(item: CatalogItem) -> tuple[Any, ...]:
    return (item.name, item.manufacturer, item.model, item.civil_code, item.address, tuple(item.parent_ids),
            item.longitude, item.latitude, item.ptz_type, item.business_group_id)


class CatalogDiff:
    """What the upper was last told, and what changed since (catalog NOTIFY items)."""

    def __init__(self) -> None:
        self.known: dict[str, tuple[tuple[Any, ...], str]] | None = None

    def reset(self, items: Sequence[CatalogItem]) -> None:
        self.known = {it.device_id: (_fingerprint(it), it.status) for it in items}

    def changes(self, items: Sequence[CatalogItem]) -> list[CatalogItem]:
        """The NOTIFY items taking the upper from what it knew to ``items``; remembers them."""
        if self.known is None:
            self.reset(items)
            return []
        out: list[CatalogItem] = []
        now: dict[str, tuple[tuple[Any, ...], str]] = {}
        for it in items:
            fp = (_fingerprint(it), it.status)
            now[it.device_id] = fp
            before = self.known.get(it.device_id)
            if before is None:
                out.append(_with_event(it, "ADD"))
            elif before[0] != fp[0]:
                out.append(_with_event(it, "UPDATE"))
            elif before[1] != fp[1]:
                out.append(CatalogItem(device_id=it.device_id, event="ON" if it.status == "ON" else "OFF"))
        for gone in self.known.keys() - now.keys():
            out.append(CatalogItem(device_id=gone, event="DEL"))
        self.known = now
        return out


def _with_event(item: CatalogItem, event: str) -> CatalogItem:
    return replace(item, event=event)
