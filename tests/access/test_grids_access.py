"""Grids (网格) through the API, adversarially: who may import a grid list, who sees which grid.

Every way to reach a grid is tried: the grid listing, the division listing (all, by level, by
parent, under a code), the division item. A scoped reader sees the grids holding a camera of
their scope, and a grid outside it answers exactly like a missing code (404).
"""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import openpyxl
import pytest

from tests.access.conftest import LOOKOUT, SCHOOL, user
from xueliang.access import policy
from xueliang.access.policy import Action
from xueliang.registry.grids import GRID_HEADERS
from xueliang.registry.models import ChannelFields, DivisionIn

G_SCHOOL = "3401020010001"  # holds the school's camera (教育局)
G_POLICE = "3401030000001"  # holds the lookout (公安局)
G_EMPTY = "3401020020009"  # holds nothing
SQUARE = {"type": "Polygon", "coordinates": [[[117.2, 31.8], [117.21, 31.8], [117.21, 31.81], [117.2, 31.8]]]}


@pytest.fixture(autouse=True)
def roles(monkeypatch: pytest.MonkeyPatch) -> None:
    everything = frozenset(Action)
    for name, actions in {
        "all-but-manage": everything - {Action.REGISTRY_MANAGE},
        "only-manage": frozenset({Action.REGISTRY_MANAGE}),
        "all-but-read": everything - {Action.REGISTRY_READ},
        "only-read": frozenset({Action.REGISTRY_READ}),
    }.items():
        monkeypatch.setitem(policy.ROLES, name, actions)


@pytest.fixture
async def with_grids(platform: Any) -> Any:
    reg = platform.registry
    await reg.upsert_division(DivisionIn(code=G_SCHOOL, name="一镇一网格", boundary=SQUARE))
    await reg.upsert_division(DivisionIn(code=G_POLICE, name="乙区网格", parent_code="340103"))
    await reg.upsert_division(DivisionIn(code=G_EMPTY, name="空网格"))
    await reg.update_channel(SCHOOL, ChannelFields(division_code=G_SCHOOL))
    await reg.update_channel(LOOKOUT, ChannelFields(division_code=G_POLICE))
    return platform


