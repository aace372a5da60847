"""A signalling node killed with SIGKILL: how long until its cameras are served by another (issue 17).

An API node (with an administrator) and two signalling nodes run over PostgreSQL and Redis.
``--devices`` simulated cameras (xueliang.sim, in a load-generator process of their own)
register with the first signalling node and are online. That node is then killed with SIGKILL,
and the cameras are pointed at the second node (the simulator restarted with the other address,
as a SIP front or DNS would do for real cameras; see tests/cluster/test_processes.py). From the
kill:

- ``failover_registered``: every camera holds a 200 OK from the second node;
- ``failover_presence``: Redis presence names the second node for every camera (what the API
  node routes device commands by);
- ``failover_online``: every camera is ``online`` in PostgreSQL with a registration time after
  the kill (written by the second node);
- ``failover_baseline_all_commands``: the same for every camera before the kill, served by the
  first node (what asking them all takes when nothing has failed);
- ``failover_first_command`` / ``failover_all_commands``: GET /api/v1/devices/{id}/info, asked of
  the API node (administrator token), answered by the camera through the second node, for the
  first camera and for every camera (asked ``--concurrency`` at a time, repeated until each has
  answered once).

This is the platform's side only: a real camera notices the loss at its next keepalive or
registration refresh (60 s and up to the expiry by default), which dominates in practice.

    PYTHONPATH=src .venv/bin/python bench/cluster_failover.py [--devices 500] [--runs 3]
    PYTHONPATH=src .venv/bin/python bench/cluster_failover.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import httpx  # noqa: E402
from cluster_storm import (  # noqa: E402
    Database,
    Generator,
    Node,
    base_env,
    line,
    pg_start,
    redis_flush,
    start_node,
    wait_sip,
)
from tests.cluster.redis_server import RedisServer  # noqa: E402

from xueliang.sim.simulator import make_id  # noqa: E402

PW = "Failover-Harbour-42"


def device_ids(n: int) -> list[str]:
    # The simulator's IDs: centre 34020000, type 132 (IP camera), sequence from 1.
    return [make_id("34020000", 132, i + 1) for i in range(n)]


async def wait_api(api: Node, timeout: float = 90.0) -> str:
    url = f"http://127.0.0.1:{api.api_port}"
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as c:
        while time.monotonic() < deadline:
            try:
                if (await c.get(url + "/healthz")).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            if api.proc.poll() is not None:
                break
            await asyncio.sleep(0.2)
    raise SystemExit("API node did not start:\n" + api.tail())


async def commands(c: httpx.AsyncClient, ids: list[str], concurrency: int) -> int:
    """Ask every camera in ``ids`` for its info once; the IDs that answered are removed."""
    sem = asyncio.Semaphore(concurrency)

    async def one(dev: str) -> str | None:
        async with sem:
            try:
                r = await c.get(f"/api/v1/devices/{dev}/info")
            except httpx.HTTPError:
                return None
            return dev if r.status_code == 200 and r.json().get("device_id") == dev else None

    done = {d for d in await asyncio.gather(*(one(d) for d in ids)) if d}
    ids[:] = [d for d in ids if d not in done]
    return len(done)


async def registered_since(conn: object, since: datetime) -> int:
    """Cameras online in PostgreSQL and registered after ``since``: written by the second node
    (the first node's rows still say online; nothing marks them offline until they expire)."""
    q = "SELECT count(*) FROM devices WHERE online AND registered_at >= $1"
    return int(await conn.fetchval(q, since))  # type: ignore[attr-defined]


async def _eq(got: Awaitable[int], want: int) -> bool:
    return await got == want


async def presence_on(redis_url: str, node: str, ids: list[str]) -> int:
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(redis_url)
    try:
        pipe = r.pipeline(transaction=False)
        for d in ids:
            pipe.hget(f"xueliang:presence:{d}", "node")
        got = await pipe.execute()
        return sum(1 for g in got if g is not None and g.decode() == node)
    finally:
        await r.aclose()


def failover(args: argparse.Namespace, pg_admin: str, redis: RedisServer, workdir: Path) -> dict[str, float]:
    db = Database(pg_admin)
    redis_flush(redis.url)
    env = base_env(db.url, redis.url)
    db.create(env)
    nodes: list[Node] = []
    gen: Generator | None = None
    ids = device_ids(args.devices)
    try:
        api = start_node("api", "api", env, workdir, XUELIANG_BOOTSTRAP_ADMIN="root", XUELIANG_BOOTSTRAP_PASSWORD=PW)
        nodes.append(api)
        sig1 = start_node("sig1", "signalling", env, workdir)
        sig2 = start_node("sig2", "signalling", env, workdir)
        nodes += [sig1, sig2]
        url = asyncio.run(wait_api(api))
        wait_sip(sig1)
        wait_sip(sig2)

        async def run() -> dict[str, float]:
            nonlocal gen
            conn = await db.connect()
            async with httpx.AsyncClient(base_url=url, timeout=60) as c:
                r = await c.post("/api/v1/auth/login", json={"username": "root", "password": PW})
                if r.status_code != 200:
                    raise SystemExit(f"login: {r.status_code} {r.text}")
                c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
                gen = Generator([sig1.sip_port], args.devices, args.rate)
                gen.registered()
                while True:
                    if await db.online(conn) >= args.devices:
                        break
                    await asyncio.sleep(0.1)
                # Served by sig1, through the API node: the platform works before the failure, and
                # how long every camera answering once takes when nothing fails (the baseline).
                t = time.monotonic()
                if await commands(c, list(ids), args.concurrency) != len(ids):
                    raise SystemExit("commands failed before the failover:\n" + sig1.tail() + api.tail())
                baseline = time.monotonic() - t

                sig1.kill()
                t_kill = time.monotonic()
                since = datetime.now(UTC)
                gen.stop()
                gen = Generator([sig2.sip_port], args.devices, args.rate)
                out: dict[str, float] = {}
                failed: list[tuple[float, str]] = []  # (seconds, status) of refused or failed commands
                sem = asyncio.Semaphore(args.concurrency)

                async def until(key: str, fn: Callable[[], Awaitable[bool]]) -> None:
                    while True:
                        if await fn():
                            out[key] = time.monotonic() - t_kill
                            return
                        await asyncio.sleep(0.05)

                async def served(dev: str) -> float:
                    while True:
                        async with sem:
                            t = time.monotonic()
                            try:
                                r = await c.get(f"/api/v1/devices/{dev}/info")
                                if r.status_code == 200 and r.json().get("device_id") == dev:
                                    return time.monotonic() - t_kill
                                failed.append((time.monotonic() - t, str(r.status_code)))
                            except httpx.HTTPError as e:
                                failed.append((time.monotonic() - t, type(e).__name__))
                        await asyncio.sleep(0.1)

                async def all_served() -> None:
                    times = await asyncio.gather(*(served(d) for d in ids))
                    out["first_command"], out["all_commands"] = min(times), max(times)

                async def everything() -> None:
                    await asyncio.gather(
                        until("presence", lambda: _eq(presence_on(redis.url, "bench-sig2", ids), len(ids))),
                        until("online", lambda: _eq(registered_since(conn, since), len(ids))),
                        all_served(),
                    )

                try:
                    await asyncio.wait_for(everything(), args.timeout)
                except TimeoutError:
                    raise SystemExit(f"failover not complete within {args.timeout} s: {out}\n"
                                     f"{sig2.tail()}\n{api.tail()}") from None
                out["baseline_all_commands"] = baseline
                out["failed_commands"] = len(failed)
                out["failed_command_longest"] = max((f[0] for f in failed), default=0.0)
                if failed:
                    kinds = sorted({f[1] for f in failed})
                    print(f"# {len(failed)} commands failed during the failover ({', '.join(kinds)})",
                          file=sys.stderr)
                out["registered"] = gen.registered() - t_kill
                await conn.close()  # type: ignore[attr-defined]
                return out

        return asyncio.run(run())
    finally:
        if gen is not None:
            gen.stop()
        for n in nodes:
            n.stop()
        db.drop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--rate", type=float, default=1000.0, help="cameras (re)started per second")
    ap.add_argument("--concurrency", type=int, default=16, help="device commands in flight")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="100 cameras, one run")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    if args.quick:
        args.devices, args.runs = 100, 1
    pg_admin = pg_start()
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="xl-cluster-failover-") as tmp:
        redis = RedisServer(Path(tmp) / "redis").start()
        try:
            for i in range(args.runs):
                runs.append(failover(args, pg_admin, redis, Path(tmp) / f"run{i}"))
                print(f"# run {i + 1}: {runs[-1]}", file=sys.stderr, flush=True)
        finally:
            redis.stop()
    print(f"failover_devices: {args.devices} devices")
    for key in ("registered", "presence", "online", "first_command", "all_commands"):
        line(f"failover_{key}", [r[key] for r in runs], "s")
    line("failover_baseline_all_commands", [r["baseline_all_commands"] for r in runs], "s")
    line("failover_failed_commands", [r["failed_commands"] for r in runs], "requests")
    line("failover_failed_command_longest", [r["failed_command_longest"] for r in runs], "s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
