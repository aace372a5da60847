"""Registration storm against 1, 2 and 4 signalling processes over PostgreSQL and Redis (issue 17).

The same total number of simulated cameras (default 2,000) registers, split evenly among the
signalling nodes (each its own SIP port). The cameras are xueliang's own simulator
(xueliang.sim), run in a load-generator process of their own. Each configuration gets a fresh
PostgreSQL database and an empty Redis.

Configurations:
- ``single``: one process in the single-process mode (``cluster.roles=["all"]``, no Redis):
  in-process presence and bus, today's default;
- ``sigN`` (N in ``--nodes``, default 1 2 4): N ``--role signalling`` processes sharing
  PostgreSQL and Redis (presence writes, the event stream on Redis Streams).

Measured per configuration (median of ``--runs``):
- ``*_registered``: first REGISTER sent to every camera holding a 200 OK (simulator's view);
- ``*_online``: first REGISTER sent to every camera written ``online`` in PostgreSQL;
- ``*_rate``: devices / ``*_online``;
- ``*_cpu``: utime+stime of the signalling processes (sum, from /proc/<pid>/stat) from the
  storm's start until every camera is online in the database, less their idle rate;
- ``*_cpu_per_1000``: the same per 1,000 registrations;
- ``*_known``, ``*_cpu_known_per_1000``: the same two until every camera is known to the
  registry too (its device's Catalog and DeviceInfo answers stored: a channel row, a maker);
- ``sigN_efficiency``: rate(sigN) / rate(sig1); ``sigN_cpu_overhead``: cpu(sigN) / cpu(sig1);
- ``presence_bus_cpu_per_1000``: cpu_per_1000(sig1) - cpu_per_1000(single): what presence
  writes to Redis and the Redis event stream cost per 1,000 registrations.

Needs redis-server and PostgreSQL (scripts/setup.sh installs both); starts PostgreSQL with
scripts/pg.sh on ``XUELIANG_PG_PORT`` (default 55432) and Redis on a free port, no persistence.

    PYTHONPATH=src .venv/bin/python bench/cluster_storm.py [--devices 2000] [--runs 3]
    PYTHONPATH=src .venv/bin/python bench/cluster_storm.py --quick
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from sip_storm import cpu_seconds, free_port_both, wait_ready  # noqa: E402
from tests.cluster.redis_server import RedisServer  # noqa: E402

SIP_PASSWORD = "bench-sip-7f3a"
SERVER_ID = "34020000002000000001"
SECRET = "one-secret-for-the-whole-bench-cluster-0123456789abcdef"
IDLE_WINDOW = 1.0


# --------------------------------------------------------------------------------------------
# shared state: PostgreSQL (scripts/pg.sh) and Redis
# --------------------------------------------------------------------------------------------


def pg_start() -> str:
    out = subprocess.run([str(ROOT / "scripts" / "pg.sh"), "start"], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def _pg_sync(admin_url: str, sql: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(admin_url)

    async def run() -> None:
        conn = await asyncpg.connect(host=u.host, port=u.port, user=u.username, database=u.database)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


class Database:
    """A fresh database, migrated, dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.admin_url = admin_url
        self.name = f"xl_bench_{uuid.uuid4().hex[:8]}"
        self.url = make_url(admin_url).set(database=self.name).render_as_string(hide_password=False)

    def create(self, env: dict[str, str]) -> None:
        _pg_sync(self.admin_url, f"CREATE DATABASE {self.name}")
        # Migrate once, before the nodes start (each would, and they would race on it).
        subprocess.run([sys.executable, "-m", "xueliang.cli", "db", "upgrade"], check=True,
                       env={**env, "XUELIANG_DATABASE__URL": self.url}, stdout=subprocess.DEVNULL)

    def drop(self) -> None:
        _pg_sync(self.admin_url, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    async def online(self, conn: object) -> int:
        return int(await conn.fetchval("SELECT count(*) FROM devices WHERE online"))  # type: ignore[attr-defined]

    async def known(self, conn: object) -> int:
        """Cameras whose device's DeviceInfo and Catalog answers are both stored."""
        return int(await conn.fetchval(  # type: ignore[attr-defined]
            "SELECT count(*) FROM devices d WHERE d.manufacturer IS NOT NULL"
            " AND EXISTS (SELECT 1 FROM channels c WHERE c.device_id = d.id)"))

    async def connect(self) -> object:
        import asyncpg
        from sqlalchemy.engine import make_url

        u = make_url(self.url)
        return await asyncpg.connect(host=u.host, port=u.port, user=u.username, database=u.database)


def redis_flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushall()


# --------------------------------------------------------------------------------------------
# nodes
# --------------------------------------------------------------------------------------------


def base_env(db_url: str, redis_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "XUELIANG_DATABASE__URL": db_url,
        "XUELIANG_SECRET_KEY": SECRET,
        "XUELIANG_SIP__HOST": "127.0.0.1",
        "XUELIANG_SIP__PASSWORD": SIP_PASSWORD,
        "XUELIANG_SIP__ADMISSION": "open",  # the storm's cameras are not in the registry
        # All cameras come from one address here; a real city has one address per camera.
        "XUELIANG_SIP__RATE_LIMIT_PER_ADDRESS": "10000000",
        "XUELIANG_MEDIA__ENABLED": "false",
        "XUELIANG_ACCESS__TOTP_REQUIRED_ROLES": "[]",
        "XUELIANG_ACCESS__LOGIN_BURST": "1000",
        "XUELIANG_API__HOST": "127.0.0.1",
        "XUELIANG_LOG_LEVEL": "warning",
    }
    if redis_url:
        env.update({"XUELIANG_CLUSTER__REDIS_URL": redis_url, "XUELIANG_CLUSTER__NODE_TTL": "3"})
    return env


@dataclass
class Node:
    name: str
    proc: subprocess.Popen[bytes]
    sip_port: int
    api_port: int
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()


def start_node(name: str, role: str, env: dict[str, str], workdir: Path, **extra: str) -> Node:
    sip_port, api_port = free_port_both(), free_port_both()
    d = workdir / name
    d.mkdir(parents=True, exist_ok=True)
    env = {**env, "XUELIANG_CLUSTER__NODE_ID": f"bench-{name}", "XUELIANG_STORAGE__VAR_DIR": str(d / "var"),
           "XUELIANG_SIP__PORT": str(sip_port), "XUELIANG_API__PORT": str(api_port), **extra}
    if role != "all":
        env["XUELIANG_CLUSTER__ROLES"] = f'["{role}"]'
    log = d / "node.log"
    with open(log, "wb") as f:  # the child keeps its own descriptor
        proc = subprocess.Popen([sys.executable, "-m", "xueliang.cli", "serve", "--role", role],
                                cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=f)
    return Node(name, proc, sip_port, api_port, log)


def wait_sip(node: Node, timeout: float = 90.0) -> None:
    try:
        wait_ready(("127.0.0.1", node.sip_port), timeout, node.proc, SERVER_ID, SERVER_ID[:10])
    except SystemExit as e:
        raise SystemExit(f"{node.name}: {e}\n{node.tail()}") from None


# --------------------------------------------------------------------------------------------
# the load generator (its own process)
# --------------------------------------------------------------------------------------------


def generator_cmd(servers: Sequence[int], devices: int, rate: float, first_seq: int = 1) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--generate", ",".join(map(str, servers)),
            "--devices", str(devices), "--rate", str(rate), "--first-seq", str(first_seq)]


