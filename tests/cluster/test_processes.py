"""A cluster of real processes on loopback: an API node and signalling nodes over PostgreSQL and
Redis, a simulated camera registering to them.

What it shows:
- an administrator's decision on the API node (admit a pending device) reaches the signalling
  node through the bus, and the device gets in;
- device commands asked of the API node run on the signalling node serving the device;
- the API node refuses them to a user without the right, as a single process does;
- a signalling node killed with SIGKILL: the worker writes its device offline (no live node
  serves it), and the device, registering again with another node, is served there, and
  commands follow it;
- every node's audit records make one chain that verifies.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.cluster.redis_server import RedisServer, free_port
from tests.conftest import PG_URL, _pg_admin, _pg_template
from xueliang.sim.simulator import Simulator

PW = "Cluster-Harbour-42"
SIP_PASSWORD = "cluster-sip-7f3a"
SECRET = "one-secret-for-the-whole-cluster-0123456789abcdef"


@pytest.fixture
def pg_db(request: pytest.FixtureRequest) -> str:
    if not PG_URL:
        pytest.skip("a cluster runs on PostgreSQL; the test command (scripts/test.sh) provides one")
    import uuid

    name = f"xl_cluster_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_admin(f"CREATE DATABASE {name} TEMPLATE {_pg_template()}"))
    request.addfinalizer(lambda: asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


class Node:
    def __init__(self, name: str, role: str, env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log = workdir / f"{name}.log"
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen([sys.executable, "-m", "xueliang.cli", "serve", "--role", role],
                                         cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=f)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def cluster(pg_db: str, tmp_path: Path, redis_server: RedisServer) -> Iterator[dict[str, Any]]:
    import xueliang

    src = str(Path(xueliang.__file__).resolve().parents[1])
    prefix = f"xl{os.getpid()}{int(time.time() * 1000) % 100000}"
    base = {
        **os.environ, "PYTHONPATH": src,
        "XUELIANG_DATABASE__URL": pg_db,
        "XUELIANG_CLUSTER__REDIS_URL": redis_server.url,
        "XUELIANG_CLUSTER__STREAM": f"{prefix}:events",
        "XUELIANG_CLUSTER__NODE_TTL": "3",
        "XUELIANG_SECRET_KEY": SECRET,
        "XUELIANG_SIP__PASSWORD": SIP_PASSWORD,
        "XUELIANG_SIP__ADMISSION": "pending",
        "XUELIANG_SIP__KEEPALIVE_INTERVAL": "1",
        "XUELIANG_MEDIA__ENABLED": "false",
        "XUELIANG_ACCESS__TOTP_REQUIRED_ROLES": "[]",
        "XUELIANG_ACCESS__LOGIN_BURST": "1000",
        "XUELIANG_LOG_LEVEL": "info",
    }
    # Presence and RPC keys are under "xueliang:"; nodes of other tests on the same Redis have
    # other names, and each test's devices other IDs.
    nodes: list[Node] = []
    api_port = free_port()

    def start(name: str, role: str, **extra: str) -> Node:
        env = {**base, "XUELIANG_CLUSTER__NODE_ID": f"{prefix}-{name}",
               "XUELIANG_STORAGE__VAR_DIR": str(tmp_path / name / "var"), **extra}
        (tmp_path / name).mkdir(exist_ok=True)
        n = Node(name, role, env, tmp_path / name)
        nodes.append(n)
        return n

    api = start("api", "api", XUELIANG_API__PORT=str(api_port), XUELIANG_BOOTSTRAP_ADMIN="root",
                XUELIANG_BOOTSTRAP_PASSWORD=PW)
    url = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if api.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("API node did not start:\n" + api.tail())
        time.sleep(0.2)
    yield {"url": url, "start": start, "prefix": prefix, "nodes": nodes}
    for n in nodes:
        if n.proc.poll() is None:
            n.proc.terminate()
    for n in nodes:
        try:
            n.proc.wait(15)
        except subprocess.TimeoutExpired:
            n.kill()


async def _until(what: str, fn: Any, timeout: float = 30.0, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


async def test_a_cluster_of_processes_serves_a_device_through_failover(cluster: dict[str, Any]) -> None:
    sip1, sip2 = free_port(), free_port()
    sig1 = cluster["start"]("sig1", "signalling", XUELIANG_SIP__PORT=str(sip1))
    cluster["start"]("worker", "worker", XUELIANG_CLUSTER__SWEEP_EVERY="0.5")
    async with httpx.AsyncClient(base_url=cluster["url"], timeout=60) as c:
        r = await c.post("/api/v1/auth/login", json={"username": "root", "password": PW})
        assert r.status_code == 200, r.text
        root = {"Authorization": f"Bearer {r.json()['access_token']}"}

        async def nodes() -> set[str]:
            r = await c.get("/api/v1/cluster/nodes", headers=root)
            assert r.status_code == 200, r.text
            return {n["id"].removeprefix(cluster["prefix"] + "-") for n in r.json()["nodes"]}

        await _until("the nodes to announce themselves", lambda: _has(nodes, {"api", "sig1", "worker"}), 60)

        sim = Simulator(f"127.0.0.1:{sip1}", devices=1, channels=1, password=SIP_PASSWORD, video=False,
                        keepalive=1.0, retry_interval=0.5, summary_interval=0, register_rate=1000)
        async with sim:
            dev = sim.devices[0].id

            async def device() -> dict[str, Any] | None:
                r = await c.get(f"/api/v1/devices/{dev}", headers=root)
                return r.json() if r.status_code == 200 else None

            # Pending: the signalling node held it and wrote it down.
            row = await _until("the device to be held pending", device)
            assert row["admission"] == "pending" and not row["online"]
            # Admitted on the API node: the bus carries it to the signalling node, which lets it in.
            r = await c.patch(f"/api/v1/devices/{dev}", headers=root, json={"admission": "accepted"})
            assert r.status_code == 200, r.text
            await _until("the admitted device online", lambda: _online(device), 30)

            # A command asked of the API node runs on the signalling node and reaches the device.
            r = await c.get(f"/api/v1/devices/{dev}/info", headers=root)
            assert r.status_code == 200, r.text + sig1.tail()
            assert r.json()["device_id"] == dev and r.json()["manufacturer"]
            st = await c.get("/api/v1/signalling/status", headers=root)
            assert st.status_code == 200 and st.json()["devices_online"] == 1

            # The API node still decides who may ask: a department user holds no device.query.
            r = await c.post("/api/v1/users", headers=root,
                             json={"username": "viewer1", "password": PW, "role": "department_user"})
            assert r.status_code == 201, r.text
            r = await c.post("/api/v1/auth/login", json={"username": "viewer1", "password": PW})
            viewer = {"Authorization": f"Bearer {r.json()['access_token']}"}
            assert (await c.get(f"/api/v1/devices/{dev}/info", headers=viewer)).status_code == 403
            assert (await c.get("/api/v1/cluster/nodes", headers=viewer)).status_code == 403

        # sig1 dies without a word. The worker sees the device served by no live node and writes
        # it offline; the camera, pointed at the other node (what a SIP front or DNS does for it),
        # registers there and is served there.
        sig1.kill()
        cluster["start"]("sig2", "signalling", XUELIANG_SIP__PORT=str(sip2))
        await _until("sig1 gone and sig2 announced",
                     lambda: _has(nodes, {"api", "worker", "sig2"}, exact=True), 60)
        row = await _until("the orphaned device written offline", lambda: _offline(device), 30)
        assert row["admission"] == "accepted"
        r = await c.get("/api/v1/events", headers=root, params={"subject": dev, "kind": "device.offline"})
        assert [e["data"]["reason"] for e in r.json()["items"]] == ["node_lost"], r.text
        sim2 = Simulator(f"127.0.0.1:{sip2}", devices=1, channels=1, password=SIP_PASSWORD, video=False,
                         keepalive=1.0, retry_interval=0.5, summary_interval=0, register_rate=1000)
        async with sim2:
            assert sim2.devices[0].id == dev  # the same camera
            assert await sim2.wait_registered(timeout=30)
            r = await _until("a command served by sig2", lambda: _ok(c.get(f"/api/v1/devices/{dev}/info",
                                                                              headers=root)), 30)
            assert r["device_id"] == dev
        # Every node wrote audit records into the one chain; it verifies whole.
        r = await c.get("/api/v1/audit/verify", headers=root)
        assert r.status_code == 200 and r.json()["ok"] is True and r.json()["records"] > 3, r.text


async def _has(nodes: Any, want: set[str], exact: bool = False) -> bool:
    got = await nodes()
    return got == want if exact else want <= got


async def _online(device: Any) -> bool:
    row = await device()
    return bool(row and row["online"] and row["admission"] == "accepted")


async def _offline(device: Any) -> Any:
    row = await device()
    return row if row and not row["online"] else None


async def _ok(request: Any) -> Any:
    r = await request
    return r.json() if r.status_code == 200 else None
