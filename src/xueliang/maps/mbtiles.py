"""MBTiles files (the MBTiles 1.3 specification): tiles in an SQLite database, rows in TMS order.

Read-only for serving (one connection, ``mode=ro``: the platform never changes an installed
basemap); written whole, into a new file then renamed, by the demo's generator.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sqlite3
import threading
import zlib
from collections.abc import Iterable
from pathlib import Path

from xueliang.maps.tiles import FORMATS, Tile


class NotMBTiles(ValueError):
    """The file is missing, is not SQLite, or has no ``tiles``/``metadata`` tables."""


def check(path: Path) -> None:
    """Raise NotMBTiles with a reason unless ``path`` is a readable MBTiles file."""
    if not path.is_file():
        raise NotMBTiles(f"{path}: no such file")
    with path.open("rb") as f:
        if f.read(16) != b"SQLite format 3\x00":
            raise NotMBTiles(f"{path}: not an MBTiles file (not an SQLite database)")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise NotMBTiles(f"{path}: not readable as SQLite ({exc})") from None
    missing = {"tiles", "metadata"} - names
    if missing:
        raise NotMBTiles(f"{path}: not an MBTiles file (no {', '.join(sorted(missing))} table)")


_MAGIC = {"png": (b"\x89PNG\r\n\x1a\n",), "jpg": (b"\xff\xd8\xff",), "webp": (b"RIFF",)}


def _check_tile(data: bytes, fmt: str) -> None:
    """Raise NotMBTiles when a tile's bytes are not of the file's declared format."""
    if fmt == "pbf":
        if data[:2] == b"\x1f\x8b":  # gzipped, as MBTiles writers store vector tiles
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as exc:
                raise NotMBTiles(f"a vector tile is not readable gzip ({exc})") from None
        # a protocol buffer of layers: field 3, length-delimited (tag 0x1a), or an empty tile
        if data and data[0] != 0x1A:
            raise NotMBTiles("format is 'pbf' but a tile is not a Mapbox Vector Tile")
        return
    if not data.startswith(_MAGIC.get(fmt, (b"",))):
        raise NotMBTiles(f"format is {fmt!r} but a tile is not a {fmt.upper()} image")


class MBTiles:
    """An open MBTiles file: its metadata and its tiles by XYZ address."""

    def __init__(self, path: Path) -> None:
        check(path)
        self.path = path
        self._con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        try:
            self.metadata: dict[str, str] = {str(k): str(v) for k, v in self._con.execute("SELECT name, value FROM metadata")}
            fmt = self.metadata.get("format", "png").lower()
            if fmt not in FORMATS:
                raise NotMBTiles(f"{path}: tile format {fmt!r} is not one of {', '.join(sorted(FORMATS))}")
            self.format = "jpg" if fmt == "jpeg" else fmt
            # one tile read at load: a damaged file is refused at start, not on the first map
            first = self._con.execute("SELECT tile_data FROM tiles LIMIT 1").fetchone()
        except sqlite3.DatabaseError as exc:
            self._con.close()
            raise NotMBTiles(f"{path}: damaged MBTiles file ({exc})") from None
        except NotMBTiles:
            self._con.close()
            raise
        if first is not None:
            try:
                if not isinstance(first[0], bytes):  # NULL or text where a tile's bytes belong
                    raise NotMBTiles(f"a tile is {type(first[0]).__name__}, not bytes")
                _check_tile(first[0], self.format)
            except NotMBTiles as exc:
                self._con.close()
                raise NotMBTiles(f"{path}: {exc}") from None
        st = path.stat()
        #: Part of every ETag: a new file (another basemap installed) changes every tag.
        self.version = hashlib.sha256(f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}".encode()).hexdigest()[:12]

    @property
    def media_type(self) -> str:
        return FORMATS[self.format]

    @property
    def vector(self) -> bool:
        """Mapbox Vector Tiles (styled by the console), not images."""
        return self.format == "pbf"

    def tile(self, t: Tile) -> bytes | None:
        with self._lock:
            row = self._con.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                (t.z, t.x, t.tms_row)).fetchone()
        return None if row is None else bytes(row[0])

    def close(self) -> None:
        self._con.close()


def write(path: Path, metadata: dict[str, str], tiles: Iterable[tuple[Tile, bytes]]) -> int:
    """Write a new MBTiles file at ``path`` (replacing it atomically). Returns the tile count."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    n = 0
    try:
        con.executescript(
            "CREATE TABLE metadata (name TEXT, value TEXT);"
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);"
            "CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);")
        con.executemany("INSERT INTO metadata VALUES (?, ?)", sorted(metadata.items()))
        for t, data in tiles:
            con.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (t.z, t.x, t.tms_row, data))
            n += 1
        con.commit()
    finally:
        con.close()
    os.replace(tmp, path)
    return n
