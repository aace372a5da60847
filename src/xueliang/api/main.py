"""The FastAPI application: routers per resource under /api/v1, over the platform's services."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import Counter, Histogram
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp

from xueliang import __version__
from xueliang.access.redact import install as install_redaction
from xueliang.api import problems
from xueliang.api.admission import TurnAdmission
from xueliang.api.live_send import RawSend
from xueliang.api.media_proxy import MediaProxy
from xueliang.api.routers import (
    access,
    approvals,
    audit,
    auth,
    cascade,
    cluster,
    console,
    diagnosis,
    exports,
    health,
    incidents,
    map,
    media,
    patrols,
    playback,
    recordings,
    registry,
    residents,
    signalling,
    statistics,
    survey,
    system,
)
from xueliang.api.security import SecurityMiddleware
from xueliang.app import Platform

PREFIX = "/api/v1"
#: The only routes reachable without a token (tests/api/test_auth_everywhere.py proves the rest).
OPEN_ROUTES = {
    "/healthz",
    f"{PREFIX}/auth/login",
    f"{PREFIX}/auth/totp/enroll",
    f"{PREFIX}/openapi.json",
    f"{PREFIX}/docs",
    f"{PREFIX}/docs/assets/{{name}}",
    "/",
    "/player",
    # No bearer token: emergency systems sign their requests (incidents/signature.py).
    f"{PREFIX}/incidents/inbound",
    # Residents join with an invitation code (rate-limited; residents/service.py).
    f"{PREFIX}/residents/join",
    # The phone app's pages, manifest and service worker (static).
    "/m/",
    "/m/{rest:path}",
    # The public key that checks evidence exports' signatures: public by nature.
    f"{PREFIX}/exports/public-key",
}

REQUESTS = Counter("xueliang_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("xueliang_http_request_seconds", "HTTP request latency", ["route"])
STATIC = Path(__file__).resolve().parent.parent / "static"
#: Every router under /api/v1, one per resource. Those of a subsystem switched off answer 503
#: ("not enabled"), so the API is the same shape whatever runs.
ROUTERS = (
    auth.router, console.router, patrols.router, registry.router, statistics.router, survey.router,
    access.router, approvals.router, audit.router, cluster.router, signalling.router, playback.router,
    media.router, health.router, diagnosis.router, recordings.router, cascade.router, incidents.router,
    exports.router, map.router, residents.router,
)


class ObserveMiddleware:
    """Request metrics, as plain ASGI (security headers are the access middleware's).

    Not ``@app.middleware("http")``: that wraps every response body in an extra stream, which
    for live video means every chunk of every viewer pays for it (4 points of a core at 50
    streams). Here the body passes through untouched; only the start message is looked at.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_observed(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope.get("method", ""), route, str(status)).inc()
            LATENCY.labels(route).observe(time.perf_counter() - t0)


class _App(FastAPI):
    """FastAPI with :class:`RawSend` outside every layer, Starlette's own error handler too, so
    that live media keeps the server's own ``send`` (api/live_send.py), and
    :class:`TurnAdmission` outside it."""

    def build_middleware_stack(self) -> ASGIApp:
        # Outside that again, a burst of requests starts a few per loop turn (api/admission.py).
        return TurnAdmission(RawSend(super().build_middleware_stack()))


def create_app(platform: Platform, *, manage_lifecycle: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await platform.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await platform.stop()

    app = _App(
        title="xueliang",
        version=__version__,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,  # served by _mount_docs from local files, not a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.platform = platform
    problems.install(app)

    app.add_middleware(ObserveMiddleware)

    # Access control (identity, permissions, approvals, audit) wraps everything: outermost.
    install_redaction()
    if platform.media is None and platform.placement is not None:
        # a cluster's API node: stream requests go to the media node holding the stream
        app.add_middleware(MediaProxy, placement=platform.placement)
    app.add_middleware(SecurityMiddleware, platform=platform)
    # JSON listings of 100,000 map points compress tenfold; media responses are already compressed
    # and streamed, and GZip skips them (they are not in the compressible types) or they are small.
    app.add_middleware(GZipMiddleware, minimum_size=4096, compresslevel=5,
                       exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
    # RawSend wraps all of these (_App): live media's frames skip the layers above (live_send.py).

    app.include_router(system.router)
    for r in ROUTERS:
        app.include_router(r, prefix=PREFIX)
    app.include_router(media.pages)  # the player, outside /api/v1
    _mount_docs(app)
    _mount_console(app)
    return app


#: The API explorer's page may load scripts and styles from this origin only (Swagger UI sets
#: inline style attributes, hence 'unsafe-inline' for styles; no inline or foreign script).
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
#: Files the explorer serves: Swagger UI (npm swagger-ui-dist, copied by the web build into
#: static/console/swagger-ui) and its start script (static/docs-init.js).
DOCS_ASSETS = {
    "swagger-ui-bundle.js": (STATIC / "console" / "swagger-ui" / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (STATIC / "console" / "swagger-ui" / "swagger-ui.css", "text/css"),
    "favicon-32x32.png": (STATIC / "console" / "swagger-ui" / "favicon-32x32.png", "image/png"),
    "docs-init.js": (STATIC / "docs-init.js", "text/javascript"),
}


def _mount_docs(app: FastAPI) -> None:
    """/api/v1/docs: Swagger UI served from the platform's own files. The tokens live on this
    origin: a script from a CDN would hold them too (and an isolated network reaches no CDN)."""
    from fastapi.responses import FileResponse, HTMLResponse

    from xueliang.errors import NotFound

    docs = f"{PREFIX}/docs"
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>xueliang API</title>"
        f"<link rel='icon' type='image/png' href='{docs}/assets/favicon-32x32.png'>"
        f"<link rel='stylesheet' href='{docs}/assets/swagger-ui.css'></head><body>"
        f"<div id='swagger-ui' data-openapi='{PREFIX}/openapi.json'></div>"
        f"<script src='{docs}/assets/swagger-ui-bundle.js'></script>"
        f"<script src='{docs}/assets/docs-init.js'></script>"
        "</body></html>"
    )

    @app.get(docs, include_in_schema=False)
    async def api_docs() -> Response:
        if not DOCS_ASSETS["swagger-ui-bundle.js"][0].is_file():
            return HTMLResponse(
                "<!doctype html><title>xueliang API</title><p>The API explorer is not built: run "
                f"<code>scripts/setup.sh</code>. The API is described at <a href='{PREFIX}/openapi.json'>"
                f"{PREFIX}/openapi.json</a>.</p>",
                headers={"Content-Security-Policy": DOCS_CSP},
            )
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"})

    @app.get(f"{docs}/assets/{{name}}", include_in_schema=False)
    async def api_docs_asset(name: str) -> Response:
        found = DOCS_ASSETS.get(name)
        if found is None or not found[0].is_file():
            raise NotFound(f"no file {name}")
        return FileResponse(found[0], media_type=found[1],
                            headers={"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"})


def _mount_console(app: FastAPI) -> None:
    """The browser console (built from web/ into static/console) at /, with SPA fallback."""
    import mimetypes

    from fastapi.responses import FileResponse, HTMLResponse
    from fastapi.staticfiles import StaticFiles

    # the map's worker is an ES module (maplibre-gl-worker.mjs): browsers load module workers
    # only with a JavaScript type, which Python's own table lacks where no /etc/mime.types says it
    mimetypes.add_type("text/javascript", ".mjs")
    console = STATIC / "console"
    if (console / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=console / "assets"), name="assets")

    @app.get("/", include_in_schema=False)
    @app.get("/app/{rest:path}", include_in_schema=False)
    async def index(rest: str = "") -> Response:
        page = console / "index.html"
        if page.is_file():
            return FileResponse(page, headers={"Cache-Control": "no-cache"})
        return HTMLResponse("<!doctype html><title>xueliang</title><h1>xueliang</h1>"
                            "<p>The console is not built: run <code>scripts/setup.sh</code>. "
                            "The API is at <a href='/api/v1/docs'>/api/v1/docs</a>.</p>")

    # The phone app (issue 16): its page at /m/ and below (client-side routes), its manifest,
    # service worker and icon from static/console/m/ (web/public/m/). The worker is served from
    # /m/ so that its scope is the app and nothing else.
    phone_files = {"sw.js": "text/javascript", "manifest.webmanifest": "application/manifest+json",
                   "icon.svg": "image/svg+xml"}

    @app.get("/m/", include_in_schema=False)
    @app.get("/m/{rest:path}", include_in_schema=False)
    async def phone(rest: str = "") -> Response:
        if rest in phone_files and (console / "m" / rest).is_file():
            return FileResponse(console / "m" / rest, media_type=phone_files[rest],
                                headers={"Cache-Control": "no-cache"})
        page = console / "mobile.html"
        if page.is_file():
            return FileResponse(page, headers={"Cache-Control": "no-cache"})
        return HTMLResponse("<!doctype html><title>xueliang</title><p>The phone app is not built: run "
                            "<code>scripts/setup.sh</code>.</p>")

