"""Privilege escalation by every route: a department user asking for another department's
channel, a township operator outside the township, roles asking for what they lack. Each is
refused (403), logged, and changes nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.access.conftest import (
    DEV_HOSPITAL,
    DEV_SCHOOL,
    G0,
    GROUPED,
    HOSPITAL,
    LOOKOUT,
    SCHOOL,
    SCHOOL_KEY,
    VILLAGE,
    principal,
    purpose,
    user,
)
from xueliang.access.policy import Action, authorize
from xueliang.errors import Forbidden

WHEN = {"start": "2026-01-01T00:00:00", "end": "2026-01-01T01:00:00"}


async def test_department_user_by_every_route(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    edu = await user(platform, "edu", "department_user", department="教育局")
    listed = (await client.get("/api/v1/channels", headers=edu)).json()["items"]
    assert sorted(i["id"] for i in listed) == sorted([SCHOOL, SCHOOL_KEY])
    stats = (await client.get("/api/v1/statistics", headers=edu)).json()
    assert stats["points"] == 2
    p = await principal(platform, edu)
    for cid in (HOSPITAL, LOOKOUT, VILLAGE, GROUPED):
        assert (await client.get(f"/api/v1/channels/{cid}", headers=edu)).status_code == 404
        # Out of scope answers exactly as a channel that does not exist (issue 10).
        r = await client.post(f"/api/v1/channels/{cid}/playback", json=WHEN, headers=edu | purpose("x x"))
        missing = await client.post("/api/v1/channels/34999999991320000001/playback", json=WHEN,
                                    headers=edu | purpose("x x"))
        assert r.status_code == missing.status_code == 404, r.text
        assert r.json()["detail"].replace(cid, "?") == missing.json()["detail"].replace("34999999991320000001", "?")
        # download is not in the department_user role at all
        r = await client.post(f"/api/v1/channels/{cid}/download", json=WHEN, headers=edu)
        assert r.status_code == 403
        r = await client.post(f"/api/v1/channels/{cid}/ptz", json={"action": "stop"}, headers=edu)
        assert r.status_code == 403
        r = await client.get(f"/api/v1/channels/{cid}/records", params=WHEN, headers=edu)
        assert r.status_code == 404  # playback is in the role: out of scope answers as missing
        # stream URLs, snapshot, media token (the media router, hub off)
        for url in ("live.mp4", "live.flv", "live.m3u8", "live.info", "snapshot.jpg", "hls/init.mp4"):
            r = await client.get(f"/api/v1/channels/{cid}/{url}", headers=edu)
            assert r.status_code == 404, (url, r.status_code, r.text)
        assert (await client.post(f"/api/v1/channels/{cid}/media-token", headers=edu)).status_code == 404
        # stream URL and snapshot routes: the same function decides
        ch = await platform.registry.get_channel(cid)
        for action in (Action.LIVE_VIEW, Action.PLAYBACK, Action.DOWNLOAD, Action.PTZ):
            with pytest.raises(Forbidden):
                authorize(p, action, ch)
    for url in ("live.mp4", "snapshot.jpg"):
        r = await client.get(f"/api/v1/channels/{SCHOOL}/{url}", headers=edu)
        assert r.status_code == 503, (url, r.text)  # authorized; the media hub is off here
    r = await client.post(f"/api/v1/channels/{SCHOOL}/media-token", headers=edu)
    assert r.status_code == 200
    media = r.json()["token"]  # opens this channel's URLs only
    assert (await client.get(f"/api/v1/channels/{SCHOOL}/live.mp4", params={"token": media})).status_code == 503
    assert (await client.get(f"/api/v1/channels/{HOSPITAL}/live.mp4", params={"token": media})).status_code == 401
    assert (await client.get("/api/v1/channels", params={"token": media})).status_code == 401
    # Own channel: authorization passes (then: no device with recordings, 404 — not 403).
    r = await client.post(f"/api/v1/channels/{SCHOOL}/playback", json=WHEN, headers=edu)
    assert r.status_code == 404 and "no GB/T 28181 device" in r.text, r.text
    authorize(p, Action.LIVE_VIEW, await platform.registry.get_channel(SCHOOL))
    # Management routes.
    for method, url, body in [
        ("POST", "/api/v1/units", {"name": "x"}),
        ("PATCH", f"/api/v1/channels/{SCHOOL}", {"name": "y"}),
        ("DELETE", f"/api/v1/channels/{SCHOOL}", None),
        ("POST", "/api/v1/users", {"username": "evil", "password": "Evil-pass-123", "role": "administrator"}),
        ("PATCH", "/api/v1/users/1", {"role": "administrator"}),
        ("POST", "/api/v1/access/grants", {"department": "教育局", "filter": {"divisions": ["34"]}}),
        ("POST", "/api/v1/access/tokens", {"username": "edu", "name": "t", "scopes": ["media.live"]}),
        ("GET", "/api/v1/access/grants", None),
        ("GET", "/api/v1/audit/records", None),
        ("GET", "/api/v1/audit/verify", None),
        ("GET", "/api/v1/users", None),
        ("GET", "/api/v1/approvals?box=all", None),
        ("GET", "/metrics", None),
    ]:
        r = await client.request(method, url, json=body, headers=edu)
        assert r.status_code == 403, (method, url, r.status_code, r.text)
    # Nothing changed; every refusal is in the audit, with who, what and why.
    assert (await client.get(f"/api/v1/channels/{SCHOOL}", headers=edu)).json()["name"] == "校门"
    me = (await client.get("/api/v1/auth/me", headers=edu)).json()
    assert me["role"] == "department_user"
    await platform.access.audit.flush()
    from sqlalchemy import func, select

    from xueliang.db.tables import AuditRecord

    async with platform.sessions() as s:
        denied = (await s.execute(select(AuditRecord.action, AuditRecord.resource_id, AuditRecord.detail)
                                  .where(AuditRecord.outcome == "denied", AuditRecord.actor == "edu"))).all()
        n = await s.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.actor == "edu"))
    assert n and len(denied) >= 20
    assert any(a == "media.playback" and r == HOSPITAL and "outside your scope" in json.loads(d)["refused"]
               for a, r, d in denied)
    assert any(a == "device.ptz" for a, _, _ in denied)


async def test_township_operator_sees_the_township(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    town = await user(platform, "town", "operator", division_code="340102001")
    ids = sorted(i["id"] for i in (await client.get("/api/v1/channels", headers=town)).json()["items"])
    assert ids == sorted([SCHOOL, VILLAGE])
    r = await client.post(f"/api/v1/channels/{HOSPITAL}/ptz", json={"action": "stop"}, headers=town)
    assert r.status_code == 404  # out of scope answers as missing
    r = await client.post(f"/api/v1/channels/{SCHOOL}/ptz", json={"action": "stop"}, headers=town)
    assert r.status_code == 503  # allowed; signalling is off in this test
    # Devices: a township maintainer reaches its own units' devices only.
    mnt = await user(platform, "mnt", "maintainer", division_code="340102001")
    for method, tail in (("POST", "control"), ("GET", "info"), ("GET", "status"), ("POST", "catalog")):
        body = {"command": "teleboot"} if tail == "control" else None
        r = await client.request(method, f"/api/v1/devices/{DEV_HOSPITAL}/{tail}", json=body, headers=mnt)
        assert r.status_code == 404, (tail, r.text)  # out of scope answers as missing
        r = await client.request(method, f"/api/v1/devices/{DEV_SCHOOL}/{tail}", json=body, headers=mnt)
        assert r.status_code == 503, (tail, r.text)  # allowed; signalling is off in this test
    # A resident sees the public cameras (coverage A) of the own village only, and of those
    # only the ones marked for residents (issue 16).
    res = await user(platform, "resident", "resident", division_code="340102001001")
    p = await principal(platform, res)
    with pytest.raises(Forbidden):
        authorize(p, Action.LIVE_VIEW, await platform.registry.get_channel(VILLAGE))
    village = await platform.registry.get_channel(VILLAGE)
    village.resident_visible = True
    authorize(p, Action.LIVE_VIEW, village)
    with pytest.raises(Forbidden):
        authorize(p, Action.LIVE_VIEW, await platform.registry.get_channel(SCHOOL))
    with pytest.raises(Forbidden):
        authorize(p, Action.PLAYBACK, await platform.registry.get_channel(VILLAGE))


async def test_a_device_command_about_a_channel_needs_that_channel_of_that_device(  # type: ignore[no-untyped-def]
        client: httpx.AsyncClient, platform) -> None:
    """POST /devices/{id}/control sends the command to the device about ``channel_id``. A maintainer
    whose scope holds the school's NVR must not carry, through it, a command about a channel of
    another device, nor about one of the NVR's channels outside the scope; and TeleBoot, which
    restarts the whole device whatever channel it names, is addressed to the device alone."""
    from sqlalchemy import insert

    from xueliang.db.tables import Channel

    own, outside, elsewhere = "34010200011320000011", "34010200021320000012", "34010200011320000013"
    base = {"kind": "camera", "coverage": "B", "tier": "street", "key_site": False, "status": "ON",
            "networked": True, "retention_days_required": 30, "point_class": 2}
    async with platform.sessions() as s, s.begin():
        await s.execute(insert(Channel), [
            {**base, "id": own, "name": "NVR一路", "device_id": DEV_SCHOOL, "unit_id": 1,
             "department": "教育局", "division_code": "340102001"},
            # the school NVR's channel in the other township: out of the maintainer's scope
            {**base, "id": outside, "name": "NVR二路", "device_id": DEV_SCHOOL, "unit_id": 2,
             "department": "卫健委", "division_code": "340102002"},
            # in the maintainer's township, but a channel of the hospital's NVR
            {**base, "id": elsewhere, "name": "医院NVR一路", "device_id": DEV_HOSPITAL, "unit_id": 1,
             "department": "教育局", "division_code": "340102001"},
        ])
    mnt = await user(platform, "mnt", "maintainer", division_code="340102001")
    url = f"/api/v1/devices/{DEV_SCHOOL}/control"

    async def control(command: str, channel_id: str | None) -> httpx.Response:
        return await client.post(url, json={"command": command, "channel_id": channel_id}, headers=mnt)

    # exactly what is needed: the device in scope, its own channel in scope (then: SIP is off here)
    for command, channel_id in (("iframe", own), ("record_start", own), ("teleboot", None), ("teleboot", DEV_SCHOOL)):
        r = await control(command, channel_id)
        assert r.status_code == 503, (command, channel_id, r.text)
    # everything but: the channel is another device's, or outside the scope, or does not exist;
    # each answered as a missing channel, the same words
    missing = await control("iframe", "34010200011320000099")
    assert missing.status_code == 404, missing.text
    for channel_id in (elsewhere, outside, HOSPITAL):
        r = await control("record_start", channel_id)
        assert r.status_code == 404, (channel_id, r.text)
        assert r.json()["detail"].replace(channel_id, "?") == missing.json()["detail"].replace("34010200011320000099", "?")
    # TeleBoot about a channel, even the device's own in scope: refused, the device not restarted
    r = await control("teleboot", own)
    assert r.status_code == 422 and "whole device" in r.text, r.text


async def test_sharing_grants_groups_and_expiry(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    admin = {"Authorization": f"Bearer {platform.users.issue(await platform.users.by_name('root'))}"}
    edu = await user(platform, "edu", "department_user", department="教育局")
    # Share catalog group G0 (and so its sub-group G1's cameras) with 教育局, live only.
    r = await client.post("/api/v1/access/grants", json={"department": "教育局", "filter": {"groups": [G0]},
                                                         "actions": ["media.live"], "reason": "flood watch"},
                          headers=admin)
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    ids = sorted(i["id"] for i in (await client.get("/api/v1/channels", headers=edu)).json()["items"])
    assert ids == sorted([SCHOOL, SCHOOL_KEY, GROUPED])
    p = await principal(platform, edu)
    grouped = await platform.registry.get_channel(GROUPED)
    with pytest.raises(Forbidden, match="purpose"):
        authorize(p, Action.LIVE_VIEW, grouped)  # outside the department: a purpose is needed
    with pytest.raises(Forbidden, match="outside your scope"):
        authorize(p, Action.PLAYBACK, grouped)  # the grant gives live view only
    # Explicit ids, to one user, with an end date; a grant never reaches other departments.
    r = await client.post("/api/v1/access/grants", json={"user_id": p.user_id, "channel_ids": [HOSPITAL],
                                                         "valid_until": "2999-01-01T00:00:00Z"}, headers=admin)
    assert r.status_code == 201
    ids = sorted(i["id"] for i in (await client.get("/api/v1/channels", headers=edu)).json()["items"])
    assert HOSPITAL in ids
    other = await user(platform, "edu2", "department_user", department="卫健委")
    assert GROUPED not in [i["id"] for i in (await client.get("/api/v1/channels", headers=other)).json()["items"]]
    # Expiry: a lapsed grant stops at once.
    import time as _time

    g = platform.access.book.grants[gid]
    g.valid_until = _time.time() - 1
    platform.access.book.put(g)
    ids = sorted(i["id"] for i in (await client.get("/api/v1/channels", headers=edu)).json()["items"])
    assert GROUPED not in ids
    # Revocation.
    assert (await client.delete(f"/api/v1/access/grants/{gid}", headers=admin)).status_code == 204
    listed = (await client.get("/api/v1/access/grants", headers=admin)).json()
    assert gid not in [x["id"] for x in listed]
    bad = await client.post("/api/v1/access/grants", json={"department": "教育局"}, headers=admin)
    assert bad.status_code == 422  # sharing "everything" by accident is refused
    bad = await client.post("/api/v1/access/grants", json={"department": "教育局", "channel_ids": ["34000000001320009999"]},
                            headers=admin)
    assert bad.status_code == 422


async def test_events_are_scoped_like_the_cameras_they_are_about(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import insert, update

    from xueliang.db.tables import Channel, Event

    async with platform.sessions() as s, s.begin():
        await s.execute(update(Channel).where(Channel.id == SCHOOL).values(device_id=DEV_SCHOOL))
        await s.execute(update(Channel).where(Channel.id == HOSPITAL).values(device_id=DEV_HOSPITAL))
        await s.execute(insert(Event), [
            {"kind": "device.offline", "subject": DEV_SCHOOL, "data": {"reason": "keepalive timeout"}},
            {"kind": "device.offline", "subject": DEV_HOSPITAL, "data": {"reason": "keepalive timeout"}},
            {"kind": "alarm", "subject": SCHOOL, "data": {}},
            {"kind": "alarm", "subject": HOSPITAL, "data": {}},
            {"kind": "alarm", "subject": LOOKOUT, "data": {}},
        ])
    town = await user(platform, "town", "operator", division_code="340102001")
    seen = {e["subject"] for e in (await client.get("/api/v1/events", headers=town)).json()["items"]}
    assert seen == {DEV_SCHOOL, SCHOOL}
    # Asking for another township's device by name gives nothing, not its events.
    r = await client.get("/api/v1/events", params={"subject": DEV_HOSPITAL}, headers=town)
    assert r.status_code == 200 and r.json()["items"] == []
    city = await user(platform, "city", "operator")
    everything = {e["subject"] for e in (await client.get("/api/v1/events", headers=city)).json()["items"]}
    assert everything == {DEV_SCHOOL, DEV_HOSPITAL, SCHOOL, HOSPITAL, LOOKOUT}


async def test_alarms_are_taken_once_by_who_may_see_them(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import insert, select

    from xueliang.db.tables import Event

    async with platform.sessions() as s, s.begin():
        await s.execute(insert(Event), [
            {"kind": "alarm", "subject": SCHOOL, "data": {"description": "区域入侵", "priority": 1}},
            {"kind": "alarm", "subject": HOSPITAL, "data": {"description": "越线检测", "priority": 2}},
            {"kind": "device.offline", "subject": SCHOOL, "data": {}},
        ])
        ids = {r.subject + r.kind: r.id for r in (await s.scalars(select(Event))).all()}
    town = await user(platform, "town", "operator", division_code="340102001")
    other = await user(platform, "town2", "operator", division_code="340102001")
    school, hospital = ids[SCHOOL + "alarm"], ids[HOSPITAL + "alarm"]
    # Another township's alarm is not there for this operator; events that are not alarms are not taken.
    assert (await client.post(f"/api/v1/events/{hospital}/ack", json={}, headers=town)).status_code == 404
    assert (await client.post(f"/api/v1/events/{ids[SCHOOL + 'device.offline']}/ack", json={},
                              headers=town)).status_code == 404
    r = await client.post(f"/api/v1/events/{school}/ack", json={"note": "已派人"}, headers=town)
    assert r.status_code == 200 and r.json()["ack"]["by"] == "town" and r.json()["ack"]["note"] == "已派人"
    # A second operator sees who took it, and taking it again changes nothing.
    again = await client.post(f"/api/v1/events/{school}/ack", json={"note": "我也去"}, headers=other)
    assert again.json()["ack"]["by"] == "town" and again.json()["ack"]["note"] == "已派人"
    listed = (await client.get("/api/v1/events", params={"kind": "alarm"}, headers=other)).json()["items"]
    assert [(e["subject"], e["ack"]["by"] if e["ack"] else None) for e in listed] == [(SCHOOL, "town")]


async def test_event_addresses_are_for_who_may_see_devices_addresses(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    """A failed or pending registration and a device that moved carry its network address: the
    same people see it in the events as on the device (registry or signalling managers)."""
    from sqlalchemy import insert

    from xueliang.db.tables import Event

    async with platform.sessions() as s, s.begin():
        await s.execute(insert(Event), [
            {"kind": "device.auth_failed", "subject": DEV_SCHOOL, "data": {"ip": "10.8.1.7", "banned": False}},
            {"kind": "device.pending", "subject": DEV_SCHOOL, "data": {"ip": "10.8.1.7"}},
            {"kind": "device.moved", "subject": DEV_SCHOOL, "data": {"old": "10.8.1.7:5060", "new": "10.8.1.9:5060"}},
        ])
    # an operator queries devices and watches every camera, but does not manage the network
    city = await user(platform, "city", "operator")
    items = (await client.get("/api/v1/events", params={"kind": "device.*"}, headers=city)).json()["items"]
    assert len(items) == 3 and "10.8.1" not in json.dumps(items), items
    assert {i["kind"]: i["data"] for i in items}["device.auth_failed"] == {"ip": None, "banned": False}
    # a signalling manager (a maintainer, without a scope: every point) sees where the device is
    net = await user(platform, "net", "maintainer")
    shown = {i["kind"]: i["data"] for i in
             (await client.get("/api/v1/events", params={"kind": "device.*"}, headers=net)).json()["items"]}
    assert shown["device.auth_failed"]["ip"] == "10.8.1.7" and shown["device.moved"]["new"] == "10.8.1.9:5060"
