"""Compile the signalling and media hot paths with mypyc (see src/xueliang/_native.py).

    .venv/bin/python scripts/build_native.py          # build (40–80 s)
    .venv/bin/python scripts/build_native.py --clean  # remove the binaries: pure Python again

Run by scripts/setup.sh. A failed build is not fatal: everything runs as Python, slower.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
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
    built = list(_native.MODULES)
    for ext in _native.EXTENSIONS:
        if build_extension(ext):
            built.append(ext)
    _native.MANIFEST.write_text(json.dumps({m: _native.digest_of(m) for m in built}, indent=1))
    print(f"compiled {len(files)} modules with mypyc, {len(built) - len(files)} C extension(s)")
    return 0


def build_extension(module: str) -> bool:
    """One C extension of ours, with the compiler and flags this Python was built with. A failure
    (another platform, no recvmmsg) leaves it out: its caller runs pure Python."""
    source = _native.source_of(module)
    target = source.with_name(source.stem + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
    cc = (sysconfig.get_config_var("CC") or "cc").split()
    cmd = [*cc, "-O2", "-Wall", "-Werror", "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}",
           str(source), "-o", str(target)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        target.unlink(missing_ok=True)
        print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n", file=sys.stderr)
        print(f"{module}: C build failed, its caller runs pure Python", file=sys.stderr)
        return False
    return True


if __name__ == "__main__":
    if "--clean" in sys.argv[1:]:
        clean()
        sys.exit(0)
    sys.exit(build())
