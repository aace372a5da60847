"""Issue 19, done when: a fresh platform imports a real city's channel list without set-up.

Wuhai (乌海市, Inner Mongolia): 300 points over 海勃湾区 (150302) and 乌达区 (150304), the
fixture made here from the shipped list (county and township codes as a city's survey gives
them), as xlsx and as GBK csv. Right division names, re-import changes nothing, a bad file is
refused whole with every bad row named. SQLite and PostgreSQL (the ``db_url`` fixture); the
command line end to end on a brand-new SQLite file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _sheets import csv_bytes, dump, xlsx
from sqlalchemy import func, select
from typer.testing import CliRunner

from xueliang.app import Platform
from xueliang.config import Settings
from xueliang.db.tables import Channel, Division
from xueliang.registry import divisions as dv
from xueliang.registry.channel_list import CHANNEL_HEADERS, import_channels

LIST = dict(dv.shipped().rows())
COUNTIES = ("150302", "150304")
TOWNSHIPS = {c: sorted(k for k in LIST if len(k) == 9 and k.startswith(c)) for c in COUNTIES}


def wuhai_rows(n: int = 300) -> list[list[Any]]:
    """n points, half in each district; every third on the county, the rest on its townships."""
    rows: list[list[Any]] = []
    for i in range(n):
        county = COUNTIES[i % 2]
        towns = TOWNSHIPS[county]
        code = county if i % 3 == 0 else towns[i % len(towns)]
        rows.append([
            f"{county}0000131{i:07d}",
            f"{LIST[code]}{i}号点位",
            f"乌海{['第一中学', '人民医院', '客运站'][i % 3]}",
            code,
            ["一类", "二类", "三类"][i % 3],
            "ABC"[i % 3],
            ["高空瞭望", "建筑制高点", "地面"][i % 3],
            ["球机", "半球", "固定枪机", "遥控枪机"][i % 4],
            round(106.79 + (i % 97) / 1000, 6),
            round(39.66 + (i % 89) / 1000, 6),
            f"{LIST[county]}{i}号",
            "是" if i % 10 == 0 else "否",
        ])
    return rows


def as_file(kind: str, rows: list[list[Any]], header: list[str] | None = None) -> tuple[bytes, str]:
    table = [header or list(CHANNEL_HEADERS), *rows]
    if kind == "xlsx":
        return xlsx(table), "乌海市点位清单.xlsx"
    return csv_bytes(table, "gbk"), "乌海市点位清单.csv"


def settings_for(url: str, var: Path) -> Settings:
    return Settings(
        database={"url": url}, storage={"var_dir": var}, secret_key="test-secret-0123456789abcdef",
        sip={"enabled": False}, media={"enabled": False},
    )


@pytest.fixture
async def fresh(db_url: str, tmp_path: Path) -> Any:
    """A platform as `xueliang db upgrade` leaves it: migrated, then the national list loaded."""
    p = Platform(settings_for(db_url, tmp_path))
    rep = await p.migrate()
    assert rep is not None and rep.added == len(LIST)
    yield p
    await p.engine.dispose()


def test_the_fixture_covers_two_real_districts() -> None:
    rows = wuhai_rows()
    assert len(rows) == 300
    assert {r[3][:6] for r in rows} == set(COUNTIES)
    assert sum(r[3][:6] == "150302" for r in rows) == 150
    assert {len(r[3]) for r in rows} == {6, 9}


@pytest.mark.parametrize("kind", ["xlsx", "gbk-csv"])
async def test_a_fresh_platform_imports_wuhai(fresh: Platform, kind: str) -> None:
    rows = wuhai_rows()
    data, name = as_file(kind, rows)
    rep = await import_channels(fresh.sessions, data, name)
    assert rep.ok, rep.text()
    assert (rep.rows, rep.created, rep.updated, rep.unchanged) == (300, 300, 0, 0)
    assert rep.new_divisions == [] and rep.problems == []
    async with fresh.sessions() as s:
        got = dict((await s.execute(
            select(Channel.id, Division.name).join(Division, Division.code == Channel.division_code)
        )).all())
    assert len(got) == 300
    for r in rows:  # every point under the list's own name of its division
        assert got[r[0]] == LIST[r[3]], r
    assert {got[r[0]] for r in rows if r[3] in COUNTIES} == {"海勃湾区", "乌达区"}

    before = await dump(fresh.sessions)
    again = await import_channels(fresh.sessions, data, name)
    assert again.ok and (again.created, again.updated, again.unchanged) == (0, 0, 300), again.text()
    assert again.new_units == [] and again.new_divisions == []
    assert await dump(fresh.sessions) == before  # not a row touched, updated_at included


async def test_a_bad_wuhai_file_is_refused_whole(fresh: Platform) -> None:
    rows = wuhai_rows()
    bad = {
        5: (3, "150399"),  # a county no list holds
        40: (3, "15030"),  # not a division code at all
        77: (3, "150399001001"),  # a village under no registered county
        120: (8, 2.35),  # outside China
        250: (0, "15030200001310"),  # not a 20-digit ID
    }
    for i, (col, value) in bad.items():
        rows[i][col] = value
    before = await dump(fresh.sessions)
    for kind in ("xlsx", "gbk-csv"):
        data, name = as_file(kind, rows)
        rep = await import_channels(fresh.sessions, data, name)
        assert not rep.ok
        assert sorted({p.row for p in rep.problems}) == [i + 2 for i in sorted(bad)], rep.text()
        assert {(p.row, p.column) for p in rep.problems} == {
            (i + 2, CHANNEL_HEADERS[col]) for i, (col, _v) in bad.items()
        }
        assert (rep.created, rep.updated, rep.new_divisions, rep.new_units) == (0, 0, [], [])
        assert await dump(fresh.sessions) == before


async def test_unknown_townships_and_villages_under_a_known_county_are_created(fresh: Platform) -> None:
    rows = wuhai_rows(6)
    header = [*CHANNEL_HEADERS, "行政区划名称"]
    town = TOWNSHIPS["150302"][0]
    rows[0][3], rows[1][3] = "150302777", "150302777"  # a new township, named by the file
    rows[2][3] = f"{town}888"  # a new village of a listed township, named by the file
    rows[3][3] = "150304555001"  # a new village of a new township: the township takes its code as name
    names = ["新区街道", "新区街道", "幸福村", "团结社区", "", ""]
    full = [[*r, names[i]] for i, r in enumerate(rows)]
    data, name = as_file("xlsx", full, header)
    dry = await import_channels(fresh.sessions, data, name, dry_run=True)
    assert dry.ok and len(dry.new_divisions) == 4
    async with fresh.sessions() as s:
        assert await s.get(Division, "150302777") is None
    rep = await import_channels(fresh.sessions, data, name)
    assert rep.ok, rep.text()
    assert rep.new_divisions == [  # by code
        f"{town}888 幸福村", "150302777 新区街道", "150304555 150304555", "150304555001 团结社区",
    ]
    assert "new divisions created" in rep.text()
    async with fresh.sessions() as s:
        made = {d.code: d for d in (await s.scalars(select(Division).where(Division.source == "import"))).all()}
    assert set(made) == {"150302777", f"{town}888", "150304555", "150304555001"}
    assert made["150304555001"].parent_code == "150304555" and made["150304555001"].level == "village"
    assert made["150302777"].parent_code == "150302" and made["150302777"].level == "township"
    again = await import_channels(fresh.sessions, data, name)
    assert again.ok and again.new_divisions == [] and again.unchanged == 6


async def test_a_name_the_file_gives_twice_differently_is_a_problem(fresh: Platform) -> None:
    rows = wuhai_rows(3)
    rows[0][3] = rows[2][3] = "150302777"
    header = [*CHANNEL_HEADERS, "行政区划名称"]
    full = [[*rows[0], "甲街道"], [*rows[1], ""], [*rows[2], "乙街道"]]
    data, name = as_file("gbk-csv", full, header)
    rep = await import_channels(fresh.sessions, data, name)
    assert not rep.ok and [(p.row, p.column) for p in rep.problems] == [(4, "行政区划名称")]
    async with fresh.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Channel)) == 0


async def test_a_retired_code_still_imports(fresh: Platform) -> None:
    lst = dv.shipped()
    newer = [(c, n) for c, n in lst.rows() if not c.startswith("150304")]
    await dv.load_list(fresh.sessions, newer, version="a newer list", source="test")
    data, name = as_file("xlsx", wuhai_rows(4))
    rep = await import_channels(fresh.sessions, data, name)
    assert rep.ok and rep.created == 4, rep.text()
    assert any("historical" in w.reason for w in rep.warnings)


def test_the_command_line_on_a_brand_new_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`xueliang db upgrade` then `xueliang channels import`, nothing else, on a new SQLite file."""
    from xueliang.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XUELIANG_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path}/city.db")
    monkeypatch.setenv("XUELIANG_SECRET_KEY", "test-secret-0123456789abcdef")
    runner = CliRunner()
    up = runner.invoke(app, ["db", "upgrade"])
    assert up.exit_code == 0 and dv.shipped().version in up.output, up.output
    data, _ = as_file("gbk-csv", wuhai_rows())
    path = tmp_path / "乌海市点位清单.csv"
    path.write_bytes(data)
    first = runner.invoke(app, ["channels", "import", str(path)])
    assert first.exit_code == 0 and "300 created" in first.output, first.output
    second = runner.invoke(app, ["channels", "import", str(path)])
    assert second.exit_code == 0 and "300 unchanged" in second.output, second.output
    again = runner.invoke(app, ["divisions", "load"])
    assert again.exit_code == 0 and "0 added" in again.output and "0 retired" in again.output, again.output


