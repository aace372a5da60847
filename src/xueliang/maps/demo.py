"""The demo's map: its generated vector basemap under the var dir, and its division boundaries."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from xueliang.db.tables import Division
from xueliang.maps import democity, mbtiles, vectormap
from xueliang.maps.service import MapService

log = logging.getLogger("xueliang.maps")
#: Bumped when the drawing changes, so that a demo started again draws the new one.
GENERATOR = "xueliang-demo-basemap 2 (vector)"
FILE = "demo-basemap.mbtiles"


def _current(path: Path) -> bool:
    try:
        m = mbtiles.MBTiles(path)
    except mbtiles.NotMBTiles:
        return False
    m.close()
    return m.metadata.get("generator") == GENERATOR


async def prepare(maps: MapService, var_dir: Path, divisions: list[dict[str, Any]]) -> Path:
    """The demo basemap (drawn unless the var dir holds the current one) and the demo's county
    and township boundaries (loaded unless the city has some). Returns the basemap's path."""
    path = var_dir / FILE
    if not _current(path):
        figures = await asyncio.to_thread(vectormap.generate, path, divisions, generator=GENERATOR)
        log.info("demo basemap drawn: %(tiles)d tiles, %(bytes)d bytes in %(seconds)s s", figures)
    city = next(str(d["code"]) for d in divisions if d["level"] == "city")
    async with maps.sessions() as s:
        have = await s.scalar(select(func.count()).select_from(Division).where(
            Division.code.startswith(city), Division.boundary.is_not(None)))
    if not have:
        report = await maps.load_divisions(json.dumps(democity.feature_collection(divisions)).encode(), "demo")
        if not report.ok:  # the demo's own file: a failure here is a bug of the generator
            raise RuntimeError(report.text())
    return path
