"""The map's service: the installed basemap's tiles, the division boundaries (loaded whole from a
GeoJSON file, read back simplified for the zoom), and ``division_at(lon, lat)``.

Boundaries live in the registry's divisions (``divisions.boundary``, where grids keep theirs),
so that what reads them there (the incident centre's place of a case) sees the loaded ones.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import shape
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.config import ConfigError, MapConfig
from xueliang.db.tables import Division
from xueliang.errors import Invalid, NotFound
from xueliang.maps import boundaries
from xueliang.maps.mbtiles import MBTiles, NotMBTiles
from xueliang.maps.tiles import BadTile, parse_tile
from xueliang.registry.report import ImportReport

#: Boundaries are re-read this often (seconds) for ``division_at``: grids' imports change them too.
AREAS_TTL = 60.0


@dataclass(frozen=True, slots=True)
class TileAnswer:
    data: bytes
    media_type: str
    etag: str
    #: "gzip" for a vector tile stored gzipped (the MBTiles convention), sent as it is stored
    encoding: str | None = None


class MapService:
    def __init__(self, cfg: MapConfig, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.cfg = cfg
        self.sessions = sessions
        self.basemap: MBTiles | None = None
        self._areas: tuple[float, list[tuple[str, Any]], Any] = (0.0, [], None)
        self._features: dict[int, tuple[float, list[dict[str, Any]]]] = {}
        if cfg.basemap is not None:
            try:
                self.open_basemap(cfg.basemap)
            except NotMBTiles as exc:  # a clear error at start, not a map that stays black
                raise ConfigError(f"invalid configuration:\n  map.basemap: {exc}") from None

    # ---- the basemap ---------------------------------------------------------------------------
    def open_basemap(self, path: Path) -> None:
        """Serve ``path`` (raises maps.mbtiles.NotMBTiles when it is not an MBTiles file)."""
        old, self.basemap = self.basemap, MBTiles(path)
        if old is not None:
            old.close()

    def close(self) -> None:
        if self.basemap is not None:
            self.basemap.close()
            self.basemap = None

    def tile(self, z: str, x: str, y: str) -> TileAnswer:
        b = self.basemap
        if b is None:
            raise NotFound("no basemap is installed (map.basemap): the console draws without one")
        try:
            t = parse_tile(z, x, y, b.format)
        except BadTile as exc:
            raise Invalid(str(exc)) from None
        data = b.tile(t)
        if data is None:
            raise NotFound(f"the basemap has no tile {t.z}/{t.x}/{t.y}")
        gz = b.vector and data[:2] == b"\x1f\x8b"
        return TileAnswer(data, b.media_type, f'"{b.version}-{t.z}-{t.x}-{t.y}"', "gzip" if gz else None)

    def describe(self) -> dict[str, Any] | None:
        """What the console needs of the basemap: its URL, zooms and attribution."""
        b = self.basemap
        if b is None:
            return None
        md = b.metadata

        def zoom(k: str, default: int) -> int:
            v = md.get(k, "")
            return int(v) if v.isdigit() else default

        try:
            bounds: list[float] | None = [float(v) for v in md.get("bounds", "").split(",")]
        except ValueError:
            bounds = None
        if bounds is not None and len(bounds) != 4:
            bounds = None
        return {"tile_url": f"/api/v1/map/tiles/{{z}}/{{x}}/{{y}}.{b.format}", "format": b.format,
                "vector": b.vector, "bounds": bounds,
                "min_zoom": zoom("minzoom", 0), "max_zoom": zoom("maxzoom", 18),
                "attribution": md.get("attribution", ""), "name": md.get("name", "")}

    # ---- division boundaries -----------------------------------------------------------------
    async def load_divisions(self, data: bytes, filename: str = "", *, dry_run: bool = False) -> ImportReport:
        """Set the boundaries of the divisions a GeoJSON FeatureCollection names: all or none.
        Never raises for bad input: the report says what is wrong, feature by feature."""
        found, report = boundaries.parse(data, filename)
        if not report.ok:
            return report
        by_code = {b.code: b for b in found}
        async with self.sessions() as s, s.begin():
            rows = {code: old for code, old in (await s.execute(
                select(Division.code, Division.boundary).where(Division.code.in_(list(by_code))))).all()}
            for i, b in enumerate(found, start=1):
                if b.code not in rows:
                    report.add(f"division {b.code} is not registered (load the division list or enter it first)",
                               i, "code", b.code)
            if not report.ok:
                return report
            for b in found:
                text = json.dumps(b.geometry, separators=(",", ":"))
                if rows[b.code] == text:
                    report.unchanged += 1
                    continue
                if rows[b.code] is None:
                    report.created += 1
                else:
                    report.updated += 1
                if not dry_run:
                    await s.execute(update(Division).where(Division.code == b.code).values(boundary=text))
        if not dry_run:
            self.forget()
        return report

    def forget(self) -> None:
        """Boundaries changed: read them again."""
        self._areas = (0.0, [], None)
        self._features.clear()

    async def features(self, zoom: int, extra: list[Any] | None = None) -> dict[str, Any]:
        """Every boundary as a GeoJSON FeatureCollection, simplified to about half a pixel at
        ``zoom`` (the map redraws them per zoom band). ``extra``: conditions hiding what the
        caller may not see (grids outside their scope)."""
        zoom = max(0, min(18, zoom))
        key = zoom if not extra else -1
        hit = self._features.get(key)
        if hit is not None and time.monotonic() - hit[0] < AREAS_TTL:
            return {"type": "FeatureCollection", "features": hit[1]}
        tol = 360.0 / (256 * (1 << zoom)) / 2
        async with self.sessions() as s:
            rows = (await s.execute(
                select(Division.code, Division.name, Division.level, Division.parent_code, Division.boundary)
                .where(Division.boundary.is_not(None), *(extra or [])).order_by(Division.code))).all()
        feats = []
        for code, name, level, parent, text in rows:
            try:
                g = shape(json.loads(text or "null"))
            except (ValueError, TypeError, AttributeError, shapely.errors.ShapelyError):
                continue  # a stored outline that does not read is left off, not a failed map
            simple = shapely.simplify(g, tol, preserve_topology=True)
            feats.append({"type": "Feature", "properties": {"code": code, "name": name, "level": level,
                                                             "parent_code": parent},
                          "geometry": json.loads(shapely.to_geojson(shapely.set_precision(simple, 1e-6)))})
        if not extra:
            self._features[key] = (time.monotonic(), feats)
        return {"type": "FeatureCollection", "features": feats}

    async def division_at(self, lon: float, lat: float) -> str | None:
        """The code of the smallest division (the longest code: a grid before its village, a
        village before its township) whose boundary holds the point; None when none does."""
        at, areas, tree = self._areas
        if tree is None or time.monotonic() - at > AREAS_TTL:
            async with self.sessions() as s:
                rows = (await s.execute(select(Division.code, Division.boundary)
                                        .where(Division.boundary.is_not(None)))).all()
            areas = []
            for code, text in rows:
                try:
                    areas.append((code, shape(json.loads(text or "null"))))
                except (ValueError, TypeError, AttributeError, shapely.errors.ShapelyError):
                    continue
            tree = shapely.STRtree([g for _, g in areas])
            self._areas = (time.monotonic(), areas, tree)
        if not areas:
            return None
        hits = tree.query(shapely.Point(lon, lat), predicate="intersects")
        codes = [areas[int(i)][0] for i in hits]
        return max(sorted(codes), key=len) if codes else None
