"""Object storage in a cluster: what one API node keeps (a report), another serves, from
SeaweedFS over S3, and no node's own disk holds it."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import httpx

from tests.cluster.nodes import PW, running_cluster
from tests.cluster.nodes import until as _until
from tests.cluster.redis_server import RedisServer
from tests.objects.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedServer
from tests.ports import free_port


async def test_a_report_made_on_one_api_node_downloads_from_another(
        pg_db: str, tmp_path: Path, redis_server: RedisServer, seaweed: SeaweedServer) -> None:
    bucket = f"xl-{uuid.uuid4().hex[:10]}"
    s3 = {"XUELIANG_STORAGE__OBJECTS__KIND": "s3", "XUELIANG_STORAGE__OBJECTS__ENDPOINT_URL": seaweed.endpoint,
          "XUELIANG_STORAGE__OBJECTS__BUCKET": bucket, "XUELIANG_STORAGE__OBJECTS__ACCESS_KEY": ACCESS_KEY,
          "XUELIANG_STORAGE__OBJECTS__SECRET_KEY": SECRET_KEY}
    with running_cluster(pg_db, tmp_path, redis_server.url, env=s3) as cluster:
        port2 = free_port()
        cluster["start"]("api2", "api", XUELIANG_API__PORT=str(port2))
        url2 = f"http://127.0.0.1:{port2}"
        async with httpx.AsyncClient(base_url=cluster["url"], timeout=60) as a, \
                httpx.AsyncClient(base_url=url2, timeout=60) as b:
            r = await a.post("/api/v1/auth/login", json={"username": "root", "password": PW})
            assert r.status_code == 200, r.text
            root = {"Authorization": f"Bearer {r.json()['access_token']}"}

            async def b_up() -> bool:
                try:
                    return (await b.get("/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await _until("the second API node", b_up, 90)
            made = await a.post("/api/v1/reports", headers=root,
                                json={"kind": "daily", "date": date.today().isoformat(), "format": "pdf"})
            assert made.status_code == 201, made.text
            rid = made.json()["id"]
            got_a = await a.get(f"/api/v1/reports/{rid}", headers=root)
            got_b = await b.get(f"/api/v1/reports/{rid}", headers=root)
            assert got_a.status_code == got_b.status_code == 200, got_b.text
            assert got_b.content.startswith(b"%PDF") and got_b.content == got_a.content
            # Not without a session on the node that serves it.
            assert (await b.get(f"/api/v1/reports/{rid}")).status_code == 401
    # It lives in the bucket, not on either node's disk.
    on_disk = [p.name for p in tmp_path.rglob("*.pdf")]
    assert on_disk == []
