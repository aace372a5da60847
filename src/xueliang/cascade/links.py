"""The running links to upper platforms: one asyncio driver per enabled upper.

Each driver owns a UDP socket bound to the platform's SIP host (an ephemeral port) and feeds
the sans-IO `UpperLink` what arrives (`receive`), wakes it at its deadline (`tick`), starts
it and closes it (REGISTER Expires: 0). A change to an upper's row restarts its link; a
deleted or disabled upper's link is closed. Requests the upper sends are answered 501 for
now (catalog, INVITE and the rest are later parts of issue 15).

TCP toward an upper is not driven yet: such an upper shows ``state: "unsupported"``.

The clock is the event loop's; the status gives times as wall-clock ISO strings.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from xueliang.db.tables import UpperPlatform
from xueliang.errors import NotFound
from xueliang.gb28181.cascade import (
    Backoff,
    Closed,
    KeepaliveMissed,
    LinkLost,
    LinkState,
    Output,
    Registered,
    RegistrationFailed,
    RequestFromUpper,
    UpperConfig,
    UpperLink,
)
from xueliang.gb28181.sip import Send, make_response
from xueliang.sealing import SealError

from .uppers import CHANGED, UpperService

__all__ = ["CascadeLinks", "UpperDriver"]

log = logging.getLogger("xueliang.cascade")

#: How long closing waits for the upper to confirm Expires: 0.
CLOSE_WAIT = 3.0


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, on_data: Callable[[bytes, Any], None]) -> None:
        self.on_data = on_data

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_data(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable and the like
        log.debug("cascade socket: %s", exc)


class UpperDriver:
    """One link to one upper, over UDP."""

    def __init__(self, upper_id: int, config: UpperConfig, *, bind_host: str, announce_port: int | None) -> None:
        self.upper_id = upper_id
        self.config = config
        self.bind_host = bind_host
        self._announce_port = announce_port
        self.link: UpperLink | None = None
        self.local_port: int | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.error: str | None = None
        #: set when the link closed: whether the upper confirmed Expires: 0
        self.unregistered: bool | None = None

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        transport: asyncio.DatagramTransport | None = None
        try:
            host = await _resolve(self.config.host, self.config.port)
            transport, _ = await loop.create_datagram_endpoint(lambda: _Udp(self._received),
                                                               local_addr=(self.bind_host, 0))
            announce = self.config.announce_host
            if announce in _WILDCARD:  # bound to every address: the one the route to the upper leaves by
                announce = _route_to(host, self.config.port)
        except OSError as exc:
            if transport is not None:
                transport.close()
            self.error = f"cannot reach or bind: {exc}"
            log.warning("upper %s: %s", self.upper_id, self.error)
            return
        self._transport = transport
        self.local_port = transport.get_extra_info("sockname")[1]
        self.config = replace(self.config, host=host, announce_host=announce,
                              announce_port=self._announce_port or self.local_port)
        self.link = UpperLink(self.config)
        self._handle(self.link.start(loop.time()))
        self._task = asyncio.create_task(self._run(), name=f"cascade-upper-{self.upper_id}")

    async def _run(self) -> None:
        assert self.link is not None and self._loop is not None
        link, loop = self.link, self._loop
        while link.state is not LinkState.CLOSED:
            deadline = link.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
            self._handle(link.tick(loop.time()))

    def _received(self, data: bytes, addr: Any) -> None:
        if self.link is None or self._loop is None:
            return
        self._handle(self.link.receive(data, self._loop.time(), (addr[0], addr[1])))
        self._wake.set()

    def _handle(self, outputs: list[Output]) -> None:
        for o in outputs:
            if isinstance(o, Send):
                if self._transport is not None and not self._transport.is_closing():
                    self._transport.sendto(o.data, o.addr)
            elif isinstance(o, RequestFromUpper):
                req = o.request
                if req.method not in ("ACK", "CANCEL") and self._transport is not None and self.link is not None:
                    # Not answered yet (catalog, INVITE...: later parts of issue 15): say so, so
                    # that the upper does not retransmit.
                    self._transport.sendto(make_response(req, 501).serialize(), self.config.peer)
            elif isinstance(o, Registered):
                if not o.refreshed:
                    log.info("registered to upper %s (%s), expires %d s", self.upper_id, self.config.server_id, o.expires)
            elif isinstance(o, RegistrationFailed):
                log.warning("registration to upper %s failed: %s; again in %.0f s", self.upper_id, o.reason,
                            max(0.0, o.retry_at - (self._loop.time() if self._loop else 0.0)))
            elif isinstance(o, LinkLost):
                log.warning("link to upper %s lost: %s", self.upper_id, o.reason)
            elif isinstance(o, KeepaliveMissed):
                log.info("upper %s missed keepalive %d", self.upper_id, o.missed)
            elif isinstance(o, Closed):
                self.unregistered = o.unregistered
                log.info("link to upper %s closed (unregistered: %s)", self.upper_id, o.unregistered)

    async def stop(self) -> None:
        """Unregister (REGISTER Expires: 0) and wait a little for the answer, then close."""
        if self.link is not None and self._loop is not None:
            self._handle(self.link.close(self._loop.time()))
            self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_WAIT)
            except TimeoutError:
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
            self._task = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def status(self) -> dict[str, Any]:
        if self.link is None:
            return {"state": "failed", "last_error": self.error, "last_status": None, "registered_until": None,
                    "next_action_at": None}
        st = self.link.status
        return {
            "state": st.state.value,
            "last_error": st.last_error,
            "last_status": st.last_status,
            "registered_until": self._wall(st.registered_until),
            "next_action_at": self._wall(st.next_action_at),
            "granted_expires": st.granted_expires,
            "consecutive_failures": st.consecutive_failures,
            "missed_keepalives": st.missed_keepalives,
            "registrations": st.registrations,
            "keepalives_sent": st.keepalives_sent,
            "keepalives_answered": st.keepalives_answered,
            "local_port": self.local_port,
            "unregistered": self.unregistered,
        }

    def _wall(self, t: float | None) -> str | None:
        if t is None or self._loop is None:
            return None
        return datetime.fromtimestamp(time.time() + (t - self._loop.time()), UTC).isoformat()


_WILDCARD = ("0.0.0.0", "::", "")


def _route_to(host: str, port: int) -> str:
    """Our address toward ``host`` (a connected UDP socket sends nothing)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect((host, port))
        return str(s.getsockname()[0])


