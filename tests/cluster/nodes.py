"""Nodes of a cluster as real processes (``xueliang serve --role ...``) for the process tests."""

from __future__ import annotations

import asyncio
import contextlib
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

from tests.cluster.redis_server import RedisServer
from tests.conftest import PG_URL, _pg_admin, _pg_template
from tests.ports import free_port

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
    with running_cluster(pg_db, tmp_path, redis_server.url) as c:
        yield c


@contextlib.contextmanager
def running_cluster(db_url: str, tmp_path: Path, redis_url: str,
                    env: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """An API node up (administrator ``root`` / PW), and ``start(name, role, **env)`` for more;
    ``env``: settings every node gets."""
    import xueliang

    src = str(Path(xueliang.__file__).resolve().parents[1])
    prefix = f"xl{os.getpid()}{int(time.time() * 1000) % 100000}"
    base = {
        **os.environ, "PYTHONPATH": src,
        "XUELIANG_DATABASE__URL": db_url,
        "XUELIANG_CLUSTER__REDIS_URL": redis_url,
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
        **(env or {}),
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
    try:
        yield {"url": url, "start": start, "prefix": prefix, "nodes": nodes}
    finally:
        for n in nodes:
            if n.proc.poll() is None:
                n.proc.terminate()
        for n in nodes:
            try:
                n.proc.wait(15)
            except subprocess.TimeoutExpired:
                n.kill()


async def until(what: str, fn: Any, timeout: float = 30.0, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


