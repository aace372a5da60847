"""Attach the optional subsystems (signalling, media) to a platform, as configuration says."""

from __future__ import annotations

import logging

from xueliang.app import Platform

log = logging.getLogger("xueliang")


def attach(platform: Platform) -> None:
    """Each subsystem registers its start/stop steps and routers on the platform."""
    platform.routers = []  # type: ignore[attr-defined]
