"""Catalog items into the registry: what the device reports fills in the channel points.

The registry is authoritative for what the survey decided (name, class, tier, coverage, unit,
division, coordinates); the device is authoritative for what it knows (status, parent, model).
So: new channels take everything from the catalog; existing ones take the device's fields and
fill only the survey fields that are still empty.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Channel, Device
from xueliang.db.upsert import batch_size, insert_for
from xueliang.gb28181.ids import division_code_of, is_valid_gb_id, type_code_of
from xueliang.gb28181.manscdp import CatalogItem
from xueliang.registry.vocab import check_coordinates

_CH: Table = Channel.__table__  # type: ignore[assignment]
_DEV: Table = Device.__table__  # type: ignore[assignment]
DEVICE_FIELDS = ("device_id", "parent_id", "status", "networked", "manufacturer", "model", "resolution", "kind")
_STATUS_EVENTS = ("ON", "OFF", "VLOST", "DEFECT")
GAP_FIELDS = ("name", "division_code", "longitude", "latitude", "address", "ptz_type")


def _division(item: CatalogItem) -> str:
    code = (item.civil_code or "").strip()
    if code.isdigit() and len(code) in (2, 4, 6, 8, 9, 12):
        return code[:6] if len(code) == 8 and code.endswith("00") else code
    return division_code_of(item.device_id)


def _coords(item: CatalogItem) -> tuple[float | None, float | None]:
    lon, lat = item.longitude, item.latitude
    if lon is None or lat is None or (lon == 0 and lat == 0):
        return None, None
    try:
        check_coordinates(lon, lat)
    except ValueError:
        return None, None
    return lon, lat


def _civil_node(device_id: str) -> bool:
    """A civil-code node (行政区划) of a platform's catalog tree: 2, 4, 6 or 8 digits."""
    return device_id.isascii() and device_id.isdigit() and len(device_id) in (2, 4, 6, 8)


def rows_from_catalog(device_id: str, items: list[CatalogItem]) -> list[dict[str, Any]]:
    """Channel rows of a catalog: cameras, and the nodes of the device's tree as ``kind =
    'group'`` (business groups 215, virtual organisations 216, other non-camera IDs, and the
    civil-code nodes lower platforms report, whose ID is their division code)."""
    rows = []
    for it in items:
        civil = _civil_node(it.device_id)
        if not (civil or is_valid_gb_id(it.device_id)) or it.device_id == device_id:
            continue
        t = 0 if civil else type_code_of(it.device_id)
        kind = "camera" if 131 <= t <= 139 or t == 121 else "group"
        lon, lat = _coords(it)
        status = (it.status or "").upper()
        if status in ("ONLINE", "ON", "OK"):
            status = "ON"
        elif status in ("OFFLINE", "OFF"):
            status = "OFF"
        elif status not in ("VLOST", "DEFECT"):
            status = "UNKNOWN"
        rows.append({
            "id": it.device_id, "name": (it.name or it.device_id)[:200], "kind": kind, "device_id": device_id,
            "parent_id": (it.parent_id or device_id)[:20],
            "division_code": it.device_id if civil else _division(it), "status": status,
            "networked": True, "manufacturer": (it.manufacturer or None), "model": (it.model or None),
            "resolution": (it.resolution or None), "longitude": lon, "latitude": lat,
            "address": (it.address or None), "ptz_type": it.ptz_type,
        })
    return rows


#: Told (channel id, new status, device id) for every camera whose status the catalog changed.
StatusSink = Callable[[list[tuple[str, str, str]]], None]


async def store_catalog(sessions: async_sessionmaker[AsyncSession], device_id: str, items: list[CatalogItem],
                        *, on_status: StatusSink | None = None) -> int:
    """Upsert one device's catalog (`store_catalogs` with one)."""
    return await store_catalogs(sessions, [(device_id, items)], on_status=on_status)


