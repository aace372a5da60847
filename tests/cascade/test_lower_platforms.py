"""Lower platforms (下级平台) as platforms at their upper (issue 15, item 3).

A whole xueliang platform (the county, with a simulated camera device) registers over real UDP
to another (the city) as its lower platform, sharing its cameras under a business group (215)
and a virtual organisation (216). At the city, through its API:

- the county is a device of ``kind: platform`` (listed with ``?kind=platform``, not with
  ``?kind=device``), with its online state and its channel count, and its catalog tree kept:
  the 215/216 groups it reported, each channel under its parent;
- a department user sees the platform and only the channels of it that are granted to the
  department, and the platform row shows that user no network address; another department's
  user sees neither (the same "not found" as an ID that does not exist);
- the county going away shows the platform offline at once (it unregisters).

And, without SIP: a device of another type that reports 215/216 groups is a platform too; a
status event (ON/OFF with only DeviceID and Event) changes the status and nothing else (not the
parent the platform reported, nor the maker and model).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.ports import free_port
from tests.waiting import until

from xueliang.app import Platform
from xueliang.cascade.share import Share
from xueliang.cascade.uppers import UpperIn
from xueliang.config import Settings
from xueliang.db.tables import Channel, Device
from xueliang.gb28181.manscdp import CatalogItem
from xueliang.registry.catalog_store import store_catalog
from xueliang.registry.platforms import is_platform, platform_ids
from xueliang.sim.simulator import Simulator

CITY = "34010000002000000001"
COUNTY = "34010200002000000001"
PASSWORD = "cascade-pass-1"
BG = "34010200002150000001"
ORG = "34010200002160000001"


def platform_settings(tmp: Path, name: str, sip_id: str, port: int) -> Settings:
    (tmp / name).mkdir(exist_ok=True)
    return Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp}/{name}/x.db"}, storage={"var_dir": tmp / name},
        secret_key="test-secret-0123456789abcdef", bootstrap_admin="root", bootstrap_password="Root-pass-1",
        sip={"enabled": True, "host": "127.0.0.1", "port": port, "id": sip_id, "password": PASSWORD,
             "admission": "open"},
        media={"enabled": False}, access={"totp_required_roles": []},
    )


async def bearer(p: Platform, name: str, role: str, **kw: Any) -> dict[str, str]:
    u = await p.users.create(name, "Dept-pass-12345", role, **kw)
    return {"Authorization": f"Bearer {p.users.issue(u)}"}


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    ports = {"city": free_port(), "county": free_port()}
    city = Platform(platform_settings(tmp_path, "city", CITY, ports["city"]))
    county = Platform(platform_settings(tmp_path, "county", COUNTY, ports["county"]))
    await city.start()
    await county.start()
    sim = Simulator(f"127.0.0.1:{ports['county']}", devices=1, channels=2, password=PASSWORD, server_id=COUNTY,
                    center_code="34010201", video=False)
    await sim.start()
    from xueliang.api.main import create_app

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(city, manage_lifecycle=False)),
                               base_url="http://test")
    w: dict[str, Any] = {"city": city, "county": county, "sim": sim, "ports": ports, "client": client}
    try:
        assert await sim.wait_registered(1, timeout=10)
        yield w
    finally:
        await client.aclose()
        await w["sim"].stop()
        await w["county"].stop()
        await city.stop()


async def test_a_lower_platform_is_a_platform_with_its_tree_and_scope(pair: dict[str, Any]) -> None:
    city, county, sim, client = pair["city"], pair["county"], pair["sim"], pair["client"]
    cam, other = sorted(sim.devices[0].channels)

    async def at_county() -> bool:
        async with county.sessions() as s:
            return await s.get(Channel, cam) is not None

    await until(at_county)
    await county.uppers.create(UpperIn(
        name="市平台", sip_id=CITY, host="127.0.0.1", port=pair["ports"]["city"], password=PASSWORD,
        keepalive_interval=5, share=Share(all=True, business_group={"id": BG, "name": "县公安局"},
                                          organisations=[{"id": ORG, "name": "一类点", "channels": [cam]}])))

    async def at_city() -> bool:
        async with city.sessions() as s:
            return await s.get(Channel, cam) is not None and await s.get(Channel, other) is not None

    await until(at_city)
    admin = await bearer(city, "boss", "administrator")
    r = await client.get("/api/v1/devices", params={"kind": "platform"}, headers=admin)
    assert r.status_code == 200, r.text
    [row] = r.json()["items"]
    assert (row["id"], row["kind"], row["online"], row["channel_count"]) == (COUNTY, "platform", True, 2)
    assert row["remote_host"] == "127.0.0.1"  # who manages the registry sees where it is
    assert COUNTY not in [d["id"] for d in (await client.get("/api/v1/devices", params={"kind": "device"},
                                                             headers=admin)).json()["items"]]
    assert (await client.get(f"/api/v1/devices/{COUNTY}", headers=admin)).json()["kind"] == "platform"
    assert (await client.get("/api/v1/devices", params={"kind": "nvr"}, headers=admin)).status_code == 422

    # Its catalog tree: business group → organisation → the first camera; the other under the group.
    tree = (await client.get("/api/v1/channels", params={"device_id": COUNTY, "kind": "", "limit": 100},
                             headers=admin)).json()["items"]
    parents = {c["id"]: (c["kind"], c["parent_id"]) for c in tree}
    assert parents == {BG: ("group", COUNTY), ORG: ("group", BG), cam: ("camera", ORG), other: ("camera", BG)}

    # A department granted the first camera sees the platform (no address) and that camera only.
    async with city.sessions() as s:
        await s.execute(update(Channel).where(Channel.id == cam).values(department="教育局"))
        await s.execute(update(Channel).where(Channel.id == other).values(department="卫生局"))
        await s.commit()
    edu = await bearer(city, "edu", "department_user", department="教育局")
    [seen] = (await client.get("/api/v1/devices", params={"kind": "platform"}, headers=edu)).json()["items"]
    assert seen["id"] == COUNTY and seen["kind"] == "platform"
    assert seen["remote_host"] is None and seen["remote_port"] is None
    one = (await client.get(f"/api/v1/devices/{COUNTY}", headers=edu)).json()
    assert one["kind"] == "platform" and one["remote_host"] is None
    mine = (await client.get("/api/v1/channels", params={"device_id": COUNTY}, headers=edu)).json()["items"]
    assert [c["id"] for c in mine] == [cam]
    assert (await client.get(f"/api/v1/channels/{other}", headers=edu)).status_code == 404
    # A department granted nothing of it: neither the platform nor its channels, by any route.
    police = await bearer(city, "traffic", "department_user", department="交通局")
    assert (await client.get("/api/v1/devices", params={"kind": "platform"}, headers=police)).json()["items"] == []
    gone = await client.get(f"/api/v1/devices/{COUNTY}", headers=police)
    missing = await client.get("/api/v1/devices/34010200002000000099", headers=police)
    assert gone.status_code == missing.status_code == 404
    assert (await client.get("/api/v1/channels", params={"device_id": COUNTY}, headers=police)).json()["items"] == []
    # Granted the platform's second camera (a sharing grant): that camera, and the platform, only.
    r = await client.post("/api/v1/access/grants", json={"department": "交通局", "channel_ids": [other]}, headers=admin)
    assert r.status_code == 201, r.text
    granted = (await client.get("/api/v1/channels", params={"device_id": COUNTY, "kind": ""},
                                headers=police)).json()["items"]
    assert [c["id"] for c in granted] == [other]
    assert (await client.get(f"/api/v1/channels/{cam}", headers=police)).status_code == 404
    [seen] = (await client.get("/api/v1/devices", params={"kind": "platform"}, headers=police)).json()["items"]
    assert seen["id"] == COUNTY and seen["remote_host"] is None

    # The county goes away: it unregisters, and the platform shows offline at once.
    await sim.stop()  # first: a camera unregistering from a county already gone waits for nothing
    pair["sim"] = _Stopped()
    drivers = list(county.cascade.drivers.values()) if county.cascade is not None else []
    await county.stop()
    pair["county"] = _Stopped()

    async def offline() -> bool:
        async with city.sessions() as s:
            d = await s.get(Device, COUNTY)
            return d is not None and not d.online

    # The county's REGISTER Expires: 0 makes it offline at once. (Its stop came within a second
    # of its registration in a fast run; the city once challenged the unregistration with the
    # nonce already used, refused it as a replay, and kept the county online: 6 runs in 12.)
    await until(offline, timeout=10.0)
    assert [d.unregistered for d in drivers] == [True]
    r = await client.get("/api/v1/devices", params={"kind": "platform", "online": "false"}, headers=admin)
    assert [d["id"] for d in r.json()["items"]] == [COUNTY]


class _Stopped:
    async def stop(self) -> None:
        return None


NVR = "34020000001180000001"
PLAT = "34020000002000000007"
ORG2 = "34020000002160000001"
CAM = "34020000001310000001"


async def test_who_is_a_platform_and_status_events_keep_the_tree(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s:
        s.add_all([Device(id=NVR, name="NVR", type_code="118", online=True),
                   Device(id="34020000001180000002", name="plain NVR", type_code="118", online=True),
                   Device(id=PLAT, name="县平台", type_code="200", online=False)])
        await s.commit()
    # An NVR-numbered device that reports a virtual organisation (only platforms do) is one.
    await store_catalog(sessions, NVR, [
        CatalogItem(device_id=ORG2, name="一类点", parent_ids=[NVR]),
        CatalogItem(device_id=CAM, name="南门", manufacturer="海康威视", model="DS-2CD", status="ON",
                    parent_ids=[ORG2]),
    ])
    async with sessions() as s:
        rows = (await s.scalars(select(Device).order_by(Device.id))).all()
        listed = sorted((await s.scalars(select(Device.id).where(is_platform()))).all())
        others = sorted((await s.scalars(select(Device.id).where(is_platform(False)))).all())
    assert await platform_ids(sessions, rows) == {NVR, PLAT}
    assert listed == sorted([NVR, PLAT]) and others == ["34020000001180000002"]

    # An OFF event (DeviceID and Event only) changes the status, not the tree nor the maker.
    await store_catalog(sessions, NVR, [CatalogItem(device_id=CAM, event="OFF", status="OFF")])
    async with sessions() as s:
        ch = await s.get(Channel, CAM)
    assert ch is not None and (ch.status, ch.parent_id, ch.manufacturer, ch.model) == ("OFF", ORG2, "海康威视", "DS-2CD")
    # Another device's event about this camera changes nothing.
    await store_catalog(sessions, PLAT, [CatalogItem(device_id=CAM, event="ON", status="ON")])
    async with sessions() as s:
        ch = await s.get(Channel, CAM)
    assert ch is not None and ch.status == "OFF" and ch.device_id == NVR
    # Civil-code nodes (行政区划) a platform reports are kept in its tree too, cameras under them.
    await store_catalog(sessions, PLAT, [
        CatalogItem(device_id="3402", name="合肥市", parent_ids=[PLAT]),
        CatalogItem(device_id="340201", name="瑶海区", parent_ids=["3402"]),
        CatalogItem(device_id="34020000001310000009", name="北门", status="ON", parent_ids=["340201"]),
        CatalogItem(device_id="3402x1", name="junk"), CatalogItem(device_id="340", name="odd length"),
    ])
    async with sessions() as s:
        got = {c.id: (c.kind, c.parent_id, c.division_code)
               for c in (await s.scalars(select(Channel).where(Channel.device_id == PLAT))).all()}
    assert got == {"3402": ("group", PLAT, "3402"), "340201": ("group", "3402", "340201"),
                   "34020000001310000009": ("camera", "340201", "3402")}
    # A full UPDATE still moves it.
    await store_catalog(sessions, NVR, [CatalogItem(device_id=CAM, name="南门", status="ON", event="UPDATE",
                                                    parent_ids=[NVR])])
    async with sessions() as s:
        ch = await s.get(Channel, CAM)
    assert ch is not None and (ch.status, ch.parent_id) == ("ON", NVR)


async def test_groups_passed_up_only_the_devices_own_acyclic_and_never_clashing(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    """What a lower platform reported is passed up only as far as it is sound: its own groups
    (not another device's under the same ID), a cycle cut (each group once, parents first), a
    group with an ID the upper's view already uses not passed (the channel goes to the top)."""
    from xueliang.cascade.catalog import SharedCatalog
    from xueliang.cascade.share import UpperScope

    lower, other = "34020000002000000011", "34020000002000000012"
    g_a, g_b, g_c, g_x = (f"3402000000216000000{i}" for i in (1, 2, 3, 4))
    bg = "34020000002150000009"
    c1, c2, c3 = (f"3402000000131000000{i}" for i in (1, 2, 3))
    async with sessions() as s:
        s.add_all([Device(id=lower, name="县平台", type_code="200", online=True),
                   Device(id=other, name="另一平台", type_code="200", online=True)])
        await s.flush()
        s.add_all([
            Channel(id=g_a, name="甲", kind="group", device_id=lower, parent_id=g_b, division_code="3402"),
            Channel(id=g_b, name="乙", kind="group", device_id=lower, parent_id=g_a, division_code="3402"),  # cycle
            Channel(id=g_c, name="丙", kind="group", device_id=other, parent_id=other, division_code="3402"),
            Channel(id=g_x, name="冲突", kind="group", device_id=lower, parent_id=lower, division_code="3402"),
            Channel(id=c1, name="一", kind="camera", device_id=lower, parent_id=g_a, division_code="340201", status="ON"),
            Channel(id=c2, name="二", kind="camera", device_id=lower, parent_id=g_c, division_code="340201", status="ON"),
            Channel(id=c3, name="三", kind="camera", device_id=lower, parent_id=g_x, division_code="340201", status="ON"),
        ])
        await s.commit()
    scope = UpperScope(Share(all=True, business_group={"id": bg, "name": "市局"},
                             organisations=[{"id": g_x, "name": "我们的组织"}]), "34020000002000000001")
    items = await SharedCatalog(sessions).items(scope)
    by_id = {i.device_id: i for i in items}
    order = [i.device_id for i in items]
    assert order.count(g_a) == order.count(g_b) == 1  # the cycle: each once
    tree = {i.device_id: i.parent_id for i in items}
    # one of the two hangs from the top (the business group), the other under it
    assert sorted([tree[g_a], tree[g_b]]) == sorted([bg, g_a if tree[g_b] == g_a else g_b])
    assert order.index(tree[c1]) < order.index(c1) and tree[c1] == g_a
    assert g_c not in by_id and tree[c2] == bg  # another device's group under that ID: not passed
    assert by_id[g_x].name == "我们的组织" and tree[c3] == bg  # the share's own ID: never the lower's
    assert all(i.business_group_id == bg for i in items if i.device_id != bg)
    for it in items:  # parents before children, every parent known or the top
        if it.device_id != bg:
            assert it.parent_id == "34020000002000000001" or order.index(it.parent_id) < order.index(it.device_id)


@settings(max_examples=300, deadline=None)
@given(ids=st.lists(st.one_of(st.text(max_size=24), st.from_regex(r"\A\d{1,22}\Z"),
                              st.sampled_from(["3402", "34020000002160000001", "340201", "٣٤٠٢"])), max_size=20),
       parents=st.lists(st.text(max_size=30), max_size=3))
def test_catalog_rows_never_crash_and_keep_only_gb_ids_and_civil_nodes(ids: list[str], parents: list[str]) -> None:
    """Whatever IDs a lower platform reports: no crash; a row only for a 20-digit ID or a
    civil-code node (2, 4, 6 or 8 ASCII digits), never for the reporter itself; a camera only
    for camera types; every parent cut to the column's 20 characters."""
    from xueliang.registry.catalog_store import rows_from_catalog

    rows = rows_from_catalog(PLAT, [CatalogItem(device_id=i, name=i, parent_ids=parents) for i in ids])
    for r in rows:
        rid = r["id"]
        assert rid != PLAT and rid.isascii() and rid.isdigit() and len(rid) in (2, 4, 6, 8, 20)
        assert r["kind"] == "group" or (len(rid) == 20 and (131 <= int(rid[10:13]) <= 139 or rid[10:13] == "121"))
        assert r["parent_id"] is None or len(r["parent_id"]) <= 20
    assert len(rows) == sum(1 for i in ids if i != PLAT and i.isascii() and i.isdigit() and len(i) in (2, 4, 6, 8, 20))
