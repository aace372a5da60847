"""The platform's own recordings (录像) of a channel: the timeline of what was recorded and the
gaps; thin over recording/index.py.

Who may see it: whoever may play the channel's recordings back (playback, the channel in scope,
the access rules included), as for the device's own recordings (GET /channels/{id}/records).
A channel out of scope answers as one that does not exist.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter

from xueliang.access.policy import Action, authorize
from xueliang.access.resources import visible_channel
from xueliang.api.deps import PlatformDep, RegistryReader
from xueliang.errors import Invalid
from xueliang.recording.index import timeline

router = APIRouter(tags=["recordings"])

#: The longest range one timeline covers.
MAX_DAYS = 31


@router.get("/channels/{channel_id}/recordings")
async def channel_recordings(channel_id: str, start: datetime, end: datetime, platform: PlatformDep,
                             p: RegistryReader) -> dict[str, Any]:
    """The platform's segments of the channel in [start, end) and the gaps between them."""
    authorize(p, Action.PLAYBACK)
    await visible_channel(platform.registry, p, Action.PLAYBACK, channel_id)
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("start and end need a time zone (…Z or +08:00)")
    if end <= start:
        raise Invalid("end must be after start")
    if (end - start).days > MAX_DAYS:
        raise Invalid(f"a timeline covers at most {MAX_DAYS} days")
    return await timeline(platform.sessions, channel_id, start, end)
