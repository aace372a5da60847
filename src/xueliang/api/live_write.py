"""The live writer's hot path, compiled (src/xueliang/_native.py): :class:`DirectWriter` is
called once per frame per viewer, from the compiled fan-out in media/outputs.py; the module
doc of api/live_send.py says what it does and when it declines.

Kept apart from live_send.py so that it can be compiled: nothing here imports Starlette, and
uvicorn's objects are reached generically (``Any``), as they are not ours.
"""

from __future__ import annotations

from typing import Any

_UVICORN_CYCLE = ("uvicorn.protocols.http.httptools_impl", "RequestResponseCycle")
#: What of that cycle the writer reads: checked before any of it is used.
_CYCLE_STATE = ("flow", "transport", "disconnected", "chunked_encoding", "response_started", "response_complete")


class DirectWriter:
    """Writes a live chunk to uvicorn's connection at once, or declines (api/live_send.py's
    module doc)."""

    __slots__ = ("_cycle", "_flow", "_transport", "declined", "parked")

    def __init__(self, cycle: Any) -> None:
        self._cycle = cycle
        self._flow = cycle.flow
        self._transport = cycle.transport
        #: True only while the response waits for the reader: then nothing of its is in flight.
        self.parked = False
        #: Chunks left to the response's task (in flight, gone, or the connection full).
        self.declined = 0

    @classmethod
    def of(cls, send: Any) -> DirectWriter | None:
        """A writer for the connection behind ``send`` when it is uvicorn's httptools protocol in
        the middle of a chunked response; else None (the response sends as usual)."""
        cycle: Any = getattr(send, "__self__", None)
        kind = type(cycle)
        if (kind.__module__, kind.__name__) != _UVICORN_CYCLE or not all(
            hasattr(cycle, a) for a in _CYCLE_STATE
        ):
            return None  # another server, or a uvicorn whose cycle no longer looks like this
        if cycle.chunked_encoding is not True or not cycle.response_started or cycle.response_complete:
            return None
        return cls(cycle)

    def __call__(self, chunk: bytes) -> bool:
        transport = self._transport
        if not self.parked or self._cycle.disconnected or self._flow.write_paused or transport.is_closing():
            self.declined += 1
            return False
        if chunk:  # an empty chunk would end a chunked body
            try:
                transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
            except (OSError, RuntimeError):
                # Never into the stream's fan-out (it would cut every other reader's frame):
                # the response's own send meets the same state and ends the response.
                self.declined += 1
                return False
        return True
