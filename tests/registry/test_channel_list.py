"""Form 3, the channel list (点位清单): import, export, bulk upsert, bad files."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from _sheets import Sessions, csv_bytes, dump, xlsx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from xueliang.db.engine import create_engine, session_factory
from xueliang.db.tables import Channel, Unit
from xueliang.registry import spreadsheet
from xueliang.registry.channel_list import (
    CHANNEL_HEADERS,
    bulk_upsert_channels,
    export_channels,
    import_channels,
)
from xueliang.registry.models import ChannelFilter, DivisionIn, UnitIn
from xueliang.registry.service import RegistryService


async def city(registry: Any) -> int:
    """Divisions of a test city and one registered unit (教育局's 第一中学); returns the unit id."""
    for code, name in [
        ("34", "安徽省"),
        ("3401", "合肥市"),
        ("340102", "瑶海区"),
        ("340103", "庐阳区"),
        ("340102001", "明光路街道"),
        ("340102001001", "某社区"),
    ]:
        await registry.upsert_division(DivisionIn(code=code, name=name))
    unit = await registry.create_unit(
        UnitIn(name="第一中学", category="公共服务行业", department="教育局")
    )
    return int(unit.id)


def cid(i: int, kind: str = "131") -> str:
    return f"3401020000{kind}0{i:06d}"


def good_row(i: int) -> list[Any]:
    return [
        cid(i),
        f"长江路口{i}号",
        "第一中学" if i % 2 else "城东加油站",
        ["340102", "340102001", "340103"][i % 3],
        ["一类", "二类", "三类", "2"][i % 4],
        "ABC"[i % 3],
        ["高空瞭望", "建筑制高点", "地面"][i % 3],
        ["球机", "半球", "固定枪机", "遥控枪机"][i % 4],
        round(117.2 + (i % 997) / 997, 6),
        round(31.8 + (i % 1009) / 1009, 6),
        f"瑶海区长江东路{i}号",
        "是" if i % 5 == 0 else "否",
    ]


def sheet(rows: list[list[Any]]) -> list[list[Any]]:
    return [list(CHANNEL_HEADERS), *rows]


async def test_import_xlsx_creates_channels_and_units(sessions: Sessions, registry: Any) -> None:
    uid = await city(registry)
    rep = await import_channels(
        sessions, xlsx(sheet([good_row(i) for i in range(50)])), "points.xlsx"
    )
    assert rep.ok, rep.text()
    assert (rep.form, rep.rows, rep.created, rep.updated, rep.unchanged) == (
        "channels",
        50,
        50,
        0,
        0,
    )
    assert rep.new_units == ["城东加油站"]
    async with sessions() as s:
        c1 = await s.get(Channel, cid(1))
        c10 = await s.get(Channel, cid(10))
        new_unit = (await s.scalars(select(Unit).where(Unit.name == "城东加油站"))).one()
    assert c1 is not None and c10 is not None
    assert (
        c1.unit_id,
        c1.department,
        c1.division_code,
        c1.point_class,
        c1.coverage,
        c1.tier,
        c1.ptz_type,
    ) == (uid, "教育局", "340102001", 2, "B", "building", 2)
    assert (c1.key_site, c1.retention_days_required, c1.kind, c1.address) == (
        False,
        30,
        "camera",
        "瑶海区长江东路1号",
    )
    assert (c10.key_site, c10.retention_days_required, c10.unit_id, c10.department) == (
        True,
        90,
        new_unit.id,
        None,
    )
    assert c1.longitude == pytest.approx(117.2 + 1 / 997) and c1.latitude == pytest.approx(
        31.8 + 1 / 1009
    )


async def test_import_twice_changes_nothing(sessions: Sessions, registry: Any) -> None:
    await city(registry)
    data = xlsx(sheet([good_row(i) for i in range(30)]))
    assert (await import_channels(sessions, data, "a.xlsx")).ok
    before = await dump(sessions)
    rep = await import_channels(sessions, data, "a.xlsx")
    assert (
        rep.ok and (rep.created, rep.updated, rep.unchanged) == (0, 0, 30) and rep.new_units == []
    )
    assert await dump(sessions) == before
    rows = [good_row(i) for i in range(30)]
    rows[3][1] = "改名了"
    rows[4][11] = "是"
    rep = await import_channels(sessions, xlsx(sheet(rows)), "a.xlsx")
    assert (rep.created, rep.updated, rep.unchanged) == (0, 2, 28)
    async with sessions() as s:
        c4 = await s.get(Channel, cid(4))
    assert c4 is not None and c4.key_site and c4.retention_days_required == 90


@pytest.mark.parametrize(
    ("encoding", "name"),
    [
        ("utf-8", "points.csv"),
        ("utf-8-sig", "points.csv"),
        ("gbk", "points.csv"),
        ("gbk", "points-utf8.csv"),
    ],
)
async def test_csv_encodings(sessions: Sessions, registry: Any, encoding: str, name: str) -> None:
    await city(registry)
    rows = sheet([good_row(i) for i in range(10)])
    rows[0] = [f" {h} " for h in rows[0]]
    rep = await import_channels(sessions, csv_bytes(rows, encoding), name)
    assert rep.ok and rep.created == 10, rep.text()
    async with sessions() as s:
        assert (await s.get(Channel, cid(3))).name == "长江路口3号"  # type: ignore[union-attr]


async def test_three_bad_rows_among_fifty(sessions: Sessions, registry: Any) -> None:
    await city(registry)
    assert (
        await import_channels(sessions, xlsx(sheet([good_row(i) for i in range(5)])), "a.xlsx")
    ).ok
    before = await dump(sessions)
    rows = [good_row(i) for i in range(53)]
    rows[10][0] = "3401020000131000001"  # 19 digits, file row 12
    rows[20][3] = "340199"  # unregistered division, file row 22
    rows[30][8], rows[30][9] = 31.9, 117.3  # swapped, file row 32
    rep = await import_channels(sessions, xlsx(sheet(rows)), "bad.xlsx")
    assert not rep.ok
    assert [(p.row, p.column) for p in rep.problems] == [
        (12, "点位编码"),
        (22, "行政区划代码"),
        (32, "经度"),
    ]
    assert "20 digits" in rep.problems[0].reason and "swapped" in rep.problems[2].reason
    assert rep.problems[1].value == "340199"
    assert (rep.created, rep.updated, rep.unchanged, rep.new_units) == (0, 0, 0, [])
    assert await dump(sessions) == before


@pytest.mark.parametrize(
    ("col", "value", "words"),
    [
        (0, "3401020000131000000X", "decimal digits"),
        (0, "3.40102000013e+19", "format the column as text"),
        (1, "", "required"),
        (3, "3401", "6 digits"),
        (3, "340199001", "nor under a registered county"),  # a new township needs a registered county (issue 19)
        (4, "四类", "point class"),
        (5, "D", "coverage"),
        (6, "屋顶", "tier"),
        (7, "鱼眼", "camera type"),
        (8, "东经117", "decimal degrees"),
        (8, "nan", "decimal degrees"),
        (8, "", "together"),
        (8, 2.35, "outside China"),
        (11, "也许", "yes/no"),
    ],
)
async def test_each_bad_value(
    sessions: Sessions, registry: Any, col: int, value: Any, words: str
) -> None:
    await city(registry)
    rows = [good_row(i) for i in range(3)]
    rows[1][col] = value
    rep = await import_channels(sessions, csv_bytes(sheet(rows)), "a.csv")
    assert not rep.ok and len(rep.problems) == 1, rep.text()
    p = rep.problems[0]
    assert p.row == 3 and p.column == CHANNEL_HEADERS[col] and words in p.reason, p


async def test_duplicate_ids_name_both_rows(sessions: Sessions, registry: Any) -> None:
    await city(registry)
    rows = [good_row(i) for i in range(5)]
    rows[4][0] = cid(1)
    rep = await import_channels(sessions, xlsx(sheet(rows)), "a.xlsx")
    assert [(p.row, p.column) for p in rep.problems] == [(6, "点位编码")]
    assert "rows 3 and 6" in rep.problems[0].reason


async def test_empty_division_comes_from_the_id(sessions: Sessions, registry: Any) -> None:
    await city(registry)
    rows = [good_row(1), good_row(2)]
    rows[0][3] = ""
    rows[1][3] = ""
    rows[1][0] = "44030600001310000001"  # Shenzhen: not registered here
    rows[1][8:10] = [114.0, 22.5]
    rep = await import_channels(sessions, xlsx(sheet(rows)), "a.xlsx")
    assert rep.ok and len(rep.warnings) == 1, rep.text()
    async with sessions() as s:
        got = dict((await s.execute(select(Channel.id, Channel.division_code))).all())
    assert got == {cid(1): "340102", "44030600001310000001": ""}


async def test_missing_optional_columns_leave_fields_alone(
    sessions: Sessions, registry: Any
) -> None:
    await city(registry)
    assert (
        await import_channels(sessions, xlsx(sheet([good_row(i) for i in range(4)])), "a.xlsx")
    ).ok
    rows = [["点位编码", "点位名称"], [cid(1), "新名字"], [cid(99), "新点"]]
    rep = await import_channels(sessions, csv_bytes(rows), "b.csv")
    assert rep.ok and (rep.created, rep.updated) == (1, 1) and rep.warnings
    async with sessions() as s:
        c1, c99 = await s.get(Channel, cid(1)), await s.get(Channel, cid(99))
    assert c1 is not None and (c1.name, c1.division_code, c1.tier, c1.unit_id is not None) == (
        "新名字",
        "340102001",
        "building",
        True,
    )
    assert c99 is not None and (c99.division_code, c99.unit_id, c99.key_site) == (
        "340102",
        None,
        False,
    )
    rep = await import_channels(sessions, csv_bytes([["点位编码", "名称"], [cid(1), "x"]]), "c.csv")
    assert not rep.ok and "点位名称" in rep.problems[0].reason


async def test_dry_run_writes_nothing(sessions: Sessions, registry: Any) -> None:
    await city(registry)
    before = await dump(sessions)
    rep = await import_channels(
        sessions, xlsx(sheet([good_row(i) for i in range(6)])), "a.xlsx", dry_run=True
    )
    assert rep.ok and rep.created == 6 and rep.new_units == ["城东加油站"]
    assert await dump(sessions) == before


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
async def test_export_import_round_trip(
    sessions: Sessions, registry: Any, tmp_path: Path, suffix: str
) -> None:
    await city(registry)
    rows = [good_row(i) for i in range(40)]
    rows[7][4:8] = ["", "", "", ""]
    rows[8][8:12] = ["", "", "", ""]
    rows.append([cid(1, "215"), "业务分组", "", "340102", "", "", "", "", "", "", "", ""])
    assert (await import_channels(sessions, csv_bytes(sheet(rows)), "a.csv")).ok
    before = await dump(sessions)
    path = tmp_path / f"points{suffix}"
    assert await export_channels(sessions, path) == 40  # cameras only: the group is left out
    raw = spreadsheet.read_raw_rows(path.read_bytes(), path.name)
    assert raw[0] == CHANNEL_HEADERS and raw[1][:2] == [cid(0), "长江路口0号"]
    rep = await import_channels(sessions, path.read_bytes(), path.name)
    assert rep.ok and (rep.created, rep.updated, rep.unchanged) == (0, 0, 40), rep.text()
    assert await dump(sessions) == before
    some = tmp_path / f"some{suffix}"
    assert (
        await export_channels(sessions, some, ChannelFilter(division="340102", key_site=True)) == 5
    )


async def test_bulk_upsert(sessions: Sessions, registry: Any) -> None:
    uid = await city(registry)
    rows = [
        {
            "id": cid(i),
            "name": f"点{i}",
            "unit_id": uid if i % 2 else None,
            "point_class": 3,
            "longitude": 117.3,
            "latitude": 31.9,
        }
        for i in range(3000)
    ]
    rows.append(
        {
            "id": cid(5),
            "name": "后来者",
            "unit_id": uid,
            "point_class": 2,
            "longitude": 117.3,
            "latitude": 31.9,
        }
    )
    rows.append({"id": cid(1, "215"), "name": "分组"})
    assert await bulk_upsert_channels(sessions, rows) == 3001
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Channel)) == 3001
        c5 = await s.get(Channel, cid(5))
        group = await s.get(Channel, cid(1, "215"))
        stamp = (await s.get(Channel, cid(7))).updated_at  # type: ignore[union-attr]
    assert c5 is not None and (
        c5.name,
        c5.point_class,
        c5.department,
        c5.division_code,
        c5.status,
    ) == ("后来者", 2, "教育局", "340102", "UNKNOWN")
    assert group is not None and group.kind == "group"
    rows[7]["name"] = "改了"
    await bulk_upsert_channels(sessions, rows[:10])
    async with sessions() as s:
        c7, c8 = await s.get(Channel, cid(7)), await s.get(Channel, cid(8))
        assert await s.scalar(select(func.count()).select_from(Channel)) == 3001
    assert c7 is not None and c7.name == "改了" and c7.updated_at > stamp
    assert c8 is not None and c8.updated_at < c7.updated_at  # unchanged rows are not rewritten


