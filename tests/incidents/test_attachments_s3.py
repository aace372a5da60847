"""A case's photos in a real S3 server (SeaweedFS): kept under ``incidents/<case>/`` in the
bucket, served back byte for byte, refused when they are not images, and out of sight of
another department as a missing attachment is."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.incidents.conftest import headers, settings
from tests.objects.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedServer
from xueliang.app import Platform
from xueliang.objects.s3 import S3Objects

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8


# The bucket is the point here, not the database (the other tests run on both).
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_photos_are_kept_in_the_bucket(db_url: str, tmp_path: Path, seaweed: SeaweedServer) -> None:
    from xueliang.api.main import create_app

    bucket = f"xl-{uuid.uuid4().hex[:10]}"
    p = Platform(settings(db_url, tmp_path, objects={"kind": "s3", "endpoint_url": seaweed.endpoint, "bucket": bucket,
                                                     "access_key": ACCESS_KEY, "secret_key": SECRET_KEY}))
    await p.start(migrate=False)
    try:
        assert isinstance(p.objects, S3Objects)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(p, manage_lifecycle=False)),
                                     base_url="http://test") as c:
            op = await headers(p, c, "duty", "operator")
            other = await headers(p, c, "ga", "department_user", department="公安局")
            case = (await c.post("/api/v1/incidents", headers=op, json={
                "category": "环境", "description": "河面漂浮垃圾", "longitude": 117.23, "latitude": 31.82})).json()
            r = await c.post(f"/api/v1/incidents/{case['id']}/attachments", headers=op,
                             files={"photo": ("x.jpg", JPEG, "image/jpeg")})
            assert r.status_code == 201, r.text
            att = r.json()
            keys = [o.key for o in await p.objects.list(f"incidents/{case['id']}/")]
            assert len(keys) == 1 and keys[0].endswith(".jpg")
            assert await p.objects.get(keys[0]) == JPEG
            got = await c.get(f"/api/v1/incidents/{case['id']}/attachments/{att['id']}", headers=op)
            assert got.status_code == 200 and got.content == JPEG and got.headers["content-type"] == "image/jpeg"
            # a text file named like a photo is not a photo
            bad = await c.post(f"/api/v1/incidents/{case['id']}/attachments", headers=op,
                               files={"photo": ("y.jpg", b"not an image", "image/jpeg")})
            assert bad.status_code == 422 and "JPEG or PNG" in bad.json()["detail"]
            # another department: as missing
            theirs = await c.get(f"/api/v1/incidents/{case['id']}/attachments/{att['id']}", headers=other)
            gone = await c.get(f"/api/v1/incidents/{case['id']}/attachments/999999", headers=other)
            assert theirs.status_code == gone.status_code == 404
    finally:
        await p.stop()
