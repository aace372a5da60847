"""Serve the platform: one asyncio process running the API (uvicorn), signalling and media."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from xueliang.app import Platform
from xueliang.config import Settings

log = logging.getLogger("xueliang")


def build(settings: Settings) -> tuple[Platform, FastAPI]:
    from xueliang.api.main import create_app
    from xueliang.subsystems import attach

    platform = Platform(settings)
    attach(platform)
    return platform, create_app(platform)


async def run(settings: Settings, platform_ready: object = None) -> None:
    _platform, app = build(settings)
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
