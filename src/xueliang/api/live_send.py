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

**Frames written without waking the response** (:class:`DirectWriter`). Past the first chunk,
when the kept ``send`` is uvicorn's own (its httptools protocol, chunked encoding; RawSend wraps
the whole application in ``api/main.py``, so in the server it is), the response hands the
reader a *sink*: while the response waits for the reader, each new chunk the stream offers is
written to the connection there and then, framed as uvicorn frames it, instead of waking the
response's task to send it (a task switch and the send's coroutines per frame per viewer). The
sink declines, and the chunk is queued and the task woken as before, whenever the task is not
parked (so nothing overtakes a chunk being sent), the connection is gone, or its write buffer is
above the high-water mark (uvicorn's flow control: the queue's bound and skip-to-key-frame then
apply, as without the sink). Any other server, or a test client, gets the plain path.

**A joining viewer is answered in the request's own task.** Under ASGI spec 2.3 (uvicorn's),
Starlette streams a response in a task it starts, so the headers and the first frame wait for
the loop to come round; :class:`LiveResponse` streams in the request's task and listens for the
disconnect in the started one. With every dependency async (no thread-pool hop, tested in
tests/api/test_dependencies_async.py), a join is one loop pass from the request's task to its
first frame (bench/media.py's ``media_first_frame_max``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import anyio
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from xueliang.api.live_write import DirectWriter

__all__ = ["RAW_SEND", "DirectWriter", "LiveResponse", "RawSend", "SinkTarget"]

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


class SinkTarget(Protocol):
    """What a live response can hand a sink to (media/outputs.py's Reader)."""

    sink: Any


class LiveResponse(StreamingResponse):
    """A streaming response whose chunks after the first skip the middlewares' wrappers, and,
    given the reader its chunks come from (``target``), are written without waking it.

    With a ``target``, waiting on that reader must be the content iterator's only await, so that
    a chunk written by the sink can never overtake one the iterator has taken and not yielded.
    """

    _raw: Send | None = None

    def __init__(self, content: AsyncIterator[bytes], *, target: SinkTarget | None = None, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._target = target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._raw = scope.get(RAW_SEND)
        spec = scope.get("asgi", {}).get("spec_version", "2.0")
        if scope["type"] != "http" or tuple(map(int, spec.split("."))) >= (2, 4):
            await super().__call__(scope, receive, send)
            return
        # Starlette streams in a task it starts and listens for the disconnect in this one, so a
        # joining viewer's headers and first frame wait for the loop to run that task: a whole
        # iteration, 60 ms and more on a busy media server. Here the stream is this task's and
        # the listener the started one; either ending cancels the other, as there.
        try:
            async with anyio.create_task_group() as group:

                async def listen() -> None:
                    await self.listen_for_disconnect(receive)
                    group.cancel_scope.cancel()

                group.start_soon(listen)
                await self.stream_response(send)
                group.cancel_scope.cancel()
        except BaseExceptionGroup as group_exc:  # one failure, raised as itself (as Starlette does)
            if len(group_exc.exceptions) != 1:
                raise
            exc = group_exc.exceptions[0]  # with its own cause kept, for the error log
            raise exc from exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
        if self.background is not None:
            await self.background()

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        out = send
        first = True
        chunks = aiter(self.body_iterator)
        direct: DirectWriter | None = None
        try:
            while True:
                if direct is not None:
                    direct.parked = True
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    break
                finally:
                    if direct is not None:
                        direct.parked = False
                body = chunk if isinstance(chunk, bytes | memoryview) else chunk.encode(self.charset)
                await out({"type": "http.response.body", "body": body, "more_body": True})
                if first:  # the start and the first chunk went through every layer
                    first = False
                    out = self._raw or send
                    if self._target is not None and (direct := DirectWriter.of(out)) is not None:
                        self._target.sink = direct
        finally:
            if self._target is not None:
                self._target.sink = None
        await out({"type": "http.response.body", "body": b"", "more_body": False})
