"""Who sees which case, adversarially (issue 16, Security).

- For each incidents.* right: a principal holding every right but that one is refused (403);
  one holding exactly it (with the department the work needs) is allowed.
- Another department's case answers exactly as a missing one: by id, through its cameras,
  attachments and steps, in listings, in statistics.
- Cameras near a case: only those the caller may watch (its scope and grants).
- The joint view: an agency sees only its own system's cases, and the cameras near them only
  with a stated purpose, which the grant and the audit record keep.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.incidents.conftest import CAMERAS, city, headers
from xueliang.access import policy
from xueliang.access.policy import Action
from xueliang.app import Platform
from xueliang.db.tables import AccessGrant, AuditRecord, Channel, Event, Incident

A = Action
INCIDENT_ACTIONS = [a for a in A if a.value.startswith("incidents.")]
CASE = {"category": "治安", "description": "路口争吵", "longitude": 117.2301, "latitude": 31.8201}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def roles(monkeypatch: pytest.MonkeyPatch) -> None:
    for a in INCIDENT_ACTIONS:
        monkeypatch.setitem(policy.ROLES, f"all-but-{a.value}", frozenset(A) - {a})
        monkeypatch.setitem(policy.ROLES, f"only-{a.value}", frozenset({a}))


async def setup(platform: Platform, c: httpx.AsyncClient) -> dict[str, Any]:
    """Case 1 dispatched to 城管局 with an attachment; case 2 dispatched to 公安局; case 3 from 110."""
    await city(platform)
    root = await headers(platform, c, "root", "administrator")
    ids: dict[str, Any] = {"root": root}
    for key, dept in (("one", "城管局"), ("two", "公安局")):
        case = (await c.post("/api/v1/incidents", json=CASE, headers=root)).json()
        att = (await c.post(f"/api/v1/incidents/{case['id']}/attachments", headers=root,
                            files={"photo": ("p.png", PNG, "image/png")})).json()
        r = await c.post(f"/api/v1/incidents/{case['id']}/dispatch", headers=root,
                         json={"departments": [{"department": dept}], "attachments": [att["id"]]})
        assert r.status_code == 200, r.text
        ids[key] = case["id"]
        ids[f"{key}_att"] = att["id"]
        ids[f"{key}_dispatch"] = r.json()["dispatches"][0]["id"]
    for name, kind, dept in (("市110", "110", "110指挥中心"), ("市119", "119", "119指挥中心")):
        ln = (await c.post("/api/v1/incidents/links", headers=root, json={
            "name": name, "kind": kind, "key_id": f"k{kind}", "department": dept})).json()
        async with platform.sessions() as s, s.begin():
            i = Incident(source="emergency", category="治安", priority="high", status="received", description=name,
                         longitude=117.2301, latitude=31.8201, division_code="340102001", division_basis="given",
                         anonymous=True, link_id=ln["id"], external_ref=f"{kind}-1", created_by="link",
                         flagged=False)
            s.add(i)
            await s.flush()
            ids[kind] = i.id
    return ids


async def test_each_right_refused_without_it_and_allowed_with_exactly_it(
        platform: Platform, http: httpx.AsyncClient, roles: None) -> None:
    ids = await setup(platform, http)
    one, d1 = ids["one"], ids["one_dispatch"]
    # (right, department, method, path, body, allowed status)
    cases: list[tuple[Action, str | None, str, str, Any, int]] = [
        (A.INCIDENTS_READ, "城管局", "GET", f"/api/v1/incidents/{one}", None, 200),
        (A.INCIDENTS_READ, "城管局", "GET", f"/api/v1/incidents/{one}/cameras", None, 200),
        (A.INCIDENTS_READ, "城管局", "GET", f"/api/v1/incidents/{one}/attachments/{ids['one_att']}", None, 200),
        (A.INCIDENTS_READ, "城管局", "GET", "/api/v1/incidents/statistics", None, 200),
        (A.INCIDENTS_CREATE, None, "POST", "/api/v1/incidents", CASE, 201),
        (A.INCIDENTS_MANAGE, None, "POST", f"/api/v1/incidents/{one}/supervise", {"note": "快"}, 200),
        (A.INCIDENTS_HANDLE, "城管局", "POST", f"/api/v1/incidents/{one}/dispatches/{d1}/acknowledge", {}, 200),
        (A.INCIDENTS_LINKS, None, "GET", "/api/v1/incidents/links", None, 200),
        (A.INCIDENTS_JOINT, "110指挥中心", "GET", f"/api/v1/incidents/joint/{ids['110']}", None, 200),
    ]
    for right, dept, method, path, body, ok in cases:
        extra = {"department": dept} if dept else {}
        but = await headers(platform, http, f"but-{right.value}-{dept}", f"all-but-{right.value}", **extra)
        only = await headers(platform, http, f"only-{right.value}-{dept}", f"only-{right.value}", **extra)
        r = await http.request(method, path, headers=but, json=body)
        assert r.status_code == 403, (right, path, r.status_code, r.text)
        r = await http.request(method, path, headers=only, json=body)
        assert r.status_code == ok, (right, path, r.status_code, r.text)
        assert (await http.request(method, path, json=body)).status_code == 401


async def test_another_departments_case_answers_as_a_missing_one(platform: Platform, http: httpx.AsyncClient) -> None:
    ids = await setup(platform, http)
    cg = await headers(platform, http, "cg", "department_user", department="城管局")
    two, missing = ids["two"], 999_999
    routes = [
        ("GET", "/api/v1/incidents/{id}", None),
        ("GET", "/api/v1/incidents/{id}/cameras", None),
        ("GET", "/api/v1/incidents/{id}/attachments/" + str(ids["two_att"]), None),
        ("POST", "/api/v1/incidents/{id}/attachments", "photo"),
        ("POST", "/api/v1/incidents/{id}/dispatches/" + str(ids["two_dispatch"]) + "/acknowledge", {}),
        ("POST", "/api/v1/incidents/{id}/dispatches/" + str(ids["two_dispatch"]) + "/feedback", {"note": "x"}),
        ("POST", "/api/v1/incidents/{id}/snapshots", {"channel_id": CAMERAS[0][0]}),
    ]

    async def shape(method: str, path: str, body: Any, case: int) -> tuple[Any, ...]:
        kw: dict[str, Any] = {"files": {"photo": ("p.png", PNG, "image/png")}} if body == "photo" else {"json": body}
        r = await http.request(method, path.format(id=case), headers=cg, **kw)
        j = r.json()
        return r.status_code, j.get("type"), j.get("title"), j.get("detail", "").replace(str(case), "N")

    for method, path, body in routes:
        theirs, gone = await shape(method, path, body, two), await shape(method, path, body, missing)
        assert theirs[0] == 404 and theirs == gone, (path, theirs, gone)
    # its own attachment by another case's id: missing too
    r = await http.get(f"/api/v1/incidents/{ids['one']}/attachments/{ids['two_att']}", headers=cg)
    assert r.status_code == 404
    # listings and statistics: only its own case
    items = (await http.get("/api/v1/incidents", headers=cg)).json()["items"]
    assert [i["id"] for i in items] == [ids["one"]]
    assert (await http.get("/api/v1/incidents", headers=cg, params={"department": "公安局"})).json()["items"] == []
    st = (await http.get("/api/v1/incidents/statistics", headers=cg)).json()
    assert st["intake"] == 1 and [d["department"] for d in st["departments"]] == ["城管局"]
    # the centre sees all four
    assert len((await http.get("/api/v1/incidents", headers=ids["root"])).json()["items"]) == 4
    # a department's own view of its case holds no other department's dispatch or steps
    await http.post(f"/api/v1/incidents/{ids['one']}/dispatch", headers=ids["root"],
                    json={"departments": [{"department": "公安局"}], "note": "协办"})
    got = (await http.get(f"/api/v1/incidents/{ids['one']}", headers=cg)).json()
    assert {d["department"] for d in got["dispatches"]} == {"城管局"}
    assert all(s["department"] in (None, "城管局") for s in got["steps"])


async def test_cameras_near_a_case_are_those_the_caller_may_watch(platform: Platform, http: httpx.AsyncClient) -> None:
    ids = await setup(platform, http)
    cg = await headers(platform, http, "cg", "department_user", department="城管局")
    root = ids["root"]
    url = f"/api/v1/incidents/{ids['one']}/cameras"
    everything = (await http.get(url, headers=root, params={"radius": 1000})).json()["items"]
    assert [c["id"] for c in everything] == [CAMERAS[0][0], CAMERAS[1][0], CAMERAS[2][0]]  # nearest first
    assert everything[0]["distance"] < everything[1]["distance"] < everything[2]["distance"] <= 1000
    near = (await http.get(url, headers=root, params={"radius": 300})).json()["items"]
    assert [c["id"] for c in near] == [CAMERAS[0][0], CAMERAS[1][0]]
    mine = (await http.get(url, headers=cg, params={"radius": 1000})).json()["items"]
    assert [c["id"] for c in mine] == [CAMERAS[0][0], CAMERAS[2][0]]  # not 公安局's camera
    # shared with 城管局 by a grant: it appears
    r = await http.post("/api/v1/access/grants", headers=root,
                        json={"department": "城管局", "channel_ids": [CAMERAS[1][0]], "actions": ["media.live"]})
    assert r.status_code == 201, r.text
    mine = (await http.get(url, headers=cg, params={"radius": 1000})).json()["items"]
    assert [c["id"] for c in mine] == [CAMERAS[0][0], CAMERAS[1][0], CAMERAS[2][0]]
    assert (await http.get(url, headers=cg, params={"radius": 0})).status_code == 422


async def test_the_joint_view_is_the_agencys_own_and_records_its_purpose(
        platform: Platform, http: httpx.AsyncClient) -> None:
    ids = await setup(platform, http)
    ag = await headers(platform, http, "agent110", "agency", department="110指挥中心")
    listed = (await http.get("/api/v1/incidents/joint", headers=ag)).json()["items"]
    assert [i["id"] for i in listed] == [ids["110"]]
    for other in (ids["119"], ids["one"], 999_999):
        r = await http.get(f"/api/v1/incidents/joint/{other}", headers=ag)
        assert r.status_code == 404 and r.json()["detail"] == f"incident {other} not found"
        assert (await http.get(f"/api/v1/incidents/joint/{other}/cameras", headers=ag,
                               params={"radius": 500})).status_code == 404
    # the agency is no department of the centre: the centre's routes are not its own
    assert (await http.get(f"/api/v1/incidents/{ids['110']}", headers=ag)).status_code == 403
    url = f"/api/v1/incidents/joint/{ids['110']}/cameras"
    r = await http.get(url, headers=ag, params={"radius": 500})
    assert r.status_code == 422 and "purpose" in r.json()["detail"]
    # before: no camera is the agency's to watch
    principal, _ = await platform.users.authenticate(ag["Authorization"].split()[1])
    async with platform.sessions() as s:
        chans = {c.id: c for c in (await s.scalars(select(Channel))).all()}
    assert not any(policy.in_scope(principal, c, A.LIVE_VIEW) for c in chans.values())
    r = await http.get(url, headers={**ag, "X-Purpose": "%E7%8E%B0%E5%9C%BA%E5%A4%84%E7%BD%AE"}, params={"radius": 500})
    assert r.status_code == 200, r.text
    got = r.json()
    assert [c["id"] for c in got["items"]] == [CAMERAS[0][0], CAMERAS[1][0], CAMERAS[2][0]]
    async with platform.sessions() as s:
        g = await s.get(AccessGrant, got["grant_id"])
    assert g is not None and g.kind == "joint" and "现场处置" in g.reason and g.actions == ["media.live"]
    assert g.valid_until is not None
    principal, _ = await platform.users.authenticate(ag["Authorization"].split()[1])
    seen = {cid for cid, c in chans.items() if policy.in_scope(principal, c, A.LIVE_VIEW)}
    assert seen == {CAMERAS[0][0], CAMERAS[1][0], CAMERAS[2][0]}  # the far camera stays closed
    # asked again for the same cameras: the same grant, not another
    again = await http.get(url, headers={**ag, "X-Purpose": "again"}, params={"radius": 300})
    assert again.json()["grant_id"] == got["grant_id"]
    await platform.access.audit.flush()
    async with platform.sessions() as s:
        rec = (await s.scalars(select(AuditRecord).where(AuditRecord.action == "incident.joint.cameras"))).all()
    assert rec and rec[-1].purpose == "现场处置" and rec[-1].actor == "agent110"


async def test_one_click_needs_the_alarm_in_scope(platform: Platform, http: httpx.AsyncClient) -> None:
    await city(platform)
    async with platform.sessions() as s, s.begin():
        ev = Event(kind="alarm", subject=CAMERAS[1][0], data={"alarm_type": "2", "description": "越界"})
        s.add(ev)
        await s.flush()
        eid = ev.id
    scoped = await headers(platform, http, "cg-duty", "operator", department="城管局")
    body = {"category": "治安"}
    r = await http.post(f"/api/v1/alarms/{eid}/incident", headers=scoped, json=body)
    gone = await http.post("/api/v1/alarms/999999/incident", headers=scoped, json=body)
    assert r.status_code == gone.status_code == 404 and r.json()["title"] == gone.json()["title"]
    duty = await headers(platform, http, "duty", "operator")
    r = await http.post(f"/api/v1/alarms/{eid}/incident", headers=duty, json=body)
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["source"] == "alarm" and case["alarm_channel_id"] == CAMERAS[1][0]
    assert (case["longitude"], case["latitude"]) == (CAMERAS[1][1], CAMERAS[1][2])
    assert case["division_code"] == CAMERAS[1][4] and case["division_basis"] == "given"
    again = await http.post(f"/api/v1/alarms/{eid}/incident", headers=duty, json=body)
    assert again.status_code == 200 and again.json()["id"] == case["id"]
