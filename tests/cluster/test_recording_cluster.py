"""Recording in a cluster: two media nodes with the recorder on, over real PostgreSQL and Redis,
real RTSP cameras (the tests' tiny server). Each planned channel is recorded by exactly one
media node (the one its stream is placed on), and when that node is killed its channels are
recorded by the other within a bounded time."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
from redis.asyncio import Redis

from tests.cluster.nodes import PW
from tests.cluster.nodes import until as _until
from tests.cluster.redis_server import RedisServer
from tests.ports import free_port
from xueliang.cluster.placement import rendezvous

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "media"))
from test_rtsp import TinyRtspServer, rtsp_clip

NODES = ("media1", "media2")


def _segments(tmp_path: Path, node: str, cid: str) -> list[Path]:
    """Segment files (closed or open) a node wrote for a channel."""
    d = tmp_path / node / "var" / "recordings" / cid
    return sorted(p for p in d.rglob("*") if p.name.endswith((".mp4", ".mp4.part"))) if d.exists() else []


def _channels(prefix: str) -> dict[str, list[str]]:
    """Two channel IDs per media node by the placement's own rule (no stream held yet)."""
    nodes = [SimpleNamespace(id=f"{prefix}-{n}") for n in NODES]
    out: dict[str, list[str]] = {n: [] for n in NODES}
    i = 0
    while min(len(v) for v in out.values()) < 2:
        cid = f"3402000000131{i:07d}"
        i += 1
        chosen = rendezvous(f"live/{cid}", nodes)  # type: ignore[arg-type]
        assert chosen is not None
        node = chosen.id.removeprefix(prefix + "-")
        if len(out[node]) < 2:
            out[node].append(cid)
    return out


async def _healthy(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as c:
            return (await c.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_each_channel_is_recorded_by_one_media_node_and_moves_when_it_dies(
        cluster: dict[str, Any], redis_server: RedisServer, tmp_path: Path) -> None:
    frames, sps, pps = rtsp_clip()
    placed = _channels(cluster["prefix"])
    cids = [c for n in NODES for c in placed[n]]
    cameras = {cid: TinyRtspServer(frames, sps, pps) for cid in cids}
    media: dict[str, Any] = {}
    ports: list[int] = []
    for name in NODES:
        port = free_port()
        ports.append(port)
        media[name] = cluster["start"](
            name, "media", XUELIANG_API__PORT=str(port), XUELIANG_MEDIA__ENABLED="true",
            XUELIANG_MEDIA__RTP_PORT="0", XUELIANG_MEDIA__RTP_TCP_PORT="0", XUELIANG_SIP__ENABLED="false",
            XUELIANG_RECORDING__ENABLED="true", XUELIANG_RECORDING__SEGMENT_SECONDS="1",
            XUELIANG_RECORDING__PLAN_SECONDS="30")
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
                return await media_nodes() == set(NODES)

            await _until("both media nodes announced", both_up, 60)
            for port in ports:
                await _until("a media node's HTTP server", lambda p=port: _healthy(p), 60)
            r = await c.post("/api/v1/units", headers=root, json={"name": "甲局大楼", "department": "甲局"})
            assert r.status_code == 201, r.text
            unit = r.json()["id"]
            for cid in cids:
                r = await c.post("/api/v1/channels", headers=root, json={
                    "id": cid, "name": f"枪机 {cid[-2:]}", "rtsp_url": cameras[cid].url, "unit_id": unit})
                assert r.status_code == 201, r.text
                # not planned yet (no class: class III, off): nothing records
            await asyncio.sleep(1.5)
            assert not any(_segments(tmp_path, n, cid) for n in NODES for cid in cids)
            for cid in cids:
                r = await c.put(f"/api/v1/channels/{cid}/recording", headers=root, json={"mode": "continuous"})
                assert r.status_code == 200, r.text

            async def all_recorded() -> bool:
                return all(len(_segments(tmp_path, n, cid)) >= 3 for n in NODES for cid in placed[n])

            await _until("every planned channel recorded", all_recorded, 40)
            # exactly one node records each channel: the one its stream is placed on, which holds it
            for n in NODES:
                other = ({*NODES} - {n}).pop()
                for cid in placed[n]:
                    assert _segments(tmp_path, n, cid)
                    assert _segments(tmp_path, other, cid) == [], f"{cid} recorded on both nodes"
                    holder = (await redis.get(f"xueliang:stream:live/{cid}") or b"").decode()
                    assert holder == f"{cluster['prefix']}-{n}"
            assert all(cam.sessions == 1 for cam in cameras.values())  # one stream from each camera

            # media1 dies: media2 records its channels within the announcement's TTL (3 s) and
            # a plan pass (1 s), plus opening the streams
            media["media1"].kill()
            t0 = time.monotonic()

            async def taken_over() -> bool:
                return all(len(_segments(tmp_path, "media2", cid)) >= 2 for cid in placed["media1"])

            await _until("media1's channels recorded by media2", taken_over, 20)
            took = time.monotonic() - t0
            assert took < 20
            # media2's own channels went on without a second stream
            assert all(cameras[cid].sessions == 1 for cid in placed["media2"])
            print(f"channels handed over in {took:.1f} s")
    finally:
        for cam in cameras.values():
            cam.close()
        await redis.aclose()
