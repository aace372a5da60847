"""A stream re-placed after its media node dies: how long until video again.

An API node and two media nodes (real processes, over PostgreSQL and Redis), one RTSP camera
(the tests' tiny RTSP server, 320x240 H.264 at 25 fps). Each round: a viewer plays the channel
through the API node; the media node holding the stream is killed (SIGKILL); a new viewer asks
again at once. Measured from that request: the first bytes, and the first decoded video frame
(PyAV). A fresh media node then replaces the dead one for the next round. Also, for
comparison: the first frame of a viewer joining the stream while it runs, through the API node
(the first round's is a cold start of the camera).

Prints ``name: value unit`` lines (medians over the rounds). Needs PostgreSQL: it starts the
throw-away cluster of scripts/pg.sh (XUELIANG_PG_PORT, default 55432) and a Redis of its own.

    python bench/cluster_media.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "media")]

from test_rtsp import TinyRtspServer, rtsp_clip  # noqa: E402
from tests.cluster.nodes import PW, running_cluster, until  # noqa: E402
from tests.cluster.redis_server import RedisServer, free_port  # noqa: E402

CID = "34020000001310000601"


async def first_frame(c: httpx.AsyncClient, url: str, headers: dict[str, str]) -> tuple[float, float]:
    """(seconds to the first bytes, seconds to the first decoded frame) of a live fMP4 URL."""
    t0 = time.monotonic()
    first_bytes = 0.0
    buf = bytearray()
    async with c.stream("GET", url, headers=headers) as r:
        if r.status_code != 200:
            await r.aread()
            raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
        async for chunk in r.aiter_raw():
            if not buf:
                first_bytes = time.monotonic() - t0
            buf += chunk
            # decode what has arrived so far; the first picture ends the measurement
            try:
                with av.open(_Reader(bytes(buf))) as f:
                    for _ in f.decode(video=0):
                        return first_bytes, time.monotonic() - t0
            except (av.error.FFmpegError, ValueError, IndexError):
                pass
    raise RuntimeError("the stream ended before a frame")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        out = self.data[self.pos:] if n < 0 else self.data[self.pos:self.pos + n]
        self.pos += len(out)
        return out


async def run(rounds: int, db_url: str, redis: RedisServer, work: Path) -> dict[str, float]:
    frames, sps, pps = rtsp_clip()
    camera = TinyRtspServer(frames, sps, pps)
    out: dict[str, list[float]] = {"bytes": [], "frame": [], "cold": []}
    try:
        with running_cluster(db_url, work, redis.url) as cl:
            nodes: dict[str, Any] = {}
            ports: dict[str, int] = {}

            def media(name: str) -> None:
                ports[name] = free_port()
                nodes[name] = cl["start"](name, "media", XUELIANG_API__PORT=str(ports[name]),
                                          XUELIANG_MEDIA__ENABLED="true", XUELIANG_MEDIA__RTP_PORT="0",
                                          XUELIANG_MEDIA__RTP_TCP_PORT="0", XUELIANG_SIP__ENABLED="false")

            async def up(name: str) -> bool:
                try:
                    async with httpx.AsyncClient(timeout=2) as h:
                        return (await h.get(f"http://127.0.0.1:{ports[name]}/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            media("m0")
            media("m1")
            async with httpx.AsyncClient(base_url=cl["url"], timeout=60) as c:
                r = await c.post("/api/v1/auth/login", json={"username": "root", "password": PW})
                root = {"Authorization": f"Bearer {r.json()['access_token']}"}
                r = await c.post("/api/v1/channels", headers=root,
                                 json={"id": CID, "name": "bench", "rtsp_url": camera.url})
                assert r.status_code == 201, r.text
                url = f"/api/v1/channels/{CID}/live.mp4"
                for i in range(rounds):
                    for n in list(nodes):
                        await until(f"{n} up", lambda n=n: up(n), 90)
                    await until("announced", lambda: _media_count(c, root, len(nodes)), 60)
                    _, cold = await first_frame(c, url, root)
                    out["cold"].append(cold)
                    holder = await _holder(redis, cl["prefix"])
                    nodes.pop(holder).kill()
                    b, f = await first_frame(c, url, root)
                    out["bytes"].append(b)
                    out["frame"].append(f)
                    media(f"m{i + 2}")
    finally:
        camera.close()
    return {k: statistics.median(v) for k, v in out.items()}


async def _media_count(c: httpx.AsyncClient, root: dict[str, str], n: int) -> bool:
    r = await c.get("/api/v1/cluster/nodes", headers=root)
    return sum(1 for x in r.json()["nodes"] if "media" in x["roles"]) == n


async def _holder(redis: RedisServer, prefix: str) -> str:
    from redis.asyncio import Redis

    r = Redis.from_url(redis.url)
    try:
        raw = await r.get(f"xueliang:stream:live/{CID}")
    finally:
        await r.aclose()
    assert raw is not None
    return raw.decode().removeprefix(prefix + "-")


@contextlib.contextmanager
def bench_cluster_db() -> Iterator[tuple[str, RedisServer, Path]]:
    """A database of the bench's own on the throw-away PostgreSQL (scripts/pg.sh), migrated, and
    a Redis of its own; both gone at the end (shared by the cluster benches)."""
    pg = subprocess.run([str(ROOT / "scripts" / "pg.sh"), "start"], check=True, capture_output=True,
                        text=True).stdout.strip()
    name = f"xl_bench_{uuid.uuid4().hex[:8]}"
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(pg)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host=u.host, port=u.port, user=u.username, database=u.database)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f"CREATE DATABASE {name}"))
    db_url = u.set(database=name).render_as_string(hide_password=False)
    from xueliang.db.migrate import upgrade

    upgrade(db_url)
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp) / "redis").start()
        try:
            yield db_url, redis, Path(tmp)
        finally:
            redis.stop()
            asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with bench_cluster_db() as (db_url, redis, tmp):
        res = asyncio.run(run(args.rounds, db_url, redis, tmp))
    print(f"media_join_running_first_frame: {res['cold']:.2f} s")
    print(f"media_replaced_first_bytes: {res['bytes']:.2f} s")
    print(f"media_replaced_first_frame: {res['frame']:.2f} s")
    print(f"media_replace_rounds: {args.rounds} rounds")


if __name__ == "__main__":
    main()