async def generate(ports: list[int], devices: int, rate: float, first_seq: int) -> None:
    """Cameras split evenly among the SIP ports; prints ``started <t>`` and ``registered <t>``
    (time.monotonic(), the same clock in every process on Linux), then keeps the cameras up
    (keepalives, answers to commands) until stdin closes."""
    from xueliang.sim.simulator import Simulator

    share = [devices // len(ports) + (1 if i < devices % len(ports) else 0) for i in range(len(ports))]
    sims, seq = [], first_seq
    for port, n in zip(ports, share, strict=True):
        sims.append(Simulator(f"127.0.0.1:{port}", devices=n, channels=1, password=SIP_PASSWORD, video=False,
                              keepalive=30.0, retry_interval=1.0, summary_interval=0,
                              register_rate=rate / len(ports), first_seq=seq, server_id=SERVER_ID))
        seq += n
    print(f"started {time.monotonic()!r}", flush=True)
    for s in sims:
        await s.start()
    ok = all(await asyncio.gather(*(s.wait_registered(timeout=300) for s in sims)))
    print(f"registered {time.monotonic()!r}" if ok else "failed", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for s in sims:
        await s.stop(unregister=False)


class Generator:
    def __init__(self, servers: Sequence[int], devices: int, rate: float, first_seq: int = 1) -> None:
        self.proc = subprocess.Popen(generator_cmd(servers, devices, rate, first_seq), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env={**os.environ,
                                     "PYTHONPATH": str(ROOT / "src")})
        self.started = self._expect("started")

    def _expect(self, word: str) -> float:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != word:
            raise SystemExit(f"load generator: expected {word!r}, got {line!r}")
        return float(line[1])

    def registered(self) -> float:
        return self._expect("registered")

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------------------------
# one storm
# --------------------------------------------------------------------------------------------


@dataclass
class Result:
    registered: float
    online: float
    cpu: float
    devices: int
    known: float = 0.0
    cpu_known: float = 0.0

    @property
    def rate(self) -> float:
        return self.devices / self.online

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu / self.devices * 1000


def storm(config: str, nodes: int, args: argparse.Namespace, pg_admin: str, redis: RedisServer | None,
          workdir: Path) -> Result:
    db = Database(pg_admin)
    redis_url = redis.url if redis else ""
    if redis:
        redis_flush(redis_url)
    env = base_env(db.url, redis_url)
    db.create(env)
    started: list[Node] = []
    gen: Generator | None = None
    try:
        if config == "single":
            started.append(start_node("all", "all", env, workdir, XUELIANG_BOOTSTRAP_ADMIN="admin",
                                      XUELIANG_BOOTSTRAP_PASSWORD=secrets.token_urlsafe(12) + "Aa1!"))
        else:
            started += [start_node(f"sig{i + 1}", "signalling", env, workdir) for i in range(nodes)]
        for n in started:
            wait_sip(n)
        time.sleep(1.0)  # past start-up work (announcements, first batches)
        pids = [n.proc.pid for n in started]
        c0 = sum(cpu_seconds(p) for p in pids)
        time.sleep(IDLE_WINDOW)
        c1 = sum(cpu_seconds(p) for p in pids)
        idle_rate = (c1 - c0) / IDLE_WINDOW

        async def until(what: str, count: Callable[[object], Awaitable[int]]) -> tuple[float, float]:
            conn = await db.connect()
            try:
                deadline = time.monotonic() + args.timeout
                while time.monotonic() < deadline:
                    if await count(conn) >= args.devices:
                        t = time.monotonic()
                        return t, sum(cpu_seconds(p) for p in pids)
                    for n in started:
                        if n.proc.poll() is not None:
                            raise SystemExit(f"{n.name} exited:\n{n.tail()}")
                    await asyncio.sleep(0.05)
                raise SystemExit(f"{config}: not all {what} within {args.timeout} s "
                                 f"({await count(conn)} of {args.devices})")
            finally:
                await conn.close()  # type: ignore[attr-defined]

        c_start = sum(cpu_seconds(p) for p in pids)
        gen = Generator([n.sip_port for n in started], args.devices, args.rate)
        t_online, c_end = asyncio.run(until("online", db.online))
        # then until the registry knows every camera: what its device answered to the
        # Catalog and DeviceInfo queries that follow a registration, stored
        t_known, c_known = asyncio.run(until("known", db.known))
        t_reg = gen.registered()
        cpu = c_end - c_start - idle_rate * (t_online - gen.started)
        cpu_known = c_known - c_start - idle_rate * (t_known - gen.started)
        return Result(t_reg - gen.started, t_online - gen.started, cpu, args.devices, t_known - gen.started, cpu_known)
    finally:
        if gen is not None:
            gen.stop()
        for n in started:
            n.stop()
        db.drop()


def line(name: str, values: list[float], unit: str) -> None:
    med = statistics.median(values)
    runs = " ".join(f"{v:.3g}" for v in values)
    print(f"{name}: {med:.3f} {unit}" + (f"  # runs: {runs}" if len(values) > 1 else ""), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--rate", type=float, default=2000.0, help="cameras started per second, in all")
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-single", action="store_true", help="skip the single-process configuration")
    ap.add_argument("--quick", action="store_true", help="500 cameras, 1 and 2 nodes, one run")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--generate", help=argparse.SUPPRESS)
    ap.add_argument("--first-seq", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        asyncio.run(generate([int(p) for p in args.generate.split(",")], args.devices, args.rate, args.first_seq))
        return 0
    if args.quick:
        args.devices, args.nodes, args.runs = 500, [1, 2], 1
    pg_admin = pg_start()
    results: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="xl-cluster-storm-") as tmp:
        workdir = Path(tmp)
        redis = RedisServer(workdir / "redis").start()
        try:
            configs = ([] if args.no_single else [("single", 1)]) + [(f"sig{n}", n) for n in args.nodes]
            print(f"cluster_storm_devices: {args.devices} devices", flush=True)
            for _run in range(args.runs):  # interleaved, so that the machine's noise spreads over all
                for config, n in configs:
                    r = storm(config, n, args, pg_admin, None if config == "single" else redis, workdir / config)
                    results.setdefault(config, []).append(r)
                    print(f"# {config}: online {r.online:.2f} s, cpu {r.cpu:.2f} s", file=sys.stderr, flush=True)
        finally:
            redis.stop()
    for config, rs in results.items():
        p = f"cluster_storm_{config}"
        line(f"{p}_registered", [r.registered for r in rs], "s")
        line(f"{p}_online", [r.online for r in rs], "s")
        line(f"{p}_rate", [r.rate for r in rs], "registrations/s")
        line(f"{p}_cpu", [r.cpu for r in rs], "cpu-s")
        line(f"{p}_cpu_per_1000", [r.cpu_per_1000 for r in rs], "cpu-s")
        line(f"{p}_known", [r.known for r in rs], "s")
        line(f"{p}_cpu_known_per_1000", [r.cpu_known / r.devices * 1000 for r in rs], "cpu-s")
    if "sig1" in results:
        rate1 = statistics.median(r.rate for r in results["sig1"])
        cpu1 = statistics.median(r.cpu for r in results["sig1"])
        for n in args.nodes:
            if n != 1:
                rs = results[f"sig{n}"]
                line(f"cluster_storm_sig{n}_efficiency", [r.rate / rate1 for r in rs], "x-of-sig1")
                line(f"cluster_storm_sig{n}_cpu_overhead", [r.cpu / cpu1 for r in rs], "x-of-sig1")
        if "single" in results:
            single = statistics.median(r.cpu_per_1000 for r in results["single"])
            line("cluster_storm_presence_bus_cpu_per_1000", [r.cpu_per_1000 - single for r in results["sig1"]],
                 "cpu-s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
