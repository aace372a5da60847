"""What tests/access/test_every_route.py needs to call the download, export and hold routes
(issue 14): their table entries, the objects they act on, and the checks beyond the table
(another user's export by id, file name and listing; channels out of scope in a body)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import httpx

from tests.recording._segments import segment_bytes
from xueliang.access.policy import Action

A = Action
_n = itertools.count(1)


def table(N: Any, CH_IN: str, WHEN: dict[str, str]) -> dict[tuple[str, str], Any]:
    export = {"channels": [CH_IN], **WHEN, "purpose": "案件取证", "case_number": "A-1"}
    hold = {"channels": [CH_IN], **WHEN, "case_number": "A-1", "reason": "案件证据"}
    return {
        ("GET", "/api/v1/channels/{channel_id}/recordings/download"): N(
            A.DOWNLOAD, scoped="channel", params=WHEN, make="evidence_recorded"),
        ("POST", "/api/v1/channels/{channel_id}/recordings/media-token"): N(A.DOWNLOAD, scoped="channel"),
        ("POST", "/api/v1/exports"): N(A.EXPORT, ok=(201,), body=export, make="evidence_recorded",
                                       why="every channel of the body in scope: test_an_export_or_hold_names_channels_in_scope_only"),
        ("GET", "/api/v1/exports"): N(A.EXPORT, why="one's own; everyone's with exports.manage too"),
        ("GET", "/api/v1/exports/{export_id}"): N(A.EXPORT, make="evidence_export"),
        ("GET", "/api/v1/exports/{export_id}/files/{name}"): N(A.EXPORT, make="evidence_export_file"),
        ("POST", "/api/v1/exports/{export_id}/media-token"): N(A.EXPORT, make="evidence_export"),
        ("POST", "/api/v1/holds"): N(A.EVIDENCE_HOLD, ok=(201,), body=hold),
        ("GET", "/api/v1/holds"): N(A.EVIDENCE_HOLD),
        ("POST", "/api/v1/holds/{hold_id}/release"): N(A.EVIDENCE_RELEASE, make="evidence_hold", body={"note": "结案"}),
    }


OPEN = {("GET", "/api/v1/exports/public-key"): "the public key that checks evidence exports' signatures offline"}
DEFAULTS = {"export_id": 999999, "hold_id": 999999}


def recorded(e: Any, channel_id: str) -> None:
    """A real segment where the platform's index says the channel recorded (WHEN's first minutes)."""
    path = Path(e.srv.platform.settings.storage.var_dir) / "recordings" / channel_id / "20260101" / "0.mp4"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(segment_bytes(4))


def _export(e: Any, http: httpx.Client, who: dict[str, str], channel_id: str, when: dict[str, str],
            wait: bool) -> int:
    recorded(e, channel_id)
    r = http.post(f"{e.base}/api/v1/exports", headers=who, timeout=20,
                  json={"channels": [channel_id], **when, "purpose": "案件取证", "case_number": f"A-{next(_n)}"})
    assert r.status_code == 201, r.text
    eid = int(r.json()["id"])
    for _ in range(300 if wait else 0):
        if http.get(f"{e.base}/api/v1/exports/{eid}", headers=who).json()["state"] in ("done", "failed"):
            break
        time.sleep(0.1)
    return eid


def make(e: Any, what: str, http: httpx.Client, channel_id: str, when: dict[str, str]) -> tuple[dict[str, Any], Any, Any]:
    if what == "evidence_recorded":
        recorded(e, channel_id)
        return {}, None, None
    owner = e.only(frozenset({A.EXPORT}))  # exports are their requester's: the one allowed below
    if what == "evidence_export":
        return {"export_id": _export(e, http, owner, channel_id, when, wait=False)}, None, None
    if what == "evidence_export_file":
        return {"export_id": _export(e, http, owner, channel_id, when, wait=True), "name": "manifest.json"}, None, None
    if what == "evidence_hold":
        r = http.post(f"{e.base}/api/v1/holds", headers=e.root(), timeout=20,
                      json={"channels": [channel_id], **when, "case_number": "A-1", "reason": "案件证据"})
        assert r.status_code == 201, r.text
        return {"hold_id": r.json()["id"]}, None, None
    raise AssertionError(what)


def another_users_export_is_missing(e: Any, http: httpx.Client, channel_id: str, when: dict[str, str],
                                    manage: Action) -> None:
    """An export made by ``only-media.export``: one holding every right but exports.manage
    gets 404 for it exactly as for a missing one, by id and by each file name, and does not
    see it listed; exports.manage (with media.export) sees and fetches it."""
    owner = e.only(frozenset({A.EXPORT}))
    eid = _export(e, http, owner, channel_id, when, wait=True)
    assert http.get(f"{e.base}/api/v1/exports/{eid}", headers=owner).json()["state"] == "done"
    other = e.all_but(manage)

    def shape(path: str, who: dict[str, str]) -> tuple[Any, ...]:
        r = http.get(e.base + path, headers=who, timeout=20)
        j = r.json() if "json" in r.headers.get("content-type", "") else {}
        return r.status_code, j.get("type"), j.get("title")

    assert shape(f"/api/v1/exports/{eid}", other) == shape("/api/v1/exports/999999", other)
    assert shape(f"/api/v1/exports/{eid}", other)[0] == 404
    for name in (f"{channel_id}.mp4", "manifest.json", "manifest.sig", "public-key.pem"):
        assert http.get(f"{e.base}/api/v1/exports/{eid}/files/{name}", headers=owner).status_code == 200, name
        mine = shape(f"/api/v1/exports/{eid}/files/{name}", other)
        assert mine == shape(f"/api/v1/exports/999999/files/{name}", other) and mine[0] == 404, (name, mine)
    for q in ({}, {"all": "true"}):
        listed = http.get(f"{e.base}/api/v1/exports", headers=other, params=q).json()
        assert eid not in [x["id"] for x in listed], "another's export listed"
    manager = e.only(frozenset({A.EXPORT, manage}))
    assert eid in [x["id"] for x in http.get(f"{e.base}/api/v1/exports", headers=manager, params={"all": "true"}).json()]
    assert http.get(f"{e.base}/api/v1/exports/{eid}/files/manifest.json", headers=manager).status_code == 200


def bodies_name_channels_in_scope_only(e: Any, http: httpx.Client, channel_in: str, missing: str,
                                       when: dict[str, str]) -> None:
    """POST /exports and /holds name channels in their body: one of another department (alone,
    or among one's own) is answered as a channel that does not exist."""
    out = e.user("outsider", "all")
    for path, body in (("/api/v1/exports", {**when, "purpose": "案件取证", "case_number": "A-1"}),
                       ("/api/v1/holds", {**when, "case_number": "A-1", "reason": "案件证据"})):
        for channels in ([channel_in], [missing]):
            r = http.post(e.base + path, headers=out, json={**body, "channels": channels}, timeout=20)
            assert r.status_code == 404, (path, channels, r.status_code, r.text)
        theirs = http.post(e.base + path, headers=out, json={**body, "channels": [channel_in]}, timeout=20).json()
        gone = http.post(e.base + path, headers=out, json={**body, "channels": [missing]}, timeout=20).json()
        assert (theirs["type"], theirs["title"]) == (gone["type"], gone["title"])
