"""Live media's frames skip the middlewares' per-message wrappers after the first chunk, and
everything a middleware does at the start (headers, records) still happens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.stand_ins import NoCodecSource
from xueliang.api.live_send import RAW_SEND, DirectWriter, LiveResponse, RawSend
from xueliang.media.frame import Codec, Frame
from xueliang.media.outputs import Output, Reader

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


# -- frames written by the reader's sink (DirectWriter) ---------------------------------------



class _Flow:
    def __init__(self) -> None:
        self.write_paused = False
        self.resumed = asyncio.Event()
        self.resumed.set()


class _Transport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.writes = 0
        self.closing = False
        self.broken = False

    def is_closing(self) -> bool:
        return self.closing

    def writelines(self, parts: Any) -> None:
        if self.broken:  # as uvloop's transport once its handle is closed
            raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")
        self.writes += 1
        for p in parts:
            self.written += p


class RequestResponseCycle:
    """Stands for uvicorn's httptools cycle: its send frames a chunked body and, like uvicorn's,
    waits for the connection to drain before writing when the write buffer is full."""

    def __init__(self) -> None:
        self.flow = _Flow()
        self.transport = _Transport()
        self.disconnected = False
        self.chunked_encoding: bool | None = None
        self.response_started = False
        self.response_complete = False

    async def send(self, message: Any) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.resumed.wait()
        if self.disconnected:
            return
        if message["type"] == "http.response.start":
            self.response_started = True
            self.chunked_encoding = True
            return
        body = message.get("body", b"")
        if body:
            self.transport.writelines((b"%x\r\n" % len(body), body, b"\r\n"))
        if not message.get("more_body", False):
            self.transport.writelines((b"0\r\n\r\n",))
            self.response_complete = True


RequestResponseCycle.__module__ = "uvicorn.protocols.http.httptools_impl"


class _BytesOutput(Output[bytes]):
    fmt = "fmp4"

    def mux(self, frame: Frame) -> bytes | None:
        return frame.data


def _frame(i: int, key: bool = False) -> Frame:
    return Frame(Codec.H264, i * 3600, i * 3600, b"frame-%03d" % i * (i + 1), key)


def _dechunk(raw: bytes) -> list[bytes]:
    out, pos = [], 0
    while True:
        eol = raw.index(b"\r\n", pos)
        size = int(raw[pos:eol], 16)
        if size == 0:
            assert raw[eol:] == b"\r\n\r\n"
            return out
        out.append(raw[eol + 2 : eol + 2 + size])
        assert raw[eol + 2 + size : eol + 4 + size] == b"\r\n"
        pos = eol + 4 + size


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_sink_writes_at_once_declines_while_a_send_is_in_flight_and_keeps_the_order() -> None:
    out = _BytesOutput(NoCodecSource())  # type: ignore[arg-type]
    reader: Reader[bytes] = out.add_reader()
    cycle = RequestResponseCycle()

    async def body() -> AsyncIterator[bytes]:
        while chunks := await reader.get():
            yield b"".join(chunks)

    response = LiveResponse(body(), target=reader, media_type="video/mp4")
    disconnect = asyncio.Event()

    async def receive() -> Any:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    scope = {"type": "http", "asgi": {"spec_version": "2.3"}, RAW_SEND: cycle.send}
    task = asyncio.create_task(response(scope, receive, cycle.send))
    await _settle()
    frames = [_frame(0, key=True)]
    out.on_frame(frames[0])
    await _settle()  # the first chunk goes through the task (and every layer)
    assert isinstance(reader.sink, DirectWriter)
    for i in (1, 2):  # then each frame is written right where the stream offers it
        frames.append(_frame(i))
        writes = cycle.transport.writes
        out.on_frame(frames[-1])
        assert cycle.transport.writes == writes + 1 and not reader.buffered
    assert reader.chunks_out == 3

    cycle.flow.write_paused = True  # the client stopped reading: the buffer is full
    cycle.flow.resumed.clear()
    frames.append(_frame(3))
    writes = cycle.transport.writes
    out.on_frame(frames[-1])
    assert cycle.transport.writes == writes  # declined: queued, and the task woken to send it
    await _settle()  # the task has taken frame 3 and waits in send for the drain
    assert not reader.buffered
    cycle.flow.write_paused = False  # the buffer drained; the task has not run yet
    frames.append(_frame(4))
    out.on_frame(frames[-1])  # must not overtake frame 3, which the task holds
    assert cycle.transport.writes == writes and reader.buffered
    cycle.flow.resumed.set()
    await _settle()
    frames.append(_frame(5))
    out.on_frame(frames[-1])  # the task is parked again: written at once
    assert cycle.transport.writes == writes + 3

    reader.close()  # the viewer's session is cut: nothing more is written, the body ends
    assert reader.sink is None
    await asyncio.wait_for(task, 5)
    assert _dechunk(bytes(cycle.transport.written)) == [f.data for f in frames]
    disconnect.set()


async def test_a_gone_client_gets_nothing_written() -> None:
    cycle = RequestResponseCycle()
    cycle.response_started, cycle.chunked_encoding = True, True
    writer = DirectWriter.of(cycle.send)
    assert writer is not None
    writer.parked = True
    assert writer(b"x") is True and cycle.transport.writes == 1
    cycle.disconnected = True
    assert writer(b"x") is False and cycle.transport.writes == 1
    cycle.disconnected = False
    writer.parked = False
    assert writer(b"x") is False and cycle.transport.writes == 1
    writer.parked = True
    assert writer(b"") is True and cycle.transport.writes == 1  # an empty chunk would end the body
    cycle.transport.closing = True
    assert writer(b"x") is False and cycle.transport.writes == 1
    cycle.transport.closing, cycle.transport.broken = False, True
    assert writer(b"x") is False  # a write that fails is declined, never raised into the stream
    assert writer.declined == 4


def test_only_uvicorns_chunked_response_gets_a_writer() -> None:
    cycle = RequestResponseCycle()
    assert DirectWriter.of(cycle.send) is None  # not started
    cycle.response_started, cycle.chunked_encoding = True, False
    assert DirectWriter.of(cycle.send) is None  # Content-Length framing
    cycle.chunked_encoding = True
    assert DirectWriter.of(cycle.send) is not None
    cycle.response_complete = True
    assert DirectWriter.of(cycle.send) is None
    changed = RequestResponseCycle()  # uvicorn's name, but not the state the writer reads
    changed.response_started, changed.chunked_encoding = True, True
    del changed.flow
    assert DirectWriter.of(changed.send) is None

    class Other(RequestResponseCycle):
        pass

    Other.__module__ = __name__
    other = Other()
    other.response_started, other.chunked_encoding = True, True
    assert DirectWriter.of(other.send) is None  # another server's send: the plain path

    async def plain(message: Any) -> None:
        pass

    assert DirectWriter.of(plain) is None


# -- the response's own task streams (uvicorn's ASGI spec 2.3) ------------------------------

_SCOPE_23: dict[str, Any] = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}}


async def test_the_start_and_first_chunk_go_out_in_the_responses_first_step() -> None:
    """A joining viewer's headers and first frame do not wait for the loop to run another task
    (Starlette streams in a task it starts: one loop iteration later, tens of ms when busy)."""
    sent: list[Message] = []
    gone = asyncio.Event()

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async def body() -> AsyncIterator[bytes]:
        for c in CHUNKS:
            yield c

    task = asyncio.create_task(LiveResponse(body(), media_type="video/mp4")(dict(_SCOPE_23), receive, send))
    await asyncio.sleep(0)  # the response's task has run one step, nothing else has
    assert [m["type"] for m in sent[:2]] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == CHUNKS[0]
    await asyncio.wait_for(task, 5)  # the body ended: the response ends, the listener with it
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"".join(CHUNKS)
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_a_disconnect_ends_a_live_response_waiting_for_frames() -> None:
    """The client leaves while the stream has nothing to send: the response ends and the body's
    cleanup (the reader's close, the viewing session's end) runs."""
    gone = asyncio.Event()
    cleaned = asyncio.Event()

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        pass

    async def body() -> AsyncIterator[bytes]:
        try:
            yield b"init"
            await asyncio.Event().wait()  # a stream with no frame to come
            yield b"never"
        finally:
            cleaned.set()

    task = asyncio.create_task(LiveResponse(body(), media_type="video/mp4")(dict(_SCOPE_23), receive, send))
    await _settle()
    assert not task.done()
    gone.set()
    await asyncio.wait_for(task, 5)
    assert cleaned.is_set()


async def test_a_failing_body_raises_as_itself() -> None:
    """One failure comes out as that exception, not wrapped in a group (the error middleware and
    the server's log see what Starlette's own response would give them)."""

    async def receive() -> Message:
        await asyncio.Event().wait()
        raise AssertionError

    async def send(message: Message) -> None:
        pass

    async def body() -> AsyncIterator[bytes]:
        yield b"init"
        raise ValueError("demuxer broke") from KeyError("pid")

    with pytest.raises(ValueError, match="demuxer broke") as caught:
        await LiveResponse(body(), media_type="video/mp4")(dict(_SCOPE_23), receive, send)
    assert isinstance(caught.value.__cause__, KeyError)  # its own cause kept for the log
