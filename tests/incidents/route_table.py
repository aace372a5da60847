"""What tests/access/test_every_route.py needs to call the incident routes: their table
entries and the objects they act on (made fresh per call through the API, as the root)."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from xueliang.access.policy import Action
from xueliang.db.tables import Event

A = Action
CASE = {"category": "治安", "description": "路口有人争吵", "longitude": 117.2, "latitude": 31.8}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
_n = itertools.count(1)
NO_CASE = ("only-{action} is neither the centre (incidents.manage) nor a department: it sees no case, so the "
           "case answers 404 after authorization (tests/incidents/test_access.py: a department's principal "
           "holding exactly this right is allowed)")


def table(N: Any, CH_IN: str) -> dict[tuple[str, str], Any]:
    """The routes of the incident centre and what each needs (``N`` is the table's constructor)."""
    R, C, M, H = A.INCIDENTS_READ, A.INCIDENTS_CREATE, A.INCIDENTS_MANAGE, A.INCIDENTS_HANDLE
    L, J = A.INCIDENTS_LINKS, A.INCIDENTS_JOINT
    no_case = NO_CASE.format(action="incidents.read")
    joint = ("only-incidents.joint has no department, so no emergency system's case is its own: 404 after "
             "authorization (tests/incidents/test_access.py: the agency's principal is allowed)")
    dept = ("only-incidents.handle has no department: no dispatch is its own, 404 after authorization "
            "(tests/incidents/test_access.py: the department's principal is allowed)")
    base = "/api/v1/incidents"
    one = base + "/{incident_id}"
    disp = one + "/dispatches/{dispatch_id}"
    return {
        ("GET", base): N(R),
        ("POST", base): N(C, ok=(201,), body=CASE),
        ("GET", base + "/statistics"): N(R),
        ("GET", base + "/departments"): N(M),
        ("GET", base + "/inbox"): N(H),
        ("GET", base + "/rules"): N(M),
        ("POST", base + "/rules"): N(M, ok=(201,), make="incident_rule_body"),
        ("DELETE", base + "/rules/{rule_id}"): N(M, ok=(204,), make="incident_rule"),
        ("GET", base + "/links"): N(L),
        ("POST", base + "/links"): N(L, ok=(201,), make="incident_link_body"),
        ("PATCH", base + "/links/{link_id}"): N(L, make="incident_link", body={"webhook_url": "http://127.0.0.1:9/x"}),
        ("DELETE", base + "/links/{link_id}"): N(L, ok=(204,), make="incident_link"),
        ("GET", base + "/joint"): N(J),
        ("GET", base + "/joint/{incident_id}"): N(J, make="incident", ok=(404,), why=joint),
        ("GET", base + "/joint/{incident_id}/cameras"): N(J, make="incident", ok=(404,), why=joint),
        ("GET", one): N(R, make="incident", ok=(404,), why=no_case),
        ("GET", one + "/cameras"): N(R, make="incident", ok=(404,), why=no_case),
        ("POST", one + "/attachments"): N(R, make="incident_photo", ok=(404,), why=no_case),
        ("POST", one + "/snapshots"): N(R, make="incident", ok=(404,), body={"channel_id": CH_IN}, why=no_case),
        ("GET", one + "/attachments/{attachment_id}"): N(R, make="incident_attachment", ok=(404,), why=no_case),
        ("POST", one + "/dispatch"): N(M, make="incident", body={"departments": [{"department": "城管局"}]}),
        ("POST", disp + "/acknowledge"): N(H, make="incident_dispatched", ok=(404,), body={}, why=dept),
        ("POST", disp + "/feedback"): N(H, make="incident_dispatched", ok=(404,), body={"note": "已办"}, why=dept),
        ("POST", disp + "/return"): N(H, make="incident_dispatched", ok=(404,), body={"note": "非本部门"}, why=dept),
        ("POST", disp + "/redo"): N(M, make="incident_fed_back", body={"note": "请补充"}),
        ("POST", disp + "/reassign"): N(M, make="incident_dispatched", body={"department": "公安局"}),
        ("POST", one + "/close"): N(M, make="incident", body={"note": "已处理"}),
        ("POST", one + "/merge"): N(M, make="incident_pair"),
        ("POST", one + "/supervise"): N(M, make="incident", body={}),
        ("POST", one + "/rating"): N(M, make="incident_closed", body={"rating": 5}),
        ("POST", "/api/v1/alarms/{event_id}/incident"): N(C, ok=(201,), make="incident_alarm",
                                                          body={"category": "治安"}),
    }


def make(e: Any, what: str) -> tuple[dict[str, Any], Any, Any]:
    """Path values, a body and files for a call (the objects made fresh, as the root)."""
    n = next(_n)
    root = e.root()

    def post(path: str, body: Any, status: int = 201) -> Any:
        r = httpx.post(e.base + path, json=body, headers=root, timeout=20)
        assert r.status_code == status, (path, r.status_code, r.text)
        return r.json()

    if what == "incident_rule_body":
        return {}, {"name": f"规则{n}", "alarm_types": ["2"], "category": "治安"}, None
    if what == "incident_rule":
        return {"rule_id": post("/api/v1/incidents/rules", {"name": f"规则r{n}", "category": "治安"})["id"]}, None, None
    if what == "incident_link_body":
        return {}, {"name": f"110-{n}", "kind": "110", "key_id": f"k110-{n}", "department": "110指挥中心"}, None
    if what == "incident_link":
        body = {"name": f"119-{n}", "kind": "119", "key_id": f"k119-{n}", "department": "119指挥中心"}
        return {"link_id": post("/api/v1/incidents/links", body)["id"]}, None, None
    if what == "incident_alarm":
        async def alarm() -> int:
            async with e.srv.platform.sessions() as s, s.begin():
                ev = Event(kind="alarm", subject="34020000001310000011",
                           data={"longitude": 117.2, "latitude": 31.8, "alarm_type": "2", "description": "入侵"})
                s.add(ev)
                await s.flush()
                return int(ev.id)

        return {"event_id": e.srv.run(alarm())}, None, None
    case = post("/api/v1/incidents", CASE)
    values: dict[str, Any] = {"incident_id": case["id"]}
    if what == "incident_photo":
        return values, None, {"photo": ("p.png", PNG, "image/png")}
    if what == "incident_attachment":
        r = httpx.post(f"{e.base}/api/v1/incidents/{case['id']}/attachments", headers=root, timeout=20,
                       files={"photo": ("p.png", PNG, "image/png")})
        assert r.status_code == 201, r.text
        return {**values, "attachment_id": r.json()["id"]}, None, None
    if what == "incident_pair":
        other = post("/api/v1/incidents", CASE)
        return values, {"into": other["id"]}, None
    if what == "incident_closed":
        post(f"/api/v1/incidents/{case['id']}/close", {"note": "已处理"}, 200)
        return values, None, None
    if what in ("incident_dispatched", "incident_fed_back"):
        d = post(f"/api/v1/incidents/{case['id']}/dispatch", {"departments": [{"department": "城管局"}]},
                 200)["dispatches"][0]["id"]
        if what == "incident_fed_back":
            worker = e.user("cg-worker", "department_user", department="城管局")
            r = httpx.post(f"{e.base}/api/v1/incidents/{case['id']}/dispatches/{d}/feedback", headers=worker,
                           json={"note": "已办"}, timeout=20)
            assert r.status_code == 200, r.text
        return {**values, "dispatch_id": d}, None, None
    assert what == "incident", what
    return values, None, None