async def test_villages_of_the_list_not_loaded_come_with_their_names(fresh: Platform) -> None:
    """A city that did not load its villages still imports village codes: named by the list."""
    villages = list(dv.shipped().villages("150304"))[:3]
    assert len(villages) == 3
    rows = wuhai_rows(4)
    header = [*CHANNEL_HEADERS, "行政区划名称"]
    for i, (code, _n) in enumerate(villages):
        rows[i][3] = code
    full = [[*r, "文件里的名字" if i == 0 else ""] for i, r in enumerate(rows)]
    rep = await import_channels(fresh.sessions, xlsx([header, *full]), "v.xlsx")
    assert rep.ok and rep.created == 4, rep.text()
    assert rep.new_divisions == []  # they are in the national list: nothing invented
    assert any("national list" in w.reason and villages[0][0] in w.reason for w in rep.warnings)
    assert any(w.column == "行政区划名称" and "national list" in w.reason for w in rep.warnings)
    async with fresh.sessions() as s:
        for code, name in villages:
            d = await s.get(Division, code)
            assert d is not None and (d.name, d.source, d.parent_code) == (name, "national", code[:9])
    # loading the city's villages later finds them already there, unchanged
    loaded = await dv.load_villages(fresh.sessions, "150304")
    assert loaded.unchanged == 3 and loaded.renamed == 0


