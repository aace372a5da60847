"""Live media's frames skip the middlewares' per-message wrappers after the first chunk, and
everything a middleware does at the start (headers, records) still happens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xueliang.api.live_send import LiveResponse, RawSend

CHUNKS = [b"init", b"frame-1", b"frame-2", b"frame-3", b"frame-4"]


class Counting:
    """Stands for access control: adds a header at the start and sees every message it wraps."""

    seen: ClassVar[list[str]] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped(message: Message) -> None:
            Counting.seen.append(message["type"])
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-checked", b"yes")]
            await send(message)

        await self.app(scope, receive, wrapped)


async def live(request: Request) -> LiveResponse:
    async def body() -> AsyncIterator[bytes]:
        for c in CHUNKS:
            yield c

    return LiveResponse(body(), media_type="video/mp4")


def _app(raw: bool) -> Starlette:
    middleware = [Middleware(RawSend)] if raw else []
    return Starlette(routes=[Route("/live.mp4", live)], middleware=[*middleware, Middleware(Counting)])


@pytest.mark.parametrize("raw", [True, False])
async def test_live_chunks_skip_the_wrappers_but_not_the_start(raw: bool) -> None:
    Counting.seen = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(raw)), base_url="http://t") as c:
        r = await c.get("/live.mp4")
    assert r.status_code == 200
    assert r.content == b"".join(CHUNKS)  # every chunk arrives, in order, and the end
    assert r.headers["x-checked"] == "yes"  # what the middleware does at the start still happens
    assert r.headers["content-type"] == "video/mp4"
    if raw:
        # the start and the first chunk through the middleware; the other chunks and the end past it
        assert Counting.seen == ["http.response.start", "http.response.body"]
    else:
        # no RawSend outside (a test client, another server): every message goes through, as before
        assert Counting.seen == ["http.response.start"] + ["http.response.body"] * (len(CHUNKS) + 1)
