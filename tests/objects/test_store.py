"""Both object stores (a folder, and SeaweedFS over S3) pass the same contract: whole objects,
streamed reads, ranges, listings, and keys that cannot climb out of their place."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.objects.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedServer
from xueliang.errors import Invalid, NotFound, Unavailable
from xueliang.objects import ObjectStore, check_key
from xueliang.objects.adopt import adopt_folders
from xueliang.objects.local import LocalObjects
from xueliang.objects.s3 import S3Objects
from xueliang.objects.store import CHUNK


def s3_store(server: SeaweedServer, prefix: str = "", bucket: str = "xueliang-tests", **kw: object) -> S3Objects:
    return S3Objects(bucket=bucket, endpoint_url=server.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                     prefix=prefix, **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ObjectStore]:
    s: ObjectStore
    if request.param == "local":
        s = LocalObjects(tmp_path / "objects")
    else:  # each test in its own prefix of one bucket: nothing it sees is another's
        s = s3_store(request.getfixturevalue("seaweed"), prefix=f"t-{uuid.uuid4().hex[:12]}")
    await s.start()
    yield s
    await s.close()


async def test_put_get_stat_list_delete(store: ObjectStore) -> None:
    info = await store.put("reports/daily-2026-12-01.xlsx", b"sheet")
    assert (info.key, info.size) == ("reports/daily-2026-12-01.xlsx", 5)
    await store.put("reports/weekly-2026-11-30.pdf", b"%PDF-1.7 ...")
    await store.put("tickets/7-abc.jpg", b"\xff\xd8\xff" + b"j" * 100)
    assert await store.get("reports/daily-2026-12-01.xlsx") == b"sheet"
    st_ = await store.stat("tickets/7-abc.jpg")
    assert st_ is not None and st_.size == 103
    assert await store.stat("tickets/none.jpg") is None
    assert [o.key for o in await store.list("reports/")] == ["reports/daily-2026-12-01.xlsx",
                                                             "reports/weekly-2026-11-30.pdf"]
    assert [o.key for o in await store.list()] == ["reports/daily-2026-12-01.xlsx", "reports/weekly-2026-11-30.pdf",
                                                   "tickets/7-abc.jpg"]
    assert await store.delete("reports/daily-2026-12-01.xlsx") is True
    assert await store.delete("reports/daily-2026-12-01.xlsx") is False
    with pytest.raises(NotFound):
        await store.get("reports/daily-2026-12-01.xlsx")


async def test_a_missing_object_is_refused_at_open_before_any_byte(store: ObjectStore) -> None:
    # A download route opens before it answers: a missing object must be a 404, not a response
    # that breaks off after its headers.
    with pytest.raises(NotFound):
        await store.open("reports/missing.pdf")


async def test_a_new_write_replaces_the_object_whole(store: ObjectStore) -> None:
    await store.put("a/b", b"x" * 5000)
    await store.put("a/b", b"short")
    assert await store.get("a/b") == b"short"
    assert (await store.stat("a/b")).size == 5  # type: ignore[union-attr]


async def test_large_files_go_in_and_come_out_streamed(store: ObjectStore, tmp_path: Path) -> None:
    # 40 MB: over the S3 store's 16 MB part size, so it goes up in parts; read back, no chunk
    # is over CHUNK (hours of video never sit in memory).
    src = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(src, "wb") as f:
        for i in range(40):
            block = hashlib.sha256(str(i).encode()).digest() * (1 << 15)  # 1 MiB, varied
            f.write(block)
            digest.update(block)
    info = await store.put_file("recordings/x/big.bin", src)
    assert info.size == 40 << 20
    got, biggest, n = hashlib.sha256(), 0, 0
    async for chunk in await store.open("recordings/x/big.bin"):
        got.update(chunk)
        biggest, n = max(biggest, len(chunk)), n + 1
    assert got.hexdigest() == digest.hexdigest()
    assert biggest <= CHUNK and n >= 40


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(0, 3000), length=st.one_of(st.none(), st.integers(0, 3000)))
async def test_a_range_reads_exactly_those_bytes(store: ObjectStore, start: int, length: int | None) -> None:
    data = bytes(range(256)) * 10  # 2560 bytes
    if await store.stat("r/data") is None:
        await store.put("r/data", data)
    end = None if length is None else start + length
    got = b"".join([c async for c in await store.open("r/data", start, end)])
    assert got == data[start:end]


BAD_KEYS = ["", "/abs", "a//b", "../etc/passwd", "a/../../b", ".hidden", "a/.b", "a/./b", "a\\b", "a b",
            "a/b/", "报告.pdf", "a" * 513, "x/" + "y" * 200, "a\x00b", "-rf", "a/~"]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_keys_that_could_climb_out_are_refused_by_both(store: ObjectStore, key: str) -> None:
    for op in (lambda: store.put(key, b"x"), lambda: store.get(key), lambda: store.stat(key),
               lambda: store.delete(key), lambda: store.open(key)):
        with pytest.raises(Invalid):
            await op()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab./_-\\~ \x00c1"), max_size=40))
def test_every_accepted_key_stays_inside_the_folder(key: str) -> None:
    root = Path("/srv/objects")
    try:
        check_key(key)
    except Invalid:
        return
    path = LocalObjects(root)._path(key)
    assert path.resolve().is_relative_to(root.resolve()) and path != root
    assert ".." not in path.parts and not any(p.startswith(".") for p in key.split("/"))


async def test_many_writers_at_once(store: ObjectStore) -> None:
    await asyncio.gather(*(store.put(f"many/{i:03d}", str(i).encode() * 100) for i in range(30)))
    objs = await store.list("many/")
    assert [o.key for o in objs] == [f"many/{i:03d}" for i in range(30)]
    assert all(await asyncio.gather(*(store.get(f"many/{i:03d}") for i in (0, 17, 29)))) is not None
    assert await store.get("many/017") == b"17" * 100


async def test_a_write_cut_short_leaves_no_object(tmp_path: Path) -> None:
    # What a crash in the middle of a write leaves in the folder: a .partial- file, never an
    # object under the key, and the listing skips it.
    s = LocalObjects(tmp_path / "o")
    await s.start()
    (tmp_path / "o" / "reports").mkdir()
    (tmp_path / "o" / "reports" / ".partial-abc").write_bytes(b"half")
    assert await s.list() == []
    assert await s.stat("reports/daily.pdf") is None


async def test_prefixes_keep_two_platforms_in_one_bucket_apart(seaweed: SeaweedServer) -> None:
    a, b = s3_store(seaweed, prefix="city-a"), s3_store(seaweed, prefix="city-b")
    await a.start()
    await b.start()
    await a.put("reports/x.pdf", b"a's")
    assert await b.stat("reports/x.pdf") is None and await b.list() == []
    with pytest.raises(NotFound):
        await b.get("reports/x.pdf")
    assert await a.get("reports/x.pdf") == b"a's"


async def test_a_missing_bucket_is_made_or_refused_as_configured(seaweed: SeaweedServer) -> None:
    name = f"xl-{uuid.uuid4().hex[:10]}"
    with pytest.raises(Unavailable, match="does not exist"):
        await s3_store(seaweed, bucket=name, create_bucket=False).start()
    made = s3_store(seaweed, bucket=name)
    await made.start()
    await made.put("k", b"v")
    assert await made.get("k") == b"v"


async def test_nodes_starting_together_all_find_the_bucket_they_race_to_make(seaweed: SeaweedServer) -> None:
    name = f"xl-{uuid.uuid4().hex[:10]}"
    nodes = [s3_store(seaweed, bucket=name) for _ in range(6)]
    await asyncio.gather(*(n.start() for n in nodes))  # raises if any of them failed
    await nodes[0].put("k", b"v")
    assert [await n.get("k") for n in nodes] == [b"v"] * 6


async def test_wrong_credentials_and_a_dead_endpoint_are_unavailable_not_crashes(seaweed: SeaweedServer) -> None:
    wrong = S3Objects(bucket="xueliang-tests", endpoint_url=seaweed.endpoint, access_key=ACCESS_KEY,
                      secret_key="not-the-secret")
    with pytest.raises(Unavailable, match="access denied"):
        await wrong.start()
    with pytest.raises(Unavailable, match="access denied"):
        await wrong.put("k", b"v")
    dead = S3Objects(bucket="xueliang-tests", endpoint_url="http://127.0.0.1:9", access_key="a", secret_key="b",
                     timeout=1.0)
    with pytest.raises(Unavailable, match="unreachable"):
        await dead.start()


async def test_files_of_the_old_folders_move_into_the_store_once(store: ObjectStore, tmp_path: Path) -> None:
    var = tmp_path / "var"
    (var / "reports").mkdir(parents=True)
    (var / "tickets").mkdir()
    (var / "reports" / "daily-2026-11-01.xlsx").write_bytes(b"old report")
    (var / "tickets" / "3-aa.png").write_bytes(b"\x89PNG\r\n\x1a\nphoto")
    assert await adopt_folders(store, var) == 2
    assert await store.get("reports/daily-2026-11-01.xlsx") == b"old report"
    assert await store.get("tickets/3-aa.png") == b"\x89PNG\r\n\x1a\nphoto"
    assert not (var / "reports").exists() and not (var / "tickets").exists()
    assert await adopt_folders(store, var) == 0


def test_the_settings_choose_the_store(tmp_path: Path) -> None:
    from xueliang.config import ConfigError, load_settings
    from xueliang.objects.build import object_store

    s = load_settings(None, storage={"var_dir": str(tmp_path)})
    local = object_store(s.storage)
    assert isinstance(local, LocalObjects) and local.root == tmp_path / "objects"
    s3 = load_settings(None, storage={"objects": {"kind": "s3", "endpoint_url": "http://10.0.0.7:8333",
                                                  "access_key": "k", "secret_key": "s", "bucket": "city-video"}})
    made = object_store(s3.storage)
    assert isinstance(made, S3Objects) and made.bucket == "city-video"
    with pytest.raises(ConfigError, match="access_key"):
        load_settings(None, storage={"objects": {"kind": "s3", "access_key": "only-half"}})
    with pytest.raises(ConfigError):
        load_settings(None, storage={"objects": {"kind": "s3", "bucket": "Not_A_Bucket"}})
    with pytest.raises(ConfigError):
        load_settings(None, storage={"objects": {"kind": "ftp"}})
