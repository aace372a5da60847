"""What runs a stream: a source's handle, as the hub and its streams see it (no I/O here, and
nothing of the hub: streams and the hub both depend on this, not on each other)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol, runtime_checkable

__all__ = ["ControllableHandle", "SourceHandle"]


@runtime_checkable
class SourceHandle(Protocol):
    """A running source. ``close()`` is called once when its stream stops (idle after the
    last reader, dead source, API stop); it must also tolerate being called after the source
    itself ended the stream."""

    async def close(self) -> None: ...


class ControllableHandle(SourceHandle, Protocol):
    """A source that takes playback control (pause/resume/seek/speed)."""

    def control(self, action: str, value: float | None) -> Awaitable[dict[str, Any]]: ...
