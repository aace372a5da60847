"""Health and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from xueliang.api.deps import MetricsReader, PlatformDep

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz(platform: PlatformDep) -> dict[str, Any]:
    """Liveness and database reachability; open so that load balancers can probe it."""
    db = "ok"
    try:
        async with platform.engine.connect() as c:
            await c.execute(text("SELECT 1"))
    except Exception as exc:  # reported, not raised: this is a probe
        db = f"error: {type(exc).__name__}"
    return {"status": "ok" if db == "ok" else "degraded", "database": db}


@router.get("/metrics")
async def metrics(_: MetricsReader) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

