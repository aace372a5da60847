"""A camera's snapshot attached to a case, through the media hub of a real server: the camera's
video comes over RTP from a stand-in for the GB/T 28181 device (no SIP here), as in
tests/media; the snapshot is decoded from its key frame and kept in the object store. A camera
the caller may not watch is 404, as missing."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "media"))
from test_hub_support import LiveServer
from test_media_api import FakeGbProvider

CH, CH_OTHER = "34020000001310000011", "34020000001310000013"


def test_a_cameras_snapshot_is_attached(tmp_path: Path) -> None:
    from xueliang.registry.models import ChannelIn, DeviceIn, UnitIn

    srv = LiveServer(tmp_path).start()
    try:
        srv.platform.live.gb = FakeGbProvider()
        reg, users = srv.platform.registry, srv.platform.users

        async def setup() -> tuple[str, str]:
            ua = await reg.create_unit(UnitIn(name="甲单位", department="甲局"))
            ub = await reg.create_unit(UnitIn(name="乙单位", department="乙局"))
            await reg.create_device(DeviceIn(id="34020000001110000011", name="NVR", unit_id=ua.id))
            await reg.create_channel(ChannelIn(id=CH, name="cam", device_id="34020000001110000011", unit_id=ua.id,
                                               longitude=117.23, latitude=31.82))
            await reg.create_channel(ChannelIn(id=CH_OTHER, name="cam2", device_id="34020000001110000011",
                                               unit_id=ub.id, longitude=117.231, latitude=31.82))
            duty = await users.create("duty", "Harbour-Lamp-42", "operator", department="甲局")
            return users.issue(duty), "ok"

        token, _ = srv.run(setup())
        h = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=srv.base, headers=h, timeout=30) as c:
            case = c.post("/api/v1/incidents", json={"category": "交通", "description": "路口拥堵",
                                                     "longitude": 117.2301, "latitude": 31.8201})
            assert case.status_code == 201, case.text
            cid = case.json()["id"]
            r = c.post(f"/api/v1/incidents/{cid}/snapshots", json={"channel_id": CH_OTHER})
            gone = c.post(f"/api/v1/incidents/{cid}/snapshots", json={"channel_id": "34020000001310000099"})
            assert r.status_code == gone.status_code == 404 and r.json()["title"] == gone.json()["title"]
            for _ in range(100):  # the stream opens on the first ask; its first key frame follows
                r = c.post(f"/api/v1/incidents/{cid}/snapshots", json={"channel_id": CH})
                if r.status_code != 503:
                    break
                time.sleep(0.1)
            assert r.status_code == 201, r.text
            att = r.json()
            assert att["kind"] == "snapshot" and att["channel_id"] == CH and att["size"] > 1000
            img = c.get(f"/api/v1/incidents/{cid}/attachments/{att['id']}")
            assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
            assert img.content[:3] == b"\xff\xd8\xff" and len(img.content) == att["size"]
            detail = c.get(f"/api/v1/incidents/{cid}").json()
            assert [a["id"] for a in detail["attachments"]] == [att["id"]]
    finally:
        srv.stop()
