"""Node-to-node requests over Redis, and device commands routed to the node serving the device."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from tests.cluster.redis_server import RedisServer
from xueliang.cluster.redis_presence import RedisPresence
from xueliang.cluster.remote import RemoteCommands, handlers
from xueliang.cluster.rpc import RpcClient, RpcServer
from xueliang.errors import GatewayTimeout, NotFound, Unavailable


async def test_a_call_runs_on_the_named_node_and_errors_cross_as_themselves(redis_server: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"

    async def double(n: int) -> dict[str, int]:
        return {"n": n * 2}

    async def missing(device_id: str) -> None:
        raise NotFound(f"device {device_id} is not known to signalling")

    async def broken() -> None:
        raise RuntimeError("secret internals")

    server = RpcServer(redis_server.url, "sig-1", {"double": double, "missing": missing, "broken": broken},
                       prefix=prefix)
    other = RpcServer(redis_server.url, "sig-2", {"double": lambda n: asyncio.sleep(0, {"n": -1})}, prefix=prefix)
    await server.start()
    await other.start()
    client = RpcClient(redis_server.url, prefix=prefix, timeout=5)
    try:
        assert await client.call("sig-1", "double", n=21) == {"n": 42}
        assert await client.call("sig-2", "double", n=21) == {"n": -1}
        with pytest.raises(NotFound, match="not known to signalling"):
            await client.call("sig-1", "missing", device_id="x")
        with pytest.raises(Unavailable) as exc:  # an unexpected failure: named, its text kept home
            await client.call("sig-1", "broken")
        assert "secret" not in exc.value.detail
        with pytest.raises(Unavailable, match="does not serve"):
            await client.call("sig-1", "drop_database")
        t0 = time.monotonic()
        with pytest.raises(GatewayTimeout):  # no such node: the caller is not left hanging
            await client.call("sig-dead", "double", timeout=1.0, n=1)
        assert time.monotonic() - t0 < 3
    finally:
        await client.close()
        await server.stop()
        await other.stop()


async def test_a_request_its_caller_gave_up_on_is_not_run(redis_server: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    ran: list[int] = []

    async def reboot(n: int) -> None:
        ran.append(n)

    client = RpcClient(redis_server.url, prefix=prefix)
    with pytest.raises(GatewayTimeout):  # the node is down when asked
        await client.call("sig-1", "reboot", timeout=1.0, n=1)
    server = RpcServer(redis_server.url, "sig-1", {"reboot": reboot}, prefix=prefix)
    await server.start()  # it comes back: the stale request is not acted on
    try:
        await client.call("sig-1", "reboot", n=2)
        await asyncio.sleep(0.2)
        assert ran == [2]
    finally:
        await client.close()
        await server.stop()


class FakeDevices:
    """Stands for a signalling node's LocalCommands (the real one runs in the process test)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[str, Any]] = []

    async def status(self) -> dict[str, Any]:
        return {"devices_online": 1, "devices_known": 3, "node": self.name}

    async def device_info(self, device_id: str) -> dict[str, Any]:
        self.calls.append(("device_info", device_id))
        return {"device_id": device_id, "served_by": self.name}

    async def control(self, device_id: str, target: str, command: str) -> dict[str, Any]:
        self.calls.append(("control", (device_id, target, command)))
        return {"sent": command}

    query_catalog = device_status = ptz = subscribe_catalog = record_info = device_info


async def test_device_commands_go_to_the_node_serving_the_device(redis_server: RedisServer) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    nodes = {}
    for name in ("sig-a", "sig-b"):
        p = RedisPresence(redis_server.url, name, prefix=prefix)
        from xueliang.presence import NodeInfo

        p.announce(NodeInfo(name, ("signalling",), 0.0))
        await p.start()
        dev = FakeDevices(name)
        srv = RpcServer(redis_server.url, name, handlers(dev), prefix=prefix)  # type: ignore[arg-type]
        await srv.start()
        nodes[name] = (p, dev, srv)
    api_presence = RedisPresence(redis_server.url, "api-1", prefix=prefix)
    await api_presence.start()
    client = RpcClient(redis_server.url, prefix=prefix, timeout=5)
    remote = RemoteCommands(api_presence, client)
    try:
        nodes["sig-a"][0].online("34020000001110000001", 1.0)
        nodes["sig-b"][0].online("34020000001110000002", 1.0)
        for p, _, _ in nodes.values():
            await p.flush()
        assert (await remote.device_info("34020000001110000002"))["served_by"] == "sig-b"
        assert await remote.control("34020000001110000001", "34020000001320000001", "teleboot") == {"sent": "teleboot"}
        assert nodes["sig-a"][1].calls == [("control", ("34020000001110000001", "34020000001320000001", "teleboot"))]
        assert nodes["sig-b"][1].calls == [("device_info", "34020000001110000002")]
        with pytest.raises(Unavailable, match="offline"):
            await remote.device_info("34020000001110000009")
        st = await remote.status()
        assert set(st["nodes"]) == {"sig-a", "sig-b"} and st["devices_online"] == 2
    finally:
        await client.close()
        await api_presence.stop()
        for p, _, srv in nodes.values():
            await srv.stop()
            await p.stop()
