"""Live media out: a viewer's frames sent past the middlewares' per-message wrappers.

Every middleware (access control, metrics, GZip, FastAPI's own) wraps ``send``, so each body
message of a response passes through a coroutine per middleware. A live stream sends one body
message per frame per viewer (25 a second each, thousands a second on a video wall), and none of
those middlewares acts on a body message after the first: access control adds its headers and
records the request at the start, GZip decides at the first body message, metrics read the
status. So :class:`RawSend`, the outermost of our middlewares, keeps the ``send`` it was given
in the scope, and :class:`LiveResponse` sends its start and first chunk through the whole chain
as any response does, and every later chunk on that kept ``send``.

This holds because no middleware of ours transforms a live body: GZip leaves ``video/*`` alone
(Starlette's default exclusions, kept in ``api/main.py``). A middleware that rewrote bodies would
have to be outside :class:`RawSend`, or live responses would have to stop using it.
"""

from __future__ import annotations

from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

#: The scope key under which RawSend keeps its ``send``.
RAW_SEND = "xueliang.raw_send"


class RawSend:
    """Keeps the ``send`` of the outermost middleware layer in the scope (see the module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[RAW_SEND] = send
        await self.app(scope, receive, send)


class LiveResponse(StreamingResponse):
    """A streaming response whose chunks after the first skip the middlewares' wrappers."""

    _raw: Send | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._raw = scope.get(RAW_SEND)
        await super().__call__(scope, receive, send)

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        out = send
        async for chunk in self.body_iterator:
            body = chunk if isinstance(chunk, bytes | memoryview) else chunk.encode(self.charset)
            await out({"type": "http.response.body", "body": body, "more_body": True})
            out = self._raw or send  # the start and the first chunk went through every layer
        await out({"type": "http.response.body", "body": b"", "more_body": False})
