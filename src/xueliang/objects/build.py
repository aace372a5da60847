"""The store the settings name (``storage.objects``)."""

from __future__ import annotations

from pathlib import Path

from xueliang.config import StorageConfig
from xueliang.objects.local import LocalObjects
from xueliang.objects.s3 import S3Objects
from xueliang.objects.store import ObjectStore


def object_store(cfg: StorageConfig) -> ObjectStore:
    o = cfg.objects
    if o.kind == "s3":
        return S3Objects(bucket=o.bucket, endpoint_url=o.endpoint_url, region=o.region,
                         access_key=o.access_key, secret_key=o.secret_key.get_secret_value(),
                         prefix=o.prefix, create_bucket=o.create_bucket, timeout=o.timeout)
    return LocalObjects(Path(o.dir) if o.dir else Path(cfg.var_dir) / "objects")
