"""Channels' recording plans and storage compliance over the API (PostgreSQL and SQLite: the db_url
fixture): a plan shows where it comes from; setting one needs recording.manage on a channel in
scope, triggering needs recording.trigger, and both are audited and told on the bus; storage
compliance comes from the recordings index, beside the survey's claim, in the caller's scope.
Every route's access matrix is in tests/access/test_every_route.py; this checks the answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update

from tests.api.conftest import login
from xueliang.access import policy
from xueliang.actions import Action
from xueliang.db.tables import Channel, Platform, Recording, Unit

PW = "Harbour-Lamp-42"
CH_A = "34020000001310000001"  # 甲局, class I
CH_B = "34020000001310000002"  # 乙局, class II


async def world(platform, client, admin, users=("duty", "deptb")) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    """Two departments' cameras, and the users asked for: an operator (duty), a department user
    of 乙局 (deptb), a maintainer (ma)."""
    async with platform.sessions() as s, s.begin():
        ua, ub = Unit(name="甲单位", department="甲局"), Unit(name="乙单位", department="乙局")
        s.add_all([ua, ub])
        await s.flush()
        await s.execute(insert(Channel), [
            {"id": CH_A, "name": "a", "kind": "camera", "unit_id": ua.id, "department": "甲局",
             "division_code": "340102001", "point_class": 1, "status": "ON"},
            {"id": CH_B, "name": "b", "kind": "camera", "unit_id": ub.id, "department": "乙局",
             "division_code": "340102002", "point_class": 2, "status": "ON"},
        ])
    roles = {"duty": ("operator", {}), "deptb": ("department_user", {"department": "乙局"}), "ma": ("maintainer", {})}
    out = {}
    for name in users:
        role, kw = roles[name]
        await platform.users.create(name, PW, role, **kw)
        out[name] = await login(client, name, PW)
    return out

PLAN = f"/api/v1/channels/{CH_B}/recording"
PROBLEM = "application/problem+json"


async def _audited(platform, client, admin, action: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    r = await client.get("/api/v1/audit/records", headers=admin, params={"action": action})
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def test_a_plan_shows_its_source_changes_are_audited_and_told_to_the_recorder(  # type: ignore[no-untyped-def]
        platform, client, admin) -> None:
    w = await world(platform, client, admin, ("duty",))
    events = platform.bus.subscribe("recording")
    # defaults: class I records continuously; class II is off (the default configuration)
    a = (await client.get(f"/api/v1/channels/{CH_A}/recording", headers=admin)).json()
    assert a == {"channel_id": CH_A, "mode": "continuous", "source": "class", "retention_days": 30}
    assert (await client.get(PLAN, headers=admin)).json()["mode"] == "off"

    r = await client.put(PLAN, headers=admin, json={"mode": "event", "pre_seconds": 5, "post_seconds": 20})
    assert r.status_code == 200, r.text
    assert r.json() == {"channel_id": CH_B, "mode": "event", "source": "channel", "retention_days": 30,
                        "pre_seconds": 5, "post_seconds": 20}
    assert (await client.get(PLAN, headers=admin)).json() == r.json()
    ev = await events.get()
    assert (ev.kind, ev.subject, ev.data["mode"], ev.data["by"]) == ("recording.plan", CH_B, "event", "root")
    [rec] = await _audited(platform, client, admin, "recording.plan.set")
    assert rec["resource_id"] == CH_B and rec["actor"] == "root" and rec["outcome"] == "ok"
    assert rec["detail"]["plan"]["mode"] == "event" and rec["detail"]["before"] == {"mode": "off", "source": "class"}

    # a timetable in the platform's time, across midnight
    night = {"mode": "scheduled", "schedule": [{"days": [5, 6], "start": "22:00", "end": "06:00"}]}
    r = await client.put(PLAN, headers=admin, json=night)
    assert r.status_code == 200 and r.json()["schedule"] == night["schedule"]

    # an operator triggers the event recording of a channel that records on event, not another
    await client.put(PLAN, headers=admin, json={"mode": "event"})
    duty = w["duty"]
    r = await client.post(f"{PLAN}/trigger", headers=duty)
    assert r.status_code == 202 and r.json() == {"channel_id": CH_B, "pre_seconds": 10.0, "post_seconds": 30.0}
    kinds = []
    while not events.queue.empty():  # type: ignore[attr-defined]
        kinds.append(events.queue.get_nowait())  # type: ignore[attr-defined]
    assert [(e.kind, e.subject) for e in kinds][-1] == ("recording.trigger", CH_B)
    assert kinds[-1].data == {"by": "duty", "cause": "operator"}
    r = await client.post(f"/api/v1/channels/{CH_A}/recording/trigger", headers=duty)
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
    assert "continuous" in r.json()["detail"]
    assert [x["resource_id"] for x in await _audited(platform, client, admin, "recording.trigger")] == [CH_A, CH_B]

    # back to the defaults
    assert (await client.delete(PLAN, headers=admin)).status_code == 204
    assert (await client.get(PLAN, headers=admin)).json()["source"] == "class"
    assert len(await _audited(platform, client, admin, "recording.plan.clear")) == 1
    # a key site follows its key site whatever its class
    async with platform.sessions() as s, s.begin():
        await s.execute(update(Channel).where(Channel.id == CH_B).values(key_site=True))
    b = (await client.get(PLAN, headers=admin)).json()
    assert (b["mode"], b["source"], b["retention_days"]) == ("continuous", "key_site", 90)


BAD = [
    ({"mode": "scheduled"}, "at least one window"),
    ({"mode": "scheduled", "schedule": [{"days": [1], "start": "25:00", "end": "06:00"}]}, "time of day"),
    ({"mode": "scheduled", "schedule": [{"days": ["mon"], "start": "22:00", "end": "06:00"}]}, "day of the week"),
    ({"mode": "event", "pre_seconds": 600}, "120"),
    ({"mode": "loop"}, "mode"),
    ({"mode": "off", "extra": 1}, "extra"),
    ([], "object"),
]


async def test_a_bad_plan_is_refused_with_a_problem_saying_why(platform, client, admin) -> None:  # type: ignore[no-untyped-def]
    await world(platform, client, admin, ())
    for body, says in BAD:
        r = await client.put(PLAN, headers=admin, json=body)
        assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text
        assert says in r.text, (body, r.text)
    assert (await client.get(PLAN, headers=admin)).json()["source"] == "class"  # nothing changed
    async with platform.sessions() as s, s.begin():
        s.add(Channel(id="34020000002150000001", name="group", kind="group"))
    r = await client.put("/api/v1/channels/34020000002150000001/recording", headers=admin, json={"mode": "continuous"})
    assert r.status_code == 422 and "catalog group" in r.json()["detail"]


async def test_recording_manage_and_trigger_are_rights_of_their_own_scoped_to_the_channel(  # type: ignore[no-untyped-def]
        platform, client, admin, monkeypatch: pytest.MonkeyPatch) -> None:
    await world(platform, client, admin, ())
    everything = frozenset(Action)
    monkeypatch.setitem(policy.ROLES, "no-manage", everything - {Action.RECORDING_MANAGE})
    monkeypatch.setitem(policy.ROLES, "only-manage", frozenset({Action.RECORDING_MANAGE}))
    monkeypatch.setitem(policy.ROLES, "no-trigger", everything - {Action.RECORDING_TRIGGER})
    monkeypatch.setitem(policy.ROLES, "only-trigger", frozenset({Action.RECORDING_TRIGGER}))
    heads = {}
    for role in ("no-manage", "only-manage", "no-trigger", "only-trigger"):
        await platform.users.create(role, PW, role)
        heads[role] = await login(client, role, PW)
    await platform.users.create("dept-a", PW, "only-manage", department="甲局")
    heads["dept-a"] = await login(client, "dept-a", PW)

    event = {"mode": "event"}
    assert (await client.put(PLAN, headers=heads["no-manage"], json=event)).status_code == 403
    assert (await client.delete(PLAN, headers=heads["no-manage"])).status_code == 403
    assert (await client.put(PLAN, headers=heads["only-manage"], json=event)).status_code == 200
    assert (await client.post(f"{PLAN}/trigger", headers=heads["no-trigger"])).status_code == 403
    assert (await client.post(f"{PLAN}/trigger", headers=heads["only-trigger"])).status_code == 202
    assert (await client.put(PLAN, headers=heads["only-trigger"], json=event)).status_code == 403
    # another department's channel looks exactly like a missing one
    theirs = await client.put(PLAN, headers=heads["dept-a"], json={"mode": "off"})
    missing = await client.put("/api/v1/channels/34020000001319999999/recording", headers=heads["dept-a"],
                               json={"mode": "off"})
    assert theirs.status_code == missing.status_code == 404 and theirs.json()["type"] == missing.json()["type"]
    assert (await client.put(f"/api/v1/channels/{CH_A}/recording", headers=heads["dept-a"],
                             json={"mode": "off"})).status_code == 200
    assert (await client.get(PLAN, headers=admin)).json()["mode"] == "event"  # the refused change did not land
    refused = [x for x in await _audited(platform, client, admin, "recording.manage") if x["outcome"] != "ok"]
    assert refused  # refusals are audited too


async def test_storage_compliance_comes_from_the_recordings_beside_the_surveys_claim(  # type: ignore[no-untyped-def]
        platform, client, admin) -> None:
    w = await world(platform, client, admin, ("deptb", "ma"))
    now = datetime.now(UTC)
    async with platform.sessions() as s, s.begin():
        units = dict((await s.execute(select(Channel.id, Channel.unit_id))).all())
        # the survey: unit A claims 30 days, unit B 60 days
        await s.execute(insert(Platform), [{"unit_id": units[CH_A], "retention_days": 30},
                                           {"unit_id": units[CH_B], "retention_days": 60}])
        rows = []
        for ch, oldest in ((CH_A, 31), (CH_B, 10)):  # A keeps 31 days, B only 10
            for age in (oldest, 5, 0):
                start = now - timedelta(days=age, minutes=2)
                rows.append({"channel_id": ch, "start": start, "end": start + timedelta(minutes=1), "size": 1,
                             "path": f"{ch}/{age}.mp4", "tier": "local", "state": "closed"})
        await s.execute(insert(Recording), rows)
    r = await client.get("/api/v1/recordings/compliance", headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["points"] == 2 and body["compliance"] == {"count": 1, "total": 2, "rate": 0.5}
    assert body["claimed"] == {"count": 2, "total": 2, "rate": 1.0}  # the survey says both comply
    assert body["by_class"]["1"]["compliance"]["rate"] == 1.0 and body["by_class"]["2"]["compliance"]["rate"] == 0.0
    items = {i["channel_id"]: i for i in body["items"]}
    assert items[CH_A]["days_kept"] == pytest.approx(31, abs=0.01) and items[CH_A]["compliant"] is True
    assert items[CH_B]["days_kept"] == pytest.approx(10, abs=0.01) and items[CH_B]["compliant"] is False
    assert items[CH_B]["claimed_days"] == 60 and items[CH_B]["claimed_compliant"] is True
    assert items[CH_B]["days_required"] == 30
    assert [d["code"] for d in body["by_division"]] == ["340102"]
    # a department sees only its points
    mine = (await client.get("/api/v1/recordings/compliance", headers=w["deptb"])).json()
    assert [i["channel_id"] for i in mine["items"]] == [CH_B] and mine["points"] == 1
    # a key site needs 90 days: A's 31 no longer comply
    async with platform.sessions() as s, s.begin():
        await s.execute(update(Channel).where(Channel.id == CH_A).values(key_site=True))
    body = (await client.get("/api/v1/recordings/compliance", headers=admin,
                             params={"division": "340102001"})).json()
    assert [i["channel_id"] for i in body["items"]] == [CH_A] and body["key_sites"]["compliance"]["rate"] == 0.0
    assert body["items"][0]["days_required"] == 90 and body["items"][0]["claimed_compliant"] is False
    # paging and bad filters
    page = (await client.get("/api/v1/recordings/compliance", headers=admin, params={"limit": 1})).json()
    assert len(page["items"]) == 1 and page["next_after"] == CH_A and page["points"] == 2
    bad = await client.get("/api/v1/recordings/compliance", headers=admin, params={"division": "34'--"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
    # a maintainer has no statistics right? it has stats.read: its answer is scoped like the statistics
    assert (await client.get("/api/v1/recordings/compliance", headers=w["ma"])).status_code == 200
