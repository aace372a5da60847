"""Inspections (巡检): every camera's picture sampled through the media hub and diagnosed.

A camera is inspected every ``diagnosis.interval_seconds[class]`` (class I hourly, others every
4 hours by default), at a moment fixed by its ID within the interval, so the load spreads
evenly over the hour instead of arriving at once. The sample is a few key frames read from the
hub: a stream someone is watching is reused (the camera is not asked twice); otherwise one is
opened, sampled and closed again, unless a viewer came meanwhile. A sample that gets no
picture is a signal loss, and the hub's failed open counts against the picture rate (出图率).

A fault is confirmed when two samples in a row show it: then ``picture.fault`` is published
(the state history makes the point faulty, and the fault tickets follow); a sample without
it clears it and publishes ``picture.ok``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.bus import Bus
from xueliang.config import DiagnosisConfig
from xueliang.db.tables import Channel, Device, Diagnosis, DiagnosisChannel
from xueliang.diagnosis.detectors import Image, Reference, diagnose
from xueliang.diagnosis.faults import Thresholds
from xueliang.errors import NotFound
from xueliang.media.frame import ParameterSets
from xueliang.media.hub import MediaHub
from xueliang.media.snapshot import keyframe_to_bgr
from xueliang.objects.store import ObjectStore

log = logging.getLogger("xueliang.diagnosis")

REFERENCES = "diagnosis/reference/"
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
        self._references: dict[str, tuple[datetime | None, Reference | None]] = {}
        self._last_tick: float | None = None
        self.inspected = 0

    # ---- sampling ---------------------------------------------------------------------------
    async def sample(self, channel_id: str) -> tuple[list[Image], str | None]:
        """Up to ``sample_frames`` key frames of the camera within ``sample_seconds``, decoded;
        and why there are none, if none."""
        name = f"live/{channel_id}"
        was_running = self.hub.stream(name) is not None
        try:
            stream = await self.hub.acquire(name, params={"channel_id": channel_id},
                                            timeout=max(4.0, self.cfg.sample_seconds))
        except Exception as exc:  # the hub published the failed attempt (出图率)
            return [], f"{type(exc).__name__}: {exc}"[:400]
        reader = stream.reader("frames", limit=16 * 1024 * 1024, info={"purpose": "inspection"})
        keys: list[Any] = []
        seen: set[int] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.sample_seconds
        try:
            while len(keys) < self.cfg.sample_frames:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    chunk = await asyncio.wait_for(reader.get(), left)
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
            return [], "no key frame within the sample"
        ps = ParameterSets(stream.parameter_sets.vps, stream.parameter_sets.sps, stream.parameter_sets.pps)
        frames: list[Image] = []
        for k in keys[: self.cfg.sample_frames]:
            try:
                frames.append(np.asarray(await asyncio.to_thread(keyframe_to_bgr, codec, ps, k), np.uint8))
            except ValueError as exc:
                log.info("inspection of %s: a key frame did not decode: %s", channel_id, exc)
        return frames, None if frames else "no key frame decoded"

    # ---- calibration ------------------------------------------------------------------------
    async def _calibration(self, channel_id: str) -> DiagnosisChannel | None:
        async with self.sessions() as s:
            return await s.get(DiagnosisChannel, channel_id)

    async def reference(self, channel_id: str, cal: DiagnosisChannel | None) -> Reference | None:
        if cal is None or cal.reference_key is None:
            return None
        cached = self._references.get(channel_id)
        if cached is not None and cached[0] == cal.reference_at:
            return cached[1]
        try:
            img = _decode_jpeg(await self.objects.get(cal.reference_key))
            ref: Reference | None = Reference(img)
        except Exception as exc:
            log.warning("reference picture of %s unreadable: %s", channel_id, exc)
            ref = None
        self._references[channel_id] = (cal.reference_at, ref)
        return ref

    async def set_reference(self, channel_id: str, by: str) -> dict[str, Any]:
        """Take the camera's picture now as its reference (基准图)."""
        frames, why = await self.sample_one(channel_id)
        if not frames:
            raise NotFound(f"channel {channel_id} gives no picture to take as its reference ({why})")
        key = f"{REFERENCES}{channel_id}.jpg"
        await self.objects.put(key, _encode_jpeg(frames[-1]))
        now = datetime.now(UTC)
        async with self.sessions() as s, s.begin():
            cal = await s.get(DiagnosisChannel, channel_id)
            if cal is None:
                cal = DiagnosisChannel(channel_id=channel_id)
                s.add(cal)
            cal.reference_key, cal.reference_at, cal.reference_by = key, now, by
        self._references.pop(channel_id, None)
        return {"channel_id": channel_id, "reference_at": now, "reference_by": by}

    async def sample_one(self, channel_id: str) -> tuple[list[Image], str | None]:
        frames, why = await self.sample(channel_id)
        return frames[-1:], why

    async def set_thresholds(self, channel_id: str, layer: Mapping[str, Mapping[str, float]] | None) -> None:
        Thresholds.merged(layer)  # refuses unknown codes, profiles and ranges (ValueError)
        async with self.sessions() as s, s.begin():
            cal = await s.get(DiagnosisChannel, channel_id)
            if cal is None:
                cal = DiagnosisChannel(channel_id=channel_id)
                s.add(cal)
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
            last = await s.scalar(select(Diagnosis).where(Diagnosis.channel_id == channel_id)
                                  .order_by(Diagnosis.id.desc()).limit(1))
        cal = await self._calibration(channel_id)
        ref = await self.reference(channel_id, cal)
        frames, why = await self.sample(channel_id)
        cls = point_class if point_class in (1, 2, 3) else 3
        thresholds = Thresholds.merged(self.cfg.thresholds.get(cls), cal.thresholds if cal is not None else None)
        d = await asyncio.to_thread(diagnose, frames, ref, thresholds)
        before_faults = set(last.faults) if last is not None else set()
        before = set(last.confirmed) if last is not None else set()
        now_faults = set(d.faults)
        # two samples in a row confirm a fault; a sample without it clears it
        confirmed = (before & now_faults) | (before_faults & now_faults)
        if frames:
            await self.objects.put(f"{SNAPSHOTS}{channel_id}.jpg", _encode_jpeg(frames[-1]))
        row = Diagnosis(channel_id=channel_id, at=datetime.now(UTC), picture=bool(frames), faults=d.faults,
                        confirmed=sorted(confirmed), scores={k: round(v, 4) for k, v in d.scores.items()},
                        profile=d.profile, frames=d.frames, reason=why, by=by)
        async with self.sessions() as s, s.begin():
            s.add(row)
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
            "reason": r.reason, "by": r.by}
