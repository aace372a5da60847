"""The picture-diagnosis API, adversarially: results are seen only for points in scope (a
maintainer: its team's; a department: its own), by every route that shows them; the city's
fault listing counts only what the caller may see. PostgreSQL and SQLite (the db_url fixture)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert

from tests.api.conftest import login
from tests.api.test_health_api import CH_A, CH_B, PW, world
from xueliang.db.tables import Diagnosis


async def _results(platform) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    async with platform.sessions() as s, s.begin():
        await s.execute(insert(Diagnosis), [
            {"channel_id": CH_A, "at": now, "picture": True, "faults": ["blur"], "confirmed": [],
             "scores": {"blur": 0.7}, "profile": "day", "frames": 3, "by": "scheduler"},
            {"channel_id": CH_A, "at": now, "picture": True, "faults": ["blur"], "confirmed": ["blur"],
             "scores": {"blur": 0.8}, "profile": "day", "frames": 3, "by": "scheduler"},
            {"channel_id": CH_B, "at": now, "picture": False, "faults": ["signal_loss"], "confirmed": ["signal_loss"],
             "scores": {"signal_loss": 1.0}, "profile": "day", "frames": 0, "by": "scheduler",
             "reason": "GatewayTimeout"},
        ])


async def test_each_caller_sees_the_faults_of_its_own_points_only(platform, client, admin) -> None:
    w = await world(platform, client, admin)
    await _results(platform)
    expect = {"duty": {CH_A, CH_B}, "ma": {CH_A}, "mb": {CH_B}, "deptb": {CH_B}}
    for who, chans in expect.items():
        r = await client.get("/api/v1/diagnosis/faults", headers=w[who])
        assert r.status_code == 200, r.text
        body = r.json()
        assert {c["channel_id"] for c in body["channels"]} == chans, who
        assert body["inspected"] == body["faulty"] == len(chans), (who, body)
        # the counts too, not only the list: a class or county of others' points never shows
        counted = sum(sum(v.values()) for v in body["by_class"].values())
        assert counted == len(chans) == sum(sum(v.values()) for v in body["by_division"].values()), (who, body)
    # the latest result counts: CH_A's second sample confirmed blur
    duty = (await client.get("/api/v1/diagnosis/faults", headers=w["duty"])).json()
    assert duty["by_class"] == {"1": {"blur": 1}, "2": {"signal_loss": 1}}
    assert duty["by_division"] == {"340102": {"blur": 1, "signal_loss": 1}}


async def test_a_points_history_looks_missing_to_those_it_is_not_for(platform, client, admin) -> None:
    w = await world(platform, client, admin)
    await _results(platform)
    for who, mine, other in (("ma", CH_A, CH_B), ("deptb", CH_B, CH_A)):
        r = await client.get(f"/api/v1/channels/{mine}/diagnoses", headers=w[who])
        assert r.status_code == 200 and r.json()["items"], r.text
        theirs = await client.get(f"/api/v1/channels/{other}/diagnoses", headers=w[who])
        missing = await client.get("/api/v1/channels/34020000001319999999/diagnoses", headers=w[who])
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["detail"].replace(other, "X") == missing.json()["detail"].replace("34020000001319999999", "X")
    items = (await client.get(f"/api/v1/channels/{CH_A}/diagnoses", headers=w["duty"])).json()["items"]
    assert [i["confirmed"] for i in items] == [["blur"], []]  # newest first


async def test_diagnosing_needs_the_media_hub_and_says_so(platform, client, admin) -> None:
    w = await world(platform, client, admin)
    r = await client.post(f"/api/v1/channels/{CH_A}/diagnose", headers=w["duty"])
    assert r.status_code == 503 and "media" in r.json()["detail"]
    # a maintainer may not diagnose or calibrate (duty operators do)
    for path in ("diagnose", "diagnosis/reference"):
        assert (await client.post(f"/api/v1/channels/{CH_A}/{path}", headers=w["ma"])).status_code == 403


async def test_the_latest_diagnosis_sits_on_the_channel_for_those_who_may_read_its_health(
        platform, client, admin) -> None:  # type: ignore[no-untyped-def]
    w = await world(platform, client, admin)
    before = (await client.get(f"/api/v1/channels/{CH_A}", headers=w["duty"])).json()
    assert before["diagnosis"] is None  # not inspected yet
    await _results(platform)
    a = (await client.get(f"/api/v1/channels/{CH_A}", headers=w["duty"])).json()["diagnosis"]
    assert a["confirmed"] == ["blur"] and a["snapshot"] == f"/api/v1/channels/{CH_A}/diagnosis/snapshot.jpg"
    b = (await client.get(f"/api/v1/channels/{CH_B}", headers=w["duty"])).json()["diagnosis"]
    assert b["confirmed"] == ["signal_loss"] and b["snapshot"] is None and b["reason"] == "GatewayTimeout"
    # a maintainer reads team B's camera in the registry, but not its health: no diagnosis on it
    ma_b = await client.get(f"/api/v1/channels/{CH_B}", headers=w["ma"])
    assert ma_b.status_code == 200 and ma_b.json()["diagnosis"] is None
    assert (await client.get(f"/api/v1/channels/{CH_A}", headers=w["ma"])).json()["diagnosis"]["confirmed"] == ["blur"]
    # a principal with every right to the channel but health.read: the channel without it
    await platform.users.create("sys", PW, "system")
    sys_ = await login(client, "sys", PW)
    r = await client.get(f"/api/v1/channels/{CH_A}", headers=sys_)
    assert r.status_code == 200 and r.json()["diagnosis"] is None
    # and the listing never carries it
    items = (await client.get("/api/v1/channels", headers=w["duty"])).json()["items"]
    assert items and all("diagnosis" not in i for i in items)
