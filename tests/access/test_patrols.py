"""Patrols kept by the platform: the next shift finds them; shared within a department; each
viewer sees only the cameras of a patrol in their own scope; only the owner changes one."""

from __future__ import annotations

import httpx

from tests.access.conftest import HOSPITAL, LOOKOUT, SCHOOL, SCHOOL_KEY, VILLAGE, user

URL = "/api/v1/patrols"


async def test_patrols_are_kept_shared_and_scoped(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    night = await user(platform, "night", "operator")  # the centre's duty staff: no department
    day = await user(platform, "day", "operator")
    edu = await user(platform, "edu", "department_user", department="教育局")
    edu2 = await user(platform, "edu2", "department_user", department="教育局")
    health = await user(platform, "health", "department_user", department="卫健委")

    body = {"name": "夜间巡查", "layout": 4, "interval": 20, "channel_ids": [LOOKOUT, SCHOOL, HOSPITAL, SCHOOL],
            "shared": True}
    r = await client.post(URL, json=body, headers=night)
    assert r.status_code == 201, r.text
    p = r.json()
    assert [c["id"] for c in p["channels"]] == [LOOKOUT, SCHOOL, HOSPITAL] and p["hidden"] == 0 and p["mine"]
    private = (await client.post(URL, json={**body, "name": "mine only", "shared": False}, headers=night)).json()

    # The next shift (same "department": none) finds the shared one, not the private one.
    seen = (await client.get(URL, headers=day)).json()
    assert [x["name"] for x in seen] == ["夜间巡查"] and not seen[0]["mine"]
    assert (await client.get(f"{URL}/{private['id']}", headers=day)).status_code == 404
    # ... and may run it, not change or delete it.
    assert (await client.put(f"{URL}/{p['id']}", json=body, headers=day)).status_code == 403
    assert (await client.delete(f"{URL}/{p['id']}", headers=day)).status_code == 403
    # Another department does not see it at all.
    assert (await client.get(URL, headers=edu)).json() == []
    assert (await client.get(f"{URL}/{p['id']}", headers=edu)).status_code == 404

    # A department's patrol can only hold its own cameras; colleagues see it, others do not.
    r = await client.post(URL, json={"name": "校园", "channel_ids": [SCHOOL, HOSPITAL], "shared": True}, headers=edu)
    assert r.status_code == 422 and HOSPITAL in r.text
    school = (await client.post(URL, json={"name": "校园", "channel_ids": [SCHOOL_KEY, SCHOOL], "shared": True},
                                headers=edu)).json()
    assert [x["id"] for x in (await client.get(URL, headers=edu2)).json()] == [school["id"]]
    assert (await client.get(URL, headers=health)).json() == []

    # Whoever sees a patrol sees only the cameras in their own scope: the rest are counted.
    async with platform.sessions() as s, s.begin():
        from sqlalchemy import update

        from xueliang.db.tables import Patrol
        await s.execute(update(Patrol).where(Patrol.id == school["id"]).values(
            channel_ids=[SCHOOL_KEY, SCHOOL, VILLAGE, LOOKOUT]))  # as if edited by an administrator
    got = (await client.get(f"{URL}/{school['id']}", headers=edu2)).json()
    assert [c["id"] for c in got["channels"]] == [SCHOOL_KEY, SCHOOL] and got["hidden"] == 2

    # The owner edits and deletes; bad values are refused with a reason.
    r = await client.put(f"{URL}/{p['id']}", json={**body, "layout": 9, "interval": 60}, headers=night)
    assert r.status_code == 200 and (r.json()["layout"], r.json()["interval"]) == (9, 60)
    for bad in ({"layout": 5}, {"interval": 1}, {"name": " "}):
        assert (await client.put(f"{URL}/{p['id']}", json={**body, **bad}, headers=night)).status_code == 422
    assert (await client.delete(f"{URL}/{p['id']}", headers=night)).status_code == 204
    assert (await client.get(URL, headers=day)).json() == []
