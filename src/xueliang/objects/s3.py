"""Objects in S3-compatible storage (SeaweedFS, MinIO, Ceph RGW, a cloud's S3): what a cluster
uses, so that a report made on the worker or a segment written on a media node is served by any
API node. boto3 is synchronous; each call runs in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from xueliang.errors import NotFound, Unavailable
from xueliang.objects.store import CHUNK, ObjectInfo, check_key, check_prefix, read_all

T = TypeVar("T")
_MISSING = {"404", "NoSuchKey", "NotFound"}
#: Files above this go up in parts (recordings and exports run to gigabytes).
_PARTS = TransferConfig(multipart_threshold=16 << 20, multipart_chunksize=16 << 20, max_concurrency=4)


class S3Objects:
    kind = "s3"

    def __init__(self, *, bucket: str, endpoint_url: str = "", region: str = "us-east-1",
                 access_key: str = "", secret_key: str = "", prefix: str = "",
                 create_bucket: bool = True, timeout: float = 10.0) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.create_bucket = create_bucket
        self.endpoint = endpoint_url or "AWS"
        self._client: Any = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, region_name=region,
            aws_access_key_id=access_key or None, aws_secret_access_key=secret_key or None,
            config=Config(s3={"addressing_style": "path"}, connect_timeout=timeout, read_timeout=timeout * 3,
                          retries={"max_attempts": 3, "mode": "standard"}),
        )

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def _call(self, what: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kw)
        except ClientError as e:
            code = str(e.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise NotFound(f"object {what} not found") from None
            if code in ("403", "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId"):
                code = f"access denied ({code}): check access_key and secret_key"
            raise Unavailable(f"object storage ({self.endpoint}, bucket {self.bucket}): {code or 'error'}") from None
        except BotoCoreError as e:  # unreachable, timed out, bad credentials format
            raise Unavailable(f"object storage ({self.endpoint}) unreachable: {type(e).__name__}") from None

    async def start(self) -> None:
        try:
            await self._call(self.bucket, self._client.head_bucket, Bucket=self.bucket)
        except NotFound:
            if not self.create_bucket:
                raise Unavailable(f"object storage bucket {self.bucket} does not exist") from None
            try:
                await self._call(self.bucket, self._client.create_bucket, Bucket=self.bucket)
            except Unavailable as failed:
                # Nodes of a cluster start together and race to make it: whoever lost finds it
                # made. Not there after all: why making it failed is the error to tell.
                try:
                    await self._call(self.bucket, self._client.head_bucket, Bucket=self.bucket)
                except NotFound:
                    raise failed from None

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)

    async def put(self, key: str, data: bytes) -> ObjectInfo:
        await self._call(key, self._client.put_object, Bucket=self.bucket, Key=self._name(key), Body=bytes(data))
        return await self._must_stat(key)

    async def put_file(self, key: str, path: Path) -> ObjectInfo:
        await self._call(key, self._client.upload_file, str(path), self.bucket, self._name(key), Config=_PARTS)
        return await self._must_stat(key)

    async def _must_stat(self, key: str) -> ObjectInfo:
        info = await self.stat(key)
        if info is None:
            raise Unavailable(f"object storage lost {key} just written")
        return info

    async def stat(self, key: str) -> ObjectInfo | None:
        try:
            h = await self._call(key, self._client.head_object, Bucket=self.bucket, Key=self._name(key))
        except NotFound:
            return None
        return ObjectInfo(key, int(h["ContentLength"]), h["LastModified"])

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        kw: dict[str, Any] = {}
        if start or end is not None:
            if end is not None and end <= start:
                return _empty()
            kw["Range"] = f"bytes={start}-" + ("" if end is None else str(end - 1))
        try:
            got = await self._call(key, self._client.get_object, Bucket=self.bucket, Key=self._name(key), **kw)
        except Unavailable as e:
            # A range past the end is an empty read, as from a file.
            if "InvalidRange" in str(e):
                return _empty()
            raise
        return self._chunks(key, got["Body"])

    async def _chunks(self, key: str, body: Any) -> AsyncIterator[bytes]:
        try:
            while True:
                chunk = await self._call(key, body.read, CHUNK)
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    async def get(self, key: str) -> bytes:
        return await read_all(self, key)

    async def delete(self, key: str) -> bool:
        if await self.stat(key) is None:
            return False
        await self._call(key, self._client.delete_object, Bucket=self.bucket, Key=self._name(key))
        return True

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        def walk() -> list[ObjectInfo]:
            out = []
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + check_prefix(prefix))
            for page in pages:
                for o in page.get("Contents", []):
                    out.append(ObjectInfo(o["Key"][len(self.prefix):], int(o["Size"]), o["LastModified"]))
            return out
        return sorted(await self._call(prefix or "listing", walk), key=lambda o: o.key)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator
