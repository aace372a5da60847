"""What the survey's import and export both ask of the registry: rows by many keys, read in
chunks, and the order of a unit's systems (segments ``"1"``, ``"2"``, … by number)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

CHUNK = 500


async def _in_chunks(
    s: AsyncSession, stmt_of: Callable[[list[Any]], Any], keys: Sequence[Any]
) -> list[Any]:
    out: list[Any] = []
    keys = list(keys)
    for i in range(0, len(keys), CHUNK):
        out.extend((await s.execute(stmt_of(keys[i : i + CHUNK]))).all())
    return out


def _segment_key(seg: str) -> tuple[int, int, str]:
    return (0, int(seg), "") if seg.isdigit() else (1, 0, seg)
