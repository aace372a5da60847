"""Media across processes: an API node without a hub sends a stream's requests to the media node
holding it; when that node is killed, the stream is placed on the other and plays again.

Real processes over PostgreSQL and Redis, a real RTSP camera (the tests' tiny server), and the
video checked with a real decoder (PyAV).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.cluster.nodes import PW, SIP_PASSWORD
from tests.cluster.nodes import until as _until
from tests.cluster.redis_server import RedisServer
from tests.ports import free_port
from xueliang.sim.simulator import Simulator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "media"))
from test_rtsp import TinyRtspServer, rtsp_clip

CID = "34020000001310000501"


async def _first_video(c: httpx.AsyncClient, url: str, headers: dict[str, str], seconds: float,
                       into: Path) -> tuple[int, float]:
    """GET a live fMP4 URL for ``seconds``: (decoded frames, seconds until the first bytes)."""
    t0 = time.monotonic()
    first = 0.0
    data = bytearray()
    async with c.stream("GET", url, headers=headers) as r:
        if r.status_code != 200:
            await r.aread()
            raise AssertionError(f"{r.status_code}: {r.text[:300]}")
        async for chunk in r.aiter_raw():
            if not data:
                first = time.monotonic() - t0
            data += chunk
            if time.monotonic() - t0 - first >= seconds:  # seconds of video, however slow the start
                break
    into.write_bytes(bytes(data))
    with av.open(str(into)) as f:
        return sum(1 for _ in f.decode(video=0)), first


async def test_streams_go_to_their_media_node_and_move_when_it_dies(
        cluster: dict[str, Any], redis_server: RedisServer, tmp_path: Path) -> None:
    frames, sps, pps = rtsp_clip()
    camera = TinyRtspServer(frames, sps, pps)
    media: dict[str, Any] = {}
    ports: list[int] = []
    for name in ("media1", "media2"):
        port = free_port()
        ports.append(port)
        media[name] = cluster["start"](
            name, "media", XUELIANG_API__PORT=str(port), XUELIANG_MEDIA__ENABLED="true",
            XUELIANG_MEDIA__RTP_PORT="0", XUELIANG_MEDIA__RTP_TCP_PORT="0", XUELIANG_SIP__ENABLED="false")
    redis = Redis.from_url(redis_server.url)
    try:
        async with httpx.AsyncClient(base_url=cluster["url"], timeout=60) as c:
            r = await c.post("/api/v1/auth/login", json={"username": "root", "password": PW})
            root = {"Authorization": f"Bearer {r.json()['access_token']}"}

            async def media_nodes() -> set[str]:
                r = await c.get("/api/v1/cluster/nodes", headers=root)
                return {n["id"].removeprefix(cluster["prefix"] + "-") for n in r.json()["nodes"]
                        if "media" in n["roles"]}

            async def both_up() -> bool:
                return await media_nodes() == {"media1", "media2"}

            await _until("both media nodes announced", both_up, 90)
            for port in ports:
                await _until("a media node's HTTP server", lambda p=port: _healthy(p), 60)
            r = await c.post("/api/v1/units", headers=root, json={"name": "甲局大楼", "department": "甲局"})
            assert r.status_code == 201, r.text
            r = await c.post("/api/v1/channels", headers=root, json={
                "id": CID, "name": "RTSP 枪机", "rtsp_url": camera.url, "unit_id": r.json()["id"]})
            assert r.status_code == 201, r.text

            # Through the API node, which has no hub: the stream plays from a media node.
            frames_seen, _ = await _first_video(c, f"/api/v1/channels/{CID}/live.mp4", root, 3.0,
                                                tmp_path / "a.mp4")
            assert frames_seen >= 20
            holder = (await redis.get(f"xueliang:stream:live/{CID}") or b"").decode()
            assert holder.removeprefix(cluster["prefix"] + "-") in ("media1", "media2")
            # The media node decides access: out of scope answers as a missing camera does.
            r = await c.post("/api/v1/users", headers=root, json={
                "username": "other-dept", "password": PW, "role": "department_user", "department": "乙局"})
            assert r.status_code == 201, r.text
            r = await c.post("/api/v1/auth/login", json={"username": "other-dept", "password": PW})
            other = {"Authorization": f"Bearer {r.json()['access_token']}"}
            assert (await c.get(f"/api/v1/channels/{CID}/live.mp4", headers=other)).status_code == 404
            assert (await c.get(f"/api/v1/channels/{CID}/live.info")).status_code == 401
            # WebSockets are not relayed: the handshake is refused, so the console's player
            # falls back to HTTP (a socket that never opened).
            ws_url = cluster["url"].replace("http://", "ws://") + f"/api/v1/channels/{CID}/live.ws"
            with pytest.raises(InvalidStatus):
                async with connect(ws_url, additional_headers=root):
                    pass

            # The holder dies: the next request places the stream on the other node.
            dead = holder.removeprefix(cluster["prefix"] + "-")
            alive = ({"media1", "media2"} - {dead}).pop()
            media[dead].kill()

            async def only_alive() -> bool:
                return await media_nodes() == {alive}

            # Asked again at once, before its announcement runs out: the dead node does not
            # answer, and the stream is placed on the next.
            t0 = time.monotonic()
            frames_seen, first = await _first_video(c, f"/api/v1/channels/{CID}/live.mp4", root, 3.0,
                                                    tmp_path / "b.mp4")
            assert frames_seen >= 20
            again = (await redis.get(f"xueliang:stream:live/{CID}") or b"").decode()
            assert again == f"{cluster['prefix']}-{alive}"
            await _until("the dead media node gone from the cluster", only_alive, 60)
            # By its name, through the API node: the holder answers; the viewer who left is gone
            # from it (the relay stopped reading when the viewer hung up).
            async def readers() -> Any:
                r = await c.get(f"/api/v1/streams/live/{CID}", headers=root)
                assert r.status_code == 200, r.text
                return r.json()["readers"] == 0 or None

            await _until("the relay's reader gone", readers, 20)
            r = await c.get("/api/v1/streams/live/34020000001310000999/live.info", headers=root)
            assert r.status_code == 503 and "no media node holds" in r.json()["detail"]
            print(f"first bytes again after re-placement: {first:.2f} s (request to 3 s of video: "
                  f"{time.monotonic() - t0:.2f} s)")
    finally:
        camera.close()
        await redis.aclose()



async def _healthy(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as c:
            return (await c.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_gb28181_video_through_a_media_node_without_signalling(cluster: dict[str, Any], tmp_path: Path) -> None:
    """The camera registers with the signalling node; the media node asks it for video through
    that node (INVITE over RPC, the SDP naming the media node's RTP port); the viewer reads it
    through the API node. When the last viewer leaves, the BYE goes the same way back."""
    sip, http = free_port(), free_port()
    cluster["start"]("sig", "signalling", XUELIANG_SIP__PORT=str(sip), XUELIANG_SIP__ADMISSION="open")
    cluster["start"]("media", "media", XUELIANG_API__PORT=str(http), XUELIANG_MEDIA__ENABLED="true",
                     XUELIANG_MEDIA__RTP_PORT="0", XUELIANG_MEDIA__RTP_TCP_PORT="0",
                     XUELIANG_MEDIA__IDLE_STOP_SECONDS="1")
    sim = Simulator(f"127.0.0.1:{sip}", devices=1, channels=1, password=SIP_PASSWORD, video=True,
                    video_size=(320, 240), keepalive=1.0, retry_interval=0.5, summary_interval=0,
                    register_rate=1000)
    async with httpx.AsyncClient(base_url=cluster["url"], timeout=60) as c, sim:
        r = await c.post("/api/v1/auth/login", json={"username": "root", "password": PW})
        root = {"Authorization": f"Bearer {r.json()['access_token']}"}
        await _until("the media node's HTTP server", lambda: _healthy(http), 90)
        dev = sim.devices[0]

        async def channel() -> str | None:
            r = await c.get("/api/v1/channels", headers=root, params={"device_id": dev.id})
            items = r.json()["items"] if r.status_code == 200 else []
            return items[0]["id"] if items else None

        cid = await _until("the device's catalog in the registry", channel, 60)

        async def online() -> bool:
            # the catalog can reach the registry before the signalling node's answer to the
            # device's registration has settled (a loaded CI run got 503 "device is offline")
            r = await c.get(f"/api/v1/devices/{dev.id}", headers=root)
            return r.status_code == 200 and r.json().get("online") is True

        await _until("the device online", online, 30)

        async def played() -> tuple[int, float] | None:
            try:
                return await _first_video(c, f"/api/v1/channels/{cid}/live.mp4", root, 3.0, tmp_path / "gb.mp4")
            except AssertionError as exc:
                if str(exc).startswith("503"):  # not online at the signalling node yet: ask again
                    return None
                raise

        frames_seen, _ = await _until("the live video", played, 30)
        assert frames_seen >= 20
        assert len(dev.calls) == 1  # one INVITE, answered with video to the media node

        async def hung_up() -> bool:
            return not dev.calls

        await _until("the BYE back to the camera once the viewer left", hung_up, 30)
