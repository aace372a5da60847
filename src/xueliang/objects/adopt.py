"""Files kept in plain folders before object storage existed (``var/reports``, ``var/tickets``)
move into the store on start, once, so that an upgrade loses no report or ticket photo."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from xueliang.errors import Invalid
from xueliang.objects.store import ObjectStore, check_key

log = logging.getLogger("xueliang.objects")

#: folder under var_dir → key prefix in the store.
FOLDERS = {"reports": "reports/", "tickets": "tickets/"}


async def adopt_folders(store: ObjectStore, var_dir: Path) -> int:
    """Move every file of the old folders into the store (a file is removed only once stored);
    the number moved."""
    moved = 0
    for folder, prefix in FOLDERS.items():
        d = var_dir / folder
        if not d.is_dir():
            continue
        for path in sorted(await asyncio.to_thread(_files, d)):
            try:
                key = check_key(prefix + path.name)
            except Invalid:
                log.warning("left %s where it is: its name cannot be an object key", path)
                continue
            if await store.stat(key) is None:
                await store.put_file(key, path)
            await asyncio.to_thread(path.unlink)
            moved += 1
        try:
            d.rmdir()
        except OSError:  # something was left in it
            pass
    if moved:
        log.info("moved %d files from %s into the object store", moved, var_dir)
    return moved


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file()]
