"""The console's incident centre: a department's inbox (its own dispatches still to work on or
awaiting review, nearest deadline first, never another department's) and the dispatch dialog's
list of departments and several departments each with its own deadline, every step audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from tests.incidents.conftest import city, headers
from xueliang.access import policy
from xueliang.access.policy import Action
from xueliang.app import Platform
from xueliang.db.tables import AuditRecord

A = Action
CASE = {"category": "治安", "description": "路口争吵", "longitude": 117.2301, "latitude": 31.8201}


@pytest.fixture
def roles(monkeypatch: pytest.MonkeyPatch) -> None:
    for a in (A.INCIDENTS_HANDLE, A.INCIDENTS_MANAGE):
        monkeypatch.setitem(policy.ROLES, f"all-but-{a.value}", frozenset(A) - {a})
        monkeypatch.setitem(policy.ROLES, f"only-{a.value}", frozenset({a}))


def iso(d: datetime) -> str:
    return d.isoformat()


async def test_dispatch_to_several_departments_each_with_its_deadline_and_their_inboxes(
        platform: Platform, http: httpx.AsyncClient, roles: None) -> None:
    await city(platform)
    root = await headers(platform, http, "root", "administrator")
    cg = await headers(platform, http, "cg", "department_user", department="城管局")
    ga = await headers(platform, http, "ga", "department_user", department="公安局")
    now = datetime.now(UTC)
    a = (await http.post("/api/v1/incidents", json=CASE, headers=root)).json()["id"]
    b = (await http.post("/api/v1/incidents", json={**CASE, "description": "占道经营"}, headers=root)).json()["id"]
    soon, later = now + timedelta(hours=2), now + timedelta(hours=30)
    r = await http.post(f"/api/v1/incidents/{a}/dispatch", headers=root, json={
        "departments": [{"department": "城管局", "deadline": iso(later)}, {"department": "公安局", "deadline": iso(soon)}],
        "note": "联合处置"})
    assert r.status_code == 200, r.text
    got = {d["department"]: d for d in r.json()["dispatches"]}
    assert abs(datetime.fromisoformat(got["城管局"]["deadline"]) - later) < timedelta(seconds=1)
    assert abs(datetime.fromisoformat(got["公安局"]["deadline"]) - soon) < timedelta(seconds=1)
    # no deadline given: by the case's priority (normal: 72 h)
    r = await http.post(f"/api/v1/incidents/{b}/dispatch", headers=root, json={"departments": [{"department": "城管局"}]})
    due = datetime.fromisoformat(r.json()["dispatches"][0]["deadline"])
    assert timedelta(hours=71) < due - now < timedelta(hours=73)
    # bad dispatches: a clear refusal, nothing made
    for bad in ({"departments": []}, {"departments": [{"department": "城管局", "deadline": iso(now - timedelta(hours=1))}]},
                {"departments": [{"department": "x"}, {"department": "x"}]}, {"departments": [{"department": ""}]}):
        r = await http.post(f"/api/v1/incidents/{b}/dispatch", headers=root, json=bad)
        assert r.status_code == 422 and r.json()["detail"], (bad, r.text)
    # each inbox: its own dispatches only, nearest deadline first, each with its case
    inbox = (await http.get("/api/v1/incidents/inbox", headers=cg)).json()["items"]
    assert [(i["id"], i["dispatch"]["department"]) for i in inbox] == [(a, "城管局"), (b, "城管局")]
    assert inbox[0]["description"] == "路口争吵" and inbox[0]["dispatch"]["status"] == "dispatched"
    inbox = (await http.get("/api/v1/incidents/inbox", headers=ga)).json()["items"]
    assert [(i["id"], i["dispatch"]["department"]) for i in inbox] == [(a, "公安局")]
    # fed back: still in the inbox (awaiting review); closed: gone
    did = inbox[0]["dispatch"]["id"]
    assert (await http.post(f"/api/v1/incidents/{a}/dispatches/{did}/feedback", headers=ga, json={"note": "已劝离"})).status_code == 200
    inbox = (await http.get("/api/v1/incidents/inbox", headers=ga)).json()["items"]
    assert [i["dispatch"]["status"] for i in inbox] == ["fed_back"]
    # returned: no longer theirs
    cg_b = next(i["dispatch"]["id"] for i in (await http.get("/api/v1/incidents/inbox", headers=cg)).json()["items"] if i["id"] == b)
    assert (await http.post(f"/api/v1/incidents/{b}/dispatches/{cg_b}/return", headers=cg, json={"note": "非本部门"})).status_code == 200
    assert [i["id"] for i in (await http.get("/api/v1/incidents/inbox", headers=cg)).json()["items"]] == [a]
    # the right: every right but handling is refused, exactly it is let through (its own department's)
    but = await headers(platform, http, "but", "all-but-incidents.handle", department="城管局")
    only = await headers(platform, http, "only", "only-incidents.handle", department="城管局")
    assert (await http.get("/api/v1/incidents/inbox", headers=but)).status_code == 403
    r = await http.get("/api/v1/incidents/inbox", headers=only)
    assert r.status_code == 200 and [i["id"] for i in r.json()["items"]] == [a]
    nodept = await headers(platform, http, "nodept", "only-incidents.handle")
    assert (await http.get("/api/v1/incidents/inbox", headers=nodept)).json()["items"] == []
    # every step audited, with who and which departments
    await platform.access.audit.flush()
    async with platform.sessions() as s:
        recs = (await s.scalars(select(AuditRecord).where(AuditRecord.action.like("incident.%"))
                                .order_by(AuditRecord.seq))).all()
    acts = [(r.action, r.actor) for r in recs]
    for step in (("incident.dispatch", "root"), ("incident.feedback", "ga"), ("incident.return", "cg")):
        assert step in acts, (step, acts)


async def test_the_departments_offered_to_dispatch_to(platform: Platform, http: httpx.AsyncClient,
                                                      roles: None) -> None:
    await city(platform)
    await headers(platform, http, "g1", "grid_member", department="网格一")
    await headers(platform, http, "edu", "department_user", department="教育局")
    but = await headers(platform, http, "but", "all-but-incidents.manage")
    only = await headers(platform, http, "only", "only-incidents.manage")
    assert (await http.get("/api/v1/incidents/departments", headers=but)).status_code == 403
    r = await http.get("/api/v1/incidents/departments", headers=only)
    assert r.status_code == 200
    names = r.json()["items"]
    assert {"网格一", "教育局"} <= set(names) and names == sorted(set(names)) and "" not in names
