"""Evidence exports end to end: a job over real segments of two cameras, run in the background,
its MP4s read by ffprobe, a manifest signed with Ed25519 that ``xueliang export verify`` and
the documented openssl command check — and that both refuse once any byte changed, a file is
missing or added; a hold placed over the range; the approval the access rules ask for, and its
approver in the manifest; a job that survives a restart; another user's export out of reach.
SQLite and PostgreSQL (the db_url fixture)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from tests.api.conftest import admin, client, login, platform  # noqa: F401  (fixtures)
from tests.recording._segments import lay_out, segment_bytes
from tests.recording.test_download import probe
from xueliang.app import Platform
from xueliang.db.tables import AuditRecord, EvidenceExport
from xueliang.evidence.export import ExportRunner, ExportService
from xueliang.evidence.signing import EvidenceSigner
from xueliang.evidence.verify import verify_export
from xueliang.recording.holds import HoldService
from xueliang.registry.models import ChannelIn

CH1, CH2 = "34020000001310000001", "34020000001310000002"
KEY_CH = "34020000001310000003"  # a key site: exporting it needs an approval (rule key-site-export)
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
PW = "Harbour-Lamp-42"
ROOT = Path(__file__).resolve().parents[2]


async def wait_done(client: httpx.AsyncClient, headers: dict[str, str], export_id: int,  # noqa: F811
                    limit: float = 60.0) -> dict[str, Any]:
    async with asyncio.timeout(limit):
        while True:
            r = await client.get(f"/api/v1/exports/{export_id}", headers=headers)
            assert r.status_code == 200, r.text
            if r.json()["state"] in ("done", "failed"):
                return dict(r.json())
            await asyncio.sleep(0.1)


def verify_cli(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xueliang.cli", "export", "verify", str(folder), *extra],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


#: As docs/operations.md gives it, word for word (run in the export's folder).
OPENSSL = "openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in manifest.json -sigfile manifest.sig"


def openssl_verify(folder: Path, key: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """The documented command, key.pem being the platform's public key (by default the
    folder's copy), put beside the manifest for the run."""
    assert OPENSSL in (ROOT / "docs" / "operations.md").read_text()
    (folder / "key.pem").write_bytes(key if key is not None else (folder / "public-key.pem").read_bytes())
    try:
        return subprocess.run(OPENSSL.split(), capture_output=True, text=True, timeout=30, cwd=folder)
    finally:
        (folder / "key.pem").unlink()


