"""The virtual device: its concerns together (:mod:`.signalling`, :mod:`.media`,
:mod:`.playback` on :mod:`.core`), its life (start, stop, power off, the loop that registers
and sends keepalives) and the routing of each request to the concern that answers it."""

from __future__ import annotations

import asyncio
import contextlib
import time

from xueliang.gb28181.endpoint import Incoming
from xueliang.sim.device.media import Media
from xueliang.sim.device.signalling import Signalling


class VirtualDevice(Signalling, Media):
    """One simulated device. Create, then :meth:`start`; :meth:`stop` unregisters it."""

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None or self._task.done():
            self.running = True
            self._task = asyncio.create_task(self._run(), name=f"sim-device-{self.id}")

    async def stop(self, unregister: bool = True) -> None:
        """Stop: end media and subscriptions, and unregister (Expires 0) when registered."""
        self.running = False
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._tasks):
            task.cancel()
        for call_id in list(self.calls):
            self._end_call(call_id)
        for call_id in list(self.subscriptions):
            self.ctx.calls.pop(call_id, None)
        self.subscriptions.clear()
        if unregister and self.registered:
            with contextlib.suppress(Exception):
                await self._register(expires=0)
        self.registered = False

    async def power_off(self) -> None:
        """Go silent without unregistering (power cut, cable pulled)."""
        await self.stop(unregister=False)

    async def _run(self) -> None:
        if self.start_delay > 0:
            await asyncio.sleep(self.start_delay)
        while self.running:
            now = time.monotonic()
            if not self.registered:
                if await self._register(self.expires):
                    now = time.monotonic()
                    self._next_keepalive = now + self.rng.uniform(0.2, 1.0)
                else:
                    await self._sleep(self.ctx.retry_interval * self.rng.uniform(0.8, 1.2))
                    continue
            if now >= self._refresh_at:
                if not await self._register(self.expires):
                    continue
            if now >= self._next_keepalive:
                self._next_keepalive = now + self.keepalive_interval
                if not self.faults.drop_keepalives:
                    await self._keepalive()
                continue
            await self._sleep(min(self._next_keepalive, self._refresh_at) - time.monotonic())

    # -- requests from the platform --------------------------------------------------------

    def handle(self, inc: Incoming) -> None:
        """Entry point for every request routed to this device."""
        if not self.running:
            return
        req = inc.request
        method = req.method
        if self.faults.ignore_requests and method != "ACK":
            return
        if method == "MESSAGE":
            self._on_message(inc)
        elif method == "INVITE":
            self._spawn(self._on_invite(inc))
        elif method == "ACK":
            self._on_ack(inc)
        elif method == "BYE":
            self._on_bye(inc)
        elif method == "INFO":
            self._on_info(inc)
        elif method == "SUBSCRIBE":
            self._on_subscribe(inc)
        elif method == "CANCEL":
            inc.respond(200)
        elif method == "OPTIONS":
            inc.respond(
                200,
                headers=[
                    ("Allow", "INVITE, ACK, BYE, CANCEL, INFO, MESSAGE, SUBSCRIBE, NOTIFY, OPTIONS")
                ],
            )
        elif method == "NOTIFY":
            inc.respond(200)
        else:
            inc.respond(405)
