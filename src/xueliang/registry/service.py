"""Registry service: divisions, units, platforms, devices, channels (建).

Knows nothing of HTTP. Every write validates first and commits once, so a failure leaves the
database as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from xueliang.bus import Bus, EventBus
from xueliang.db.paging import keyset, page_of
from xueliang.db.tables import Channel, Device, Division, Platform, Unit
from xueliang.errors import Conflict, Invalid, NotFound
from xueliang.gb28181.credentials import seal_device_password
from xueliang.gb28181.ids import division_code_of, parse_gb_id
from xueliang.registry import vocab
from xueliang.registry.models import (
    ChannelFields,
    ChannelFilter,
    ChannelIn,
    DeviceIn,
    DevicePatch,
    DivisionIn,
    PlatformIn,
    UnitIn,
    UnitPatch,
)
from xueliang.sealing import Sealer

CHANNEL_KEYS = ["division_code", "id"]
_T = TypeVar("_T")


def _escape_like(q: str) -> str:
    return q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def channel_conditions(f: ChannelFilter) -> list[Any]:
    """SQL conditions for a channel filter; shared by listings, statistics and exports."""
    c: list[Any] = []
    if f.division:
        lo, hi = vocab.subtree_bounds(f.division)
        c += [Channel.division_code >= lo, Channel.division_code < hi]
    if f.department is not None:
        c.append(Channel.department == f.department)
    if f.unit_id is not None:
        c.append(Channel.unit_id == f.unit_id)
    if f.device_id is not None:
        c.append(Channel.device_id == f.device_id)
    if f.point_class is not None:
        c.append(Channel.point_class == f.point_class)
    if f.coverage is not None:
        c.append(Channel.coverage == f.coverage)
    if f.tier is not None:
        c.append(Channel.tier == f.tier)
    if f.status is not None:
        c.append(Channel.status == f.status)
    if f.kind is not None:
        c.append(Channel.kind == f.kind)
    if f.key_site is not None:
        c.append(Channel.key_site == f.key_site)
    if f.networked is not None:
        c.append(Channel.networked == f.networked)
    if f.bbox is not None:
        w, s, e, n = f.bbox
        c += [
            Channel.longitude >= w,
            Channel.longitude <= e,
            Channel.latitude >= s,
            Channel.latitude <= n,
        ]
    if f.q:
        q = f.q.strip()
        like = f"%{_escape_like(q)}%"
        ors: list[Any] = [
            Channel.name.like(like, escape="\\"),
            Channel.address.like(like, escape="\\"),
        ]
        if q.isdigit():
            ors.append(Channel.id.like(f"{q}%"))
        c.append(or_(*ors))
    return c


def _holds(model: Any, conditions: Sequence[Any] = ()) -> list[Any]:
    """EXISTS a row of ``model`` whose division is the division or below it (an index range)."""
    col = model.division_code
    return [
        select(col).where(col >= Division.code, col < Division.code + ":", *conditions).limit(1).exists()
    ]


async def _get(s: AsyncSession, model: type[_T], key: Any, what: str) -> _T:
    """The row, or NotFound naming it: every get, update and delete starts here."""
    row = await s.get(model, key)
    if row is None:
        raise NotFound(f"{what} {key} not found")
    return row


class RegistryService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], bus: Bus | None = None, *,
        sealer: Sealer | None = None,
    ) -> None:
        self.sessions = sessions
        self.bus: Bus = bus or EventBus()
        #: Device SIP passwords are sealed before they are stored (gb28181/credentials.py).
        self.sealer = sealer

    async def _one(self, model: type[_T], key: Any, what: str) -> _T:
        async with self.sessions() as s:
            return await _get(s, model, key, what)

    async def _page(
        self, stmt: Select[Any], order: list[InstrumentedAttribute[Any]], keys: list[str], cursor: str | None,
        limit: int,
    ) -> tuple[list[Any], str | None]:
        """One page of ``stmt`` in the order of the columns ``order`` (named ``keys`` in the cursor)."""
        async with self.sessions() as s:
            rows = list((await s.scalars(keyset(stmt, order, cursor, limit))).all())
        return page_of(rows, keys, limit)

    # ---- divisions ---------------------------------------------------------------------
    async def upsert_division(self, d: DivisionIn) -> Division:
        async with self.sessions() as s, s.begin():
            if vocab.division_level(d.code) == "grid":
                return await self._upsert_grid(s, d)
            return await self._upsert_division(s, d.code, d.name)

    async def _upsert_grid(self, s: AsyncSession, d: DivisionIn) -> Division:
        """A grid (网格) under the county, township or village named, or the longest registered
        one whose code begins the grid's."""
        parent = d.parent_code
        if parent is None:
            for n in (12, 9, 6):
                if await s.get(Division, d.code[:n]) is not None:
                    parent = d.code[:n]
                    break
            else:
                raise Invalid(f"no registered county, township or village begins grid code {d.code}")
        elif await s.get(Division, parent) is None:
            raise Invalid(f"parent division {parent} of grid {d.code} is not registered")
        boundary = None if d.boundary is None else json.dumps(d.boundary, separators=(",", ":"))
        row = await s.get(Division, d.code)
        if row is None:
            row = Division(code=d.code, name=d.name, level="grid", parent_code=parent,
                           source="local", historical=False, boundary=boundary)
            s.add(row)
        else:
            row.name, row.parent_code = d.name, parent
            if boundary is not None:
                row.boundary = boundary
        return row

    async def _upsert_division(self, s: AsyncSession, code: str, name: str) -> Division:
        parent = vocab.parent_division(code)
        if parent is not None and await s.get(Division, parent) is None:
            raise Invalid(f"parent division {parent} of {code} is not registered")
        row = await s.get(Division, code)
        if row is None:
            row = Division(
                code=code, name=name, level=vocab.division_level(code), parent_code=parent
            )
            s.add(row)
        else:
            row.name = name
        return row

    async def get_division(self, code: str) -> Division:
        return await self._one(Division, code, "division")

    async def list_divisions(
        self,
        parent: str | None = None,
        under: str | None = None,
        q: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
        *,
        in_use: bool = False,
        level: str | None = None,
        extra: Sequence[Any] = (),
        channel_scope: Sequence[Any] | None = None,
    ) -> tuple[list[Division], str | None]:
        """A page of divisions by code. ``in_use``: only those that matter to this platform out
        of the national list's ~45,000: a division entered here (not from the list), or one with
        such a division, a channel or a unit in its subtree (what the console's tree starts from).
        ``channel_scope``: a scoped reader's conditions on channels; then only their channels
        count (and no units), so that the tree tells nothing of cameras out of their scope."""
        stmt = select(Division).where(*extra)
        if parent is not None:
            stmt = stmt.where(Division.parent_code == parent)
        if level is not None:
            stmt = stmt.where(Division.level == level)
        if in_use:
            # above a division entered here: few rows, so their ancestors are listed outright
            async with self.sessions() as s:
                local = (await s.scalars(select(Division.code).where(Division.source != "national"))).all()
            above = sorted({c[:n] for c in local for n in (2, 4, 6, 9, 12) if n < len(c)})
            holds = (
                [*_holds(Channel), *_holds(Unit)] if channel_scope is None
                else _holds(Channel, channel_scope)
            )
            stmt = stmt.where(or_(Division.source != "national", Division.code.in_(above), *holds))
        if under:
            lo, hi = vocab.subtree_bounds(under)
            stmt = stmt.where(Division.code >= lo, Division.code < hi)
        if q:
            stmt = stmt.where(Division.name.like(f"%{_escape_like(q)}%", escape="\\"))
        return await self._page(stmt, [Division.code], ["code"], cursor, limit)

    async def delete_division(self, code: str) -> None:
        async with self.sessions() as s, s.begin():
            row = await _get(s, Division, code, "division")
            child = await s.scalar(
                select(Division.code).where(Division.parent_code == code).limit(1)
            )
            if row.source == "national":
                raise Conflict(
                    f"division {code} is in the national list: a newer list retires it (kept as historical)"
                )
            used = await s.scalar(select(Channel.id).where(Channel.division_code == code).limit(1))
            if child or used:
                raise Conflict(f"division {code} still has sub-divisions or channels")
            await s.delete(row)

    async def known_divisions(self, codes: Iterable[str]) -> set[str]:
        codes = list(set(codes))
        found: set[str] = set()
        async with self.sessions() as s:
            for i in range(0, len(codes), 500):
                found.update(
                    (
                        await s.scalars(
                            select(Division.code).where(Division.code.in_(codes[i : i + 500]))
                        )
                    ).all()
                )
        return found

    # ---- units -------------------------------------------------------------------------
    async def create_unit(self, u: UnitIn) -> Unit:
        async with self.sessions() as s, s.begin():
            await self._check_division(s, u.division_code)
            row = Unit(**u.model_dump())
            s.add(row)
            try:
                await s.flush()
            except IntegrityError as exc:
                raise Conflict(f"unit {u.name!r} already exists") from exc
            return row

    async def _check_division(self, s: AsyncSession, code: str | None) -> None:
        if code and await s.get(Division, code) is None:
            raise Invalid(f"unknown division code {code}")

    async def get_unit(self, unit_id: int) -> Unit:
        return await self._one(Unit, unit_id, "unit")

    async def list_units(
        self,
        *,
        q: str | None = None,
        department: str | None = None,
        division: str | None = None,
        category: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
        extra: Sequence[Any] = (),
    ) -> tuple[list[Unit], str | None]:
        stmt = select(Unit).where(*extra)
        if q:
            stmt = stmt.where(Unit.name.like(f"%{_escape_like(q)}%", escape="\\"))
        if department is not None:
            stmt = stmt.where(Unit.department == department)
        if division:
            lo, hi = vocab.subtree_bounds(division)
            stmt = stmt.where(Unit.division_code >= lo, Unit.division_code < hi)
        if category:
            stmt = stmt.where(Unit.category == category)
        return await self._page(stmt, [Unit.id], ["id"], cursor, limit)

    async def update_unit(self, unit_id: int, patch: UnitPatch) -> Unit:
        data = patch.model_dump(exclude_unset=True)
        async with self.sessions() as s, s.begin():
            row = await _get(s, Unit, unit_id, "unit")
            await self._check_division(s, data.get("division_code"))
            for k, v in data.items():
                setattr(row, k, v)
            if "department" in data:
                await s.execute(
                    update(Channel)
                    .where(Channel.unit_id == unit_id)
                    .values(department=row.department)
                )
            try:
                await s.flush()
            except IntegrityError as exc:
                raise Conflict(f"unit {patch.name!r} already exists") from exc
            return row

    async def delete_unit(self, unit_id: int) -> None:
        async with self.sessions() as s, s.begin():
            row = await _get(s, Unit, unit_id, "unit")
            await s.execute(
                update(Channel)
                .where(Channel.unit_id == unit_id)
                .values(unit_id=None, department=None)
            )
            await s.delete(row)

    # ---- platforms ---------------------------------------------------------------------
    async def create_platform(self, p: PlatformIn) -> Platform:
        async with self.sessions() as s, s.begin():
            if await s.get(Unit, p.unit_id) is None:
                raise Invalid(f"unit {p.unit_id} not found")
            row = Platform(**p.model_dump())
            s.add(row)
            try:
                await s.flush()
            except IntegrityError as exc:
                raise Conflict(
                    f"unit {p.unit_id} already has a platform segment {p.segment!r}"
                ) from exc
            return row

    async def get_platform(self, platform_id: int) -> Platform:
        return await self._one(Platform, platform_id, "platform")

    async def list_platforms(
        self,
        *,
        unit_id: int | None = None,
        q: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
        extra: Sequence[Any] = (),
    ) -> tuple[list[Platform], str | None]:
        stmt = select(Platform).where(*extra)
        if unit_id is not None:
            stmt = stmt.where(Platform.unit_id == unit_id)
        if q:
            like = f"%{_escape_like(q)}%"
            stmt = stmt.where(
                or_(
                    Platform.platform_maker.like(like, escape="\\"),
                    Platform.platform_model.like(like, escape="\\"),
                    Platform.segment.like(like, escape="\\"),
                )
            )
        return await self._page(stmt, [Platform.id], ["id"], cursor, limit)

    async def update_platform(self, platform_id: int, data: dict[str, Any]) -> Platform:
        async with self.sessions() as s, s.begin():
            row = await _get(s, Platform, platform_id, "platform")
            merged = PlatformIn.model_validate(
                {**{c: getattr(row, c) for c in PlatformIn.model_fields}, **data}
            )
            for k, v in merged.model_dump().items():
                setattr(row, k, v)
            return row

    async def delete_platform(self, platform_id: int) -> None:
        async with self.sessions() as s, s.begin():
            row = await _get(s, Platform, platform_id, "platform")
            await s.delete(row)

    # ---- devices -----------------------------------------------------------------------
    async def create_device(self, d: DeviceIn) -> Device:
        async with self.sessions() as s, s.begin():
            if await s.get(Device, d.id) is not None:
                raise Conflict(f"device {d.id} already exists")
            row = Device(**d.model_dump(), type_code=f"{parse_gb_id(d.id).type_code:03d}")
            row.password = self._sealed_password(d.id, row.password)
            s.add(row)
        self._device_changed(row)
        return row

    def _sealed_password(self, device_id: str, password: str | None) -> str | None:
        if password is None or self.sealer is None:
            return password
        return seal_device_password(self.sealer, device_id, password)

    def _device_changed(self, row: Device) -> None:
        """Signalling mirrors admission and passwords in memory; tell it (the password sealed)."""
        self.bus.publish("registry.device.changed", row.id, password=row.password, admission=row.admission)

    async def get_device(self, device_id: str) -> Device:
        return await self._one(Device, device_id, "device")

    async def list_devices(
        self,
        *,
        q: str | None = None,
        online: bool | None = None,
        admission: str | None = None,
        unit_id: int | None = None,
        cursor: str | None = None,
        limit: int = 100,
        extra: Sequence[Any] = (),
    ) -> tuple[list[Device], str | None]:
        stmt = select(Device).where(*extra)
        if q:
            like = f"%{_escape_like(q)}%"
            stmt = stmt.where(
                or_(
                    Device.name.like(like, escape="\\"),
                    Device.id.like(f"{_escape_like(q)}%", escape="\\"),
                )
            )
        if online is not None:
            stmt = stmt.where(Device.online == online)
        if admission is not None:
            stmt = stmt.where(Device.admission == admission)
        if unit_id is not None:
            stmt = stmt.where(Device.unit_id == unit_id)
        return await self._page(stmt, [Device.id], ["id"], cursor, limit)

    async def update_device(self, device_id: str, patch: DevicePatch) -> Device:
        async with self.sessions() as s, s.begin():
            row = await _get(s, Device, device_id, "device")
            for k, v in patch.model_dump(exclude_unset=True).items():
                setattr(row, k, self._sealed_password(device_id, v) if k == "password" else v)
        self._device_changed(row)
        return row

    async def delete_device(self, device_id: str) -> None:
        async with self.sessions() as s, s.begin():
            row = await _get(s, Device, device_id, "device")
            await s.execute(
                update(Channel).where(Channel.device_id == device_id).values(device_id=None)
            )
            await s.delete(row)

    # ---- channels ----------------------------------------------------------------------
    async def _channel_refs(self, s: AsyncSession, data: dict[str, Any]) -> None:
        """Check references and fill derived fields (department, retention) in ``data``."""
        if data.get("division_code"):
            await self._check_division(s, data["division_code"])
        if data.get("unit_id") is not None:
            unit = await s.get(Unit, data["unit_id"])
            if unit is None:
                raise Invalid(f"unit {data['unit_id']} not found")
            data["department"] = unit.department
        if data.get("device_id") is not None and await s.get(Device, data["device_id"]) is None:
            raise Invalid(f"device {data['device_id']} not found")
        if "key_site" in data and "retention_days_required" not in data:
            data["retention_days_required"] = (
                vocab.RETENTION_DAYS_KEY_SITE if data["key_site"] else vocab.RETENTION_DAYS
            )

    async def create_channel(self, c: ChannelIn) -> Channel:
        data = c.model_dump(exclude_none=True)
        async with self.sessions() as s, s.begin():
            if await s.get(Channel, c.id) is not None:
                raise Conflict(f"channel {c.id} already exists")
            await self._channel_refs(s, data)
            if not data.get("division_code"):
                data["division_code"] = division_code_of(c.id)
            kind = "group" if parse_gb_id(c.id).type_code in (215, 216) else "camera"
            row = Channel(**data, kind=kind)
            s.add(row)
            return row

    async def get_channel(self, channel_id: str) -> Channel:
        return await self._one(Channel, channel_id, "channel")

    async def list_channels(
        self,
        f: ChannelFilter,
        cursor: str | None = None,
        limit: int = 100,
        extra: Sequence[Any] = (),
    ) -> tuple[list[Channel], str | None]:
        """One page ordered by (division, id). ``extra`` are further SQL conditions (scopes)."""
        stmt = select(Channel).where(*channel_conditions(f), *extra)
        return await self._page(stmt, [Channel.division_code, Channel.id], CHANNEL_KEYS, cursor, limit)

    async def count_channels(self, f: ChannelFilter, extra: Sequence[Any] = ()) -> int:
        async with self.sessions() as s:
            return int(
                await s.scalar(
                    select(func.count()).select_from(Channel).where(*channel_conditions(f), *extra)
                )
                or 0
            )

    async def update_channel(self, channel_id: str, patch: ChannelFields) -> Channel:
        data = patch.model_dump(exclude_unset=True)
        async with self.sessions() as s, s.begin():
            row = await _get(s, Channel, channel_id, "channel")
            lon = data.get("longitude", row.longitude)
            lat = data.get("latitude", row.latitude)
            try:
                vocab.check_coordinates(lon, lat)
            except ValueError as exc:
                raise Invalid(str(exc)) from exc
            await self._channel_refs(s, data)
            for k, v in data.items():
                setattr(row, k, v)
            return row

    async def delete_channel(self, channel_id: str) -> None:
        async with self.sessions() as s, s.begin():
            res = await s.execute(delete(Channel).where(Channel.id == channel_id))
            if res.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"channel {channel_id} not found")

    async def channels_near(
        self, lon: float, lat: float, radius_m: float, per_tier: int = 3, extra: Sequence[Any] = ()
    ) -> dict[str, list[tuple[Channel, float]]]:
        """立体化联动: the nearest cameras of each tier around a place."""
        import math

        dlat = radius_m / 111_320.0
        dlon = radius_m / (111_320.0 * max(math.cos(math.radians(lat)), 0.01))
        stmt = select(Channel).where(
            Channel.kind == "camera",
            Channel.longitude.between(lon - dlon, lon + dlon),
            Channel.latitude.between(lat - dlat, lat + dlat),
            *extra,
        )
        async with self.sessions() as s:
            rows = list((await s.scalars(stmt)).all())
        out: dict[str, list[tuple[Channel, float]]] = {"high": [], "building": [], "street": []}
        for r in rows:
            assert r.longitude is not None and r.latitude is not None
            d = _haversine(lon, lat, r.longitude, r.latitude)
            if d <= radius_m and r.tier in out:
                out[r.tier].append((r, d))
        return {k: sorted(v, key=lambda t: t[1])[:per_tier] for k, v in out.items()}


def _haversine(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    import math

    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(a))


__all__ = ["RegistryService", "and_", "channel_conditions"]
