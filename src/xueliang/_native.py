"""The signalling and media hot paths, compiled: mypyc turns a few strictly typed sans-IO modules
into C extensions (about a third less CPU per REGISTER; the media figures are in
docs/performance.md).

The Python sources stay the truth. ``scripts/build_native.py`` compiles them next to their
sources and records a hash of each; on import, :func:`guard` checks those hashes, and if any
source changed since the build (or ``XUELIANG_PURE_PYTHON=1`` is set, or the build is missing)
every compiled module is loaded from its source instead: an edit is never shadowed by a stale
binary, and the compiled modules are never mixed with newer sources (compiled code calls its
siblings natively). Nothing here needs the build: without it, everything runs as Python.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

#: Compiled together (mypyc calls between them natively). Pure, strictly typed, no monkeypatching,
#: and called only by our own typed code: a compiled function refuses an argument of the wrong type
#: with TypeError, so nothing that validates outside input (like ids.py) belongs here.
MODULES: tuple[str, ...] = (
    "xueliang.gb28181.sip.errors",
    "xueliang.gb28181.sip.uri",
    "xueliang.gb28181.sip.message",
    "xueliang.gb28181.sip.digest",
    "xueliang.gb28181.sip.transaction",
    "xueliang.gb28181.registrar",
    # The REGISTER and keepalive answers around the registrar, and its events applied; and the
    # SIP endpoint, whose UDP turn reads a batch, parses, answers and sends per datagram.
    "xueliang.gb28181.answers",
    "xueliang.gb28181.endpoint",
    # The signalling writer's rows (two a device in a storm); its flushing (persist.py) stays
    # interpreted: a compiled coroutine that catches a failed SQLAlchemy connection crashes the
    # interpreter (tests/test_native.py keeps SQLAlchemy out of this list).
    "xueliang.gb28181.rows",
    # Their times as the driver takes them (the writer's and the state history's rows).
    "xueliang.db.stamps",
    # The media hot path (issue 18): per packet RTP parse and reorder, PS demux (ps_rtp_in:
    # the three in one call per datagram); per frame NAL scanning and the fMP4/FLV muxers;
    # and the glue between them: the shared port's read loop (rtp_server), the stream's feed
    # and publish (stream), the outputs' fan-out to readers (outputs). Compiled together, a
    # call from one to the next is a native call, not one through the interpreter. The frame
    # itself (frame.py) is a native class, built and read natively once per frame; its Codec
    # (a StrEnum) and ParameterSets (a dataclass) stay Python classes. audio.py (PyAV) stays
    # interpreted: compiled code calls it generically.
    "xueliang.media.frame",
    "xueliang.media.rtp",
    "xueliang.media.nal",
    "xueliang.media._bitstream",
    "xueliang.media.ps",
    "xueliang.media.ps_rtp_in",
    "xueliang.media.fmp4",
    "xueliang.media.flv",
    "xueliang.media.outputs",
    "xueliang.media.stream",
    "xueliang.media.rtp_server",
    # Called by the outputs' fan-out once per frame per viewer: the live HTTP writer.
    "xueliang.api.live_write",
    # What follows each registration (issue 18): the event bus (an event built and handed to
    # every listener and subscriber) and presence (a record a device), per device in a storm.
    "xueliang.bus",
    "xueliang.presence",
    # The state history's per-event work (a transition and its interval's rows), per device in
    # a storm; its reading of the bus and writing (history.py) stay interpreted.
    "xueliang.health.transitions",
)

#: C extensions of our own (a ``.c`` beside where the module would be), built by the same script and
#: guarded the same way, each by its own source: a module of these loads only through
#: :func:`extension`, and its caller keeps a pure Python path.
EXTENSIONS: tuple[str, ...] = (
    "xueliang.media._udp_batch",  # recvmmsg for the shared RTP port and the SIP port (media/udp_batch.py)
    "xueliang.media._annexb",  # start codes found with memchr (media/_bitstream.py)
    "xueliang.gb28181.sip._sipscan",  # the SIP header block and digest parameters (sip/message.py, sip/digest.py)
)

SRC = Path(__file__).resolve().parent.parent
MANIFEST = Path(__file__).resolve().with_name("_native_manifest.json")

#: "compiled", "pure" (no build or XUELIANG_PURE_PYTHON), or "stale" (sources changed since).
status = "pure"


def source_of(module: str) -> Path:
    suffix = ".c" if module in EXTENSIONS else ".py"
    return SRC.joinpath(*module.split(".")).with_suffix(suffix)


def digest_of(module: str) -> str:
    return hashlib.sha256(source_of(module).read_bytes()).hexdigest()


def _compiled(module: str) -> bool:
    path = source_of(module)
    return any(path.with_name(path.stem + suffix).exists() for suffix in importlib.machinery.EXTENSION_SUFFIXES)


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Loads the listed modules from their .py files, whatever binaries lie beside them."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, source_of(fullname))


def _fresh(modules: Sequence[str]) -> bool:
    """Whether the build recorded these modules from the very sources on disk."""
    try:
        recorded = json.loads(MANIFEST.read_text())
        return all(recorded.get(m) == digest_of(m) for m in modules)
    except (OSError, ValueError):
        return False


def guard() -> str:
    """Decide, before any of :data:`MODULES` is imported, whether the compiled ones may load."""
    global status
    if not any(_compiled(m) for m in MODULES):
        status = "pure"
        return status
    fresh = _fresh(MODULES)
    if os.environ.get("XUELIANG_PURE_PYTHON") == "1" or not fresh:
        sys.meta_path.insert(0, _SourcesFirst())
        status = "pure" if fresh else "stale"
    else:
        status = "compiled"
    return status


def extension(module: str) -> ModuleType | None:
    """The C extension ``module`` (one of :data:`EXTENSIONS`) if it may be used: built, its source
    unchanged since the build, and ``XUELIANG_PURE_PYTHON`` not set. Else None: pure Python."""
    if module not in EXTENSIONS or os.environ.get("XUELIANG_PURE_PYTHON") == "1" or not _compiled(module):
        return None
    if not _fresh((module,)):
        return None
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def describe() -> str:
    return {
        "compiled": "SIP and media hot paths compiled (mypyc)",
        "pure": "SIP and media hot paths in pure Python",
        "stale": "SIP and media hot paths in pure Python: sources changed since the mypyc build "
                 "(run scripts/build_native.py)",
    }[status]
