"""Shared fixtures of the upstream media tests."""

from __future__ import annotations

from typing import Any

import pytest

from xueliang.config import MediaConfig
from xueliang.media.hub import MediaHub


@pytest.fixture
async def hub() -> Any:
    h = MediaHub(MediaConfig(rtp_port=0, rtp_tcp_port=0, idle_stop_seconds=0.3, rtp_timeout=5,
                             host="127.0.0.1", announce_ip="127.0.0.1"), tick_interval=0.05)
    await h.start()
    yield h
    await h.stop()
