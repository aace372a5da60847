"""Evidence exports (证据导出): a job for one or several cameras over a time range.

A job is a row (``evidence_exports``): created ``queued`` by the API (the access checks are
the router's: ``media.export`` on every channel, the access rules' purpose or approval), run in
the background by :class:`ExportRunner` where the platform's jobs run, ``running`` with its
progress, then ``done`` (or ``failed``, with why). A job whose runner stopped (a restart, a lost
node: its heartbeat is older than a minute) is queued again and made anew from the beginning.

It writes a folder ``<var>/exports/<id>/``:

- one MP4 per camera, ``<channel_id>.mp4``: a remux of its segments over the range, no
  transcoding (recording/download.py: cut at fragment boundaries). An encoding change inside
  the range gives one file per part (``<channel_id>_2.mp4``…). With ``watermark`` the pictures
  are transcoded with the requester and the export's time burnt in (ffmpeg drawtext).
- ``manifest.json``: cameras, time range, SHA-256 and size of every file, requester, approver,
  purpose, case number, masks applied (none yet: the privacy masks are not built), created time.
- ``manifest.sig``: the platform's Ed25519 signature over the manifest's exact bytes
  (evidence/signing.py); ``public-key.pem``: the key to check it with.

By default an export also places an evidence hold over its channels and range
(recording/holds.py), so that retention keeps what it was made from.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.access.policy import Action, Principal
from xueliang.db.tables import ApprovalRequest, Channel, EvidenceExport, Recording
from xueliang.errors import Invalid, NotFound
from xueliang.evidence.signing import EvidenceSigner, fingerprint
from xueliang.evidence.verify import MANIFEST, OWN_FILES, PUBLIC_KEY, SIGNATURE
from xueliang.objects import ObjectStore
from xueliang.recording.download import EncodingChanged, Mp4Plan, Segments, plan
from xueliang.recording.holds import HoldService, check_range
from xueliang.tasks import woken

log = logging.getLogger("xueliang.evidence")

FORMAT = "xueliang-evidence-export/1"
#: The longest range one export covers.
MAX_HOURS = 24
LIST_LIMIT = 500
#: A running job's heartbeat, and how old one may be before the job is taken for dead (seconds).
HEARTBEAT = 10.0
STALE = 60.0
#: A font with Chinese glyphs for the watermark (scripts/setup.sh installs it).
FONTS = ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def describe(e: EvidenceExport) -> dict[str, Any]:
    files = [f["name"] for f in (e.files or [])]
    return {
        "id": e.id, "state": e.state, "progress": round(e.progress, 3), "error": e.error,
        "requester": e.requester, "channel_ids": e.channel_ids, "start": e.start, "end": e.end,
        "purpose": e.purpose, "case_number": e.case_number, "watermark": e.watermark,
        "approval_id": e.approval_id, "approver": e.approver, "hold_id": e.hold_id,
        "created_at": e.created_at, "finished_at": e.finished_at,
        "files": [*files, *sorted(OWN_FILES)] if e.state == "done" else [],
    }


class ExportService:
    """Jobs: create, find (one's own, or everyone's with ``exports.manage``), their files."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], holds: HoldService, signer: EvidenceSigner,
                 out: Path) -> None:
        self.sessions = sessions
        self.holds = holds
        self.signer = signer
        self.out = out
        #: Set when a job is queued (the runner of this process wakes up).
        self.queued = asyncio.Event()

    async def create(self, p: Principal, channel_ids: list[str], start: datetime, end: datetime, purpose: str,
                     case_number: str, *, watermark: bool = False, approval_id: int | None = None,
                     hold: bool = True) -> EvidenceExport:
        """Queue an export (the caller has authorized every channel) and hold its range."""
        ids = check_range(channel_ids, start, end)
        if (end - start).total_seconds() > MAX_HOURS * 3600:
            raise Invalid(f"an export covers at most {MAX_HOURS} hours")
        purpose, case_number = (purpose or "").strip(), (case_number or "").strip()
        if len(purpose) < 2:
            raise Invalid("state the purpose")
        if not case_number:
            raise Invalid("an export needs its case number")
        async with self.sessions() as s, s.begin():
            approver = None
            if approval_id is not None:
                req = await s.get(ApprovalRequest, approval_id)
                approver = req.decided_by if req is not None else None
            e = EvidenceExport(requester_id=p.user_id, requester=p.username, department=p.department, channel_ids=ids,
                               start=start, end=end, purpose=purpose[:1000], case_number=case_number[:100],
                               watermark=watermark, approval_id=approval_id, approver=approver, state="queued",
                               progress=0.0, created_at=datetime.now(UTC))
            s.add(e)
            await s.flush()
            if hold:
                h = await self.holds.place(p, case_number, ids, start, end, f"evidence export {e.id}: {purpose}",
                                           export_id=e.id, s=s)
                e.hold_id = h.id
        self.queued.set()
        return e

    async def get(self, p: Principal, export_id: int) -> EvidenceExport:
        """One's own export, or anyone's with ``exports.manage``; any other looks missing."""
        async with self.sessions() as s:
            e = await s.get(EvidenceExport, export_id)
        if e is None or not (e.requester_id == p.user_id or Action.EXPORTS_MANAGE in p.actions):
            raise NotFound(f"export {export_id} not found")
        return e

    async def search(self, p: Principal, *, everyone: bool = False) -> list[EvidenceExport]:
        q = select(EvidenceExport).order_by(EvidenceExport.id.desc()).limit(LIST_LIMIT)
        if not (everyone and Action.EXPORTS_MANAGE in p.actions):
            q = q.where(EvidenceExport.requester_id == p.user_id)
        async with self.sessions() as s:
            return list((await s.scalars(q)).all())

    async def file(self, p: Principal, export_id: int, name: str) -> Path:
        """A file of a finished export (its MP4s, the manifest, the signature, the key)."""
        e = await self.get(p, export_id)
        names = {f["name"] for f in (e.files or [])} | OWN_FILES
        if e.state != "done" or name not in names:
            raise NotFound(f"export {export_id} has no file {name}")
        path = self.out / str(e.id) / name
        if not path.is_file():
            raise NotFound(f"export {export_id} has no file {name} any more")
        return path


