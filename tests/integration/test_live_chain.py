"""The whole chain on loopback, as an operator uses it: simulated NVRs register over GB/T 28181,
their catalogs land in the registry, the API queries and controls them, and a click on a
channel INVITEs the device and plays real H.264 over HTTP (decoded by PyAV here)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
import uvicorn

from tests.ports import free_port, free_range
from xueliang.config import Settings
from xueliang.server import build
from xueliang.sim.simulator import Simulator

pytestmark = pytest.mark.slow


class Live:
    def __init__(self, platform: Any, base: str, sim: Simulator, headers: dict[str, str]) -> None:
        self.platform, self.base, self.sim, self.headers = platform, base, sim, headers

    def client(self, timeout: float = 15.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, headers=self.headers, timeout=timeout)


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    async for x in _live(tmp_path, {}):
        yield x


@pytest.fixture
async def live_port_range(tmp_path: Path) -> AsyncIterator[Live]:
    async for x in _live(tmp_path, {"rtp_port_range": free_range(10)}):
        yield x


async def _live(tmp_path: Path, media: dict[str, Any]) -> AsyncIterator[Live]:
    port = free_port()
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp_path}/live.db"}, storage={"var_dir": tmp_path},
        api={"port": port}, sip={"port": 0, "password": "live-pass-1", "admission": "open", "rate_limit_per_address": 5000},
        media={"rtp_port": 0, "rtp_tcp_port": 0, "idle_stop_seconds": 1.0, "rtp_timeout": 3.0, **media},
        secret_key="k" * 32, bootstrap_admin="root", bootstrap_password="Root-pass-1",
        **({"access": {"totp_required_roles": []}} if "access" in Settings.model_fields else {}),
    )
    platform, app = build(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    for _ in range(100):
        if platform.started:
            break
        await asyncio.sleep(0.05)
    sim = Simulator(f"127.0.0.1:{platform.signalling.endpoint.port}", devices=2, channels=2, password="live-pass-1",
                    keepalive=5.0, video_size=(320, 180), video_seconds=2.0, register_rate=50)
    await sim.start()
    assert await sim.wait_registered(2, timeout=20)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
        r = await c.post("/api/v1/auth/login", json={"username": "root", "password": "Root-pass-1"})
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        for _ in range(100):  # catalogs land shortly after registration
            items = (await c.get("/api/v1/channels", headers=headers)).json()["items"]
            if len(items) == 4 and all(i["status"] == "ON" for i in items):
                break
            await asyncio.sleep(0.1)
    yield Live(platform, f"http://127.0.0.1:{port}", sim, headers)
    # The platform first, while the devices still answer the BYEs of its open streams (each one
    # to a stopped device waits out its 3 s transaction); then the devices, with no platform left
    # to unregister from (each REGISTER would wait out its own).
    server.should_exit = True
    await asyncio.wait_for(task, 15)
    await sim.stop(unregister=False)


async def read_for(c: httpx.AsyncClient, url: str, seconds: float) -> bytes:
    buf = bytearray()
    async with c.stream("GET", url) as r:
        assert r.status_code == 200, await r.aread()
        try:
            async with asyncio.timeout(seconds):
                async for chunk in r.aiter_bytes():
                    buf += chunk
        except TimeoutError:
            pass
    return bytes(buf)


def decode(data: bytes, fmt: str) -> list[Any]:
    with av.open(io.BytesIO(data), format=fmt) as container:
        return [f for f in container.decode(video=0)]


async def test_catalog_queries_and_ptz_reach_the_devices(live: Live) -> None:
    async with live.client() as c:
        items = (await c.get("/api/v1/channels")).json()["items"]
        assert len(items) == 4 and all(i["networked"] and i["device_id"] for i in items)
        ch = items[0]
        dev = ch["device_id"]
        info = (await c.get(f"/api/v1/devices/{dev}/info")).json()
        assert info["result"] == "OK" and info["channels"] == 2
        status = (await c.get(f"/api/v1/devices/{dev}/status")).json()
        assert status["online"].upper() == "ONLINE"
        r = await c.post(f"/api/v1/channels/{ch['id']}/ptz", json={"action": "move", "pan": 1, "tilt": -1, "speed": 80})
        assert r.status_code == 200 and r.json()["ptz_cmd"].startswith("A50F")
        await asyncio.sleep(0.2)
        log = list(live.sim.channel(ch["id"]).ptz_log)
        assert log and log[-1].command.pan == 1 and log[-1].command.tilt == -1
        now = datetime.now()
        recs = (await c.get(f"/api/v1/channels/{ch['id']}/records",
                            params={"start": (now - timedelta(hours=6)).isoformat(), "end": now.isoformat()})).json()
        assert recs["records"] and all(r["start"] < r["end"] for r in recs["records"])
        # a device that does not answer: a clear timeout, not a hang
        live.sim.set_fault(dev, no_answers=True)
        r = await c.get(f"/api/v1/devices/{dev}/info", timeout=30)
        assert r.status_code == 504 and "no answer" in r.json()["detail"]


async def test_live_view_plays_and_viewers_share_one_invite(live: Live) -> None:
    async with live.client() as c:
        ch = (await c.get("/api/v1/channels")).json()["items"][1]
        device = live.sim.device(ch["id"])
        mp4, flv = await asyncio.gather(read_for(c, f"/api/v1/channels/{ch['id']}/live.mp4", 3.0),
                                        read_for(c, f"/api/v1/channels/{ch['id']}/live.flv", 3.0))
        assert len(device.calls) <= 1  # two viewers, one INVITE
        frames = decode(mp4, "mp4")
        assert len(frames) >= 40 and frames[0].width == 320 and frames[0].height == 180
        pts = [f.pts for f in frames]
        assert pts == sorted(pts)
        assert len(decode(flv, "flv")) >= 40
        snap = await c.get(f"/api/v1/channels/{ch['id']}/snapshot.jpg")
        assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
        streams = (await c.get("/api/v1/streams")).json()
        assert any(s["name"] == f"live/{ch['id']}" and s["lost"] == 0 for s in streams)
    # the last viewer left: after idle_stop_seconds the platform sends BYE
    for _ in range(60):
        if not device.calls:
            break
        await asyncio.sleep(0.1)
    assert not device.calls


async def test_live_view_on_a_port_of_its_own(live_port_range: Live) -> None:
    """media.rtp_port_range: the INVITE offers a port of the range, the device sends there."""
    live = live_port_range
    async with live.client() as c:
        ch = (await c.get("/api/v1/channels")).json()["items"][0]
        device = live.sim.device(ch["id"])
        reading = asyncio.create_task(read_for(c, f"/api/v1/channels/{ch['id']}/live.mp4", 3.0))
        for _ in range(100):
            if device.calls:
                break
            await asyncio.sleep(0.05)
        sent_to = [call.session.remote[1] for call in device.calls.values()]  # where the device sends RTP
        mp4 = await reading
        ports = [b.port for b in live.platform.media.rtp.bindings()]
        lo, hi = live.platform.settings.media.rtp_port_range
        assert len(ports) == 1 and ports[0] is not None and lo <= ports[0] <= hi
        assert sent_to == ports
        assert len(decode(mp4, "mp4")) >= 40


async def test_dead_device_ends_the_stream(live: Live) -> None:
    async with live.client() as c:
        ch = (await c.get("/api/v1/channels")).json()["items"][2]
        sub = live.platform.bus.subscribe("stream")
        data = bytearray()
        async with c.stream("GET", f"/api/v1/channels/{ch['id']}/live.mp4") as r:
            assert r.status_code == 200
            async for chunk in r.aiter_bytes():
                data += chunk
                if len(data) > 50_000:
                    break
            await live.sim.power_off(live.sim.device(ch["id"]).id)
        kinds: list[str] = []
        async with asyncio.timeout(10):
            while "stream.timeout" not in kinds and "stream.down" not in kinds:
                kinds.append((await sub.get()).kind)
        assert live.platform.media.stream(f"live/{ch['id']}") is None or live.platform.media.stream(f"live/{ch['id']}").ended


async def test_playback_with_pause_seek_speed_and_end(live: Live) -> None:
    async with live.client() as c:
        ch = (await c.get("/api/v1/channels")).json()["items"][3]
        now = datetime.now()
        r = await c.post(f"/api/v1/channels/{ch['id']}/playback",
                         json={"start": (now - timedelta(hours=2)).isoformat(), "end": (now - timedelta(hours=2) + timedelta(seconds=8)).isoformat()})
        assert r.status_code == 200, r.text
        name = r.json()["stream"]
        data = await read_for(c, r.json()["urls"]["mp4"], 2.0)
        assert len(decode(data, "mp4")) > 10
        for action, value in (("pause", None), ("resume", None), ("seek", 2.0), ("speed", 2.0)):
            r = await c.post(f"/api/v1/streams/{name}/control", json={"action": action, "value": value})
            assert r.status_code == 200, (action, r.text)
        bad = await c.post(f"/api/v1/streams/{name}/control", json={"action": "speed", "value": 9})
        assert bad.status_code == 422
        # the recording ends (MediaStatus 121): the stream goes away
        for _ in range(150):
            if live.platform.media.stream(name) is None or live.platform.media.stream(name).ended:
                break
            await asyncio.sleep(0.1)
        assert live.platform.media.stream(name) is None or live.platform.media.stream(name).ended


async def test_catalog_subscription_carries_status_changes(live: Live) -> None:
    async with live.client() as c:
        ch = (await c.get("/api/v1/channels")).json()["items"][0]
        r = await c.post(f"/api/v1/devices/{ch['device_id']}/subscriptions/catalog")
        assert r.status_code == 200, r.text
        device = live.sim.device(ch["id"])
        await device.set_channel_status(ch["id"], "OFF")
        for _ in range(50):
            if (await c.get(f"/api/v1/channels/{ch['id']}")).json()["status"] == "OFF":
                break
            await asyncio.sleep(0.1)
        assert (await c.get(f"/api/v1/channels/{ch['id']}")).json()["status"] == "OFF"
        events = (await c.get("/api/v1/events", params={"kind": "catalog.*", "subject": ch["id"]})).json()["items"]
        assert any(e["kind"] == "catalog.off" for e in events)
