"""Serve the platform: one asyncio process running the API (uvicorn), signalling and media, or the
roles of this node in a cluster (cluster.roles)."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvicorn
from fastapi import FastAPI

from xueliang import heap
from xueliang.app import Platform
from xueliang.config import Settings

log = logging.getLogger("xueliang")


def build(settings: Settings) -> tuple[Platform, FastAPI]:
    """The platform (app.py, the composition root) and the HTTP API over it."""
    from xueliang.api.main import create_app

    platform = Platform(settings)
    return platform, create_app(platform)


async def _freeze_startup_heap() -> None:
    heap.started()  # after every component has started (heap.py says why)


async def run(settings: Settings, platform_ready: object = None) -> None:
    # A media node serves its viewers over HTTP: it runs the API too.
    if not (settings.cluster.runs("api") or settings.cluster.runs("media")):
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
