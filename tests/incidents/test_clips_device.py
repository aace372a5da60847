"""A clip from the device's own recording when the platform has none: the whole chain on
loopback (tests/integration/test_live_chain.py): a simulated NVR registered over GB/T 28181,
the clip fetched as a GB/T 28181 download (s=Download) through the media hub, muxed as MP4
without transcoding, kept with the case, read back by ffprobe."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.incidents.test_clips import probe
from tests.integration.test_live_chain import Live, _live

pytestmark = pytest.mark.slow


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async for x in _live(tmp_path, {}):
        yield x


async def test_a_clip_comes_from_the_devices_recording_when_the_platform_has_none(live: Live, tmp_path: Path) -> None:
    async with live.client(timeout=60) as c:
        ch = (await c.get("/api/v1/channels")).json()["items"][0]
        case = await c.post("/api/v1/incidents", json={"category": "交通", "description": "两车剐蹭",
                                                       "longitude": 117.23, "latitude": 31.82})
        assert case.status_code == 201, case.text
        cid = case.json()["id"]
        start = (datetime.now() - timedelta(hours=2)).astimezone()
        r = await c.post(f"/api/v1/incidents/{cid}/attachments/clip", json={
            "channel_id": ch["id"], "start": start.isoformat(), "end": (start + timedelta(seconds=6)).isoformat()})
        assert r.status_code == 201, r.text
        att = r.json()
        assert att["kind"] == "clip" and att["source"] == "device" and att["channel_id"] == ch["id"]
        got = datetime.fromisoformat(att["end"]) - datetime.fromisoformat(att["start"])
        assert timedelta(seconds=4) < got <= timedelta(seconds=6.5), att
        body = await c.get(f"/api/v1/incidents/{cid}/attachments/{att['id']}")
        assert body.status_code == 200 and body.headers["content-type"] == "video/mp4"
        assert len(body.content) == att["size"]
        # the download's stream is closed once the clip is in
        assert not [s for s in live.platform.media.streams() if s.name.startswith("download/") and not s.ended]
    out = tmp_path / "device-clip.mp4"
    out.write_bytes(body.content)
    info = probe(out)
    assert 4.0 < float(info["format"]["duration"]) <= 6.5, info
    (stream,) = [s for s in info["streams"] if s["codec_name"] == "h264"]
    assert (stream["width"], stream["height"]) == (320, 180) and int(stream["nb_read_packets"]) > 50
