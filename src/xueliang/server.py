"""Serve the platform: one asyncio process running the API (uvicorn), signalling and media, or the
roles of this node in a cluster (cluster.roles)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

import uvicorn
from fastapi import FastAPI

from xueliang.app import Platform
from xueliang.config import Settings

log = logging.getLogger("xueliang")


def build(settings: Settings) -> tuple[Platform, FastAPI]:
    """The platform (app.py, the composition root) and the HTTP API over it."""
    from xueliang.api.main import create_app

    platform = Platform(settings)
    return platform, create_app(platform)


async def _freeze_startup_heap() -> None:
    """Start-up leaves a large heap that lives as long as the process (the app and its routes,
    SQLAlchemy's metadata, the registrar's mirror of the registry). Freezing it keeps the cyclic
    garbage collector from re-scanning all of it in every full collection; those pauses would
    otherwise land in the middle of signalling bursts (a registration storm after a restart)."""
    gc.collect()
    gc.freeze()


async def run(settings: Settings, platform_ready: object = None) -> None:
    if not settings.cluster.runs("api"):
        await run_headless(settings)
        return
    platform, app = build(settings)
    platform.after_start(_freeze_startup_heap)  # after every component has started
    config = uvicorn.Config(
        app,
        host=settings.api.host,
        port=settings.api.port,
        log_level=settings.log_level,
        access_log=False, timeout_graceful_shutdown=5,
        lifespan="on",
        ws="websockets",
        # TLS by configuration (api.tls_certfile / api.tls_keyfile); HSTS follows.
        ssl_certfile=str(settings.api.tls_certfile) if settings.api.tls_certfile else None,
        ssl_keyfile=str(settings.api.tls_keyfile) if settings.api.tls_keyfile else None,
    )
    server = uvicorn.Server(config)
    scheme = "https" if settings.api.tls_certfile else "http"
    log.info("xueliang API on %s://%s:%d/", scheme, settings.api.host, settings.api.port)
    await server.serve()


async def run_headless(settings: Settings) -> None:
    """A node without the API (signalling, media or worker): the platform until SIGTERM/SIGINT."""
    platform = Platform(settings)
    platform.after_start(_freeze_startup_heap)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await platform.start()
    log.info("xueliang node %s up: %s", platform.node, ", ".join(settings.cluster.roles))
    try:
        await stop.wait()
    finally:
        await platform.stop()
