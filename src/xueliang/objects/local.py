"""Objects as files under one folder: the single process, or a folder every node mounts."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from xueliang.errors import NotFound, Unavailable
from xueliang.objects.store import CHUNK, ObjectInfo, check_key, check_prefix, read_all

#: Files being written carry this prefix until they are renamed into place; a listing skips them
#: (a key segment never starts with a dot).
_PARTIAL = ".partial-"


class LocalObjects:
    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    async def start(self) -> None:
        try:
            await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        except OSError as e:
            raise Unavailable(f"object folder {self.root}: {e.strerror}") from e

    async def close(self) -> None:
        return None

    def _info(self, key: str, path: Path) -> ObjectInfo:
        st = path.stat()
        return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def _write(self, key: str, fill: object) -> ObjectInfo:
        # Written beside its place and renamed over it: a reader sees the old object or the new
        # one whole, and a crash leaves only a .partial- file, never half an object.
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_PARTIAL, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                if isinstance(fill, bytes):
                    f.write(fill)
                else:
                    with open(fill, "rb") as src:  # type: ignore[call-overload]
                        shutil.copyfileobj(src, f, CHUNK)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self._info(key, path)

    async def put(self, key: str, data: bytes) -> ObjectInfo:
        return await asyncio.to_thread(self._write, key, bytes(data))

    async def put_file(self, key: str, path: Path) -> ObjectInfo:
        return await asyncio.to_thread(self._write, key, Path(path))

    async def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            return await asyncio.to_thread(self._info, key, path) if path.is_file() else None
        except FileNotFoundError:
            return None

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            f = await asyncio.to_thread(open, path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"object {key} not found") from None
        return _chunks(f, start, end)

    async def get(self, key: str) -> bytes:
        return await read_all(self, key)

    async def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            await asyncio.to_thread(path.unlink)
        except (FileNotFoundError, IsADirectoryError):
            return False
        return True

    def _walk(self, prefix: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        if not self.root.is_dir():
            return out
        for dirpath, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root)
            for name in files:
                if name.startswith("."):
                    continue
                key = "/".join((*rel.parts, name))
                if key.startswith(prefix):
                    try:
                        out.append(self._info(key, Path(dirpath) / name))
                    except FileNotFoundError:  # deleted while we walked
                        continue
        return sorted(out, key=lambda o: o.key)

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        return await asyncio.to_thread(self._walk, check_prefix(prefix))


async def _chunks(f: BinaryIO, start: int, end: int | None) -> AsyncIterator[bytes]:
    try:
        if start:
            f.seek(start)
        left = None if end is None else max(0, end - start)
        while left is None or left > 0:
            chunk = await asyncio.to_thread(f.read, CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            yield chunk
    finally:
        f.close()
