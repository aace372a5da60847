"""Video to upper platforms in a cluster: the signalling node holds the upper's dialogs, a media
node sends the video.

An upper's link runs on one signalling node (the cascade lease); the hub runs on media nodes.
The signalling node checks the upper's INVITE as it would in one process (cascade/upstream.py:
share, audit as ``upper:<SIP ID>``) and hands the :class:`~xueliang.cascade.senders.SenderOrder`
to :class:`RemoteSenders`, which picks the media node (the one holding the channel's live stream,
else the one placement would give it; for a playback or download the least loaded) and asks it
over the RPC (rpc.py) to open the sender. That node runs the same :class:`HubSenders` as one
process does (its ``media.upstream_port_range``, 503 when used up) and answers with its port and
its announce address, which go into our 200's SDP.

The ends: the upper's BYE (or the channel leaving the share) closes the sender over the RPC; a
sender that ends by itself on the media node (stream gone, TCP peer gone) is said on the bus
(``cascade.sender.ended`` for the owning signalling node), which sends the upper our BYE; a media
node that dies ends its sessions with our BYE (:meth:`RemoteSenders.reap`); a signalling node
that dies leaves senders its media nodes close (:meth:`SenderHost.reap`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from xueliang.bus import Bus, BusEvent
from xueliang.cascade.senders import HubSenders, Opened, SenderOrder
from xueliang.cluster.placement import MediaPlacement
from xueliang.cluster.rpc import Handler, RpcClient
from xueliang.errors import DomainError, Unavailable
from xueliang.media.ports import PortsExhausted
from xueliang.presence import Presence
from xueliang.tasks import Every

__all__ = ["ENDED", "RemoteSenders", "SenderHost"]

log = logging.getLogger("xueliang.cluster")

#: a sender on a media node ended by itself: subject the Call-ID; data owner (node), reason
ENDED = "cascade.sender.ended"


class SenderHost:
    """On a media node: the upstream senders other nodes ask for, run on this node's hub."""

    def __init__(self, senders: HubSenders, bus: Bus, presence: Presence, *, announce: str,
                 every: float = 5.0) -> None:
        self.senders = senders
        #: this node's address for the upper's SDP (media.announce_ip)
        self.announce = announce
        self.bus = bus
        self.presence = presence
        #: Call-ID -> the signalling node that asked
        self.owner_of: dict[str, str] = {}
        self.reaped = 0
        self._every = Every("upstream-sender-reaper", every, self.reap)

    def handlers(self) -> dict[str, Handler]:
        return {"upstream.open": self.open, "upstream.start": self.start, "upstream.close": self.close,
                "upstream.control": self.control}

    async def open(self, order: dict[str, Any], owner: str) -> dict[str, Any]:
        o = SenderOrder.from_json(order)
        self.owner_of[o.call_id] = owner
        try:
            opened = await self.senders.open(o, partial(self._ended, o.call_id))
        except PortsExhausted as exc:  # crosses as itself: the signalling node answers 503
            self.owner_of.pop(o.call_id, None)
            return {"exhausted": exc.detail}
        except BaseException:
            self.owner_of.pop(o.call_id, None)
            raise
        return {"port": opened.port, "host": self.announce, "stream": opened.stream}

    async def start(self, call_id: str) -> bool:
        self.senders.start(call_id)
        return call_id in self.senders.running

    async def close(self, call_id: str, reason: str = "closed") -> dict[str, Any]:
        """Close it; its last figures (bytes, packets) for the owner's audit."""
        self.owner_of.pop(call_id, None)
        return await self.senders.close(call_id, reason)

    async def control(self, call_id: str, action: str, value: float | None = None) -> bool:
        await self.senders.control(call_id, action, value)
        return True

    def _ended(self, call_id: str, reason: str) -> None:
        owner = self.owner_of.get(call_id)
        if owner is not None:  # the owner sends the upper its BYE, then closes it here
            self.bus.publish(ENDED, call_id, owner=owner, reason=reason)

    async def reap(self) -> None:
        """Senders whose signalling node died: nobody would ever end them."""
        if not self.owner_of:
            return
        alive = {n.id for n in await self.presence.nodes()}
        for call_id, owner in list(self.owner_of.items()):
            if owner not in alive:
                self.reaped += 1
                log.info("upstream sender %s: its signalling node %s is gone", call_id, owner)
                await self.close(call_id, "signalling node gone")

    async def start_reaper(self) -> None:
        await self._every.start()

    async def stop(self) -> None:
        await self._every.stop()
        for call_id in list(self.owner_of):
            await self.close(call_id, "shutdown")