async def test_the_tree_starts_from_the_divisions_in_use(fresh: Platform) -> None:
    """Out of ~45,000 national divisions, the console's tree shows Wuhai's: those holding a
    channel or a unit, and those entered here."""
    from xueliang.registry.models import DivisionIn

    data, name = as_file("xlsx", wuhai_rows(30))
    assert (await import_channels(fresh.sessions, data, name)).ok
    reg = fresh.registry

    async def codes(**kw: Any) -> set[str]:
        rows, _ = await reg.list_divisions(limit=1000, in_use=True, **kw)
        return {d.code for d in rows}

    assert await codes() >= {"15", "1503", "150302", "150304"}
    assert {c for c in await codes() if len(c) <= 4} == {"15", "1503"}
    assert await codes(parent="15") == {"1503"}
    assert await codes(parent="1503") == {"150302", "150304"}  # not 海南区 150303: nothing there
    await reg.upsert_division(DivisionIn(code="1503030010001", name="海南区网格"))
    assert await codes(parent="1503") == {"150302", "150303", "150304"}  # its grid is in use
    all_rows, _ = await reg.list_divisions(parent="1503", limit=1000)
    assert {d.code for d in all_rows} == {"150302", "150303", "150304"}


async def test_an_old_survey_with_a_retired_county_imports_on_a_fresh_platform(fresh: Platform) -> None:
    """杭州市下城区 (330103) was merged away in 2021: the shipped list keeps it as historical."""
    rows = wuhai_rows(2)
    rows[0][0], rows[0][3] = "33010300001310000001", "330103"
    rep = await import_channels(fresh.sessions, xlsx([list(CHANNEL_HEADERS), *rows]), "旧表.xlsx")
    assert rep.ok and rep.created == 2 and rep.new_divisions == [], rep.text()
    assert any("historical" in w.reason and "330103" in w.reason for w in rep.warnings)
    async with fresh.sessions() as s:
        d = await s.get(Division, "330103")
        assert d is not None and d.historical and d.name == "下城区"
