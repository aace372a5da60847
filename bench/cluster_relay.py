"""Media relay over 1, 2 and 4 media processes: the same streams, each with one viewer, spread
over more media nodes on the same two cores.

Each configuration is a fresh cluster (an API node and N media nodes, real processes over
PostgreSQL and Redis); S RTSP cameras (the tests' tiny RTSP server, 320x240 H.264 at 25 fps, one
session per stream) are placed by the cluster (rendezvous hashing), then each stream gets one
viewer reading live fMP4 straight from the media node holding it (the placement is read from
Redis, as an API node reads it). After a warm-up, for ``--seconds``: the media processes' CPU
(utime+stime from /proc), the bytes and fMP4 fragments the viewers received, and the longest
pause any viewer saw. Configurations run in turn (1, 2, 4, 1, 2, 4, ...) so the machine's noise
spreads over all of them; medians over ``--runs``.

Prints ``name: value unit`` lines.

    python bench/cluster_relay.py [--streams 40] [--seconds 20] [--runs 3] [--nodes 1,2,4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "media"), str(ROOT / "bench")]

from cluster_media import bench_cluster_db  # noqa: E402
from sip_storm import cpu_seconds  # noqa: E402
from test_rtsp import TinyRtspServer, rtsp_clip  # noqa: E402
from tests.cluster.nodes import PW, running_cluster, until  # noqa: E402
from tests.cluster.redis_server import RedisServer, free_port  # noqa: E402


class Viewer:
    def __init__(self) -> None:
        self.bytes = 0
        self.fragments = 0
        self.last = time.monotonic()
        self.longest_pause = 0.0
        self.counting = False

    async def watch(self, url: str, headers: dict[str, str]) -> None:
        async with httpx.AsyncClient(timeout=30) as c, c.stream("GET", url, headers=headers) as r:
            if r.status_code != 200:
                raise RuntimeError(f"{url}: {r.status_code}")
            async for chunk in r.aiter_raw():
                now = time.monotonic()
                if self.counting:
                    self.bytes += len(chunk)
                    self.fragments += chunk.count(b"moof")
                    self.longest_pause = max(self.longest_pause, now - self.last)
                self.last = now


async def one(n_media: int, streams: int, seconds: float, run_no: int, db_url: str, redis: RedisServer,
              work: Path, camera: TinyRtspServer) -> dict[str, float]:
    from redis.asyncio import Redis

    base = f"3402000000132{n_media}{run_no:02d}"
    ids = [f"{base}{i:04d}" for i in range(streams)]
    cdir = work / f"n{n_media}-r{run_no}"
    cdir.mkdir()
    with running_cluster(db_url, cdir, redis.url) as cl:
        ports: dict[str, int] = {}
        nodes: dict[str, Any] = {}
        for k in range(n_media):
            name = f"m{k}"
            ports[name] = free_port()
            nodes[name] = cl["start"](name, "media", XUELIANG_API__PORT=str(ports[name]),
                                      XUELIANG_MEDIA__ENABLED="true", XUELIANG_MEDIA__RTP_PORT="0",
                                      XUELIANG_MEDIA__RTP_TCP_PORT="0", XUELIANG_SIP__ENABLED="false")
        rds = Redis.from_url(redis.url)
        viewers = [Viewer() for _ in ids]
        tasks: list[asyncio.Task[None]] = []
        try:
            async with httpx.AsyncClient(base_url=cl["url"], timeout=60) as c:
                r = await c.post("/api/v1/auth/login", json={"username": "root", "password": PW})
                root = {"Authorization": f"Bearer {r.json()['access_token']}"}

                async def media_up() -> bool:
                    r = await c.get("/api/v1/cluster/nodes", headers=root)
                    return sum(1 for x in r.json()["nodes"] if "media" in x["roles"]) == n_media

                await until("media nodes announced", media_up, 90)
                for port in ports.values():
                    await until("a media node listening", lambda port=port: _healthy(port), 60)
                # The nodes' own cost with no stream (announcements, the bus, timers), per node.
                pids = [n.proc.pid for n in nodes.values()]
                idle0, t_idle = sum(cpu_seconds(p) for p in pids), time.monotonic()
                await asyncio.sleep(5.0)
                idle = (sum(cpu_seconds(p) for p in pids) - idle0) / (time.monotonic() - t_idle) / n_media
                for cid in ids:
                    r = await c.post("/api/v1/channels", headers=root,
                                     json={"id": cid, "name": f"relay {cid[-3:]}", "rtsp_url": camera.url})
                    assert r.status_code == 201, r.text
                # Each stream placed (through the API node, as a console would), then its viewer
                # reads it from the node holding it.
                for cid, v in zip(ids, viewers, strict=True):
                    async with c.stream("GET", f"/api/v1/channels/{cid}/live.mp4", headers=root) as r:
                        async for chunk in r.aiter_raw():
                            if b"moof" in chunk:
                                break
                    holder = (await rds.get(f"xueliang:stream:live/{cid}") or b"").decode()
                    node = holder.removeprefix(cl["prefix"] + "-")
                    url = f"http://127.0.0.1:{ports[node]}/api/v1/channels/{cid}/live.mp4"
                    tasks.append(asyncio.create_task(v.watch(url, root)))
                per_node = {n: 0 for n in ports}
                for cid in ids:
                    per_node[(await rds.get(f"xueliang:stream:live/{cid}") or b"").decode()
                             .removeprefix(cl["prefix"] + "-")] += 1
                await asyncio.sleep(3.0)  # warm-up
                cpu0 = sum(cpu_seconds(p) for p in pids)
                for v in viewers:
                    v.counting, v.last = True, time.monotonic()
                t0 = time.monotonic()
                await asyncio.sleep(seconds)
                elapsed = time.monotonic() - t0
                cpu = sum(cpu_seconds(p) for p in pids) - cpu0
                for v in viewers:
                    v.counting = False
                for t in tasks:
                    if t.done() and t.exception() is not None:
                        raise RuntimeError(f"a viewer failed: {t.exception()}")
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await rds.aclose()
    return {
        "cpu_per_stream": cpu / elapsed / streams,
        "cpu": cpu / elapsed,
        "idle_per_node": idle,
        "mbit": sum(v.bytes for v in viewers) * 8 / elapsed / 1e6,
        "fragments_per_stream": sum(v.fragments for v in viewers) / elapsed / streams,
        "longest_pause": max(v.longest_pause for v in viewers),
        "most_on_one_node": max(per_node.values()),
    }


async def _healthy(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as h:
            return (await h.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--nodes", default="1,2,4")
    args = ap.parse_args()
    counts = [int(x) for x in args.nodes.split(",")]
    results: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
    frames, sps, pps = rtsp_clip()
    camera = TinyRtspServer(frames, sps, pps)
    try:
        with bench_cluster_db() as (db_url, redis, tmp):
            for run_no in range(args.runs):
                for n in counts:
                    res = asyncio.run(one(n, args.streams, args.seconds, run_no, db_url, redis, tmp, camera))
                    results[n].append(res)
                    print(f"# run {run_no + 1}, {n} media nodes: " + ", ".join(f"{k}={v:.3f}" for k, v in res.items()),
                          flush=True)
    finally:
        camera.close()
    one_node = statistics.median(r["cpu_per_stream"] for r in results[counts[0]])
    for n in counts:
        med = {k: statistics.median(r[k] for r in results[n]) for k in results[n][0]}
        print(f"relay_{n}_nodes_cpu_per_stream: {med['cpu_per_stream'] * 1000:.1f} mCPU")
        print(f"relay_{n}_nodes_cpu_total: {med['cpu']:.2f} CPU")
        print(f"relay_{n}_nodes_idle_per_node: {med['idle_per_node'] * 1000:.1f} mCPU")
        print(f"relay_{n}_nodes_cpu_vs_{counts[0]}: {med['cpu_per_stream'] / one_node:.2f} x")
        print(f"relay_{n}_nodes_delivered: {med['mbit']:.2f} Mbit/s")
        print(f"relay_{n}_nodes_fragments_per_stream: {med['fragments_per_stream']:.1f} /s")
        print(f"relay_{n}_nodes_longest_pause: {max(r['longest_pause'] for r in results[n]):.2f} s")
        print(f"relay_{n}_nodes_most_streams_on_one_node: {med['most_on_one_node']:.0f} streams")
    print(f"relay_streams: {args.streams} streams")


if __name__ == "__main__":
    main()
