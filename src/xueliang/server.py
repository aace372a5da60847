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
        access_log=False,
        lifespan="on",
        ws="websockets",
    )
    server = uvicorn.Server(config)
    log.info("xueliang API on http://%s:%d/", settings.api.host, settings.api.port)
    await server.serve()