async def test_big_file_is_fast(sessions: Sessions, registry: Any) -> None:
    await city(registry)
    rows = [good_row(i) for i in range(20_000)]
    data = csv_bytes(sheet(rows))
    t = time.perf_counter()
    rep = await import_channels(sessions, data, "big.csv")
    first = time.perf_counter() - t
    assert rep.ok and rep.created == 20_000
    t = time.perf_counter()
    rep = await import_channels(sessions, data, "big.csv")
    again = time.perf_counter() - t
    assert rep.ok and rep.unchanged == 20_000
    assert first < 8 and again < 8, (first, again)


async def test_bad_files(
    sessions: Sessions, registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await city(registry)
    good = xlsx(sheet([good_row(i) for i in range(5)]))
    cases = {
        "empty": (b"", "a.csv", "empty"),
        "xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "a.xls", ".xls"),
        "truncated": (good[:-200], "a.xlsx", "cannot be opened"),
        "no header": (csv_bytes([["编号", "名字"], ["1", "2"]]), "a.csv", "点位编码"),
        "header only": (csv_bytes(sheet([])), "a.csv", "no data rows"),
    }
    before = await dump(sessions)
    for label, (data, name, words) in cases.items():
        rep = await import_channels(sessions, data, name)
        assert not rep.ok and words in rep.problems[0].reason, (label, rep.problems)
    monkeypatch.setattr(spreadsheet, "MAX_IMPORT_BYTES", 1000)
    rep = await import_channels(sessions, good, "big.xlsx")
    assert not rep.ok and "limited" in rep.problems[0].reason
    assert await dump(sessions) == before


_cell = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        ["", "二类", "A", "地面", "球机", "是", "否", "340102", "117.3", "31.9", "999", "-1e400"]
    ),
    st.from_regex(r"3401020000131[0-9]{7}", fullmatch=True),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 11), _cell), max_size=8), st.booleans())
def test_import_never_raises(
    db_url: str, mutations: list[tuple[int, int, Any]], as_csv: bool
) -> None:
    """A good sheet with random cells put in: always a report, never an exception."""

    async def run() -> None:
        engine = create_engine(db_url)
        try:
            sessions = session_factory(engine)
            registry = RegistryService(sessions)
            for code in ("34", "3401", "340102", "340102001", "340103"):
                await registry.upsert_division(DivisionIn(code=code, name=code))
            rows = [good_row(i) for i in range(5)]
            for r, c, v in mutations:
                rows[r][c] = v
            data = csv_bytes(sheet(rows)) if as_csv else xlsx(sheet(rows))
            rep = await import_channels(sessions, data, "fuzz.csv" if as_csv else "fuzz.xlsx")
            assert rep.ok or rep.problems
            rep.text()
        finally:
            await engine.dispose()

    asyncio.run(run())