async def _resolve(host: str, port: int) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=2)  # SOCK_DGRAM
    if not infos:
        raise OSError(f"{host} does not resolve")
    return str(infos[0][4][0])


class CascadeLinks:
    """Every enabled upper's link, kept in step with the table (where signalling runs)."""

    def __init__(self, uppers: UpperService, *, local_id: str, sip_host: str,
                 backoff: Backoff | None = None) -> None:
        self.uppers = uppers
        self.local_id = local_id
        self.sip_host = sip_host
        self.backoff = backoff or Backoff()
        self.drivers: dict[int, UpperDriver] = {}
        #: uppers configured but not driven here, and why (TCP for now)
        self.unsupported: dict[int, str] = {}
        #: the stopped links of disabled uppers, for their last status
        self.closed: dict[int, UpperDriver] = {}
        self._lock = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()
        self._running = False
        if uppers.bus is not None:  # changes made here and on other nodes
            uppers.bus.listen(lambda ev: self._changed(int(ev.subject)) if ev.kind == CHANGED else None)
        else:
            uppers.on_change.append(self._changed)

    async def start(self) -> None:
        self._running = True
        for row in await self.uppers.list():
            await self.reload(row.id)

    async def stop(self) -> None:
        self._running = False
        for t in list(self._pending):
            t.cancel()
        async with self._lock:
            drivers, self.drivers = self.drivers, {}
            await asyncio.gather(*(d.stop() for d in drivers.values()), return_exceptions=True)

    def _changed(self, upper_id: int) -> None:
        if not self._running:
            return
        task = asyncio.get_running_loop().create_task(self.reload(upper_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settled(self) -> None:
        """Every reload asked for so far is done (tests, and the API answering after a write)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def reload(self, upper_id: int) -> None:
        """The upper's link as its row now says: closed, (re)started, or left off."""
        async with self._lock:
            old = self.drivers.pop(upper_id, None)
            self.unsupported.pop(upper_id, None)
            if old is not None:
                await old.stop()
            if not self._running:
                return
            self.closed.pop(upper_id, None)
            try:
                row = await self.uppers.get(upper_id)
            except NotFound:
                return
            if not row.enabled:
                if old is not None:
                    self.closed[upper_id] = old  # its last state (closed, unregistered or not)
                return
            if row.transport != "udp":
                self.unsupported[upper_id] = "TCP toward an upper is not driven yet; use UDP"
                return
            try:
                config = self._config(row)
            except (ValueError, SealError) as exc:  # a row the link refuses, a password that does not open
                self.unsupported[upper_id] = f"cannot start: {exc}"
                return
            driver = UpperDriver(row.id, config, bind_host=self.sip_host, announce_port=row.announce_port)
            await driver.start()
            self.drivers[upper_id] = driver

    def _config(self, row: UpperPlatform) -> UpperConfig:
        return UpperConfig(
            server_id=row.sip_id, host=row.host, port=row.port, domain=row.domain, transport=row.transport.upper(),
            local_id=row.local_sip_id or self.local_id, password=self.uppers.secret(row),
            announce_host=row.announce_host or self.sip_host, announce_port=row.announce_port or 5060,
            register_expires=row.register_expires, keepalive_interval=float(row.keepalive_interval),
            keepalive_max_missed=row.keepalive_max_missed, charset=row.charset, backoff=self.backoff,
        )

    def status(self, row: UpperPlatform) -> dict[str, Any]:
        if not self._running:
            return {"state": "not-running",
                    "last_error": "the links run on another signalling node (the one holding the cascade lease)"}
        if not row.enabled:
            old = self.closed.get(row.id)
            return old.status() if old is not None else {"state": "closed"}
        if row.id in self.unsupported:
            msg = self.unsupported[row.id]
            return {"state": "failed" if msg.startswith("cannot start") else "unsupported", "last_error": msg}
        driver = self.drivers.get(row.id)
        if driver is None:
            return {"state": "starting"}
        return driver.status()
