"""Grids (网格): the city's grid list imported all-or-nothing, grids entered one by one, boundaries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _sheets import Sessions, csv_bytes, dump, xlsx
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from xueliang.db.tables import Division
from xueliang.errors import Invalid
from xueliang.registry.geojson import parse_boundary
from xueliang.registry.grids import GRID_HEADERS, import_grids
from xueliang.registry.models import DivisionIn

SQUARE = {"type": "Polygon", "coordinates": [[[106.8, 39.6], [106.81, 39.6], [106.81, 39.61], [106.8, 39.6]]]}


async def wuhai(registry: Any) -> None:
    for code, name in [("15", "内蒙古自治区"), ("1503", "乌海市"), ("150302", "海勃湾区"),
                       ("150302001", "凤凰岭街道"), ("150302001001", "某社区")]:
        await registry.upsert_division(DivisionIn(code=code, name=name))


def grid_rows() -> list[list[Any]]:
    return [
        ["1503020010001", "凤凰岭一网格", "150302001", json.dumps(SQUARE)],
        ["1503020010002", "凤凰岭二网格", "150302001", ""],
        ["150302001001001", "某社区一网格", "150302001001",
         json.dumps({"type": "Feature", "properties": {}, "geometry": SQUARE})],
        ["1503020000001", "海勃湾区直属网格", "150302", ""],
    ]


async def grids(sessions: Sessions) -> dict[str, Division]:
    async with sessions() as s:
        return {d.code: d for d in (await s.scalars(select(Division).where(Division.level == "grid"))).all()}


@pytest.mark.parametrize("kind", ["xlsx", "gbk-csv"])
async def test_a_grid_list_imports_and_reimports_unchanged(sessions: Sessions, registry: Any, kind: str) -> None:
    await wuhai(registry)
    table = [GRID_HEADERS, *grid_rows()]
    data = xlsx(table) if kind == "xlsx" else csv_bytes(table, "gbk")
    rep = await import_grids(sessions, data, "网格.xlsx" if kind == "xlsx" else "网格.csv")
    assert rep.ok and (rep.form, rep.created, rep.updated, rep.unchanged) == ("grids", 4, 0, 0), rep.text()
    got = await grids(sessions)
    assert got["1503020010001"].parent_code == "150302001" and got["1503020010001"].source == "local"
    assert json.loads(got["1503020010001"].boundary or "") == SQUARE
    assert json.loads(got["150302001001001"].boundary or "") == SQUARE  # the Feature's geometry
    assert got["1503020010002"].boundary is None
    before = await dump(sessions)
    again = await import_grids(sessions, data, "网格")
    assert again.ok and (again.created, again.updated, again.unchanged) == (0, 0, 4)
    assert await dump(sessions) == before
    # a rename updates; an empty boundary keeps the stored one
    rows = grid_rows()
    rows[0][1], rows[0][3] = "凤凰岭第一网格", ""
    rep3 = await import_grids(sessions, xlsx([GRID_HEADERS, *rows]), "g.xlsx")
    assert rep3.ok and (rep3.updated, rep3.unchanged) == (1, 3)
    g = (await grids(sessions))["1503020010001"]
    assert g.name == "凤凰岭第一网格" and json.loads(g.boundary or "") == SQUARE


async def test_a_bad_grid_list_is_refused_whole_naming_every_row(sessions: Sessions, registry: Any) -> None:
    await wuhai(registry)
    rows = grid_rows()
    rows.append(["1503990010001", "无主网格", "150399001", ""])  # parent not registered
    rows.append(["1503020020001", "错位网格", "150302001", ""])  # does not begin with its parent
    rows.append(["15030200100", "太短", "150302001", ""])  # not 13-20 digits
    rows.append(["1503020010003", "", "150302001", ""])  # no name
    rows.append(["1503020010004", "坏边界", "150302001", '{"type": "Point", "coordinates": [1, 2]}'])
    rows.append(["1503020010005", "境外", "150302001",
                 json.dumps({"type": "Polygon", "coordinates": [[[2, 48], [3, 48], [3, 49], [2, 48]]]})])
    rows.append(["1503020010001", "重复", "150302001", ""])  # duplicate of row 2
    rows.append(["1503020010006", "上级不是区县", "1503", ""])
    before = await dump(sessions)
    rep = await import_grids(sessions, xlsx([GRID_HEADERS, *rows]), "g.xlsx")
    assert not rep.ok and (rep.created, rep.updated) == (0, 0)
    assert [(p.row, p.column) for p in rep.problems] == [
        (6, "所属区划代码"), (7, "网格编码"), (8, "网格编码"), (9, "网格名称"), (10, "边界"), (11, "边界"),
        (12, "网格编码"), (13, "所属区划代码"),
    ], rep.text()
    assert "outside China" in rep.problems[5].reason
    assert await dump(sessions) == before


async def test_a_grid_code_that_is_a_division_is_refused(sessions: Sessions, registry: Any) -> None:
    await wuhai(registry)
    rep = await import_grids(sessions, xlsx([GRID_HEADERS, ["150302001001", "村", "150302001", ""]]), "g.xlsx")
    assert not rep.ok and rep.problems[0].column == "网格编码"


async def test_a_grid_entered_by_hand(sessions: Sessions, registry: Any) -> None:
    await wuhai(registry)
    g = await registry.upsert_division(DivisionIn(code="1503020010009", name="手建网格", boundary=SQUARE))
    assert (g.level, g.parent_code, json.loads(g.boundary)) == ("grid", "150302001", SQUARE)
    g2 = await registry.upsert_division(DivisionIn(code="1503020000009", name="区直网格", parent_code="150302"))
    assert g2.parent_code == "150302"
    with pytest.raises(Invalid):
        await registry.upsert_division(DivisionIn(code="1503990000009", name="无主"))
    with pytest.raises(ValueError):
        DivisionIn(code="150302001", name="乡镇", boundary=SQUARE)
    with pytest.raises(ValueError):
        DivisionIn(code="1503020010009", name="网格", parent_code="150303")


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.text(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
            st.sampled_from(["type", "coordinates", "geometry", "x"]), inner, max_size=3),
        max_leaves=30,
    ).map(json.dumps),
))
def test_a_boundary_is_parsed_or_refused_clearly(text: str) -> None:
    try:
        g = parse_boundary(text)
    except ValueError as exc:
        assert str(exc)
        return
    if g is not None:
        assert g["type"] in ("Polygon", "MultiPolygon")
        assert parse_boundary(json.dumps(g)) == g


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(73.5, 135.0), st.floats(3.6, 53.5)), min_size=3, max_size=30))
def test_any_closed_ring_in_china_is_a_boundary(points: list[tuple[float, float]]) -> None:
    ring = [list(p) for p in points] + [list(points[0])]
    g = parse_boundary(json.dumps({"type": "MultiPolygon", "coordinates": [[ring]]}))
    assert g == {"type": "MultiPolygon", "coordinates": [[ring]]}