async def test_an_export_is_remuxed_signed_held_and_checks_offline(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    for ch in (CH1, CH2):
        await platform.registry.create_channel(ChannelIn(id=ch, name=f"卡口 {ch[-1]}"))
    root = tmp_path / "recordings"
    await lay_out(platform.sessions, root, CH1, T0, 5)
    await lay_out(platform.sessions, root, CH2, T0, 5)
    body = {"channels": [CH1, CH2], "start": (T0 + timedelta(seconds=30)).isoformat(),
            "end": (T0 + timedelta(minutes=4)).isoformat(), "purpose": "案件取证", "case_number": "A-2026-117"}
    r = await client.post("/api/v1/exports", json=body, headers=admin)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] in ("queued", "running") and job["hold_id"]
    done = await wait_done(client, admin, job["id"])
    assert done["state"] == "done" and done["progress"] == 1.0, done
    assert sorted(done["files"]) == sorted([f"{CH1}.mp4", f"{CH2}.mp4", "manifest.json", "manifest.sig",
                                            "public-key.pem"])

    # the files download from the platform, byte for byte what is in the folder
    folder = tmp_path / "exports" / str(job["id"])
    for name in done["files"]:
        f = await client.get(f"/api/v1/exports/{job['id']}/files/{name}", headers=admin)
        assert f.status_code == 200 and f.content == (folder / name).read_bytes(), name
    for ch in (CH1, CH2):  # a remux: 3.5 minutes of video from the key frame at 30 s
        info = probe(folder / f"{ch}.mp4")
        assert abs(float(info["format"]["duration"]) - 210.0) < 0.1, info
        assert int(info["streams"][0]["nb_read_packets"]) == 210 * 25
    manifest = json.loads((folder / "manifest.json").read_bytes())
    assert manifest["purpose"] == "案件取证" and manifest["case_number"] == "A-2026-117"
    assert manifest["requester"]["username"] == "root" and manifest["approver"] is None
    assert manifest["masks"] == [] and manifest["time_range"] == {"start": "2026-11-30T08:00:30Z",
                                                                   "end": "2026-11-30T08:04:00Z"}
    assert [c["channel_id"] for c in manifest["cameras"]] == [CH1, CH2]
    assert manifest["cameras"][0]["files"] == [{"name": f"{CH1}.mp4", "start": "2026-11-30T08:00:30Z",
                                                "end": "2026-11-30T08:04:00Z"}]
    import hashlib
    for f in manifest["files"]:
        data = (folder / f["name"]).read_bytes()
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["size"] == len(data)
    # the published key is the folder's
    key = await client.get("/api/v1/exports/public-key")
    assert key.status_code == 200 and key.content == (folder / "public-key.pem").read_bytes()
    assert b"BEGIN PUBLIC KEY" in key.content

    # offline: intact, then every way of tampering is named
    ok = verify_cli(folder)
    assert ok.returncode == 0 and "intact: 2 files" in ok.stdout, ok.stdout + ok.stderr
    ssl = openssl_verify(folder)
    assert ssl.returncode == 0 and "Signature Verified Successfully" in ssl.stdout, ssl.stdout + ssl.stderr
    work = tmp_path / "copy"
    shutil.copytree(folder, work)
    video = work / f"{CH2}.mp4"
    original = video.read_bytes()
    video.write_bytes(original[:5000] + bytes([original[5000] ^ 1]) + original[5001:])  # one bit
    bad = verify_cli(work)
    assert bad.returncode == 1 and f"{CH2}.mp4: changed" in bad.stderr, bad.stderr
    # the same check in process (what the command prints), for the other ways
    video.unlink()
    assert verify_export(work).problems == [f"{CH2}.mp4: missing"]
    video.write_bytes(original)
    (work / "notes.txt").write_text("x")
    assert verify_export(work).problems == ["notes.txt: added (not in the manifest)"]
    (work / "notes.txt").unlink()
    assert verify_export(work).ok
    m = (work / "manifest.json").read_bytes()
    (work / "manifest.json").write_bytes(m.replace(b"A-2026-117", b"A-2026-118"))
    assert [x.split(":")[0] for x in verify_export(work).problems] == ["manifest.json"]
    assert openssl_verify(work).returncode != 0
    (work / "manifest.json").write_bytes(m)
    # another key (a forger's, put beside a re-signed manifest): refused with the trusted --key
    forger = Ed25519PrivateKey.generate()
    (work / "manifest.sig").write_bytes(forger.sign(m))
    (work / "public-key.pem").write_bytes(forger.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    trusted = tmp_path / "platform.pem"
    trusted.write_bytes(key.content)
    bad = verify_cli(work, "--key", str(trusted))
    assert bad.returncode == 1 and "manifest.json: the signature" in bad.stderr, bad.stderr
    assert openssl_verify(work, key.content).returncode != 0
    assert openssl_verify(work).returncode == 0  # (the forger's own key agrees with the forger)

    # the range is held for the case, by the export
    holds = (await client.get("/api/v1/holds", headers=admin)).json()
    assert [(h["id"], h["export_id"], h["case_number"], h["active"]) for h in holds] == [
        (job["hold_id"], job["id"], "A-2026-117", True)]
    # audited: who exported what, for which case, and the files fetched
    await platform.access.audit.flush()
    async with platform.sessions() as s:
        recs = (await s.scalars(select(AuditRecord).where(AuditRecord.action.like("media.export%")))).all()
    made = [x for x in recs if x.action == "media.export" and x.status == 201]  # (reads of the job are audited too)
    assert len(made) == 1 and made[0].purpose == "案件取证" and made[0].case_ref == "A-2026-117"
    assert made[0].resource_id == str(job["id"])
    assert {x.action for x in recs} == {"media.export", "media.export.file"}


async def test_an_encoding_change_gives_one_file_per_part_and_a_watermark_transcodes(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    await platform.registry.create_channel(ChannelIn(id=CH1, name="cam"))
    await platform.registry.create_channel(ChannelIn(id=CH2, name="nothing recorded"))
    root = tmp_path / "recordings"
    await lay_out(platform.sessions, root, CH1, T0, 2, seconds=4, data=segment_bytes(4))
    await lay_out(platform.sessions, root, CH1, T0 + timedelta(seconds=8), 1, seconds=4,
                  data=segment_bytes(4, width=192, height=128))
    body = {"channels": [CH1], "start": T0.isoformat(), "end": (T0 + timedelta(seconds=12)).isoformat(),
            "purpose": "案件取证", "case_number": "B-1", "watermark": True, "hold": False}
    body["channels"] = [CH1, CH2]
    r = await client.post("/api/v1/exports", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["hold_id"] is None
    done = await wait_done(client, admin, r.json()["id"], limit=120)
    assert done["state"] == "done", done
    folder = tmp_path / "exports" / str(r.json()["id"])
    sizes = []
    for name in (f"{CH1}.mp4", f"{CH1}_2.mp4"):
        with av.open(str(folder / name)) as f:
            frames = list(f.decode(video=0))
        sizes.append((frames[0].width, frames[0].height, len(frames)))
    assert sizes == [(160, 96, 200), (192, 128, 100)]
    # transcoded (not the remux's bytes), and said so in the manifest; still verifies
    remux = segment_bytes(4, width=192, height=128)
    assert (folder / f"{CH1}_2.mp4").read_bytes() != remux
    manifest = json.loads((folder / "manifest.json").read_bytes())
    assert manifest["watermark"]["transcoded"] is True and manifest["remux"] is None
    assert manifest["cameras"][0]["files"][1]["start"] == "2026-11-30T08:00:08Z"
    assert manifest["cameras"][1] == {"channel_id": CH2, "name": "nothing recorded", "files": []}
    assert sorted(f["name"] for f in manifest["files"]) == [f"{CH1}.mp4", f"{CH1}_2.mp4"]
    assert verify_cli(folder).returncode == 0


async def test_a_key_site_export_needs_an_approval_and_names_the_approver(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    key2 = "34020000001310000004"
    for ch in (KEY_CH, key2):
        await platform.registry.create_channel(ChannelIn(id=ch, name="重点", point_class=1, key_site=True))
        await lay_out(platform.sessions, tmp_path / "recordings", ch, T0, 1, seconds=4, data=segment_bytes(4))
    await platform.users.create("op", PW, "operator")
    await platform.users.create("boss", PW, "supervisor")
    op, boss = await login(client, "op", PW), await login(client, "boss", PW)
    body = {"channels": [KEY_CH, key2], "start": T0.isoformat(), "end": (T0 + timedelta(seconds=4)).isoformat(),
            "purpose": "案件取证", "case_number": "C-9"}
    r = await client.post("/api/v1/exports", json=body, headers=op)
    assert r.status_code == 403 and r.json()["type"] == "urn:xueliang:problem:approval-required", r.text
    # one export of both cameras is one use of an approval covering both
    req = await client.post("/api/v1/approvals", headers=op, json={
        "channel_ids": [KEY_CH, key2], "actions": ["media.export"], "purpose": "案件取证", "case": "C-9",
        "max_uses": 1})
    assert req.status_code == 201, req.text
    ok = await client.post(f"/api/v1/approvals/{req.json()['id']}/approve", headers=boss, json={"note": "同意"})
    assert ok.status_code == 200, ok.text
    r = await client.post("/api/v1/exports", json=body, headers=op)
    assert r.status_code == 201, r.text
    assert r.json()["approval_id"] == req.json()["id"] and r.json()["approver"] == "boss"
    done = await wait_done(client, op, r.json()["id"])
    assert done["state"] == "done", done
    folder = tmp_path / "exports" / str(r.json()["id"])
    manifest = json.loads((folder / "manifest.json").read_bytes())
    assert manifest["approver"] == "boss" and manifest["approval_id"] == req.json()["id"]
    assert sorted(f["name"] for f in manifest["files"]) == [f"{KEY_CH}.mp4", f"{key2}.mp4"]
    # the approval was for one use: a second export is refused again
    again = await client.post("/api/v1/exports", json=body, headers=op)
    assert again.status_code == 403, again.text


async def test_another_users_export_is_out_of_reach_by_id_file_name_and_listing(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    await platform.registry.create_channel(ChannelIn(id=CH1, name="cam"))
    await lay_out(platform.sessions, tmp_path / "recordings", CH1, T0, 1, seconds=4, data=segment_bytes(4))
    await platform.users.create("alice", PW, "operator")
    await platform.users.create("bob", PW, "operator")
    alice, bob = await login(client, "alice", PW), await login(client, "bob", PW)
    body = {"channels": [CH1], "start": T0.isoformat(), "end": (T0 + timedelta(seconds=4)).isoformat(),
            "purpose": "案件取证", "case_number": "D-1"}
    r = await client.post("/api/v1/exports", json=body, headers=alice)
    assert r.status_code == 201, r.text
    eid = r.json()["id"]
    assert (await wait_done(client, alice, eid))["state"] == "done"
    missing = await client.get("/api/v1/exports/999999", headers=bob)
    theirs = await client.get(f"/api/v1/exports/{eid}", headers=bob)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["title"] == missing.json()["title"]
    for name in (f"{CH1}.mp4", "manifest.json", "manifest.sig"):
        got = await client.get(f"/api/v1/exports/{eid}/files/{name}", headers=bob)
        assert got.status_code == 404, (name, got.status_code)
        assert (await client.get(f"/api/v1/exports/{eid}/files/{name}", headers=alice)).status_code == 200
    assert (await client.get("/api/v1/exports", headers=bob)).json() == []
    assert (await client.get("/api/v1/exports", headers=bob, params={"all": "true"})).json() == []
    assert [e["id"] for e in (await client.get("/api/v1/exports", headers=alice)).json()] == [eid]
    # a file name that is not one of the export's, or walks out of its folder: missing
    for name in ("..%2F..%2Fsecret.key", "secret.key", "x.mp4"):
        assert (await client.get(f"/api/v1/exports/{eid}/files/{name}", headers=alice)).status_code == 404
    # who manages exports sees and fetches everyone's
    assert [e["id"] for e in (await client.get("/api/v1/exports", headers=admin, params={"all": "true"})).json()] == [eid]
    assert (await client.get(f"/api/v1/exports/{eid}/files/manifest.json", headers=admin)).status_code == 200


async def test_a_job_survives_a_restart(sessions, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.recording.test_holds import principal

    root = tmp_path / "recordings"
    await lay_out(sessions, root, CH1, T0, 2, seconds=4, data=segment_bytes(4))
    svc = ExportService(sessions, HoldService(sessions), EvidenceSigner(b"a-platform-secret-0123456789"), tmp_path / "exports")
    e = await svc.create(principal(), [CH1], T0, T0 + timedelta(seconds=8), "案件取证", "E-1")
    other = await svc.create(principal(), [CH1], T0, T0 + timedelta(seconds=8), "案件取证", "E-2")
    now = datetime.now(UTC)
    # the process stopped while it ran: half a folder, the row still running, its heartbeat old
    async with sessions() as s, s.begin():
        await s.execute(update(EvidenceExport).where(EvidenceExport.id == e.id).values(
            state="running", progress=0.5, runner="gone-1", heartbeat_at=now - timedelta(minutes=5)))
        # another node's job, alive (it beat just now): not taken from it
        await s.execute(update(EvidenceExport).where(EvidenceExport.id == other.id).values(
            state="running", progress=0.2, runner="alive-2", heartbeat_at=now))
    (tmp_path / "exports" / str(e.id)).mkdir(parents=True)
    (tmp_path / "exports" / str(e.id) / f"{CH1}.mp4").write_bytes(b"torn")
    runner = ExportRunner(svc, root, poll_seconds=0.1, node="here-3")
    await runner.start()
    try:
        async with asyncio.timeout(30):
            while runner.done < 1:  # noqa: ASYNC110 (the runner's count, polled)
                await asyncio.sleep(0.05)
    finally:
        await runner.stop()
    async with sessions() as s:
        row = await s.get(EvidenceExport, e.id)
        alive = await s.get(EvidenceExport, other.id)
    assert row is not None and row.state == "done" and row.progress == 1.0 and row.runner == "here-3"
    assert alive is not None and (alive.state, alive.runner) == ("running", "alive-2")
    assert verify_cli(tmp_path / "exports" / str(e.id)).returncode == 0


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(manifest=st.one_of(st.binary(max_size=200), st.builds(lambda d: json.dumps(d).encode(), st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["files", "name", "size", "sha256"]),
                                                                inner, max_size=3), max_leaves=8))))
def test_any_manifest_is_checked_without_raising(tmp_path: Path, manifest: bytes) -> None:
    """A forged or broken manifest (signed by its forger, so the signature holds) is reported, never a crash."""
    folder = tmp_path / "forged"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    key = Ed25519PrivateKey.generate()
    (folder / "manifest.json").write_bytes(manifest)
    (folder / "manifest.sig").write_bytes(key.sign(manifest))
    (folder / "public-key.pem").write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    v = verify_export(folder)
    assert v.ok == (v.problems == [])
