"""The demo's simulated devices (filled in by the signalling issue)."""

from __future__ import annotations

from xueliang.config import Settings


async def run_with_devices(settings: Settings, city: object) -> None:
    from xueliang.server import run

    await run(settings)
