"""The demo's simulated devices: every NVR of the generated city registers over GB/T 28181, so
its cameras come online and play, as a real city's would."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

from xueliang.config import Settings

log = logging.getLogger("xueliang.demo")


async def run_with_devices(settings: Settings, city: object) -> None:
    from xueliang.server import build
    from xueliang.sim.simulator import Simulator

    platform, app = build(settings)
    config = uvicorn.Config(app, host=settings.api.host, port=settings.api.port, log_level=settings.log_level,
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not platform.started and not serving.done():  # noqa: ASYNC110 - uvicorn offers no start event
        await asyncio.sleep(0.1)
    if serving.done():
        await serving
        return
    sig = platform.signalling
    devices = list(getattr(city, "devices", []))
    if sig is None or not devices:
        await serving
        return
    sim = Simulator(f"{settings.sip.host}:{sig.endpoint.port}", transport="udp", password=settings.sip.password,
                    server_id=settings.sip.id, domain=settings.sip.domain, device_specs=devices,
                    keepalive=min(60.0, settings.sip.keepalive_interval), register_rate=100.0)
    try:
        await sim.start()
        log.info("demo: %d simulated NVRs registering", len(devices))
        await serving
    finally:
        with contextlib.suppress(Exception):
            await sim.stop()
