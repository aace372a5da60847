"""Inspections (巡检): every camera's picture sampled through the media hub and diagnosed.

A camera is inspected every ``diagnosis.interval_seconds[class]`` (class I hourly, others every
4 hours by default), at a moment fixed by its ID within the interval, so the load spreads
evenly over the hour instead of arriving at once. The sample is a few key frames read from the
hub: a stream someone is watching is reused (the camera is not asked twice); otherwise one is
opened, sampled and closed again, unless a viewer came meanwhile. A sample that gets no
picture is a signal loss, and the hub's failed open counts against the picture rate (出图率).

Decoding and diagnosis run in worker processes (``diagnosis.workers``) at a lower priority than
the server: the event loop that serves viewers never waits on them.

A camera's reference picture (基准图) is taken at its acceptance, its first inspection whose
picture the absolute checks find healthy; an operator renews it (``set_reference``).

A fault is confirmed when two samples in a row show it: then ``picture.fault`` is published
(the state history makes the point faulty, and the fault tickets follow); a sample without
it clears it and publishes ``picture.ok``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import time
import zlib
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.bus import Bus
from xueliang.config import DiagnosisConfig
from xueliang.db.tables import Channel, Device, Diagnosis, DiagnosisChannel
from xueliang.diagnosis.faults import Diagnosis as Verdict
from xueliang.diagnosis.faults import Thresholds
from xueliang.errors import NotFound
from xueliang.media.frame import Codec, Frame, ParameterSets
from xueliang.media.hub import MediaHub
from xueliang.media.snapshot import keyframe_to_bgr
from xueliang.objects.store import ObjectStore

if TYPE_CHECKING:  # the detectors (OpenCV) are loaded in the worker processes only
    from xueliang.diagnosis.detectors import Image

log = logging.getLogger("xueliang.diagnosis")

REFERENCES = "diagnosis/reference/"
#: ``reference_by`` of a reference taken at the camera's first healthy inspection.
ACCEPTANCE = "acceptance"
#: GB/T 28181 PTZType of cameras that move: 1 dome (球机), 4 remote-controlled box (遥控枪机).
PTZ_TYPES = (1, 4)
SNAPSHOTS = "diagnosis/snapshot/"


def _encode_jpeg(img: Image) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(buf)


def _decode_jpeg(data: bytes) -> Image:
    import cv2

    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("not a picture")
    return np.asarray(img, np.uint8)


class Sample(NamedTuple):
    """Key frames of one camera as the hub had them (what goes to the worker process)."""

    codec: Codec
    parameter_sets: tuple[bytes | None, bytes | None, bytes | None]
    frames: list[Frame]


def _lower_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(10)  # viewers first: the worker takes what the server leaves


def _decoded(sample: Sample | None) -> list[Image]:
    if sample is None:
        return []
    ps = ParameterSets(*sample.parameter_sets)
    out: list[Image] = []
    for f in sample.frames:
        try:
            out.append(np.asarray(keyframe_to_bgr(sample.codec, ps, f), np.uint8))
        except ValueError as exc:
            log.info("a key frame did not decode: %s", exc)
    return out


def _last_jpeg(frames: list[Image]) -> bytes | None:
    return _encode_jpeg(frames[-1]) if frames else None


def _diagnose_sample(sample: Sample | None, reference: bytes | None,
                     thresholds: Thresholds) -> tuple[Verdict, bytes | None]:
    """In the worker: decode, diagnose against the reference picture (JPEG), and the last
    picture as JPEG (None: no picture)."""
    from xueliang.diagnosis.detectors import Reference, diagnose

    ref = None
    if reference is not None:
        try:
            ref = Reference(_decode_jpeg(reference))
        except ValueError as exc:
            log.warning("the reference picture is unreadable (diagnosed without it): %s", exc)
    frames = _decoded(sample)
    return diagnose(frames, ref, thresholds), _last_jpeg(frames)


def _last_picture(sample: Sample | None) -> bytes | None:
    return _last_jpeg(_decoded(sample))


def muted(windows: list[str], local: datetime) -> bool:
    """Inside one of the daily windows "HH:MM-HH:MM" (one may run past midnight)."""
    m = local.hour * 60 + local.minute
    for w in windows:
        a, b = w.split("-")
        start = int(a[:2]) * 60 + int(a[3:])
        end = int(b[:2]) * 60 + int(b[3:])
        if (start <= m < end) if start <= end else (m >= start or m < end):
            return True
    return False


def slot(channel_id: str, interval: float) -> float:
    """The camera's moment within its interval (seconds), fixed by its ID."""
    return (zlib.crc32(channel_id.encode()) % 1_000_000) / 1_000_000 * interval


