"""A clip of a camera attached to a case (POST /incidents/{id}/attachments/clip), SQLite and
PostgreSQL: from real recorded segments (tests/recording/_segments.py) by remux, kept in the
object store, read back by ffprobe; its source recorded and audited. Refused, adversarially:
the case in scope but the camera not (404 as a missing camera), the camera in scope but the
case not (404 as a missing case), every right but media.download (403), a department that does
not handle the case (404), bad ranges (422), nothing recorded anywhere (404)."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.incidents.conftest import CAMERAS, city, headers, settings
from tests.objects.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedServer
from tests.recording._segments import lay_out
from xueliang.access import policy
from xueliang.access.policy import Action
from xueliang.app import Platform
from xueliang.db.tables import AuditRecord, Channel
from xueliang.objects.s3 import S3Objects
from xueliang.registry.models import DeviceIn

#: Seconds of each recorded segment (real H.264, encoded once per process).
SEG = 20
CASE = {"category": "治安", "description": "路口斗殴", "longitude": 117.2301, "latitude": 31.8201}
CH1, CH2, CH4 = CAMERAS[0][0], CAMERAS[1][0], CAMERAS[3][0]  # 城管局 at the case; 公安局's; 340102003 far


def probe(path: Path) -> dict[str, Any]:
    exe = shutil.which("ffprobe")
    assert exe, "ffprobe missing"
    res = subprocess.run([exe, "-v", "error", "-count_packets", "-show_entries",
                          "format=duration:stream=codec_name,width,height,nb_read_packets", "-of", "json", str(path)],
                         capture_output=True, text=True, timeout=60, check=True)
    assert res.stderr.strip() == "", res.stderr
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def _t0() -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)


def _q(ch: str, a: datetime, b: datetime) -> dict[str, str]:
    return {"channel_id": ch, "start": a.isoformat(), "end": b.isoformat()}


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(policy.ROLES, "operator-no-download", policy.ROLES["operator"] - {Action.DOWNLOAD})
    monkeypatch.setitem(policy.ROLES, "department-download", policy.ROLES["department_user"] | {Action.DOWNLOAD})


async def test_a_clip_of_the_platforms_recording_is_kept_and_plays(platform: Platform, http: httpx.AsyncClient,
                                                                   tmp_path: Path) -> None:
    await city(platform)
    t0 = _t0()
    await lay_out(platform.sessions, tmp_path / "recordings", CH1, t0, 3, seconds=SEG)
    op = await headers(platform, http, "op1", "operator", division_code="340102001")
    case = (await http.post("/api/v1/incidents", json=CASE, headers=op)).json()
    r = await http.post(f"/api/v1/incidents/{case['id']}/attachments/clip", headers=op,
                        json=_q(CH1, t0 + timedelta(seconds=10), t0 + timedelta(seconds=50)))
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["kind"] == "clip" and att["source"] == "platform" and att["channel_id"] == CH1
    assert att["content_type"] == "video/mp4" and att["size"] > 10_000
    # cut at fragments from a key frame, across segments: the 40 s asked for, and not much more
    got_start, got_end = datetime.fromisoformat(att["start"]), datetime.fromisoformat(att["end"])
    assert t0 + timedelta(seconds=8) <= got_start <= t0 + timedelta(seconds=10) < t0 + timedelta(seconds=50) <= got_end
    keys = [o.key for o in await platform.objects.list(f"incidents/{case['id']}/")]
    assert len(keys) == 1 and keys[0].startswith(f"incidents/{case['id']}/clip-platform-") and keys[0].endswith(".mp4")
    assert not list((tmp_path / "tmp" / "clips").iterdir())  # the work file is gone
    body = await http.get(f"/api/v1/incidents/{case['id']}/attachments/{att['id']}", headers=op)
    assert body.status_code == 200 and body.headers["content-type"] == "video/mp4"
    assert len(body.content) == att["size"] == int(body.headers["content-length"])
    out = tmp_path / "clip.mp4"
    out.write_bytes(body.content)
    info = probe(out)
    assert 39.0 < float(info["format"]["duration"]) < 43.0, info
    (stream,) = info["streams"]
    assert stream["codec_name"] == "h264" and (stream["width"], stream["height"]) == (160, 96)
    assert 39 * 25 <= int(stream["nb_read_packets"]) <= 43 * 25
    detail = (await http.get(f"/api/v1/incidents/{case['id']}", headers=op)).json()
    assert [(a["id"], a["kind"], a.get("source")) for a in detail["attachments"]] == [(att["id"], "clip", "platform")]
    await platform.access.audit.flush()
    async with platform.sessions() as s:
        rec = (await s.scalars(select(AuditRecord).where(AuditRecord.action == "incident.attach",
                                                         AuditRecord.resource_id == str(case["id"])))).all()
    assert len(rec) == 1 and rec[0].outcome == "ok" and rec[0].actor == "op1"
    detail = json.loads(rec[0].detail or "{}")
    assert detail["source"] == "platform" and detail["channel"] == CH1 and detail["kind"] == "clip"


async def test_clips_are_refused_to_everyone_missing_one_thing(platform: Platform, http: httpx.AsyncClient,
                                                               tmp_path: Path, no_download: None) -> None:
    await city(platform)
    t0 = _t0()
    for ch in (CH1, CH4):
        await lay_out(platform.sessions, tmp_path / "recordings", ch, t0, 2, seconds=SEG)
    root = await headers(platform, http, "root", "administrator")
    case = (await http.post("/api/v1/incidents", json=CASE, headers=root)).json()
    assert case["division_code"] == "340102001"
    cid = case["id"]
    url = f"/api/v1/incidents/{cid}/attachments/clip"
    when = (t0 + timedelta(seconds=10), t0 + timedelta(seconds=40))
    # the control: the whole right, the case and the camera in scope
    op1 = await headers(platform, http, "op1", "operator", division_code="340102001")
    assert (await http.post(url, headers=op1, json=_q(CH1, *when))).status_code == 201
    # the case in scope, the camera not: as a camera that does not exist
    hidden = await http.post(url, headers=op1, json=_q(CH4, *when))
    missing = await http.post(url, headers=op1, json=_q("34020000001310009999", *when))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["title"] == missing.json()["title"]
    assert hidden.headers["content-type"].startswith("application/problem+json")
    # the camera in scope, the case not: as a case that does not exist
    op3 = await headers(platform, http, "op3", "operator", division_code="340102003")
    theirs = await http.post(url, headers=op3, json=_q(CH4, *when))
    nocase = await http.post("/api/v1/incidents/999999/attachments/clip", headers=op3, json=_q(CH4, *when))
    assert theirs.status_code == nocase.status_code == 404 and theirs.json()["title"] == nocase.json()["title"]
    # every right of an operator but media.download, the case and the camera in scope
    nodl = await headers(platform, http, "nodl", "operator-no-download", division_code="340102001")
    assert (await http.get(f"/api/v1/incidents/{cid}", headers=nodl)).status_code == 200
    refused = await http.post(url, headers=nodl, json=_q(CH1, *when))
    assert refused.status_code == 403, refused.text
    # a department's user has no download right: refused by the role, dispatched the case or not
    dept = await headers(platform, http, "cg", "department_user", department="城管局")
    assert (await http.post(url, headers=dept, json=_q(CH1, *when))).status_code == 403
    await http.post(f"/api/v1/incidents/{cid}/dispatch", headers=root, json={"departments": [{"department": "城管局"}]})
    assert (await http.post(url, headers=dept, json=_q(CH1, *when))).status_code == 403
    # a department with the download right (a custom role) sees only cases dispatched to it
    other = await headers(platform, http, "ga", "department-download", department="公安局")
    assert (await http.post(url, headers=other, json=_q(CH1, *when))).status_code == 404
    await http.post(f"/api/v1/incidents/{cid}/dispatch", headers=root, json={"departments": [{"department": "公安局"}]})
    await lay_out(platform.sessions, tmp_path / "recordings", CH2, t0, 2, seconds=SEG)
    ok = await http.post(url, headers=other, json=_q(CH2, *when))  # its own camera, now its case
    assert ok.status_code == 201, ok.text
    assert (await http.post(url, headers=other, json=_q(CH1, *when))).status_code == 404  # 城管局's camera
    # bad ranges: a clear 422, never a 500
    for a, b, why in ((t0, t0 + timedelta(minutes=11), "at most 10 minutes"), (t0, t0, "after start"),
                      (t0 + timedelta(seconds=30), t0, "after start"),
                      (datetime.now(UTC) + timedelta(minutes=5), datetime.now(UTC) + timedelta(minutes=6), "past")):
        bad = await http.post(url, headers=op1, json=_q(CH1, a, b))
        assert bad.status_code == 422 and why in bad.json()["detail"], bad.text
    naive = await http.post(url, headers=op1, json={"channel_id": CH1, "start": "2026-12-01T08:00:00",
                                                      "end": "2026-12-01T08:01:00"})
    assert naive.status_code == 422 and "time zone" in naive.json()["detail"]
    junk = await http.post(url, headers=op1, json={"channel_id": CH1, "start": "yesterday", "end": 5, "x": 1})
    assert junk.status_code == 422
    # nothing recorded there and no device to ask: 404, said plainly
    none = await http.post(url, headers=op1, json=_q(CH1, t0 - timedelta(hours=3), t0 - timedelta(hours=3, seconds=-30)))
    assert none.status_code == 404 and "neither the platform nor a device" in none.json()["detail"]
    # a camera with a device, but no media hub here to fetch the device's recording: 503, said plainly
    await platform.registry.create_device(DeviceIn(id="34020000001110000001", name="NVR"))
    async with platform.sessions() as s, s.begin():
        (await s.get(Channel, CH1)).device_id = "34020000001110000001"  # type: ignore[union-attr]
    hubless = await http.post(url, headers=op1, json=_q(CH1, t0 - timedelta(hours=3), t0 - timedelta(hours=3, seconds=-30)))
    assert hubless.status_code == 503 and "media hub" in hubless.json()["detail"], hubless.text
    # only the allowed clips were kept, and no work file is left behind
    assert not list((tmp_path / "tmp" / "clips").iterdir())
    detail = (await http.get(f"/api/v1/incidents/{cid}", headers=root)).json()
    assert [(a["kind"], a["channel_id"]) for a in detail["attachments"]] == [("clip", CH1), ("clip", CH2)]
    assert len(await platform.objects.list(f"incidents/{cid}/")) == 2
    # the refusal is in the audit
    await platform.access.audit.flush()
    async with platform.sessions() as s:
        recs = (await s.scalars(select(AuditRecord).where(AuditRecord.actor == "nodl"))).all()
    assert any(r.outcome == "denied" and r.status == 403 for r in recs), [(r.action, r.outcome) for r in recs]


# The bucket is the point here, not the database.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_clip_is_kept_in_the_bucket_and_streamed_back(db_url: str, tmp_path: Path,
                                                              seaweed: SeaweedServer) -> None:
    from xueliang.api.main import create_app

    bucket = f"xl-{uuid.uuid4().hex[:10]}"
    p = Platform(settings(db_url, tmp_path, objects={"kind": "s3", "endpoint_url": seaweed.endpoint, "bucket": bucket,
                                                     "access_key": ACCESS_KEY, "secret_key": SECRET_KEY}))
    await p.start(migrate=False)
    try:
        assert isinstance(p.objects, S3Objects)
        await city(p)
        t0 = _t0()
        await lay_out(p.sessions, tmp_path / "recordings", CH1, t0, 1, seconds=SEG)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(p, manage_lifecycle=False)),
                                     base_url="http://test") as c:
            op = await headers(p, c, "duty", "operator")
            case = (await c.post("/api/v1/incidents", headers=op, json=CASE)).json()
            r = await c.post(f"/api/v1/incidents/{case['id']}/attachments/clip", headers=op,
                             json=_q(CH1, t0 + timedelta(seconds=4), t0 + timedelta(seconds=16)))
            assert r.status_code == 201, r.text
            att = r.json()
            (obj,) = await p.objects.list(f"incidents/{case['id']}/")
            assert obj.key.startswith(f"incidents/{case['id']}/clip-platform-") and obj.size == att["size"]
            got = await c.get(f"/api/v1/incidents/{case['id']}/attachments/{att['id']}", headers=op)
            assert got.status_code == 200 and got.content == await p.objects.get(obj.key)
        out = tmp_path / "s3-clip.mp4"
        out.write_bytes(got.content)
        assert 11.0 < float(probe(out)["format"]["duration"]) < 14.0
    finally:
        await p.stop()
