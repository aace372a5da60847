"""Emergency systems over real HTTP: signed pushes in (idempotent by their reference, replays
and forgeries refused with a clear problem, bad bodies named, never a 500), and the signed,
retried pushes of dispatch and status out to a real receiver."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from sqlalchemy import select

from tests.health.test_notify import Hook, due_now, serve
from tests.incidents.conftest import city, headers
from xueliang.app import Platform
from xueliang.db.tables import IncidentLink, Notification
from xueliang.health.notify import sign as sign_webhook
from xueliang.incidents import signature

PATH = "/api/v1/incidents/inbound"
CASE = {"reference": "110-20261204-0001", "category": "治安", "description": "两人斗殴", "longitude": 117.2301,
        "latitude": 31.8201, "priority": "urgent", "reporter": {"phone": "13900000000"}}


async def push(client: httpx.AsyncClient, key_id: str, secret: str, body: Any, *, ts: int | None = None,
               raw: bytes | None = None, path: str = PATH) -> httpx.Response:
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
    h = signature.sign(secret.encode(), "POST", path, data, int(time.time()) if ts is None else ts, key_id)
    return await client.post(PATH, content=data, headers={"Authorization": h.render(),
                                                         "Content-Type": "application/json"})


async def link(platform: Platform, client: httpx.AsyncClient, webhook: str = "") -> dict[str, Any]:
    admin = await headers(platform, client, "root", "administrator")
    r = await client.post("/api/v1/incidents/links", headers=admin, json={
        "name": "市110", "kind": "110", "key_id": "city-110", "department": "110指挥中心", "webhook_url": webhook})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_signed_pushes_are_taken_in_once(platform: Platform, http: httpx.AsyncClient) -> None:
    await city(platform)
    ln = await link(platform, http)
    # the secret is sealed at rest and shown once
    async with platform.sessions() as s:
        row = await s.scalar(select(IncidentLink))
    assert row is not None and ln["secret"] not in row.secret and row.secret.startswith("v1:")
    listed = (await http.get("/api/v1/incidents/links", headers=await headers(platform, http, "root", "x"))).json()
    assert "secret" not in listed[0]
    r = await push(http, "city-110", ln["secret"], CASE)
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["source"] == "emergency" and case["reference"] == CASE["reference"] and case["priority"] == "urgent"
    assert case["division_code"] == "340102001"
    # the same reference again (a retry of theirs): the same case, 200, nothing new
    again = await push(http, "city-110", ln["secret"], {**CASE, "description": "重发"})
    assert again.status_code == 200 and again.json()["id"] == case["id"]
    op = await headers(platform, http, "duty", "operator")
    assert len((await http.get("/api/v1/incidents", headers=op)).json()["items"]) == 1


async def test_forgeries_replays_and_bad_bodies_are_refused_clearly(platform: Platform, http: httpx.AsyncClient) -> None:
    ln = await link(platform, http)
    secret = ln["secret"]

    async def problem(r: httpx.Response, status: int, words: str) -> None:
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert words in r.json()["detail"], r.json()

    await problem(await http.post(PATH, json=CASE), 401, "sign the request")
    await problem(await http.post(PATH, json=CASE, headers={"Authorization": "Bearer x"}), 401, "scheme")
    await problem(await push(http, "city-110", "another-secret-000000", CASE), 401, "does not verify")
    await problem(await push(http, "no-such-key", secret, CASE), 401, "does not verify")
    await problem(await push(http, "city-110", secret, CASE, ts=int(time.time()) - 3600), 401, "timestamp")
    # a body changed on the way: its hash no longer matches
    data = json.dumps(CASE).encode()
    h = signature.sign(secret.encode(), "POST", PATH, data, int(time.time()), "city-110")
    r = await http.post(PATH, content=data.replace(b"117", b"118"), headers={"Authorization": h.render()})
    await problem(r, 401, "BodyHash")
    # signed for another path
    await problem(await push(http, "city-110", secret, CASE, path="/api/v1/incidents"), 401, "does not verify")
    # signed, but not the schema: the fields named, 422
    await problem(await push(http, "city-110", secret, {**CASE, "longitude": 500}), 422, "longitude")
    await problem(await push(http, "city-110", secret, {**CASE, "category": "外星人"}), 422, "category")
    await problem(await push(http, "city-110", secret, None, raw=b"\xff{not json"), 422, "schema")
    await problem(await push(http, "city-110", secret, None, raw=b"x" * 70_000), 422, "larger")
    # a disabled link signs nothing any more
    admin = await headers(platform, http, "root", "administrator")
    assert (await http.patch(f"/api/v1/incidents/links/{ln['id']}", headers=admin,
                             json={"enabled": False})).status_code == 200
    await problem(await push(http, "city-110", secret, CASE), 401, "does not verify")
    # a rotated secret: the old one stops at once, the new one works
    r = await http.patch(f"/api/v1/incidents/links/{ln['id']}", headers=admin,
                         json={"enabled": True, "rotate_secret": True})
    new = r.json()["secret"]
    await problem(await push(http, "city-110", secret, CASE), 401, "does not verify")
    assert (await push(http, "city-110", new, CASE)).status_code == 201


async def test_dispatch_and_status_are_pushed_signed_and_retried(platform: Platform, http: httpx.AsyncClient) -> None:
    await city(platform)
    hook = Hook(fail=1)  # the first delivery meets a 503: retried
    srv, task, port = await serve(hook)
    try:
        ln = await link(platform, http, f"http://127.0.0.1:{port}/xueliang")
        case = (await push(http, "city-110", ln["secret"], CASE)).json()
        op = await headers(platform, http, "duty", "operator")
        r = await http.post(f"/api/v1/incidents/{case['id']}/dispatch", headers=op,
                            json={"departments": [{"department": "公安局"}]})
        assert r.status_code == 200, r.text
        notifier = platform.incidents.notifier
        for _ in range(4):
            await due_now(platform.sessions)
            await notifier.dispatch()
        async with platform.sessions() as s:
            rows = (await s.scalars(select(Notification).where(Notification.channel == "emergency"))).all()
        assert {r.status for r in rows} == {"sent"} and len(rows) == 2
        events = []
        for h, body in hook.got:
            assert h["x-xueliang-key"] == "city-110"
            assert h["x-xueliang-signature"] == sign_webhook(ln["secret"].encode(), h["x-xueliang-timestamp"], body)
            events.append(json.loads(body))
        assert len(hook.got) == 3  # one 503, then both delivered
        got = {e["event"]: e for e in events}
        assert got["received"]["reference"] == CASE["reference"]
        assert got["dispatched"]["status"] == "dispatched"
        assert got["dispatched"]["dispatches"][0]["department"] == "公安局"
    finally:
        srv.should_exit = True
        await task
