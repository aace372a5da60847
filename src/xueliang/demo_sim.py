"""The demo's simulated devices: every NVR of the generated city registers over GB/T 28181, so
its cameras come online and play, as a real city's would."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import uvicorn

from xueliang.config import Settings

log = logging.getLogger("xueliang.demo")


def demo_specs(devices: list[Any]) -> tuple[list[Any], list[str]]:
    """The city's NVRs as simulator specs, with the faults a real city has: a few channels
    report video loss or are off, and one NVR in 24 stops keeping alive after registering."""
    from xueliang.sim.device import ChannelSpec
    from xueliang.sim.simulator import DeviceSpec

    specs, failing = [], []
    for i, d in enumerate(devices):
        channels = []
        for j, (cid, name) in enumerate(d.channels):
            k = (i * 7 + j * 3) % 41
            status = "OFF" if k == 0 else ("VLOST" if k == 1 else "ON")
            # ptz_type None: the registry (the survey) knows the camera type; the device does not override it
            channels.append(ChannelSpec(cid, name, ptz_type=None, status=status))
        specs.append(DeviceSpec(d.id, channels, name=d.name))
        if i % 24 == 5:
            failing.append(d.id)
    return specs, failing


async def run_with_devices(settings: Settings, city: object) -> None:
    from xueliang.server import build
    from xueliang.sim.simulator import Simulator

    platform, app = build(settings)
    config = uvicorn.Config(app, host=settings.api.host, port=settings.api.port, log_level=settings.log_level,
                            access_log=False, timeout_graceful_shutdown=5, lifespan="on")
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
    specs, failing = demo_specs(devices)
    sim = Simulator(f"{settings.sip.host}:{sig.endpoint.port}", transport="udp", password=sig.password,
                    server_id=settings.sip.id, domain=settings.sip.domain, device_specs=specs,
                    keepalive=min(60.0, settings.sip.keepalive_interval), register_rate=100.0)
    try:
        await sim.start()
        for device_id in failing:  # they register, then their keepalives stop: offline in 3 minutes
            sim.set_fault(device_id, drop_keepalives=True)
        log.info("demo: %d simulated NVRs registering (%d will fall silent, as real ones do)", len(devices),
                 len(failing))
        alarms = asyncio.create_task(_alarms(sim, set(failing)), name="demo-alarms")
        try:
            await serving
        finally:
            alarms.cancel()
    finally:
        with contextlib.suppress(Exception):
            await sim.stop()


#: What the demo's cameras report now and then: events in places (GB/T 28181 alarm method and
#: type), never anything about who.
_DEMO_ALARMS = (
    (5, 2, "区域入侵"),   # video alarm: intrusion into a zone
    (5, 1, "越线检测"),   # video alarm: line crossing
    (5, 8, "视频遮挡"),   # video alarm: the view is covered
    (2, 1, "防区报警"),   # device alarm input
)


async def _alarms(sim: Any, silent: set[str], every: tuple[float, float] = (60.0, 180.0)) -> None:
    """Every minute or three, a registered camera somewhere in the city raises an alarm, so that
    the console's alarm list has something to show at 3 a.m."""
    import random

    rng = random.Random(2026)
    while True:
        await asyncio.sleep(rng.uniform(*every))
        online = [d for d in sim.devices if d.registered and d.id not in silent and d.channels]
        if not online:
            continue
        device = rng.choice(online)
        channel = rng.choice(list(device.channels))
        method, alarm_type, text = rng.choice(_DEMO_ALARMS)
        with contextlib.suppress(Exception):
            await device.send_alarm(channel, priority=rng.choice((1, 2, 3, 4)), method=method, description=text,
                                    alarm_type=alarm_type)