async def store_catalogs(sessions: async_sessionmaker[AsyncSession], catalogs: list[tuple[str, list[CatalogItem]]],
                         *, on_status: StatusSink | None = None) -> int:
    """Upsert the catalogs' channels (and drop DEL events), in one transaction, as if stored
    one after another in the order given. Returns rows written.

    One transaction for many devices: after a mass registration thousands of one-camera
    catalogs arrive within seconds, and a transaction each was what limited how fast the
    platform learnt them (SQLite serialises writers; each waits for the lock).

    ``on_status`` hears of every camera whose status (ON, OFF, VLOST, DEFECT, UNKNOWN) a catalog
    changed or first set: the state history is made of these."""
    changed_status: list[tuple[str, str, str]] = []
    async with sessions() as s, s.begin():
        plans = [_Plan(device_id, items) for device_id, items in catalogs]
        written = sum(len(p.rows) for p in plans)
        if on_status is not None:
            await _status_changes(s, plans, changed_status)
        stmt = _upsert(s)
        n = batch_size(s, 16)
        # Consecutive catalogs' rows go in one upsert, until one has events (its updates and
        # deletes must come after what preceded it and before what follows) or names a
        # channel already in the upsert (no statement may touch a row twice: PostgreSQL
        # refuses it, and the later catalog must win).
        pending: list[dict[str, Any]] = []
        ids: set[str] = set()

        async def upsert() -> None:
            for i in range(0, len(pending), n):
                await s.execute(stmt, pending[i:i + n])
            pending.clear()
            ids.clear()

        for p in plans:
            if any(r["id"] in ids for r in p.live):
                await upsert()
            pending.extend(p.live)
            ids.update(r["id"] for r in p.live)
            if not (p.status_only or p.deleted):
                continue
            await upsert()
            for r in p.rows:
                if r["id"] in p.status_only and r["id"] not in p.deleted:
                    await s.execute(_CH.update().where(_CH.c.id == r["id"], _CH.c.device_id == p.device_id,
                                                       _CH.c.status.is_distinct_from(r["status"]))
                                    .values(status=r["status"], updated_at=func.now()))
            if p.deleted:
                await s.execute(_CH.delete().where(_CH.c.id.in_(p.deleted), _CH.c.device_id == p.device_id))
        await upsert()
        counts = [{"b_id": p.device_id, "b_n": p.cameras} for p in plans if p.full]
        if counts:
            await s.execute(_DEV.update().where(_DEV.c.id == bindparam("b_id"),
                                                _DEV.c.channel_count.is_distinct_from(bindparam("b_n")))
                            .values(channel_count=bindparam("b_n")), counts)
    if on_status is not None and changed_status:
        on_status(changed_status)
    return written


class _Plan:
    """What one catalog asks of the channel table."""

    def __init__(self, device_id: str, items: list[CatalogItem]) -> None:
        self.device_id = device_id
        self.rows = rows_from_catalog(device_id, items)
        self.deleted = [it.device_id for it in items if (it.event or "").upper() == "DEL"]
        # ON/OFF/VLOST/DEFECT events carry only DeviceID and Event: they change the status and
        # nothing else (not the parent a lower platform reported, nor the maker and model).
        self.status_only = {it.device_id for it in items if (it.event or "").upper() in _STATUS_EVENTS and not it.name}
        self.live = [r for r in self.rows if r["id"] not in self.deleted and r["id"] not in self.status_only]
        #: a whole catalog (no events): it says how many cameras the device has
        self.full = not any((it.event or "") for it in items)
        self.cameras = sum(1 for r in self.rows if r["kind"] == "camera")


async def _status_changes(s: AsyncSession, plans: list[_Plan], out: list[tuple[str, str, str]]) -> None:
    """The cameras whose status the catalogs change or first set, in order."""
    ids = list({r["id"] for p in plans for r in p.rows if r["kind"] == "camera"} | {c for p in plans for c in p.deleted})
    before: dict[str, tuple[str, str | None]] = {}
    for i in range(0, len(ids), 1000):
        for cid, st, dev in (await s.execute(select(_CH.c.id, _CH.c.status, _CH.c.device_id)
                                             .where(_CH.c.id.in_(ids[i:i + 1000])))).all():
            before[cid] = (st, dev)
    for p in plans:
        cams = {r["id"]: r["status"] for r in p.rows if r["kind"] == "camera" and r["id"] not in p.deleted}
        for cid, st in cams.items():
            old = before.get(cid)
            if old is None or (old[0] != st and old[1] in (None, p.device_id)):
                out.append((cid, st, p.device_id))
            # what the next catalog of the batch finds: the row as this one leaves it
            if cid in p.status_only:
                writes = old is not None and old[1] == p.device_id  # an UPDATE of its own row
            else:
                writes = old is None or old[1] in (None, p.device_id)  # the upsert's ownership rule
            if writes:
                before[cid] = (st, p.device_id)
        for cid in p.deleted:
            old = before.get(cid)
            if old is not None and old[1] == p.device_id:  # the DELETE of its own row
                del before[cid]


def _upsert(s: AsyncSession) -> Any:
    ins = insert_for(s, _CH)
    ex = ins.excluded
    set_: dict[str, Any] = {f: ex[f] for f in DEVICE_FIELDS}
    for f in GAP_FIELDS:
        set_[f] = func.coalesce(_CH.c[f], ex[f])
    set_["updated_at"] = func.now()
    # Only rows the catalog really changes are written (and get a new updated_at, which the
    # console's maps poll): a lower platform re-reporting 100,000 unchanged channels every
    # hour must not make every open map download them all again.
    changed = or_(*(_CH.c[f].is_distinct_from(ex[f]) for f in DEVICE_FIELDS),
                  *(and_(_CH.c[f].is_(None), ex[f].is_not(None)) for f in GAP_FIELDS))
    # A device reports its own channels only: a channel of another device is not moved to
    # this one (its INVITEs, and so its video, would then come from the claimant).
    own = or_(_CH.c.device_id.is_(None), _CH.c.device_id == ex.device_id)
    return ins.on_conflict_do_update(index_elements=[_CH.c.id], set_=set_, where=and_(own, changed))
