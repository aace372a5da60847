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

from typing import Any

import httpx

from tests.cluster.nodes import PW, SIP_PASSWORD
from tests.cluster.nodes import until as _until
from tests.ports import free_port
from xueliang.sim.simulator import Simulator


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

            # A command asked of the API node runs on the signalling node and reaches the device
            # (once the node's presence says it serves it: that is written beside the device row,
            # not before it, and under load a CI run asked in between and got "offline").
            info = await _until("a command served by sig1", lambda: _ok(c.get(f"/api/v1/devices/{dev}/info",
                                                                                headers=root)), 30)
            assert info["device_id"] == dev and info["manufacturer"], sig1.tail()
            st = await c.get("/api/v1/signalling/status", headers=root)
            assert st.status_code == 200 and st.json()["devices_online"] == 1
            # A second API node: the same token (one secret), the same answers.
            port2 = free_port()
            cluster["start"]("api2", "api", XUELIANG_API__PORT=str(port2))
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port2}", timeout=60) as c2:
                async def status2() -> Any:
                    try:
                        r = await c2.get(f"/api/v1/devices/{dev}/status", headers=root)
                    except httpx.HTTPError:
                        return None
                    return r if r.status_code == 200 else None

                r = await _until("the second API node answering", status2, 90)
                assert r.json()["device_id"] == dev and r.json()["online"] is not None

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
                     lambda: _has(nodes, {"api", "api2", "worker", "sig2"}, exact=True), 60)
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
