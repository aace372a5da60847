"""Attach the optional subsystems (signalling, media) to a platform, as configuration says."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from xueliang.app import Platform

log = logging.getLogger("xueliang")


def attach(platform: Platform) -> None:
    """Each subsystem registers its start/stop steps and routers on the platform."""
    from xueliang.api.routers import playback as playback_routes
    from xueliang.api.routers import signalling as signalling_routes

    routers: list[object] = [signalling_routes.router, playback_routes.router]
    platform.routers = routers  # type: ignore[attr-defined]
    settings = platform.settings
    if settings.sip.enabled:
        from xueliang.gb28181.catalog_store import store_catalog
        from xueliang.gb28181.service import SignallingService

        secret = hashlib.sha256(b"sip-nonce:" + platform.signer._key).digest()
        sig = SignallingService(settings.sip, platform.sessions, platform.bus, nonce_secret=secret,
                                sealer=platform.sealer, var_dir=Path(settings.storage.var_dir))
        sig.set_catalog_sink(lambda device_id, items: store_catalog(platform.sessions, device_id, items))
        platform.signalling = sig
        platform.on_start(sig.start)
        platform.on_stop(sig.stop)
    if settings.media.enabled:
        import importlib

        try:
            media_subsystem = importlib.import_module("xueliang.media.subsystem")
        except ModuleNotFoundError:
            log.warning("media subsystem not available")
            return
        hub = media_subsystem.attach(platform, routers)
        if platform.signalling is not None:
            from xueliang.gb28181.invite import GbMediaSessions

            gb = GbMediaSessions(platform.signalling)
            platform.media_gb_provider = gb  # type: ignore[attr-defined]
            hub.set_provider("playback/", gb)
            hub.set_provider("download/", gb)
