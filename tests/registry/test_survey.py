"""Form 1 (社会视频监控资源摸底调查表) and Form 2 (摸底汇总表): import, export, round trips, bad files."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from _sheets import Sessions, csv_bytes, dump, xlsx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from xueliang.db.engine import create_engine, session_factory
from xueliang.db.tables import Channel, Platform, SurveySummary, Unit
from xueliang.registry import spreadsheet, survey
from xueliang.registry.survey import (
    FORM1_HEADERS,
    FORM2_HEADERS,
    NETWORK,
    export_summary,
    export_survey,
    import_survey,
    parse_built_on,
    parse_count,
    parse_network,
    parse_platform_type,
    parse_retention,
)

# ---- helpers ----------------------------------------------------------------------------


def unit_row(name: str = "第一中学", **over: str) -> list[str]:
    base = {
        "单位名称": name,
        "单位负责人及联系方式": "张校长 13800000001",
        "单位类别": "公共服务行业",
        "单位地址": "瑶海区长江东路1号",
        "系统建设时间": "2018",
        "平台类型": "有平台/数字",
        "承建单位名称": "安徽某某科技有限公司",
        "联系人名称及联系方式": "李工 13900000002",
        "平台品牌/厂家": "海康威视",
        "平台是否支持GB28181/ONVIF": "支持",
        "平台型号": "iVMS-8700",
        "能否提供SDK开发包": "提供",
        "摄像机品牌/厂家": "海康威视",
        "摄像机型号数量": "DS-2CD3T46 12台；DS-2DE4 3台",
        "摄像机类型": "网络",
        "摄像机是否支持GB28181/ONVIF": "支持",
        "DVR/NVR品牌/厂家": "海康威视",
        "DVR/NVR型号数量": "DS-7816N 16路 2台",
        "DVR/NVR是否支持GB28181/ONVIF": "支持",
        "网络结构/出口带宽（M）": "互联网/100",
        "存储方式": "存储服务器",
        "存储时长": "30天",
        "系统目前的故障点": "",
        "覆盖范围": "C 单位内部及临街公共场所",
    }
    base.update(over)
    return [base[h] for h in FORM1_HEADERS]


def form1(rows: list[list[str]], department: str | None = "教育局") -> list[list[Any]]:
    title: list[list[Any]] = [["社会视频监控资源摸底调查表"]]
    if department:
        title.append([f"主管部门：{department}"])
    return [*title, list(FORM1_HEADERS), *rows]


def sample_rows() -> list[list[str]]:
    return [
        unit_row(),
        unit_row(
            "第一中学",
            **{
                "单位负责人及联系方式": "",
                "单位类别": "",
                "单位地址": "",
                "系统建设时间": "2019-05-01",
                "平台类型": "无平台/模拟",
                "摄像机型号数量": "×8",
                "摄像机类型": "模拟",
                "DVR/NVR型号数量": "1",
                "网络结构/出口带宽（M）": "内部局域网 50M",
                "存储方式": "DVR/NVR",
                "存储时长": "3个月",
                "系统目前的故障点": "2路无信号",
                "覆盖范围": "B",
                "能否提供SDK开发包": "不提供",
            },
        ),
        unit_row(
            "城东加油站",
            **{
                "单位类别": "重点场所",
                "摄像机型号数量": "12",
                "网络结构/出口带宽（M）": "无",
                "覆盖范围": "A 行政公共区域",
                "能否提供SDK开发包": "不提供",
            },
        ),
    ]


# ---- value parsers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("DS-2CD3T46 12台", 12),
        ("×12", 12),
        ("x12", 12),
        ("*12", 12),
        ("12", 12),
        ("12.0", 12),
        ("１２台", 12),
        ("", 0),
        ("无", 0),
        ("0", 0),
        ("DS-2CD3T46 12台；DS-2DE4 3台", 15),
        ("DS-2CD3T46 12台;DS-2DE4 3台", 15),
        ("DS-2CD3T46 12台、DS-2DE4 3台", 15),
        ("球机8台，枪机4台，共12台", 12),
        ("海康球机、枪机，共12台", 12),
        ("DS-2CD3T46×12", 12),
        ("DS-2CD3T46 12", 12),
        ("12台DS-2CD3T46", 12),
        ("400万像素 DS-2CD2T47 5个", 5),
        ("DS-7816N-K2 16路 2台", 2),
        ("DS-7816N-K2 16路×2", 2),
        ("DS-2CD3T46 12台\nDS-2DE4 3台", 15),
    ],
)
def test_count_parsing(text: str, count: int) -> None:
    models, n = parse_count(text)
    assert n == count
    assert models == (None if text.strip() in ("", "12", "12.0", "0") else text.strip())


@pytest.mark.parametrize(
    "text",
    [
        "DS-2CD3T46",
        "DS-2CD2x45",
        "DS-7816N 16路",
        "海康球机；DS-2DE4 3台",
        "球机8台，枪机4台，共13台",
        "共3台，共4台",
        "十二台",
        "99999999台",
    ],
)
def test_count_unreadable(text: str) -> None:
    with pytest.raises(ValueError):
        parse_count(text)


_model = st.from_regex(r"[A-Z]{2}-[0-9][A-Z0-9]{3,8}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(_model, st.integers(0, 5000), st.sampled_from(["台", "个", " 台", "只"])),
        min_size=1,
        max_size=5,
    ),
    st.sampled_from(["；", ";", "，", "、", "\n"]),
)
def test_count_parser_sums_parts(parts: list[tuple[str, int, str]], sep: str) -> None:
    text = sep.join(f"{m} {n}{unit}" for m, n, unit in parts)
    assert parse_count(text)[1] == sum(n for _, n, _ in parts)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_count_parser_only_raises_value_error(text: str) -> None:
    try:
        _, n = parse_count(text)
    except ValueError:
        return
    assert 0 <= n <= survey.MAX_COUNT


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**6))
def test_count_text_round_trips(n: int) -> None:
    assert parse_count(survey.count_text(None, n)) == (None, n)
    assert parse_count(survey.count_text("DS-2CD3T46", n))[1] == n


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2018", "2018"),
        ("2018年", "2018"),
        ("2018-05-01", "2018-05-01"),
        ("2018/5/1", "2018-05-01"),
        ("2018年5月1日", "2018-05-01"),
        ("2018.05", "2018-05"),
        ("2018-05-01 00:00:00", "2018-05-01"),
        ("43221", "2018-05-01"),
        ("", None),
    ],
)
def test_built_on(text: str, want: str | None) -> None:
    assert parse_built_on(text) == want


@pytest.mark.parametrize("text", ["2018-02-30", "1800", "去年", "2018-13"])
def test_built_on_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_built_on(text)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("互联网/100", ("internet", 100.0)),
        ("内部局域网 50M", ("lan", 50.0)),
        ("无", ("none", None)),
        ("100", (None, 100.0)),
        ("互联网 千兆", ("internet", 1000.0)),
        ("专网/1G", ("other", 1000.0)),
        ("互联网100Mbps", ("internet", 100.0)),
        ("其他", ("other", None)),
        ("4G", ("other", None)),
        ("", (None, None)),
    ],
)
def test_network(text: str, want: tuple[str | None, float | None]) -> None:
    assert parse_network(text, NETWORK) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("30天", 30),
        ("30", 30),
        ("3个月", 90),
        ("2周", 14),
        ("1年", 365),
        ("30天以上", 30),
        ("", None),
    ],
)
def test_retention(text: str, want: int | None) -> None:
    assert parse_retention(text) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("有平台/数字", ("platform", "digital")),
        ("无平台", ("none", None)),
        ("模拟", (None, "analog")),
        ("有平台 模拟", ("platform", "analog")),
        ("数字", (None, "digital")),
        ("无平台、数字", ("none", "digital")),
    ],
)
def test_platform_type(text: str, want: tuple[str | None, str | None]) -> None:
    assert parse_platform_type(text) == want


@pytest.mark.parametrize("text", ["有平台/无平台", "数字/模拟", "云平台x"])
def test_platform_type_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_platform_type(text)


# ---- Form 1 import ----------------------------------------------------------------------


async def test_form1_xlsx_with_title_line(sessions: Sessions) -> None:
    rep = await import_survey(sessions, xlsx(form1(sample_rows())), "survey.xlsx")
    assert rep.ok, rep.text()
    assert (rep.form, rep.rows, rep.created, rep.updated, rep.unchanged) == ("survey", 3, 3, 0, 0)
    assert rep.new_units == ["第一中学", "城东加油站"]
    async with sessions() as s:
        units = {u.name: u for u in (await s.scalars(select(Unit))).all()}
        plats = (
            await s.scalars(select(Platform).order_by(Platform.unit_id, Platform.segment))
        ).all()
    school = units["第一中学"]
    assert (school.category, school.department, school.head_contact, school.address) == (
        "public_service",
        "教育局",
        "张校长 13800000001",
        "瑶海区长江东路1号",
    )
    assert units["城东加油站"].category == "key_site"
    p1, p2, p3 = plats
    assert (p1.unit_id, p1.segment, p2.unit_id, p2.segment) == (school.id, "1", school.id, "2")
    assert (p1.built_on, p1.kind, p1.signal, p1.platform_standard, p1.sdk_available) == (
        "2018",
        "platform",
        "digital",
        True,
        True,
    )
    assert (p1.camera_models, p1.camera_count, p1.recorder_count, p1.camera_type) == (
        "DS-2CD3T46 12台；DS-2DE4 3台",
        15,
        2,
        "network",
    )
    assert (p1.network, p1.uplink_mbps, p1.storage_mode, p1.retention_days, p1.coverage) == (
        "internet",
        100.0,
        "server",
        30,
        "C",
    )
    assert (p2.built_on, p2.kind, p2.signal, p2.camera_count, p2.camera_type, p2.sdk_available) == (
        "2019-05-01",
        "none",
        "analog",
        8,
        "analog",
        False,
    )
    assert (
        p2.network,
        p2.uplink_mbps,
        p2.storage_mode,
        p2.retention_days,
        p2.faults,
        p2.coverage,
    ) == ("lan", 50.0, "recorder", 90, "2路无信号", "B")
    assert (p2.recorder_models, p2.recorder_count) == (None, 1)
    assert (p3.camera_models, p3.camera_count, p3.network, p3.uplink_mbps, p3.coverage) == (
        None,
        12,
        "none",
        None,
        "A",
    )


async def test_import_twice_changes_nothing(sessions: Sessions) -> None:
    data = xlsx(form1(sample_rows()))
    assert (await import_survey(sessions, data, "a.xlsx")).ok
    before = await dump(sessions)
    rep = await import_survey(sessions, data, "a.xlsx")
    assert rep.ok and (rep.created, rep.updated, rep.unchanged) == (0, 0, 3) and rep.new_units == []
    assert await dump(sessions) == before


@pytest.mark.parametrize(
    ("encoding", "name"),
    [
        ("utf-8", "survey.csv"),
        ("utf-8-sig", "survey.csv"),
        ("gbk", "survey.csv"),
        ("gbk", "survey-utf8.csv"),
        ("gb18030", "调查表.txt"),
    ],
)
async def test_form1_csv_encodings(sessions: Sessions, encoding: str, name: str) -> None:
    rows = form1(sample_rows())
    # headers as people type them: spaces and half-width parentheses
    rows[2] = [h.replace("（M）", "(M)").replace("单位名称", "单位 名称") for h in rows[2]]
    rep = await import_survey(sessions, csv_bytes(rows, encoding), name)
    assert rep.ok, rep.text()
    assert rep.created == 3
    async with sessions() as s:
        p = (
            await s.scalars(select(Platform).where(Platform.segment == "1").order_by(Platform.id))
        ).first()
    assert p is not None and p.uplink_mbps == 100.0 and p.network == "internet"


async def test_department_argument_wins_with_warning(sessions: Sessions) -> None:
    rep = await import_survey(sessions, xlsx(form1(sample_rows(), "卫健委")), "a.xlsx", "教育局")
    assert rep.ok and any("卫健委" in w.reason for w in rep.warnings)
    async with sessions() as s:
        assert set((await s.scalars(select(Unit.department))).all()) == {"教育局"}


async def test_department_required_for_form1(sessions: Sessions) -> None:
    rep = await import_survey(sessions, xlsx(form1(sample_rows(), None)), "a.xlsx")
    assert not rep.ok and any("主管部门" in p.reason for p in rep.problems)
    rep = await import_survey(
        sessions, xlsx(form1(sample_rows(), None)), "a.xlsx", department="教育局"
    )
    assert rep.ok


async def test_unit_moving_department_moves_its_channels(sessions: Sessions, registry: Any) -> None:
    assert (await import_survey(sessions, xlsx(form1(sample_rows())), "a.xlsx")).ok
    async with sessions() as s, s.begin():
        uid = (await s.scalars(select(Unit.id).where(Unit.name == "第一中学"))).one()
        s.add(Channel(id="34010200001310000001", name="校门", unit_id=uid, department="教育局"))
    rep = await import_survey(sessions, xlsx(form1(sample_rows())), "a.xlsx", "文旅局")
    assert rep.ok and (rep.updated, rep.unchanged) == (2, 1)
    assert any("moves" in w.reason for w in rep.warnings)
    async with sessions() as s:
        assert (await s.scalars(select(Channel.department))).one() == "文旅局"


async def test_bad_values_all_reported_and_nothing_written(sessions: Sessions) -> None:
    assert (await import_survey(sessions, xlsx(form1(sample_rows())), "a.xlsx")).ok
    before = await dump(sessions)
    rows = sample_rows()
    rows[0] = unit_row(
        **{"单位类别": "外星机构", "摄像机型号数量": "DS-2CD3T46", "存储时长": "很久"}
    )
    rows[2] = unit_row(
        "城东加油站",
        **{"平台是否支持GB28181/ONVIF": "也许", "覆盖范围": "D", "系统建设时间": "2018-02-30"},
    )
    rows.append(unit_row("", **{"单位类别": "党政机关"}))
    rep = await import_survey(sessions, xlsx(form1(rows)), "bad.xlsx")
    assert not rep.ok
    got = {(p.row, p.column) for p in rep.problems}
    assert got == {
        (4, "单位类别"),
        (4, "摄像机型号数量"),
        (4, "存储时长"),
        (6, "平台是否支持GB28181/ONVIF"),
        (6, "覆盖范围"),
        (6, "系统建设时间"),
        (7, "单位名称"),
    }
    assert next(p for p in rep.problems if p.column == "摄像机型号数量").value == "DS-2CD3T46"
    assert await dump(sessions) == before
    assert "NOT imported" in rep.text()


async def test_conflicting_unit_columns_are_a_problem(sessions: Sessions) -> None:
    rows = [unit_row(), unit_row(**{"单位地址": "别处"})]
    rep = await import_survey(sessions, xlsx(form1(rows)), "a.xlsx")
    assert [(p.row, p.column) for p in rep.problems] == [(5, "单位地址")]


async def test_dry_run_writes_nothing(sessions: Sessions) -> None:
    before = await dump(sessions)
    rep = await import_survey(sessions, xlsx(form1(sample_rows())), "a.xlsx", dry_run=True)
    assert rep.ok and rep.created == 3 and rep.new_units == ["第一中学", "城东加油站"]
    assert await dump(sessions) == before


async def test_unit_only_row_and_kept_segments(sessions: Sessions) -> None:
    blank = [""] * (len(FORM1_HEADERS) - 4)
    rows = [[*unit_row("居民小区甲")[:4], *blank]]
    rows[0][2] = "居民住宅小区"
    rep = await import_survey(sessions, xlsx(form1([*rows, *sample_rows()])), "a.xlsx")
    assert rep.ok and rep.created == 4
    async with sessions() as s:
        assert len((await s.scalars(select(Platform))).all()) == 3
    rep = await import_survey(sessions, xlsx(form1(sample_rows()[:1])), "b.xlsx")
    assert rep.ok and rep.unchanged == 1
    assert any("segments 2" in w.reason for w in rep.warnings)


# ---- export and round trips -------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
async def test_export_import_round_trip(sessions: Sessions, tmp_path: Path, suffix: str) -> None:
    assert (await import_survey(sessions, xlsx(form1(sample_rows())), "a.xlsx")).ok
    other = [
        unit_row(
            "市立医院",
            **{
                "单位类别": "公共服务行业",
                "网络结构/出口带宽（M）": "互联网/2.5",
                "摄像机型号数量": "DS-2CD 5台",
                "DVR/NVR型号数量": "",
                "存储方式": "其他方式",
            },
        )
    ]
    assert (await import_survey(sessions, xlsx(form1(other, "卫健委")), "b.xlsx")).ok
    before = await dump(sessions)
    one = tmp_path / f"edu{suffix}"
    assert await export_survey(sessions, one, "教育局") == 3
    rep = await import_survey(sessions, one.read_bytes(), one.name)
    assert rep.ok and (rep.created, rep.updated, rep.unchanged) == (0, 0, 3), rep.text()
    every = tmp_path / f"all{suffix}"
    assert await export_survey(sessions, every) == 4
    rep = await import_survey(sessions, every.read_bytes(), every.name)
    assert rep.ok and (rep.created, rep.updated, rep.unchanged) == (0, 0, 4), rep.text()
    assert await dump(sessions) == before
    raw = spreadsheet.read_raw_rows(one.read_bytes(), one.name)
    assert raw[1][0] == "主管部门：教育局" and raw[2][: len(FORM1_HEADERS)] == FORM1_HEADERS
    assert (
        raw[3][5] == "有平台/数字"
        and raw[3][23] == "C 单位内部及临街公共场所"
        and raw[3][21] == "30天"
    )


async def test_export_round_trip_of_platforms_made_elsewhere(
    sessions: Sessions, tmp_path: Path
) -> None:
    async with sessions() as s, s.begin():
        u = Unit(name="物流园", department="商务局", category="public_service")
        s.add(u)
        await s.flush()
        s.add(
            Platform(
                unit_id=u.id,
                segment="1",
                camera_count=7,
                camera_models="DS-2CD",
                recorder_count=1,
                uplink_mbps=12.5,
                kind="platform",
            )
        )
    path = tmp_path / "x.xlsx"
    await export_survey(sessions, path, "商务局")
    assert (
        await import_survey(sessions, path.read_bytes(), "x.xlsx")
    ).updated == 1  # text now says ×7
    before = await dump(sessions)
    await export_survey(sessions, path, "商务局")
    rep = await import_survey(sessions, path.read_bytes(), "x.xlsx")
    assert rep.unchanged == 1 and await dump(sessions) == before


# ---- Form 2 -------------------------------------------------------------------------------


def form2(
    rows: list[list[Any]], total: list[Any] | None, department: str | None = "教育局"
) -> list[list[Any]]:
    out: list[list[Any]] = [["摸底汇总表"]]
    if department:
        out.append([f"主管部门：{department}"])
    out.append(list(FORM2_HEADERS))
    out += rows
    if total is not None:
        out.append(["合计", *total])
    out += [["填表人：王五", "", "联系电话：0551-1234567"]]
    return out


async def test_form2_import(sessions: Sessions) -> None:
    rows = [["第一中学", 23, 1, 3, 15], ["第二中学", "8", "0", "1", ""]]
    rep = await import_survey(sessions, csv_bytes(form2(rows, [31, 1, 4, 15]), "gbk"), "sum.csv")
    assert rep.ok and rep.form == "summary" and rep.created == 2 and not rep.warnings, rep.text()
    async with sessions() as s:
        got = (await s.scalars(select(SurveySummary).order_by(SurveySummary.unit_name))).all()
    assert [
        (
            g.department,
            g.unit_name,
            g.cameras,
            g.platforms,
            g.recorders,
            g.public_cameras,
            g.filled_by,
            g.phone,
        )
        for g in got
    ] == [
        ("教育局", "第一中学", 23, 1, 3, 15, "王五", "0551-1234567"),
        ("教育局", "第二中学", 8, 0, 1, 0, "王五", "0551-1234567"),
    ]
    before = await dump(sessions)
    rep = await import_survey(sessions, xlsx(form2(rows, [31, 1, 4, 15])), "sum.xlsx")
    assert rep.ok and rep.unchanged == 2 and await dump(sessions) == before


async def test_form2_total_mismatch_is_a_warning(sessions: Sessions) -> None:
    rep = await import_survey(
        sessions, xlsx(form2([["第一中学", 23, 1, 3, 15]], [99, 1, 3, 15])), "s.xlsx"
    )
    assert rep.ok and rep.created == 1
    assert [(w.column, w.value) for w in rep.warnings] == [("摄像头数量", "99")]


async def test_form2_problems(sessions: Sessions) -> None:
    rows = [["第一中学", "很多", 1, 3, 15], ["第一中学", 1, 1, 1, 1], ["", 1, 1, 1, 1]]
    rep = await import_survey(sessions, xlsx(form2(rows, None)), "s.xlsx")
    assert {(p.row, p.column) for p in rep.problems} == {
        (4, "摄像头数量"),
        (5, "所属单位名称"),
        (6, "所属单位名称"),
    }
    rep = await import_survey(
        sessions, xlsx(form2([["第一中学", 1, 1, 1, 1]], None, None)), "s.xlsx"
    )
    assert not rep.ok and "主管部门" in rep.problems[0].reason


async def test_export_summary_computed_from_registry(sessions: Sessions, tmp_path: Path) -> None:
    assert (await import_survey(sessions, xlsx(form1(sample_rows())), "a.xlsx")).ok
    assert (
        await import_survey(sessions, xlsx(form2([["第一中学", 1, 1, 1, 1]], None)), "s.xlsx")
    ).ok
    async with sessions() as s, s.begin():
        p = (await s.scalars(select(Platform).where(Platform.camera_count == 12))).one()
        p.public_camera_count = 5
    path = tmp_path / "sum.xlsx"
    assert await export_summary(sessions, path, "教育局") == 2
    raw = [[c for c in r if c] for r in spreadsheet.read_raw_rows(path.read_bytes(), path.name)]
    assert raw[1] == ["主管部门：教育局"] and raw[2] == FORM2_HEADERS
    # 第一中学: 15 + 8 cameras, one 有平台, 2 + 1 recorders, public: 15 (coverage C) + 0 (B)
    assert raw[3] == ["第一中学", "23", "1", "3", "15"]
    assert raw[4] == ["城东加油站", "12", "1", "2", "5"]
    assert raw[5] == ["合计", "35", "2", "5", "20"]
    assert raw[6:] == [["填表人：王五"], ["联系电话：0551-1234567"]]
    rep = await import_survey(sessions, path.read_bytes(), path.name)
    assert rep.ok and not rep.warnings and (rep.created, rep.updated) == (1, 1), rep.text()


async def test_export_summary_all_departments(sessions: Sessions, tmp_path: Path) -> None:
    assert (await import_survey(sessions, xlsx(form1(sample_rows())), "a.xlsx")).ok
    assert (
        await import_survey(sessions, xlsx(form1([unit_row("市立医院")], "卫健委")), "b.xlsx")
    ).ok
    path = tmp_path / "all.xlsx"
    assert await export_summary(sessions, path) == 3
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["卫健委", "教育局"]
    assert [c.value for c in wb["卫健委"][4]] == ["市立医院", 15, 1, 2, 15]
    path = tmp_path / "all.csv"
    assert await export_summary(sessions, path) == 3
    rep = await import_survey(sessions, path.read_bytes(), path.name)
    assert rep.ok and rep.created == 3 and not rep.warnings, rep.text()
    async with sessions() as s:
        got = sorted(
            (await s.execute(select(SurveySummary.department, SurveySummary.unit_name))).all()
        )
    assert got == [("卫健委", "市立医院"), ("教育局", "城东加油站"), ("教育局", "第一中学")]


# ---- bad files ----------------------------------------------------------------------------


async def test_bad_files(sessions: Sessions, monkeypatch: pytest.MonkeyPatch) -> None:
    good = xlsx(form1(sample_rows()))
    cases = {
        "empty": (b"", "a.csv", "empty"),
        "blank": (b"  \n\n", "a.csv", "empty"),
        "xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "a.xls", ".xls"),
        "truncated": (good[: len(good) // 2], "a.xlsx", "cannot be opened"),
        "not xlsx": (b"hello, world", "a.xlsx", "not an xlsx"),
        "binary": (b"\x01\x00\x02" * 100, "a.csv", "binary"),
        "other form": (csv_bytes([["姓名", "年龄"], ["张三", "3"]]), "a.csv", "neither"),
        "header only": (csv_bytes(form1([])), "a.csv", "no data rows"),
    }
    before = await dump(sessions)
    for label, (data, name, words) in cases.items():
        rep = await import_survey(sessions, data, name)
        assert not rep.ok, label
        assert words in rep.problems[0].reason, (label, rep.problems)
    monkeypatch.setattr(spreadsheet, "MAX_IMPORT_BYTES", 1000)
    rep = await import_survey(sessions, good, "big.xlsx")
    assert not rep.ok and "limited" in rep.problems[0].reason
    assert await dump(sessions) == before


async def test_static_gbk_fixture(sessions: Sessions) -> None:
    """A csv as a county office sent it: GBK, title line, half-width brackets, trailing empty columns."""
    data = (Path(__file__).parent / "data" / "survey_gbk.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    rep = await import_survey(sessions, data, "survey_gbk.csv")
    assert rep.ok and rep.created == 2 and rep.new_units == ["瑶海区人民医院"], rep.text()
    async with sessions() as s:
        counts = (await s.scalars(select(Platform.camera_count).order_by(Platform.segment))).all()
    assert counts == [24, 6]


# ---- never raises -------------------------------------------------------------------------


def _mutate(rows: list[list[str]], mutations: list[tuple[int, int, str]]) -> list[list[str]]:
    for r, c, v in mutations:
        rows[r][c] = v
    return rows


_cell = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", "有平台/数字", "支持", "12台", "互联网/100", "30天", "A", "2018", "×3", "公共服务行业"]
    ),
    st.integers(-5, 10**7).map(str),
)


_mutations = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, len(FORM1_HEADERS) - 1), _cell), max_size=4
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.lists(
            st.lists(_cell, min_size=len(FORM1_HEADERS), max_size=len(FORM1_HEADERS)),
            min_size=1,
            max_size=4,
        ),
        _mutations.map(lambda ms: _mutate(sample_rows(), ms)),
    ),
    st.booleans(),
)
def test_import_never_raises(db_url: str, rows: list[list[str]], as_csv: bool) -> None:
    """Random cells, or the good sample with random cells put in: always a report, never an exception."""

    async def run() -> None:
        engine = create_engine(db_url)
        try:
            sessions = session_factory(engine)
            data = csv_bytes(form1(rows)) if as_csv else xlsx(form1(rows))
            rep = await import_survey(sessions, data, "fuzz.csv" if as_csv else "fuzz.xlsx")
            assert rep.ok or rep.problems
            rep.text()
            summary = [["主管部门：教育局"], FORM2_HEADERS, *[r[:5] for r in rows]]
            rep = await import_survey(sessions, csv_bytes(summary), "fuzz2.csv")
            assert rep.ok or rep.problems
            async with sessions() as s:
                await s.execute(text("SELECT 1"))
        finally:
            await engine.dispose()

    asyncio.run(run())
