"""bench/sip_storm.py against the fake platform (the real server is benchmarked by hand)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from ._platform import FakePlatform

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "sip_storm.py"


async def _run(*args: str) -> dict[str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out.decode(), err.decode())
    lines = dict(line.split(": ", 1) for line in out.decode().splitlines() if ": " in line)
    return lines


@pytest.mark.serial
async def test_storm_against_the_fake_platform() -> None:
    platform = FakePlatform(qop=False)
    await platform.start()
    try:
        out = await _run(
            "--server",
            platform.address,
            "--server-pid",
            str(os.getpid()),
            "--devices",
            "300",
            "--rate",
            "3000",
            "--sockets",
            "3",
        )
        assert out["storm_registered"] == "300 devices"
        assert out["storm_failures"] == "0 devices"
        assert out["storm_server_cpu"].endswith(" s") and out["storm_wall"].endswith(" s")
        assert out["storm_rate"].endswith(" msg/s")
        assert len(platform.registrations) == 300
        assert sum(platform.keepalives.values()) == 300
    finally:
        await platform.stop()


async def test_steady_mode() -> None:
    platform = FakePlatform()
    await platform.start()
    try:
        out = await _run(
            "--server",
            platform.address,
            "--server-pid",
            str(os.getpid()),
            "--steady",
            "200",
            "--interval",
            "1",
            "--duration",
            "2",
            "--sample",
            "1",
        )
        assert out["steady_registered"] == "200 devices"
        assert out["steady_keepalive_failures"] == "0 keepalives"
        assert out["steady_server_cpu"].endswith(" %") and out["steady_server_rss"].endswith(" MB")
        assert sum(platform.keepalives.values()) >= 300
    finally:
        await platform.stop()
