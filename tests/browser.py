"""One way to start Debian's Chromium under Playwright, for the tests and the benchmarks.

``launch(p)`` with a sync Playwright, ``await launch_async(p)`` with an async one. Headless,
no sandbox, no GPU (WebGL drawn by SwiftShader), no QUIC, nothing fetched in the background (first run, component updates,
sync). Videos start without a user gesture unless ``autoplay=False``.

The benchmarks import it as ``tests.browser`` with the repository's root on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import Browser as AsyncBrowser
    from playwright.async_api import Playwright as AsyncPlaywright
    from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # WebGL (the console's map, MapLibre) from SwiftShader, Chromium's software renderer: there
    # is no GPU; without the second flag newer Chromiums refuse WebGL on SwiftShader
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
)
AUTOPLAY = "--autoplay-policy=no-user-gesture-required"


def available() -> bool:
    """Whether Debian's Chromium is installed where the launcher looks for it."""
    return Path(CHROMIUM).exists()


def launch_options(*, autoplay: bool = True) -> dict[str, Any]:
    """The keyword arguments of ``chromium.launch``."""
    return {"executable_path": CHROMIUM, "args": [*ARGS, *((AUTOPLAY,) if autoplay else ())]}


def launch(playwright: Playwright, *, autoplay: bool = True) -> Browser:
    return playwright.chromium.launch(**launch_options(autoplay=autoplay))


async def launch_async(playwright: AsyncPlaywright, *, autoplay: bool = True) -> AsyncBrowser:
    return await playwright.chromium.launch(**launch_options(autoplay=autoplay))