class Inspector:
    def __init__(self, cfg: DiagnosisConfig, sessions: async_sessionmaker[AsyncSession], bus: Bus, hub: MediaHub,
                 objects: ObjectStore, *, utc_offset_hours: float = 8.0) -> None:
        for k, layer in cfg.thresholds.items():
            try:
                Thresholds.merged(layer)
            except ValueError as exc:  # a clear error on start, naming the setting
                raise ValueError(f"diagnosis.thresholds.{k}: {exc}") from None
        self.cfg = cfg
        self.sessions = sessions
        self.bus = bus
        self.hub = hub
        self.objects = objects
        self.offset = timedelta(hours=utc_offset_hours)
        self._limit = asyncio.Semaphore(cfg.concurrency)
        self._busy: set[str] = set()
        self._last_tick: float | None = None
        self._pool: ProcessPoolExecutor | None = None
        self.inspected = 0

    # ---- sampling ---------------------------------------------------------------------------
    async def sample(self, channel_id: str) -> tuple[Sample | None, str | None]:
        """Up to ``sample_frames`` key frames of the camera within ``sample_seconds`` (encoded, as
        the hub has them); or why there are none."""
        name = f"live/{channel_id}"
        was_running = self.hub.stream(name) is not None
        try:
            stream = await self.hub.acquire(name, params={"channel_id": channel_id},
                                            timeout=max(4.0, self.cfg.sample_seconds))
        except Exception as exc:  # the hub published the failed attempt (出图率)
            return None, f"{type(exc).__name__}: {exc}"[:400]
        reader = stream.reader("frames", limit=16 * 1024 * 1024, info={"purpose": "inspection"})
        keys: list[Frame] = []
        seen: set[int] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.sample_seconds
        try:
            while len(keys) < self.cfg.sample_frames:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    async with asyncio.timeout(left):
                        chunk = await reader.get()
                except TimeoutError:
                    break
                if not chunk:
                    break  # the stream ended
                for f in chunk:
                    if f.keyframe and f.codec.is_video and f.pts not in seen:
                        seen.add(f.pts)
                        keys.append(f)
        finally:
            reader.close()
            if not was_running and stream.readers == 0:
                await self.hub.close(name, "inspected")
        codec = stream.codec
        if codec is None or not keys:
            return None, "no key frame within the sample"
        ps = stream.parameter_sets
        return Sample(codec, (ps.vps, ps.sps, ps.pps), keys[: self.cfg.sample_frames]), None

    async def _work(self, fn: Any, *args: Any) -> Any:
        """Run CPU work (decoding, diagnosis) in the worker process: the server's event loop, and
        with it every viewer, never waits on it (a thread would hold the GIL in turns)."""
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.cfg.workers, mp_context=ctx, initializer=_lower_priority)
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)

    # ---- calibration ------------------------------------------------------------------------
    async def _reference_jpeg(self, channel_id: str, cal: DiagnosisChannel | None) -> bytes | None:
        """The reference picture as kept (read at each inspection: nothing per camera is held in
        memory, which with 100,000 cameras would not fit)."""
        if cal is None or cal.reference_key is None:
            return None
        try:
            return await self.objects.get(cal.reference_key)
        except Exception as exc:
            log.warning("reference picture of %s unreadable: %s", channel_id, exc)
            return None

    @staticmethod
    async def _calibration_of(s: AsyncSession, channel_id: str) -> DiagnosisChannel:
        """The camera's calibration row, made when it has none yet."""
        cal = await s.get(DiagnosisChannel, channel_id)
        if cal is None:
            cal = DiagnosisChannel(channel_id=channel_id)
            s.add(cal)
        return cal

    async def set_reference(self, channel_id: str, by: str) -> dict[str, Any]:
        """Take the camera's picture now as its reference (基准图)."""
        sample, why = await self.sample(channel_id)
        jpeg = await self._work(_last_picture, sample) if sample is not None else None
        if jpeg is None:
            raise NotFound(f"channel {channel_id} gives no picture to take as its reference ({why or 'no key frame decoded'})")
        await self.objects.put(f"{REFERENCES}{channel_id}.jpg", jpeg)
        now = datetime.now(UTC)
        async with self.sessions() as s, s.begin():
            await self._keep_reference(s, channel_id, now, by)
        return {"channel_id": channel_id, "reference_at": now, "reference_by": by}

    async def _keep_reference(self, s: AsyncSession, channel_id: str, at: datetime, by: str) -> None:
        cal = await self._calibration_of(s, channel_id)
        cal.reference_key, cal.reference_at, cal.reference_by = f"{REFERENCES}{channel_id}.jpg", at, by

    async def set_thresholds(self, channel_id: str, layer: Mapping[str, Mapping[str, float]] | None) -> None:
        Thresholds.merged(layer)  # refuses unknown codes, profiles and ranges (ValueError)
        async with self.sessions() as s, s.begin():
            cal = await self._calibration_of(s, channel_id)
            cal.thresholds = {k: dict(v) for k, v in (layer or {}).items()}

    # ---- one inspection ---------------------------------------------------------------------
    async def inspect(self, channel_id: str, *, by: str = "scheduler") -> dict[str, Any]:
        """Sample, diagnose, keep the result and the snapshot; confirm or clear faults."""
        async with self._limit:
            self._busy.add(channel_id)
            try:
                return await self._inspect(channel_id, by)
            finally:
                self._busy.discard(channel_id)

    async def _inspect(self, channel_id: str, by: str) -> dict[str, Any]:
        async with self.sessions() as s:
            ch = await s.get(Channel, channel_id)
            if ch is None:
                raise NotFound(f"channel {channel_id} not found")
            point_class = ch.point_class
            ptz = ch.ptz_type in PTZ_TYPES
            last = await s.scalar(select(Diagnosis).where(Diagnosis.channel_id == channel_id)
                                  .order_by(Diagnosis.id.desc()).limit(1))
            cal = await s.get(DiagnosisChannel, channel_id)
        ref = await self._reference_jpeg(channel_id, cal)
        sample, why = await self.sample(channel_id)
        cls = point_class if point_class in (1, 2, 3) else 3
        thresholds = Thresholds.merged(self.cfg.thresholds.get(cls), cal.thresholds if cal is not None else None)
        d, jpeg = await self._work(_diagnose_sample, sample, ref, thresholds)
        if sample is not None and jpeg is None:
            why = "no key frame decoded"
        before = set(last.confirmed) if last is not None else set()
        # two samples in a row confirm a fault, a sample without it clears it: what this one and
        # the last both show (the last one's confirmed faults are among what it showed)
        confirmed = (set(last.faults) if last is not None else set()) & set(d.faults)
        if jpeg is not None:
            await self.objects.put(f"{SNAPSHOTS}{channel_id}.jpg", jpeg)
        # a PTZ camera is inspected at its home preset: its reference is that view, so another
        # scene says it did not go back (a patrol or an operator left it elsewhere)
        home = None if not ptz or ref is None or jpeg is None else "scene_changed" not in d.faults
        now = datetime.now(UTC)
        # acceptance: a camera without a reference takes its first healthy picture as one (the
        # absolute checks found nothing wrong); an operator renews it when the scene changes for good
        accept = (cal is None or cal.reference_key is None) and jpeg is not None and not d.faults
        if accept and jpeg is not None:
            await self.objects.put(f"{REFERENCES}{channel_id}.jpg", jpeg)
        row = Diagnosis(channel_id=channel_id, at=now, picture=jpeg is not None, faults=d.faults,
                        confirmed=sorted(confirmed), scores={k: round(v, 4) for k, v in d.scores.items()},
                        profile=d.profile, frames=d.frames, reason=why, home_preset=home, by=by)
        async with self.sessions() as s, s.begin():
            s.add(row)
            if accept:
                await self._keep_reference(s, channel_id, now, ACCEPTANCE)
        self.inspected += 1
        raised, cleared = confirmed - before, before - confirmed
        if confirmed:
            # every time, not only on a change: a state history that restarted learns it again
            # (it stores a repeated state once)
            self.bus.publish("picture.fault", channel_id, faults=sorted(confirmed), device=ch.device_id,
                             raised=sorted(raised))
        elif cleared:
            self.bus.publish("picture.ok", channel_id, cleared=sorted(cleared), device=ch.device_id)
        return result_json(row)

    # ---- the plan -----------------------------------------------------------------------------
    async def due(self, now: float, since: float) -> list[str]:
        """Cameras whose moment fell in (since, now], of devices that are online (an offline
        one is already a fault of its own)."""
        async with self.sessions() as s:
            rows = (await s.execute(
                select(Channel.id, Channel.point_class).join(Device, Device.id == Channel.device_id)
                .where(Channel.kind == "camera", Device.online.is_(True), Channel.status != "OFF")
            )).all()
        out = []
        for cid, pc in rows:
            interval = self.cfg.interval_seconds.get(pc if pc in (1, 2, 3) else 3, 4 * 3600.0)
            at = slot(cid, interval)
            a, b = since % interval, now % interval
            hit = (a < at <= b) if a <= b else (at > a or at <= b)
            if hit or now - since >= interval:
                out.append(cid)
        return out

    async def run_due(self, done: str | None) -> str | None:
        """The scheduler's job: inspect what is due since the last run (at most one interval)."""
        now = time.time()
        since = self._last_tick if self._last_tick is not None else now - 60.0
        self._last_tick = now
        if muted(self.cfg.mute, datetime.now(UTC) + self.offset):
            return done
        due = [c for c in await self.due(now, since) if c not in self._busy]
        if due:
            results = await asyncio.gather(*(self.inspect(c) for c in due), return_exceptions=True)
            for c, r in zip(due, results, strict=True):
                if isinstance(r, BaseException):
                    log.warning("inspection of %s failed: %s", c, r)
        return done

    async def retention(self, done: str | None) -> str | None:
        """Drop results older than the retention, keeping each camera's latest."""
        edge = datetime.now(UTC) - timedelta(days=self.cfg.retention_days)
        async with self.sessions() as s, s.begin():
            latest = select(func.max(Diagnosis.id)).group_by(Diagnosis.channel_id)
            await s.execute(delete(Diagnosis).where(Diagnosis.at < edge, Diagnosis.id.not_in(latest)))
        return done


def result_json(r: Diagnosis) -> dict[str, Any]:
    return {"id": r.id, "channel_id": r.channel_id, "at": r.at, "picture": r.picture, "faults": list(r.faults),
            "confirmed": list(r.confirmed), "scores": dict(r.scores), "profile": r.profile, "frames": r.frames,
            "reason": r.reason, "home_preset": r.home_preset, "by": r.by}