class RemoteSenders:
    """On a signalling node without the hub: the :class:`~xueliang.cascade.senders.SenderSide`
    of cascade/upstream.py, carried out by media nodes (see the module docstring)."""

    def __init__(self, rpc: RpcClient, placement: MediaPlacement, presence: Presence, node: str, *,
                 every: float = 5.0, timeout: float = 30.0) -> None:
        self.rpc = rpc
        self.placement = placement
        self.presence = presence
        self.node = node
        self.timeout = timeout
        self.node_of: dict[str, str] = {}
        self._on_end: dict[str, Callable[[str], None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._every = Every("upstream-remote-reaper", every, self.reap)

    async def open(self, order: SenderOrder, on_end: Callable[[str], None]) -> Opened:
        if order.offer.mode == "play":  # where the channel's live stream is, or would go
            target = await self.placement.node_for(f"live/{order.channel_id}")
        else:  # a stream of its own
            target = await self.placement.least_loaded()
        if target is None:
            raise Unavailable("no media node is up")
        call_id = order.call_id
        self.node_of[call_id], self._on_end[call_id] = target.id, on_end
        try:
            got = await self.rpc.call(target.id, "upstream.open", timeout=self.timeout,
                                      order=order.to_json(), owner=self.node)
        except BaseException:
            self._forget(call_id)  # it may have opened after we gave up: close it there anyway
            self._spawn(self._close_on(target.id, call_id, "not opened"))
            raise
        if "exhausted" in got:
            self._forget(call_id)
            raise PortsExhausted(str(got["exhausted"]))
        if call_id not in self.node_of:  # closed while it opened
            self._spawn(self._close_on(target.id, call_id, "closed while opening"))
            raise Unavailable("the session ended while its stream opened")
        return Opened(int(got["port"]), str(got.get("host") or "") or None, str(got.get("stream") or ""), target.id)

    def start(self, call_id: str) -> None:
        node = self.node_of.get(call_id)
        if node is not None:
            self._spawn(self._call(node, "upstream.start", call_id=call_id))

    async def close(self, call_id: str, reason: str) -> dict[str, Any]:
        node = self.node_of.get(call_id)
        self._forget(call_id)
        if node is None:
            return {}
        return {**await self._close_on(node, call_id, reason), "node": node}

    async def control(self, call_id: str, action: str, value: float | None) -> None:
        node = self.node_of.get(call_id)
        if node is None:
            raise Unavailable("the session has ended")
        await self.rpc.call(node, "upstream.control", timeout=10.0, call_id=call_id, action=action, value=value)

    def describe(self, call_id: str) -> dict[str, Any]:
        """The sender's figures live on its media node (its stream listing)."""
        node = self.node_of.get(call_id)
        return {"node": node} if node is not None else {}

    # -- the ends ------------------------------------------------------------------------------

    def listen(self, bus: Bus) -> None:
        """A sender of ours that ended by itself on its media node."""
        def on(ev: BusEvent) -> None:
            if ev.data.get("owner") == self.node:
                self.ended(ev.subject, str(ev.data.get("reason") or "ended"))
        bus.listen(on, ENDED)

    def ended(self, call_id: str, reason: str) -> None:
        on_end = self._on_end.get(call_id)
        if on_end is not None:
            on_end(reason)

    async def reap(self) -> None:
        """Sessions whose media node died end with our BYE (on_end)."""
        if not self.node_of:
            return
        alive = {n.id for n in await self.presence.nodes()}
        for call_id, node in list(self.node_of.items()):
            if node not in alive:
                on_end = self._on_end.get(call_id)
                self._forget(call_id)
                log.info("upstream session %s: media node %s is gone", call_id, node)
                if on_end is not None:
                    on_end("media node gone")

    async def start_reaper(self) -> None:
        await self._every.start()

    async def stop(self) -> None:
        await self._every.stop()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- helpers ---------------------------------------------------------------------------------

    def _forget(self, call_id: str) -> None:
        self.node_of.pop(call_id, None)
        self._on_end.pop(call_id, None)

    async def _close_on(self, node: str, call_id: str, reason: str) -> dict[str, Any]:
        """Close it there; its last figures (bytes, packets), {} when the node does not answer."""
        try:
            got = await self.rpc.call(node, "upstream.close", timeout=5.0, call_id=call_id, reason=reason)
        except DomainError as exc:  # the node is away: its reaper ends the sender
            log.info("closing upstream sender %s on %s: %s", call_id, node, exc)
            return {}
        return dict(got) if isinstance(got, dict) else {}

    async def _call(self, node: str, method: str, **args: Any) -> None:
        try:
            await self.rpc.call(node, method, timeout=10.0, **args)
        except DomainError as exc:
            log.info("%s on %s: %s", method, node, exc)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
