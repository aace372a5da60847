"""Real recorded segments, quickly: a clip encoded once with PyAV (libx264), muxed as the writer
does (the platform's Fmp4Muxer, fragments of one second, decode times from 0), and laid out
as many segments as a test needs (the same bytes at later starts: each segment's timeline
starts at 0, as the writer's do)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.media._media_clips import encode
from xueliang.db.tables import Recording
from xueliang.media.fmp4 import Fmp4Muxer
from xueliang.media.frame import Codec
from xueliang.recording.index import segment_path

FPS = 25


@cache
def segment_bytes(seconds: int = 60, width: int = 160, height: int = 96, gop: int = 50,
                  fragment_frames: int = 25) -> bytes:
    """One segment of ``seconds`` (key frames every ``gop`` frames; fragments of
    ``fragment_frames``: with gop 50 every other fragment starts without a key frame)."""
    frames, ps = encode(Codec.H264, width, height, seconds * FPS, gop, 0)
    mux = Fmp4Muxer(Codec.H264, ps, base_dts=frames[0].dts)
    out = [mux.init_segment()]
    for i in range(0, len(frames), fragment_frames):
        chunk = list(frames[i:i + fragment_frames])
        nxt = frames[i + fragment_frames].dts if i + fragment_frames < len(frames) else chunk[-1].dts + 3600
        out.append(mux.fragment(chunk, end_dts=nxt))
    return b"".join(out)


async def lay_out(sessions: async_sessionmaker[AsyncSession], root: Path, channel_id: str, start: datetime,
                  count: int, seconds: int = 60, gap_after: int | None = None,
                  data: bytes | None = None) -> list[Recording]:
    """``count`` closed segments of ``seconds`` from ``start`` (hard links of one file), indexed;
    a minute's gap after segment number ``gap_after``."""
    data = data if data is not None else segment_bytes(seconds)
    master = root / f".master-{len(data)}-{hash(data) & 0xFFFF}.mp4"
    master.parent.mkdir(parents=True, exist_ok=True)
    if not master.exists():
        master.write_bytes(data)
    rows: list[Recording] = []
    at = start
    for i in range(count):
        rel = segment_path(channel_id, at)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.link(master, path)
        rows.append(Recording(channel_id=channel_id, start=at, end=at + timedelta(seconds=seconds), size=len(data),
                              path=rel, tier="local", state="closed"))
        at += timedelta(seconds=seconds)
        if gap_after is not None and i == gap_after:
            at += timedelta(minutes=1)
    async with sessions() as s, s.begin():
        s.add_all(rows)
    return rows
