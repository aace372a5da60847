"""The interface both stores implement, and the key rules they share."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from xueliang.errors import Invalid

#: Keys are paths of plain segments: what both a folder and a bucket can hold the same way, and
#: nothing that could climb out of a folder ("..") or name another bucket.
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
MAX_KEY = 512
#: Chunks of a streamed read: big enough for throughput, small enough that hours of video
#: never sit in memory.
CHUNK = 1 << 20


def check_key(key: str) -> str:
    """The key itself, or Invalid: 1–512 characters, segments of letters, digits, ``._-`` joined
    by ``/``, none empty, none starting with a dot."""
    if not key or len(key) > MAX_KEY:
        raise Invalid(f"object key must be 1–{MAX_KEY} characters")
    parts = key.split("/")
    if any(not _SEGMENT.fullmatch(p) for p in parts):
        raise Invalid(f"object key {key[:80]!r} is not a path of plain segments")
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key that may end with ``/``."""
    if prefix:
        check_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


class ObjectStore(Protocol):
    """Whole objects written once (a new write replaces the old one whole: a reader sees the
    old or the new, never part of either), read as a stream."""

    #: ``local`` or ``s3``: for the log and /healthz.
    kind: str

    async def start(self) -> None:
        """Ready the store (a folder made, a bucket checked or created); Unavailable if it can't."""

    async def close(self) -> None: ...

    async def put(self, key: str, data: bytes) -> ObjectInfo: ...

    async def put_file(self, key: str, path: Path) -> ObjectInfo:
        """Copy a local file in, without reading it into memory (large: in parts)."""

    async def stat(self, key: str) -> ObjectInfo | None: ...

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The object's bytes [start, end) as chunks. NotFound when it is missing, raised here,
        before a response has begun; the iterator then only reads."""

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> bool:
        """True when something was deleted."""

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``, by key."""


async def read_all(store: ObjectStore, key: str) -> bytes:
    """Shared by both stores' ``get``: the streamed read, joined."""
    return b"".join([chunk async for chunk in await store.open(key)])
