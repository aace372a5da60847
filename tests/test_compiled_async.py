"""Every compiled coroutine that waits, cancelled and timed out while it waits.

mypyc compiles a coroutine into a native generator, and a cancellation or a timeout is an
exception thrown into it: a known class of mypyc crashes (python/mypy#12867, a native
coroutine cancelled by a timeout; the signalling writer compiled crashed the interpreter in a
failover here, and stays interpreted). The platform cancels these all the time: a viewer leaves
(a reader's ``get``), a device does not answer (``request``'s timeout), a consumer stops (the
bus's ``get``). A crash takes the worker down and fails this file; each case also checks the
exception that comes out, and that the waiter is gone. Run compiled in the suite and as
Python in its pure part (scripts/test.sh).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from tests.stand_ins import NoCodecSource
from xueliang.bus import EventBus
from xueliang.config import MediaConfig
from xueliang.gb28181.endpoint import SipEndpoint, SipTimeout
from xueliang.gb28181.sip.message import generate_call_id, generate_tag, make_request
from xueliang.media.outputs import FramesOutput
from xueliang.media.stream import Stream


class _Host:
    """What a stream needs of its hub: settings, and to be told of readiness and the end."""

    config = MediaConfig()

    def _stream_ready(self, s: Stream) -> None:
        return None

    def _stream_ended(self, s: Stream) -> None:
        return None


async def _cancelled_while_waiting(coro: Any) -> None:
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(0.02)  # suspended inside the compiled coroutine
    assert not task.done()
    task.cancel("leaving")
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_readers_wait_for_frames_cancelled_and_timed_out() -> None:
    output = FramesOutput(NoCodecSource())  # type: ignore[arg-type]
    reader = output.add_reader()
    await _cancelled_while_waiting(reader.get())
    assert reader._waiter is None or reader._waiter.cancelled()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.get(), 0.02)
    reader.close()
    assert await reader.get() == []  # closed: the end, not a wait


async def test_a_streams_wait_for_its_first_key_frame_timed_out_inside_and_out() -> None:
    stream = Stream(_Host(), "live/compiled-async-2", "live", {})
    with pytest.raises(TimeoutError):  # its own timeout (``async with asyncio.timeout`` inside)
        await stream.wait_ready(timeout=0.02)
    assert stream._waiters == []
    with pytest.raises(TimeoutError):  # a caller's timeout around it
        await asyncio.wait_for(stream.wait_ready(), 0.02)
    await _cancelled_while_waiting(stream.wait_ready())
    assert stream._waiters == []


async def test_the_buses_waits_cancelled_and_timed_out() -> None:
    bus = EventBus()
    sub = bus.subscribe("device")
    batch = bus.subscribe_batch("device")
    for get in (sub.get, batch.get, batch.wait):
        await _cancelled_while_waiting(get())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(get(), 0.02)
    bus.publish("device.online", "34020000001320000001")  # and still delivers after all that
    assert (await asyncio.wait_for(sub.get(), 1)).subject == "34020000001320000001"
    assert (await asyncio.wait_for(batch.get(), 1)).kind == "device.online"


async def test_a_request_nobody_answers_times_out_and_a_waiting_one_is_cancelled() -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # takes the request, never answers
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    ep = SipEndpoint("127.0.0.1", 0, tcp=False)
    await ep.start()
    try:
        def options() -> Any:
            return make_request("OPTIONS", f"sip:34020000001320000001@127.0.0.1:{port}", via=ep.via("udp"),
                                from_=f"<sip:34020000002000000001@3402000000>;tag={generate_tag()}",
                                to="<sip:34020000001320000001@3402000000>", call_id=generate_call_id("127.0.0.1"),
                                cseq=1, contact=f"<sip:34020000002000000001@{ep.hostport}>", headers=[], body=b"")

        with pytest.raises(SipTimeout):  # its own timeout, inside the compiled coroutine
            await ep.request(options(), ("127.0.0.1", port), "udp", timeout=0.05)
        await _cancelled_while_waiting(ep.request(options(), ("127.0.0.1", port), "udp"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ep.request(options(), ("127.0.0.1", port), "udp"), 0.05)
        assert ep._waiting == {}  # no transaction's waiter left behind
    finally:
        await ep.stop()
        silent.close()


def test_these_run_compiled_when_the_build_is_there() -> None:
    """Else the file above would test only the Python, which does not crash this way."""
    import xueliang.bus as bus
    from xueliang import _native
    from xueliang.gb28181 import endpoint
    from xueliang.media import outputs, stream

    if _native.status != "compiled":
        assert _native.status in ("pure", "stale")
        return
    for module in (endpoint, outputs, stream, bus):
        assert str(module.__file__).endswith(".so"), module.__name__