def xlsx(rows: list[list[Any]]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def grid_file() -> bytes:
    return xlsx([GRID_HEADERS, ["3401020010002", "一镇二网格", "340102001", json.dumps(SQUARE)]])


async def test_only_registry_manage_imports_a_grid_list(client: httpx.AsyncClient, platform: Any) -> None:
    for who, role, kw, want in [
        ("nobody", "all-but-manage", {}, 403),
        ("teacher", "department_user", {"department": "教育局"}, 403),
        ("manager", "only-manage", {}, 200),
    ]:
        h = await user(platform, who, role, **kw)
        r = await client.post("/api/v1/grids/import", headers=h,
                              files={"file": ("网格.xlsx", grid_file())})
        assert r.status_code == want, (who, r.text)
    assert r.json()["created"] == 1 and r.json()["form"] == "grids"
    r = await client.post("/api/v1/grids/import", files={"file": ("网格.xlsx", grid_file())})
    assert r.status_code == 401


async def test_a_bad_grid_list_through_the_api_is_422_naming_rows(client: httpx.AsyncClient, platform: Any) -> None:
    h = await user(platform, "manager", "only-manage")
    bad = xlsx([GRID_HEADERS, ["3401020010002", "", "340102001", ""], ["3409990010002", "x", "340999001", ""]])
    r = await client.post("/api/v1/grids/import", headers=h, files={"file": ("g.xlsx", bad)})
    assert r.status_code == 422 and [p["row"] for p in r.json()["problems"]] == [2, 3]
    lst = await client.get("/api/v1/grids", headers=await user(platform, "root2", "administrator"))
    assert lst.json()["items"] == []


async def _codes(client: httpx.AsyncClient, h: dict[str, str], path: str, **params: str) -> set[str]:
    r = await client.get(path, headers=h, params={"limit": "1000", **params})
    assert r.status_code == 200, r.text
    return {d["code"] for d in r.json()["items"]}


async def test_a_scoped_reader_sees_only_the_grids_of_their_scope(client: httpx.AsyncClient, with_grids: Any) -> None:
    p = with_grids
    teacher = await user(p, "teacher", "department_user", department="教育局")
    admin = await user(p, "admin2", "administrator")
    grids = {G_SCHOOL, G_POLICE, G_EMPTY}
    assert await _codes(client, admin, "/api/v1/grids") == grids
    assert await _codes(client, teacher, "/api/v1/grids") == {G_SCHOOL}
    # every other way to reach a grid
    assert await _codes(client, teacher, "/api/v1/divisions", level="grid") == {G_SCHOOL}
    assert await _codes(client, teacher, "/api/v1/divisions", under="3401") & grids == {G_SCHOOL}
    assert await _codes(client, teacher, "/api/v1/divisions", parent="340103") == set()
    assert await _codes(client, teacher, "/api/v1/divisions", q="网格") == {G_SCHOOL}
    assert await _codes(client, teacher, "/api/v1/grids", under="340103") == set()
    for code in (G_POLICE, G_EMPTY):
        hidden = await client.get(f"/api/v1/divisions/{code}", headers=teacher)
        missing = await client.get("/api/v1/divisions/3401039999999", headers=teacher)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["detail"].replace(code, "X") == missing.json()["detail"].replace("3401039999999", "X")
    assert (await client.get(f"/api/v1/divisions/{G_SCHOOL}", headers=teacher)).status_code == 200
    # the divisions themselves stay public names
    assert (await client.get("/api/v1/divisions/340103", headers=teacher)).status_code == 200
    # the boundary comes with the grid
    item = (await client.get("/api/v1/grids", headers=teacher)).json()["items"][0]
    assert item["boundary"] == SQUARE and item["parent_code"] == "340102001"


async def test_grid_listing_needs_registry_read(client: httpx.AsyncClient, with_grids: Any) -> None:
    p = with_grids
    refused = await user(p, "noread", "all-but-read")
    allowed = await user(p, "onlyread", "only-read")
    assert (await client.get("/api/v1/grids", headers=refused)).status_code == 403
    assert (await client.get(f"/api/v1/divisions/{G_SCHOOL}", headers=refused)).status_code == 403
    r = await client.get("/api/v1/grids", headers=allowed)
    assert r.status_code == 200 and {d["code"] for d in r.json()["items"]} == {G_SCHOOL, G_POLICE, G_EMPTY}


async def test_the_tree_of_divisions_in_use_tells_nothing_out_of_scope(client: httpx.AsyncClient, platform: Any) -> None:
    """`/divisions?in_use=true` (the console's tree) counts only the cameras a scoped reader may
    see: 乙区 (340103), with only 公安局's cameras, is not in use for 教育局's teacher."""
    from xueliang.registry import divisions as dv

    seeded = [("34", "省"), ("3401", "市"), ("340102", "甲区"), ("340103", "乙区"), ("340102001", "一镇"),
              ("340102002", "二镇"), ("340102001001", "一村")]
    await dv.load_list(platform.sessions, seeded, version="t", source="t", levels=(2, 4, 6, 9, 12))
    teacher = await user(platform, "teacher", "department_user", department="教育局")
    admin = await user(platform, "admin2", "administrator")
    everything = await _codes(client, admin, "/api/v1/divisions", in_use="true")
    assert everything == {c for c, _n in seeded}
    mine = await _codes(client, teacher, "/api/v1/divisions", in_use="true")
    assert mine == {"34", "3401", "340102", "340102001", "340102002"}
    assert await _codes(client, teacher, "/api/v1/divisions", in_use="true", parent="3401") == {"340102"}
    # without in_use the names stay public, as before
    assert "340103" in await _codes(client, teacher, "/api/v1/divisions")
