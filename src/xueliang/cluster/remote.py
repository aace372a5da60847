"""Device commands from a node without signalling: sent to the signalling node serving the device.

Presence says which node serves a device; the request goes there (rpc.py) and runs on its
`LocalCommands`, so the answer is the same data a single process gives.
"""

from __future__ import annotations

import logging
from typing import Any

from xueliang.cluster.rpc import Handler, RpcClient
from xueliang.errors import DomainError, Unavailable
from xueliang.gb28181.commands import DeviceCommands
from xueliang.gb28181.invite import GbDialogs
from xueliang.presence import Presence
from xueliang.tasks import Every

log = logging.getLogger("xueliang.cluster")


def handlers(commands: DeviceCommands) -> dict[str, Handler]:
    """What a signalling node answers to the others."""
    return {
        "status": commands.status,
        "query_catalog": commands.query_catalog,
        "device_info": commands.device_info,
        "device_status": commands.device_status,
        "control": commands.control,
        "ptz": commands.ptz,
        "subscribe_catalog": commands.subscribe_catalog,
        "record_info": commands.record_info,
    }


async def serving_node(presence: Presence, device_id: str) -> str:
    """The live signalling node serving ``device_id``; 503 when none does."""
    seen = await presence.get(device_id)
    if seen is None:
        raise Unavailable(f"device {device_id} is offline")
    return seen.node


class RemoteCommands:
    def __init__(self, presence: Presence, rpc: RpcClient) -> None:
        self.presence = presence
        self.rpc = rpc

    async def _call(self, method: str, device_id: str, **args: Any) -> Any:
        return await self.rpc.call(await serving_node(self.presence, device_id), method, device_id=device_id, **args)

    async def status(self) -> dict[str, Any]:
        """Every signalling node's status, and the sums the console shows."""
        nodes: dict[str, Any] = {}
        for n in await self.presence.nodes():
            if "signalling" in n.roles or "all" in n.roles:
                try:
                    nodes[n.id] = await self.rpc.call(n.id, "status", timeout=5.0)
                except DomainError as exc:
                    nodes[n.id] = {"error": exc.detail}
        ok = [s for s in nodes.values() if "error" not in s]
        return {"nodes": nodes,
                "devices_online": sum(int(s.get("devices_online", 0)) for s in ok),
                "devices_known": max((int(s.get("devices_known", 0)) for s in ok), default=0)}

    async def query_catalog(self, device_id: str, wait: bool) -> dict[str, Any]:
        return dict(await self._call("query_catalog", device_id, wait=wait))

    async def device_info(self, device_id: str) -> dict[str, Any]:
        return dict(await self._call("device_info", device_id))

    async def device_status(self, device_id: str) -> dict[str, Any]:
        return dict(await self._call("device_status", device_id))

    async def control(self, device_id: str, target: str, command: str) -> dict[str, Any]:
        return dict(await self._call("control", device_id, target=target, command=command))

    async def ptz(self, device_id: str, channel_id: str, ptz_cmd: str) -> dict[str, Any]:
        return dict(await self._call("ptz", device_id, channel_id=channel_id, ptz_cmd=ptz_cmd))

    async def subscribe_catalog(self, device_id: str, expires: int) -> dict[str, Any]:
        return dict(await self._call("subscribe_catalog", device_id, expires=expires))

    async def record_info(self, device_id: str, channel_id: str, start: str, end: str,
                          type_: str) -> list[dict[str, Any]]:
        return list(await self._call("record_info", device_id, channel_id=channel_id, start=start, end=end,
                                     type_=type_))


class RemoteDialogs:
    """A media node's GB/T 28181 dialogs, held by the signalling node serving the device."""

    def __init__(self, presence: Presence, rpc: RpcClient) -> None:
        self.presence = presence
        self.rpc = rpc
        self._node_of: dict[str, str] = {}

    async def invite(self, channel_id: str, device_id: str | None, mode: str, ssrc: str, offer: str,
                     owner: str = "") -> dict[str, Any]:
        node = await serving_node(self.presence, device_id or channel_id)
        got = dict(await self.rpc.call(node, "invite", channel_id=channel_id, device_id=device_id, mode=mode,
                                       ssrc=ssrc, offer=offer, owner=owner))
        self._node_of[str(got["call_id"])] = node
        return got

    async def bye(self, call_id: str) -> None:
        node = self._node_of.pop(call_id, None)
        if node is not None:
            await self.rpc.call(node, "bye", call_id=call_id, timeout=5.0)

    async def info(self, call_id: str, body: str) -> None:
        node = self._node_of.get(call_id)
        if node is None:
            raise Unavailable("the playback session has ended")
        await self.rpc.call(node, "info", call_id=call_id, body=body, timeout=10.0)


class DialogReaper:
    """On a signalling node: hang up the dialogs of media nodes that died (the device would go on
    sending their video to nowhere)."""

    def __init__(self, dialogs: GbDialogs, presence: Presence, every: float) -> None:
        self.dialogs = dialogs
        self.presence = presence
        self.reaped = 0
        self._every = Every("dialog-reaper", every, self.reap)

    async def start(self) -> None:
        await self._every.start()

    async def stop(self) -> None:
        await self._every.stop()

    async def reap(self) -> None:
        if self.dialogs.by_call:
            alive = {n.id for n in await self.presence.nodes()}
            self.reaped += len(self.dialogs.forget_owner(alive))
