"""Health and metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from xueliang.api.deps import MetricsReader, PlatformDep

router = APIRouter(tags=["system"])

#: How long /healthz waits for the database (the probes time out at 3 s).
PROBE_SECONDS = 1.5


@router.get("/healthz")
async def healthz(platform: PlatformDep) -> dict[str, Any]:
    """Liveness and database reachability; open so that load balancers can probe it."""
    db = "ok"
    try:
        # bounded: a database host that drops packets would hold the probe past its own
        # timeout (asyncpg waits up to 60 s to connect), and the process would be restarted
        async with asyncio.timeout(PROBE_SECONDS), platform.engine.connect() as c:
            await c.execute(text("SELECT 1"))
    except TimeoutError:
        db = f"error: no answer within {PROBE_SECONDS:g} s"
    except Exception as exc:  # reported, not raised: this is a probe
        db = f"error: {type(exc).__name__}"
    return {"status": "ok" if db == "ok" else "degraded", "database": db}


@router.get("/metrics")
async def metrics(_: MetricsReader) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