@dataclass(slots=True)
class _Part:
    channel_id: str
    name: str
    mp4: Mp4Plan


class ExportRunner:
    """Runs queued exports one at a time, in this process (where the platform's jobs run).

    A running job beats every :data:`HEARTBEAT` seconds; one whose beat is older than
    :data:`STALE` (its process died: a restart, a lost node) is queued again by any runner, at
    its start and every time it looks for work, and made anew."""

    def __init__(self, service: ExportService, recordings: Path, objects: ObjectStore | None = None, *,
                 poll_seconds: float = 5.0, node: str = "") -> None:
        self.node = node or f"{socket.gethostname()}-{os.getpid()}"[:64]
        self.service = service
        self.sessions = service.sessions
        self.recordings = recordings
        #: Where segments moved to the object store are read from (recording/tiers.py).
        self.objects = objects
        self.poll_seconds = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self.done = 0
        #: Share of each running job's bytes written (its heartbeat saves it).
        self._share: dict[int, float] = {}

    async def start(self) -> None:
        await self.requeue_stale()
        self._task = asyncio.create_task(self._loop(), name="evidence exports")

    async def requeue_stale(self, now: datetime | None = None) -> int:
        """Queue again the running jobs whose runner stopped beating (made again from the start)."""
        cutoff = (now or datetime.now(UTC)) - timedelta(seconds=STALE)
        async with self.sessions() as s, s.begin():
            r = await s.execute(update(EvidenceExport).where(
                EvidenceExport.state == "running",
                or_(EvidenceExport.heartbeat_at.is_(None), EvidenceExport.heartbeat_at < cutoff))
                .values(state="queued", progress=0.0, runner=None))
        n = int(r.rowcount or 0)  # type: ignore[attr-defined]
        if n:
            log.warning("%d evidence export(s) whose runner stopped are queued again", n)
        return n

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            self.service.queued.clear()  # before looking: a job queued meanwhile sets it again
            try:
                await self.requeue_stale()
                while await self.run_next():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("evidence exports")
            await woken(self.service.queued, self.poll_seconds)

    async def run_next(self) -> bool:
        """Claim the oldest queued export and make it; False when none is queued."""
        async with self.sessions() as s, s.begin():
            job_id = await s.scalar(select(EvidenceExport.id).where(EvidenceExport.state == "queued")
                                    .order_by(EvidenceExport.id).limit(1))
            if job_id is None:
                return False
            claimed = await s.execute(update(EvidenceExport).where(EvidenceExport.id == job_id,
                                                                   EvidenceExport.state == "queued")
                                      .values(state="running", progress=0.0, runner=self.node,
                                              heartbeat_at=datetime.now(UTC)))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return True  # another took it
        beat = asyncio.create_task(self._beat(job_id), name=f"evidence export {job_id} heartbeat")
        try:
            files = await self.make(job_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("evidence export %s failed", job_id)
            await self._set(job_id, state="failed", error=str(exc)[:2000], finished_at=datetime.now(UTC))
        else:
            await self._set(job_id, state="done", progress=1.0, files=files, finished_at=datetime.now(UTC))
            self.done += 1
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
            self._share.pop(job_id, None)
        return True

    async def _beat(self, job_id: int) -> None:
        """The job's heartbeat, and its progress as the writing thread counts it (every second
        when it moved, at least every :data:`HEARTBEAT` seconds)."""
        said, last = 0.0, time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            share = min(self._share.get(job_id, 0.0), 0.99)
            if share == said and time.monotonic() - last < HEARTBEAT:
                continue
            with contextlib.suppress(Exception):  # a missed beat is one of several
                async with self.sessions() as s, s.begin():
                    await s.execute(update(EvidenceExport).where(EvidenceExport.id == job_id,
                                                                 EvidenceExport.runner == self.node,
                                                                 EvidenceExport.state == "running")
                                    .values(heartbeat_at=datetime.now(UTC), progress=share))
                said, last = share, time.monotonic()

    async def _set(self, job_id: int, **values: Any) -> None:
        async with self.sessions() as s, s.begin():
            await s.execute(update(EvidenceExport).where(EvidenceExport.id == job_id).values(**values))

    async def make(self, job_id: int) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            e = await s.get(EvidenceExport, job_id)
            assert e is not None
            names = {c.id: c.name for c in (await s.scalars(select(Channel).where(Channel.id.in_(e.channel_ids)))).all()}
        folder = self.service.out / str(job_id)
        if folder.exists():
            await asyncio.to_thread(shutil.rmtree, folder)
        folder.mkdir(parents=True)
        parts: list[_Part] = []
        for cid in e.channel_ids:
            parts += await self._plan(cid, e.start, e.end)
        total = sum(pt.mp4.size for pt in parts) or 1
        done = 0

        def progress(n: int) -> None:  # in the writing thread: a number the heartbeat reads
            nonlocal done
            done += n
            self._share[job_id] = done / total

        files: list[dict[str, Any]] = []
        cameras: dict[str, dict[str, Any]] = {cid: {"channel_id": cid, "name": names.get(cid), "files": []}
                                              for cid in e.channel_ids}
        for pt in parts:
            path = folder / pt.name
            digest, size = await asyncio.to_thread(_write, pt.mp4, path, progress)
            if e.watermark:
                digest, size = await asyncio.to_thread(
                    burn_watermark, path, f"{e.requester} {e.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z")
            files.append({"name": pt.name, "size": size, "sha256": digest})
            assert pt.mp4.start is not None and pt.mp4.end is not None
            cameras[pt.channel_id]["files"].append({"name": pt.name, "start": _iso(pt.mp4.start),
                                                    "end": _iso(pt.mp4.end)})
        signer = self.service.signer
        manifest = {
            "format": FORMAT,
            "export_id": e.id,
            "created_at": _iso(e.created_at),
            "finished_at": _iso(datetime.now(UTC)),
            "requester": {"user_id": e.requester_id, "username": e.requester, "department": e.department},
            "approver": e.approver,
            "approval_id": e.approval_id,
            "purpose": e.purpose,
            "case_number": e.case_number,
            "time_range": {"start": _iso(e.start), "end": _iso(e.end)},
            "cameras": list(cameras.values()),
            "files": files,
            "masks": [],
            "watermark": {"text": "requester and export time", "transcoded": True} if e.watermark else None,
            "remux": "fragmented MP4, the recorded video without transcoding, cut at fragment boundaries"
                     if not e.watermark else None,
            "hold_id": e.hold_id,
            "signature": {"algorithm": "Ed25519", "file": SIGNATURE, "public_key": PUBLIC_KEY,
                          "key_sha256": fingerprint(signer.public_pem)},
        }
        data = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode() + b"\n"
        await asyncio.to_thread(_write_files, folder, {MANIFEST: data, SIGNATURE: signer.sign(data),
                                                       PUBLIC_KEY: signer.public_pem})
        return files

    async def _plan(self, channel_id: str, start: datetime, end: datetime) -> list[_Part]:
        """The channel's MP4s over [start, end): one, or one per encoding (a new init)."""
        async with self.sessions() as s:
            rows = list((await s.scalars(
                select(Recording).where(Recording.channel_id == channel_id, Recording.start < end,
                                        or_(Recording.end.is_(None), Recording.end > start))
                .order_by(Recording.start))).all())
        out: list[_Part] = []
        segments = Segments(self.recordings, self.objects, asyncio.get_running_loop())
        at = start
        while at < end:
            try:
                mp4 = await asyncio.to_thread(plan, segments, rows, at, end)
                upto = end
            except NotFound:
                break  # nothing (more) recorded: the manifest lists no file for it
            except EncodingChanged as exc:
                upto = datetime.fromisoformat(str(exc.extra["changes_at"]))
                try:
                    mp4 = await asyncio.to_thread(plan, segments, rows, at, upto)
                except NotFound:
                    at = upto
                    continue
            out.append(_Part(channel_id, f"{channel_id}.mp4" if not out else f"{channel_id}_{len(out) + 1}.mp4", mp4))
            at = upto
        return out


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _write(mp4: Mp4Plan, path: Path, progress: Callable[[int], None]) -> tuple[str, int]:
    """Write the MP4, hashing as it goes; (SHA-256 hex, size)."""
    h = hashlib.sha256()
    n = 0
    with open(path, "wb") as f:
        for chunk in mp4.read():
            f.write(chunk)
            h.update(chunk)
            n += len(chunk)
            progress(len(chunk))
        f.flush()
        os.fsync(f.fileno())
    return h.hexdigest(), n


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).write_bytes(data)


