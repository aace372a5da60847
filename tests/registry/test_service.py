from __future__ import annotations

import pytest

from xueliang.errors import Conflict, Invalid, NotFound
from xueliang.registry.models import (
    ChannelFields,
    ChannelFilter,
    ChannelIn,
    DivisionIn,
    UnitIn,
    UnitPatch,
)


async def _city(registry) -> None:  # type: ignore[no-untyped-def]
    for code, name in [
        ("34", "安徽省"),
        ("3401", "合肥市"),
        ("340102", "瑶海区"),
        ("340103", "庐阳区"),
        ("340102001", "明光路街道"),
    ]:
        await registry.upsert_division(DivisionIn(code=code, name=name))


async def test_division_needs_registered_parent(registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Invalid, match="parent division 3401"):
        await registry.upsert_division(DivisionIn(code="340102", name="瑶海区"))
    await _city(registry)
    d = await registry.get_division("340102001")
    assert d.level == "township" and d.parent_code == "340102"


async def test_channel_keyset_pages_cover_everything_once(registry) -> None:  # type: ignore[no-untyped-def]
    await _city(registry)
    unit = await registry.create_unit(
        UnitIn(
            name="第一中学", category="公共服务行业", department="教育局", division_code="340102"
        )
    )
    ids = []
    for i in range(57):
        div = "340102001" if i % 3 else "340103"
        cid = f"3401020000131{i:07d}"
        ids.append(cid)
        await registry.create_channel(
            ChannelIn(
                id=cid,
                name=f"校门{i}",
                unit_id=unit.id,
                division_code=div,
                point_class=2 if i % 2 else 3,
                longitude=117.3,
                latitude=31.9,
            )
        )
    seen: list[str] = []
    cursor = None
    while True:
        rows, cursor = await registry.list_channels(ChannelFilter(), cursor, limit=10)
        seen += [r.id for r in rows]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    rows, _ = await registry.list_channels(
        ChannelFilter(division="340102", point_class=2), None, limit=100
    )
    assert rows and all(r.division_code.startswith("340102") and r.point_class == 2 for r in rows)
    assert all(r.department == "教育局" for r in rows)
    assert await registry.count_channels(ChannelFilter(division="340103")) == 19


async def test_channel_validation_and_conflicts(registry) -> None:  # type: ignore[no-untyped-def]
    await _city(registry)
    with pytest.raises(ValueError, match="swapped"):
        ChannelIn(id="34010200001320000001", name="x", longitude=31.9, latitude=117.3)
    with pytest.raises(ValueError, match="20 digits"):
        ChannelIn(id="3401020000132000001", name="x")
    c = ChannelIn(id="34010200001320000001", name="路口", division_code="340102")
    await registry.create_channel(c)
    with pytest.raises(Conflict):
        await registry.create_channel(c)
    with pytest.raises(Invalid, match="unknown division"):
        await registry.create_channel(
            ChannelIn(id="34010200001320000002", name="y", division_code="999999")
        )
    with pytest.raises(NotFound):
        await registry.update_channel("34010200001320000099", ChannelFields(name="z"))


async def test_unit_department_change_follows_to_channels(registry) -> None:  # type: ignore[no-untyped-def]
    await _city(registry)
    unit = await registry.create_unit(UnitIn(name="人民医院", department="卫健委"))
    await registry.create_channel(
        ChannelIn(id="34010200001320000003", name="门诊", unit_id=unit.id)
    )
    await registry.update_unit(unit.id, UnitPatch(department="应急管理局"))
    ch = await registry.get_channel("34010200001320000003")
    assert ch.department == "应急管理局"


async def test_statistics_counts_and_rates(registry, sessions) -> None:  # type: ignore[no-untyped-def]
    from xueliang.registry.models import PlatformIn
    from xueliang.registry.stats import statistics

    await _city(registry)
    school = await registry.create_unit(
        UnitIn(name="二中", department="教育局", division_code="340102")
    )
    await registry.create_platform(
        PlatformIn(unit_id=school.id, retention_days=30, camera_count=10, platform_standard=True)
    )
    await registry.create_platform(
        PlatformIn(unit_id=school.id, segment="2", camera_count=5, platform_standard=False)
    )
    specs = [  # (class, tier, labelled, key_site)
        (1, "high", True, False),
        (1, "street", False, False),
        (2, "building", True, True),
        (3, "street", True, False),
    ]
    for i, (cls, tier, geo, key) in enumerate(specs):
        await registry.create_channel(
            ChannelIn(
                id=f"340102000013200000{i:02d}",
                name=f"p{i}",
                unit_id=school.id,
                division_code="340102001",
                point_class=cls,
                tier=tier,
                key_site=key,
                longitude=117.3 if geo else None,
                latitude=31.9 if geo else None,
            )
        )
    st = await statistics(sessions, division="3401")
    assert st.points == 4
    assert st.by_class["1"] == 2 and st.by_tier["street"] == 2
    assert st.geo_labelling.count == 3 and st.geo_labelling_class1.rate == 0.5
    # the key site needs 90 days, the unit keeps 30: three of four comply
    assert st.storage_compliance.count == 3 and st.storage_compliance.total == 4
    assert st.standard_compliance.count == 10 and st.standard_compliance.total == 15
    assert st.networking.count == 0
    assert [c.code for c in st.children] == ["340102"] and st.children[0].points == 4
    other = await statistics(sessions, department="卫健委")
    assert other.points == 0 and other.geo_labelling.rate is None
    assert [(d.department, d.points) for d in st.by_department] == [("教育局", 4)]
