"""The compiled signalling and media hot paths must never shadow newer sources (src/xueliang/_native.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xueliang import _native


def test_a_stale_build_loads_every_listed_module_from_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if not any(_native._compiled(m) for m in _native.MODULES):
        pytest.skip("no mypyc build here (scripts/build_native.py): nothing can be stale")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({m: "0" * 64 for m in _native.MODULES}))  # sources "changed"
    monkeypatch.setattr(_native, "MANIFEST", manifest)
    before, status = list(sys.meta_path), _native.status
    try:
        assert _native.guard() == "stale"
        assert "scripts/build_native.py" in _native.describe()
        finder = sys.meta_path[0]
        assert isinstance(finder, _native._SourcesFirst)  # consulted before the path finders
        for m in _native.MODULES:
            spec = finder.find_spec(m, None)
            assert spec is not None and str(spec.origin).endswith(".py"), m
        assert finder.find_spec("xueliang.gb28181.service", None) is None  # others as usual
    finally:
        sys.meta_path[:] = before
        _native.status = status


def test_pure_python_on_request_and_the_same_behaviour() -> None:
    # The suite runs compiled when built; this runs the sans-IO round trip as plain Python.
    code = (
        "import xueliang, xueliang._native as n, xueliang.gb28181.sip.message as m;"
        "from xueliang.gb28181.registrar import Registrar;"
        "assert m.__file__.endswith('.py'), m.__file__;"
        "r = m.parse_message(b'REGISTER sip:3402000000 SIP/2.0\\r\\nVia: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK1\\r\\n'"
        "b'From: <sip:34020000001320000001@3402000000>;tag=1\\r\\nTo: <sip:34020000001320000001@3402000000>\\r\\n'"
        "b'Call-ID: 1\\r\\nCSeq: 1 REGISTER\\r\\nExpires: 3600\\r\\nContent-Length: 0\\r\\n\\r\\n');"
        "d = Registrar('3402000000', 'pw').register(r, ('1.2.3.4', 5060), 'udp', 1.0, 1.0);"
        "print(n.status, d.status)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "XUELIANG_PURE_PYTHON": "1"})
    assert out.stdout.split() == ["pure", "401"]


def test_the_media_hot_path_is_listed_and_pure_on_request() -> None:
    # The per-packet and per-frame modules of the relay are guarded like the SIP ones: with
    # XUELIANG_PURE_PYTHON=1 each loads from its .py, and a packet still demuxes to a frame.
    media = [m for m in _native.MODULES if m.startswith("xueliang.media.")]
    assert {"xueliang.media.rtp", "xueliang.media.ps", "xueliang.media.fmp4", "xueliang.media.flv",
            "xueliang.media.rtp_server", "xueliang.media.stream", "xueliang.media.outputs",
            "xueliang.media.frame"} <= set(media)
    assert "xueliang.api.live_write" in _native.MODULES  # the live writer, per frame per viewer
    code = (
        "import importlib, xueliang._native as n;"
        f"mods = [importlib.import_module(m) for m in {media!r}];"
        "bad = [m.__name__ for m in mods if not m.__file__.endswith('.py')];"
        "from xueliang.media.rtp import build_rtp, parse_rtp;"
        "from xueliang.media.ps import PsDemuxer;"
        "pes = b'\\x00\\x00\\x01\\xe0\\x00\\x10\\x80\\x80\\x05\\x21\\x00\\x01\\x00\\x01'"
        " + b'\\x00\\x00\\x01\\x65\\x88\\x84\\x00\\x21';"
        "pack = b'\\x00\\x00\\x01\\xba\\x44\\x00\\x04\\x00\\x04\\x01\\x00\\x00\\x03\\xf8';"
        "p = parse_rtp(memoryview(build_rtp(pack + pes, sequence=1, timestamp=9, ssrc=7, marker=True)));"
        "f = PsDemuxer().feed(p.payload, p.timestamp, p.marker, p.sequence);"
        "print(n.status, len(bad), len(f), f[0].keyframe)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "XUELIANG_PURE_PYTHON": "1"})
    assert out.stdout.split() == ["pure", "0", "1", "True"], out.stdout  # an IDR slice: key frame
    # The same as built (compiled when the build is current): the same frame.
    env = {k: v for k, v in os.environ.items() if k != "XUELIANG_PURE_PYTHON"}
    built = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    status, bad, *rest = built.stdout.split()
    assert rest == ["1", "True"] and (bad == str(len(media)) if status == "compiled" else bad == "0"), built.stdout


def test_no_compiled_module_awaits_the_database() -> None:
    """A coroutine compiled by mypyc (2.4.1) that catches a failed SQLAlchemy connection crashes
    the interpreter: ``async with sessions() as s: await s.connection()`` in a compiled loop that
    catches the error segfaults within a few hundred tries, on asyncpg and aiosqlite alike (the
    signalling writer, compiled, did so in a failover). So the database stays with interpreted
    code: no compiled module imports SQLAlchemy or a driver."""
    import ast

    src = Path(_native.__file__).resolve().parent.parent
    for module in _native.MODULES:
        tree = ast.parse((src / (module.replace(".", "/") + ".py")).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        bad = {m for m in imported if m.split(".")[0] in ("sqlalchemy", "asyncpg", "aiosqlite", "psycopg")}
        assert not bad, (module, bad)