def burn_watermark(path: Path, text: str) -> tuple[str, int]:
    """Transcode ``path`` in place with ``text`` burnt into every picture (ffmpeg drawtext,
    H.264); (SHA-256 hex, size) of the result."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RuntimeError("a watermark needs ffmpeg (scripts/setup.sh installs it)")
    font = next((f for f in FONTS if Path(f).is_file()), None)
    textfile = path.with_suffix(".txt")
    textfile.write_text(text, encoding="utf-8")
    out = path.with_suffix(".wm.mp4")
    draw = (f"drawtext=textfile='{textfile}':fontcolor=white@0.8:fontsize=h/18:box=1:boxcolor=black@0.4"
            ":x=w-tw-10:y=h-th-10" + (f":fontfile='{font}'" if font else ""))
    try:
        subprocess.run([exe, "-v", "error", "-y", "-i", str(path), "-map", "0", "-vf", draw, "-c:v", "libx264",
                        "-preset", "veryfast", "-c:a", "copy", "-movflags", "+faststart", str(out)],
                       check=True, capture_output=True, timeout=24 * 3600)
        os.replace(out, path)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"the watermark transcode failed: {exc.stderr.decode(errors='replace')[-500:]}") from exc
    finally:
        textfile.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest(), path.stat().st_size
