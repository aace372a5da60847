"""The offline map (一张图): basemap tiles from the installed MBTiles file, division boundaries."""

from __future__ import annotations

import asyncio
import gzip
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from xueliang.api.deps import PlatformDep, PrincipalDep, RegistryManager
from xueliang.api.routers.registry import _visible_grids
from xueliang.api.routers.survey import _read, _report

router = APIRouter(tags=["map"])
#: Tiles change only when another basemap is installed (their ETag then changes): a day's cache,
#: private (the platform is not a public tile server), revalidated by ETag after that.
TILE_CACHE = "private, max-age=86400"


@router.get("/map/tiles/{z}/{x}/{y}", responses={200: {"content": {"image/png": {}, "application/vnd.mapbox-vector-tile": {}}}})
async def tile(platform: PlatformDep, _: PrincipalDep, request: Request, z: str, x: str, y: str) -> Response:
    """A basemap tile, XYZ (rows from the north); ``y`` may end in the file's extension
    (``.png``, ``.pbf``). Vector tiles (``application/vnd.mapbox-vector-tile``) go out gzipped as
    the file stores them (``Content-Encoding: gzip``), unzipped for a client that does not take
    gzip. 404 where the basemap has no tile, 422 for an address that names no tile."""
    t = platform.maps.tile(z, x, y)
    headers = {"ETag": t.etag, "Cache-Control": TILE_CACHE, "Vary": "Accept-Encoding"}
    if t.etag in [v.strip() for v in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    data = t.data
    if t.encoding == "gzip":
        accepts = {v.split(";")[0].strip().lower() for v in request.headers.get("accept-encoding", "").split(",")}
        if "gzip" in accepts or "*" in accepts:
            headers["Content-Encoding"] = "gzip"
        else:
            data = await asyncio.to_thread(gzip.decompress, data)
    return Response(data, media_type=t.media_type, headers=headers)


@router.get("/map/divisions")
async def divisions(platform: PlatformDep, p: PrincipalDep,
                    zoom: Annotated[int, Query(ge=0, le=22)] = 12) -> dict[str, Any]:
    """The division boundaries (GeoJSON FeatureCollection), simplified for ``zoom``. Grids show
    to a scoped user where they hold a camera of the user's scope, as in /grids."""
    return await platform.maps.features(zoom, _visible_grids(p))


@router.post("/map/divisions")
async def load_divisions(platform: PlatformDep, _: RegistryManager, file: Annotated[UploadFile, File()],
                         dry_run: Annotated[bool, Form()] = False) -> JSONResponse:
    """Load division boundaries from a GeoJSON FeatureCollection (each feature: a registered
    division's ``code`` and its Polygon or MultiPolygon): all or nothing. 200 with the report,
    or 422 with every problem."""
    data = await _read(file, platform.settings.api.upload_max_bytes)
    return _report(await platform.maps.load_divisions(data, file.filename or "", dry_run=dry_run))
