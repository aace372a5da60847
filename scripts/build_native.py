"""Compile the signalling and media hot paths with mypyc (see src/xueliang/_native.py).

    .venv/bin/python scripts/build_native.py          # build (40–60 s)
    .venv/bin/python scripts/build_native.py --clean  # remove the binaries: pure Python again

Run by scripts/setup.sh. A failed build is not fatal: everything runs as Python, slower.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

from xueliang import _native  # noqa: E402


def clean() -> None:
    # Every binary in the package is ours (a module dropped from the list must not linger),
    # and mypyc's shared library of the group sits at the top of src/.
    for so in [*(SRC / "xueliang").rglob("*.so"), *SRC.glob("*__mypyc.*.so")]:
        so.unlink()
    _native.MANIFEST.unlink(missing_ok=True)
    shutil.rmtree(SRC / "build", ignore_errors=True)


def build() -> int:
    clean()
    files = [str(_native.source_of(m).relative_to(SRC)) for m in _native.MODULES]
    # mypyc names modules after their paths, so it runs from src/ (and builds in src/build).
    proc = subprocess.run([sys.executable, "-m", "mypyc", *files], cwd=SRC, capture_output=True, text=True)
    shutil.rmtree(SRC / "build", ignore_errors=True)
    if proc.returncode != 0:
        clean()
        print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n", file=sys.stderr)
        print("mypyc build failed: the signalling and media hot paths stay pure Python", file=sys.stderr)
        return 1
    _native.MANIFEST.write_text(json.dumps({m: _native.digest_of(m) for m in _native.MODULES}, indent=1))
    print(f"compiled {len(files)} modules with mypyc")
    return 0


if __name__ == "__main__":
    if "--clean" in sys.argv[1:]:
        clean()
        sys.exit(0)
    sys.exit(build())
