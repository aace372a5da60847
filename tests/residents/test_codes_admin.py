"""Invitation codes as the console manages them, adversarially: only ``residents.manage``
opens the three routes (a principal holding every other right is refused, one holding exactly
it is let through); a centre or administrator bound to a division makes, sees and revokes the
codes of its own division only; the count of residents who joined is in the listing. And the
phone's reports: idempotent by the phone's reference, and held to the residents' rate."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.residents.test_residents_api import PLACE_A, PLACE_B, PW, city, code, join, user
from xueliang.access import policy
from xueliang.access.policy import Action
from xueliang.app import Platform
from xueliang.db.tables import Incident
from xueliang.incidents import reports

CODES = "/api/v1/residents/codes"


@pytest.fixture
def exact_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(policy.ROLES, "all-but-residents", frozenset(Action) - {Action.RESIDENTS_MANAGE})
    monkeypatch.setitem(policy.ROLES, "only-residents", frozenset({Action.RESIDENTS_MANAGE}))


async def test_only_residents_manage_opens_the_codes(platform: Platform, client: httpx.AsyncClient,
                                                     admin: dict[str, str], exact_roles: None) -> None:
    made = await code(client, admin)
    allbut = await user(platform, client, "allbut", "all-but-residents")
    only = await user(platform, client, "only", "only-residents")
    # every right but the one: refused on each route, and nothing changes
    assert (await client.get(CODES, headers=allbut)).status_code == 403
    r = await client.post(CODES, headers=allbut, json={"division_code": PLACE_A, "place": "x"})
    assert r.status_code == 403
    assert (await client.delete(f"{CODES}/{made['id']}", headers=allbut)).status_code == 403
    listed = (await client.get(CODES, headers=admin)).json()["items"]
    assert [(c["id"], c["state"]) for c in listed] == [(made["id"], "active")]
    # exactly the one: lists, makes, revokes
    assert [c["id"] for c in (await client.get(CODES, headers=only)).json()["items"]] == [made["id"]]
    mine = await code(client, only, PLACE_B, max_uses=3, valid_hours=2)
    assert mine["max_uses"] == 3 and mine["uses"] == 0 and mine["created_by"] == "only"
    assert (await client.delete(f"{CODES}/{mine['id']}", headers=only)).status_code == 204
    states = {c["id"]: c["state"] for c in (await client.get(CODES, headers=only)).json()["items"]}
    assert states == {made["id"]: "active", mine["id"]: "revoked"}
    # the steps are audited
    rows = (await client.get("/api/v1/audit/records?limit=200", headers=admin)).json()["items"]
    done = {(a["action"], a["actor"]) for a in rows}
    assert ("residents.code.create", "only") in done and ("residents.code.revoke", "only") in done, done


@pytest.mark.parametrize("role", ["operator", "administrator"])
async def test_a_division_bound_manager_sees_and_makes_its_own_divisions_codes_only(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str], role: str) -> None:
    await city(platform)
    town_a, town_b = PLACE_A[:9], "340102002"
    there = await code(client, admin, town_b + "001")  # another township's, made by the city
    mgr = await user(platform, client, "mgr", role, division_code=town_a)
    # not for another division, nor above its own
    for div in (town_b + "001", "340102", "340103001001"):
        r = await client.post(CODES, headers=mgr, json={"division_code": div, "place": "别处"})
        assert r.status_code == 403 and "outside your division" in r.json()["detail"], (div, r.text)
    # its own: made, listed with the residents who joined; the other division's not listed
    here = await code(client, mgr, PLACE_A, max_uses=5)
    for name in ("甲", "乙"):
        assert (await join(client, here["code"], name)).status_code == 201
    listed = (await client.get(CODES, headers=mgr)).json()["items"]
    assert [(c["id"], c["uses"], c["max_uses"], c["state"]) for c in listed] == [(here["id"], 2, 5, "active")]
    assert all("code" not in c and "code_hash" not in c for c in listed)  # shown once, when made
    # the other division's code answers as a missing one, and stays live
    r = await client.delete(f"{CODES}/{there['id']}", headers=mgr)
    missing = await client.delete(f"{CODES}/999999", headers=mgr)
    assert r.status_code == missing.status_code == 404
    assert (await join(client, there["code"])).status_code == 201
    # its own revoked: joining is refused with a clear answer
    assert (await client.delete(f"{CODES}/{here['id']}", headers=mgr)).status_code == 204
    r = await join(client, here["code"])
    assert r.status_code == 403 and "not valid" in r.json()["detail"] and "revoked" in r.json()["detail"]


async def test_bad_code_requests_get_a_clear_error(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for bad in ({"division_code": "34ab", "place": "x"}, {"division_code": PLACE_A, "place": ""},
                {"division_code": PLACE_A, "place": "x", "max_uses": 0},
                {"division_code": PLACE_A, "place": "x", "valid_hours": -1},
                {"division_code": PLACE_A, "place": "x", "extra": 1}):
        r = await client.post(CODES, headers=admin, json=bad)
        assert r.status_code == 422 and r.json()["detail"], (bad, r.text)
    assert (await client.delete(f"{CODES}/abc", headers=admin)).status_code == 422


FORM = {"category": "安全隐患", "longitude": "117.231", "latitude": "31.821", "description": "井盖缺失"}


async def resident(client: httpx.AsyncClient, made: dict[str, Any], name: str) -> dict[str, str]:
    r = await join(client, made["code"], name)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def cases(platform: Platform) -> int:
    async with platform.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Incident)) or 0)


async def test_a_residents_report_past_the_burst_is_refused_with_429(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await city(platform)
    made = await code(client, admin)
    h1, h2 = await resident(client, made, "甲"), await resident(client, made, "乙")
    burst = int(reports.RESIDENT_RATE[1])
    for n in range(burst):
        r = await client.post("/api/v1/mobile/reports", headers=h1, data={**FORM, "description": f"第{n}次"})
        assert r.status_code == 201, (n, r.text)
    before = await cases(platform)
    r = await client.post("/api/v1/mobile/reports", headers=h1, data=FORM)
    assert r.status_code == 429 and r.headers["content-type"].startswith("application/problem+json")
    wait = 1 / reports.RESIDENT_RATE[0]  # a report is given back every this many seconds
    assert "too many reports" in r.json()["detail"] and 0 < int(r.headers["Retry-After"]) <= wait + 1
    assert await cases(platform) == before  # nothing was taken in
    # the limit is the reporter's own: another resident of the place still reports
    assert (await client.post("/api/v1/mobile/reports", headers=h2, data=FORM)).status_code == 201


async def test_a_report_sent_again_with_its_ref_is_taken_in_once(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await city(platform)
    made = await code(client, admin)
    h1, h2 = await resident(client, made, "甲"), await resident(client, made, "乙")
    ref = "k3d9-0b1e-44aa-9c2f"
    first = await client.post("/api/v1/mobile/reports", headers=h1, data={**FORM, "ref": ref})
    assert first.status_code == 201 and first.json()["repeat"] is False
    n = await cases(platform)
    for _ in range(int(reports.RESIDENT_RATE[1]) + 2):  # more than the burst: repeats are not counted
        again = await client.post("/api/v1/mobile/reports", headers=h1, data={**FORM, "ref": ref})
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"] and again.json()["repeat"]
    assert await cases(platform) == n
    # another reporter's same ref is its own report; a new ref of the first is a new case
    other = await client.post("/api/v1/mobile/reports", headers=h2, data={**FORM, "ref": ref})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    new = await client.post("/api/v1/mobile/reports", headers=h1, data={**FORM, "ref": ref + "x"})
    assert new.status_code == 201 and await cases(platform) == n + 2
    for bad in ("short", "has space in it", "x" * 49, "ünïcode-ref"):
        r = await client.post("/api/v1/mobile/reports", headers=h1, data={**FORM, "ref": bad})
        assert r.status_code == 422 and "ref" in r.text, (bad, r.text)


async def test_a_grid_member_needs_the_department_of_their_grid(client: httpx.AsyncClient,
                                                                admin: dict[str, str]) -> None:
    body = {"username": "grid9", "password": PW, "role": "grid_member", "division_code": PLACE_A}
    r = await client.post("/api/v1/users", headers=admin, json=body)
    assert r.status_code == 422 and "department" in r.json()["detail"], r.text
    r = await client.post("/api/v1/users", headers=admin, json={**body, "department": "网格九"})
    assert r.status_code == 201, r.text
    uid = r.json()["id"]
    r = await client.patch(f"/api/v1/users/{uid}", headers=admin, json={"department": ""})
    assert r.status_code == 422 and "department" in r.json()["detail"]
    # a department user made a grid member keeps its department; without one it is refused
    dept = await client.post("/api/v1/users", headers=admin, json={**body, "username": "d1", "role": "operator"})
    assert dept.status_code == 201
    r = await client.patch(f"/api/v1/users/{dept.json()['id']}", headers=admin, json={"role": "grid_member"})
    assert r.status_code == 422
    r = await client.patch(f"/api/v1/users/{dept.json()['id']}", headers=admin,
                           json={"role": "grid_member", "department": "网格十"})
    assert r.status_code == 200 and r.json()["role"] == "grid_member"
    users = {u["username"]: u for u in (await client.get("/api/v1/users", headers=admin)).json()}
    assert users["grid9"]["department"] == "网格九" and users["d1"]["department"] == "网格十"


async def test_the_dispatch_dialog_is_offered_the_known_departments(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await city(platform)  # a unit of 住建局
    await user(platform, client, "g1", "grid_member", department="网格一")
    dept = await user(platform, client, "edu", "department_user", department="教育局")
    r = await client.get("/api/v1/incidents/departments", headers=admin)
    assert r.status_code == 200 and r.json()["items"] == sorted(["住建局", "网格一", "教育局"])
    assert (await client.get("/api/v1/incidents/departments", headers=dept)).status_code == 403
