"""The platform's recordings timeline: what was recorded of a channel and the gaps, for who may
play the channel back only (PostgreSQL and SQLite: the db_url fixture). Every route's access
matrix is in tests/access/test_every_route.py; this checks the answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from sqlalchemy import insert

from tests.api.conftest import login
from tests.api.test_health_api import CH_A, CH_B, PW, world
from xueliang.db.tables import Recording

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _seg(ch: str, a: int, b: int | None, n: int) -> dict:  # type: ignore[type-arg]
    return {"channel_id": ch, "start": T0 + timedelta(seconds=a), "end": None if b is None else T0 + timedelta(seconds=b),
            "size": 1000 * n, "path": f"{ch}/20261201/{n}.mp4", "tier": "local", "state": "open" if b is None else "closed"}


async def test_the_timeline_shows_segments_and_gaps_to_who_may_play_the_channel(platform, client, admin) -> None:  # type: ignore[no-untyped-def]
    w = await world(platform, client, admin)
    async with platform.sessions() as s, s.begin():
        await s.execute(insert(Recording), [
            _seg(CH_A, 0, 60, 1), _seg(CH_A, 60, 120, 2),  # back to back: one stretch
            _seg(CH_A, 300, 360, 3),  # after a 3-minute gap
            _seg(CH_B, 0, 60, 4),
        ])
    q = {"start": T0.isoformat(), "end": (T0 + timedelta(minutes=10)).isoformat()}
    # class I footage is sensitive (the access rules): its timeline too needs a stated purpose
    bare = await client.get(f"/api/v1/channels/{CH_A}/recordings", params=q, headers=w["duty"])
    assert bare.status_code == 403 and bare.json()["rule"] == "class-i-footage", bare.text
    duty = {**w["duty"], "X-Purpose": quote("核查录像完整")}
    r = await client.get(f"/api/v1/channels/{CH_A}/recordings", params=q, headers=duty)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["size"] for x in body["segments"]] == [1000, 2000, 3000]
    assert {x["source"] for x in body["segments"]} == {"platform"}
    assert [(x["start"][11:19], x["end"][11:19]) for x in body["gaps"]] == [("08:02:00", "08:05:00"), ("08:06:00", "08:10:00")]
    assert body["recorded_seconds"] == 180.0 and body["truncated"] is False
    # a range inside one segment: no gap, the part of it counted
    inner = {"start": (T0 + timedelta(seconds=10)).isoformat(), "end": (T0 + timedelta(seconds=50)).isoformat()}
    one = (await client.get(f"/api/v1/channels/{CH_A}/recordings", params=inner, headers=duty)).json()
    assert len(one["segments"]) == 1 and one["gaps"] == [] and one["recorded_seconds"] == 40.0
    # bad ranges are told, not guessed
    naive = {"start": "2026-12-01T08:00:00", "end": "2026-12-01T09:00:00"}
    assert (await client.get(f"/api/v1/channels/{CH_A}/recordings", params=naive, headers=duty)).status_code == 422
    backwards = {"start": q["end"], "end": q["start"]}
    assert (await client.get(f"/api/v1/channels/{CH_A}/recordings", params=backwards, headers=duty)).status_code == 422
    # a department user plays back its own department's points only: another's looks missing
    deptb = w["deptb"]
    assert (await client.get(f"/api/v1/channels/{CH_B}/recordings", params=q, headers=deptb)).json()["segments"]
    theirs = await client.get(f"/api/v1/channels/{CH_A}/recordings", params=q, headers=deptb)
    missing = await client.get("/api/v1/channels/34020000001319999999/recordings", params=q, headers=deptb)
    assert theirs.status_code == missing.status_code == 404
    # a maintainer sees the registry and the health of its points but plays nothing back
    assert (await client.get(f"/api/v1/channels/{CH_A}/recordings", params=q, headers=w["ma"])).status_code == 403
    # an auditor neither
    await platform.users.create("aud", PW, "auditor")
    aud = await login(client, "aud", PW)
    assert (await client.get(f"/api/v1/channels/{CH_A}/recordings", params=q, headers=aud)).status_code == 403
