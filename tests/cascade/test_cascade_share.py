"""The share (what an upper is shown): its validation, the same scope in memory and in SQL on
SQLite and PostgreSQL (property-tested), the tree with 215/216 groups, the mapped IDs, and the
catalog diff the NOTIFYs are made of."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.actions import Action
from xueliang.cascade.catalog import CatalogDiff, SharedCatalog
from xueliang.cascade.share import Share, UpperScope
from xueliang.db.tables import Channel, Device
from xueliang.gb28181.manscdp import CatalogItem

PLATFORM = "34020100002000000001"
BG = "34020100002150000001"
ORG_A = "34020100002160000001"
ORG_B = "34020100002160000002"


def cam(i: int, div: str = "340201", dept: str | None = "公安局", cls: int | None = 1, kind: str = "camera",
        device: str | None = "34020100001180000001", status: str = "ON") -> dict[str, Any]:
    return {"id": f"{div[:6]:0<6}0000131{i:07d}", "name": f"点位{i}", "kind": kind, "device_id": device,
            "department": dept, "division_code": div, "point_class": cls, "status": status}


async def seed(sessions: async_sessionmaker[AsyncSession], rows: list[dict[str, Any]], online: bool = True) -> None:
    async with sessions() as s:
        s.add(Device(id="34020100001180000001", name="NVR", online=online))
        await s.flush()  # the channels reference it
        for r in rows:
            s.add(Channel(**r))
        await s.commit()


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(("share", "why"), [
    ({"divisions": ["34x"]}, "division"),
    ({"channels": ["123"]}, "20-digit"),
    ({"classes": [4]}, "classes"),
    ({"id_map": {"34020100001310000001": "4402"}}, "20-digit"),
    ({"id_map": {"34020100001310000001": "44020000001310000001", "34020100001310000002": "44020000001310000001"}},
     "same upper ID"),
    ({"business_group": {"id": "34020100002160000001", "name": "x"}}, "id"),
    ({"organisations": [{"id": ORG_A, "name": "a", "parent_id": ORG_B}, {"id": ORG_B, "name": "b", "parent_id": ORG_A}]},
     "ancestor"),
    ({"organisations": [{"id": ORG_A, "name": "a", "parent_id": "34020100002160000009"}]}, "unknown parent"),
    ({"organisations": [{"id": ORG_A, "name": "a"}, {"id": ORG_A, "name": "b"}]}, "twice"),
    ({"everything": True}, "extra"),
])
def test_a_bad_share_is_refused_with_a_reason(share: dict[str, Any], why: str) -> None:
    with pytest.raises(ValidationError) as e:
        Share.model_validate(share)
    assert why in str(e.value)


def test_scope_actions_view_always_control_only_when_shared() -> None:
    view = UpperScope(Share(all=True), PLATFORM)
    assert view.may(Action.LIVE_VIEW) and view.may(Action.REGISTRY_READ) and not view.may(Action.PTZ)
    assert not view.may(Action.DEVICE_CONTROL) and not view.may(Action.USERS_MANAGE)
    ctl = UpperScope(Share(all=True, control=True), PLATFORM)
    assert ctl.may(Action.PTZ) and ctl.may(Action.DEVICE_CONTROL) and not ctl.may(Action.REGISTRY_MANAGE)


def test_mapped_ids_go_both_ways_and_a_mapped_channel_is_unknown_by_its_local_id() -> None:
    s = UpperScope(Share(all=True, id_map={"34020100001310000001": "44030000001310000001"}), PLATFORM)
    assert s.upper_id("34020100001310000001") == "44030000001310000001"
    assert s.local_id("44030000001310000001") == "34020100001310000001"
    assert s.local_id("34020100001310000001") is None  # the upper must not know our number
    assert s.local_id("34020100001310000002") == "34020100001310000002"  # kept
    assert s.local_id(PLATFORM) is None


# -- one scope, two evaluations ----------------------------------------------------------------

_DIVS = ["340201", "340202", "340301", "3402", "340201001"]
_DEPTS = ["公安局", "交警", "城管", None]


@st.composite
def shares(draw: st.DrawFn) -> Share:
    if draw(st.integers(0, 9)) == 0:
        return Share(all=True)
    return Share(
        divisions=draw(st.lists(st.sampled_from(["34", "3402", "340201", "340202", "3403"]), max_size=2)),
        classes=draw(st.lists(st.sampled_from([1, 2, 3]), max_size=2)),
        departments=draw(st.lists(st.sampled_from(["公安局", "交警", "城管"]), max_size=2)),
        channels=draw(st.lists(st.sampled_from([cam(i, d)["id"] for i, d in enumerate(_DIVS * 2)]), max_size=3)),
    )


async def test_listing_and_single_lookups_agree_with_the_in_memory_match(
        sessions: async_sessionmaker[AsyncSession]) -> None:
    rng = random.Random(5)
    rows = [cam(i, rng.choice(_DIVS), rng.choice(_DEPTS), rng.choice([1, 2, 3, None]),
                "group" if i % 11 == 0 else "camera") for i in range(60)]
    await seed(sessions, rows)
    catalog = SharedCatalog(sessions)
    by_id = {r["id"]: type("Row", (), r)() for r in rows}
    checked: list[Share] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(share=shares())
    def collect(share: Share) -> None:
        checked.append(share)

    collect()
    for share in checked:
        scope = UpperScope(share, PLATFORM)
        listed = {c.id for c in await catalog.channels(scope)}
        expected = {cid for cid, row in by_id.items() if scope.match(row)}
        assert listed == expected, share
        assert await catalog.count(scope) == len(expected)
        for cid in list(by_id)[:12]:
            found = await catalog.channel(scope, cid)
            assert (found is not None) == (cid in expected), (share, cid)


async def test_the_tree_the_upper_sees(sessions: async_sessionmaker[AsyncSession]) -> None:
    rows = [cam(1, "340201"), cam(2, "340202"), cam(3, "340301", dept="交警"), cam(4, "340201", status="OFF"),
            cam(5, "340201", kind="group")]
    await seed(sessions, rows)
    share = Share.model_validate({
        "divisions": ["3402", "3403"],
        "business_group": {"id": BG, "name": "市公安局"},
        "organisations": [{"id": ORG_A, "name": "一分局", "divisions": ["340201"]},
                          {"id": ORG_B, "name": "交警支队", "parent_id": ORG_A, "departments": ["交警"]}],
        "id_map": {rows[1]["id"]: "44030000001310000002"},
    })
    scope = UpperScope(share, PLATFORM)
    items = await SharedCatalog(sessions).items(scope)
    tree = {i.device_id: (i.parent_id, i.status, i.business_group_id) for i in items}
    assert [i.device_id for i in items[:3]] == [BG, ORG_A, ORG_B]  # parents first
    assert tree[BG][0] == PLATFORM and tree[ORG_A][0] == BG and tree[ORG_B][0] == ORG_A
    assert tree[rows[0]["id"]] == (ORG_A, "ON", BG)
    assert tree[rows[3]["id"]] == (ORG_A, "OFF", BG)
    assert tree["44030000001310000002"] == (BG, "ON", BG)  # mapped; no organisation takes 340202
    assert rows[1]["id"] not in tree  # its own number never shown
    assert tree[rows[2]["id"]][0] == ORG_B
    assert rows[4]["id"] not in tree  # our own 215/216 rows are not shared
    under = await SharedCatalog(sessions).items_under(scope, ORG_A)
    assert {i.device_id for i in under} == {ORG_B, rows[0]["id"], rows[3]["id"]}
    assert await SharedCatalog(sessions).items_under(scope, "34020100001310009999") == []


async def test_an_offline_device_takes_its_channels_offline(sessions: async_sessionmaker[AsyncSession]) -> None:
    await seed(sessions, [cam(1), cam(2, status="UNKNOWN")], online=False)
    items = await SharedCatalog(sessions).items(UpperScope(Share(all=True), PLATFORM))
    assert [i.status for i in items] == ["OFF", "OFF"]


def test_the_diff_tells_add_del_status_and_update() -> None:
    def item(i: int, name: str = "a", status: str = "ON") -> CatalogItem:
        return CatalogItem(device_id=f"3402010000131000000{i}", name=name, status=status)

    d = CatalogDiff()
    assert d.changes([item(1), item(2), item(3)]) == []  # the first read is the baseline
    out = d.changes([item(1, status="OFF"), item(2, name="b"), item(4)])
    got = sorted((i.device_id[-1], i.event, i.name) for i in out)
    assert got == [("1", "OFF", ""), ("2", "UPDATE", "b"), ("3", "DEL", ""), ("4", "ADD", "a")]
    assert d.changes([item(1, status="OFF"), item(2, name="b"), item(4)]) == []
