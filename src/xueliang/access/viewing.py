"""Who may read a stream, and the viewing sessions (观看会话) of those who do.

A stream is read for the action it exists for, decided by its name alone (never by a caller's
choice of route): ``live/<channel>`` is live view of that channel, ``playback/<channel>/<id>``
and ``download/<channel>/<id>`` are one user's playback or download of it (``record/<channel>/<id>``:
playback of the platform's own recordings), ``rtp/<name>`` is an
RTP receiver opened through the API; ``transcode/h264/<name>`` is read as ``<name>``. Playback
(``record/`` too), download and receiver streams belong to whoever opened them.

Every reader of a stream is a :class:`ViewingSession` (HLS: one per viewer and stream, kept
while its requests keep coming). Each session is re-checked every few seconds against the
credential and rights it opened with, and cut when the user is disabled, the token revoked or
the scope, grant or approval that let it in is withdrawn. When it ends it becomes exactly one
audit record: who, which channel, what action, purpose or case, start, end, bytes, and why it
ended.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from xueliang.access.policy import ROLES, Action, Principal, check_role, in_scope
from xueliang.access.tokens import Credential
from xueliang.errors import DomainError, Forbidden
from xueliang.tasks import stop_task

if TYPE_CHECKING:
    from xueliang.access.audit import AuditLog

log = logging.getLogger("xueliang.access")

#: What each stream namespace is read for.
NAMESPACES: dict[str, Action] = {
    "live": Action.LIVE_VIEW,
    "playback": Action.PLAYBACK,
    "download": Action.DOWNLOAD,
    "rtp": Action.LIVE_VIEW,
    #: the platform's own recordings played back (recording/playback.py)
    "record": Action.PLAYBACK,
}
TRANSCODED = "transcode/h264/"
#: Namespaces whose streams belong to the user who opened them.
OWNED = frozenset({"playback", "download", "record", "rtp"})


@dataclass(frozen=True, slots=True)
class StreamUse:
    """What reading a stream means: the action, on which channel, and whose the stream is."""

    name: str
    namespace: str
    action: Action
    channel_id: str | None
    #: Owned streams: the user id of who opened it (None while it is being opened: nobody but
    #: a media manager may read it then).
    owner: int | None
    owned: bool

    @property
    def target(self) -> str:
        """How media tokens name it."""
        return f"channel:{self.channel_id}" if self.namespace == "live" else f"stream:{self.name}"


def stream_use(name: str, meta: Mapping[str, Any]) -> StreamUse | None:
    """What reading ``name`` needs; None for a name outside every namespace (or a stream whose
    recorded channel contradicts its name), which only media managers read."""
    base = name
    while base.startswith(TRANSCODED):
        base = base[len(TRANSCODED):]
    ns, _, rest = base.partition("/")
    action = NAMESPACES.get(ns)
    if action is None or not rest:
        return None
    channel_id: str | None = None
    if ns != "rtp":
        channel_id = rest.split("/", 1)[0]
        recorded = meta.get("channel_id")
        if recorded is not None and str(recorded) != channel_id:
            return None
        if ns != "live" and "/" not in rest:
            return None
    owner = meta.get("owner")
    return StreamUse(
        name, ns, action, channel_id, owner if isinstance(owner, int) else None, ns in OWNED
    )


def check_stream_role(p: Principal, name: str) -> None:
    """The role part of reading or handling the stream ``name``, checked before anything else
    (whether media runs, whether the stream exists), so that the answer depends on neither."""
    use = stream_use(name, {})
    action = use.action if use is not None else Action.MEDIA_MANAGE
    if action not in p.actions and Action.MEDIA_MANAGE in p.actions:
        return
    check_role(p, action)


def check_any_media_role(p: Principal) -> None:
    """Some right on media at all (listings of streams)."""
    if not {Action.LIVE_VIEW, Action.PLAYBACK, Action.DOWNLOAD, Action.MEDIA_MANAGE} & p.actions:
        check_role(p, Action.LIVE_VIEW)


def may_manage_streams(p: Principal) -> bool:
    """Stop or read anyone's stream (administration rights)."""
    return Action.MEDIA_MANAGE in p.actions


def owns(p: Principal, use: StreamUse) -> bool:
    """Not an owned stream, or this principal's own (or a media manager's to read)."""
    return not use.owned or (use.owner is not None and use.owner == p.user_id) or may_manage_streams(p)


def listed(p: Principal, use: StreamUse | None, channel: Any) -> bool:
    """Does a stream listing show this stream to ``p`` (scope and ownership, no rules: a
    listing is not a view)?"""
    if use is None:
        return may_manage_streams(p)
    if use.action not in ROLES.get(p.role, frozenset()) or not owns(p, use):
        return False
    if use.channel_id is None:
        return True
    return channel is not None and in_scope(p, channel, use.action)


@dataclass(slots=True)
class ViewingSession:
    user: Principal
    credential: Credential
    use: StreamUse
    fmt: str
    remote: str
    purpose: str | None
    case_ref: str | None
    approval_id: int | None
    #: Re-checks the rights the session opened with; raises a DomainError once they are gone.
    still_allowed: Callable[[Principal], Awaitable[None]]
    #: Bytes sent so far (read when the session ends).
    bytes_out: Callable[[], int]
    cut: Callable[[str], None]
    started: float = field(default_factory=time.time)
    #: HLS sessions end after this idle time; others when their reader closes.
    idle_after: float | None = None
    last_seen: float = field(default_factory=time.monotonic)
    extra_bytes: int = 0
    ended: bool = False
    id: int = 0
    #: HLS sessions: their key in :meth:`ViewingSessions.hls`.
    hls_key: tuple[Any, ...] | None = None


class ViewingSessions:
    """The open viewing sessions of this process: re-checked, cut, audited once each."""

    def __init__(
        self,
        audit: AuditLog,
        recheck: Callable[[Credential], Awaitable[Principal]],
        *,
        every: float = 2.0,
    ) -> None:
        self.audit = audit
        self._recheck_credential = recheck
        self.every = every
        self.open: dict[int, ViewingSession] = {}
        self._hls: dict[tuple[Any, ...], ViewingSession] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self.cuts = 0

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="viewing-recheck")

    async def stop(self) -> None:
        await stop_task(self._task)
        self._task = None
        for s in list(self.open.values()):
            s.cut("platform stopping")
            self.end(s, "platform stopping")

    # ---- sessions -----------------------------------------------------------------------
    def begin(self, s: ViewingSession) -> ViewingSession:
        s.id = next(self._ids)
        self.open[s.id] = s
        return s

    def hls(self, key: tuple[Any, ...], make: Callable[[], ViewingSession], size: int) -> ViewingSession:
        """The HLS session of ``key`` (user, stream, credential), opened on its first request;
        each playlist or segment request keeps it alive and adds its bytes."""
        s = self._hls.get(key)
        if s is None or s.ended:
            s = self.begin(make())
            s.hls_key = key
            self._hls[key] = s
        s.last_seen = time.monotonic()
        s.extra_bytes += size
        return s

    def end(self, s: ViewingSession, reason: str) -> None:
        """Close the session's audit record (once)."""
        if s.ended:
            return
        s.ended = True
        self.open.pop(s.id, None)
        if s.hls_key is not None and self._hls.get(s.hls_key) is s:
            del self._hls[s.hls_key]
        end = time.time()
        p = s.user
        detail: dict[str, Any] = {
            "stream": s.use.name,
            "format": s.fmt,
            "start": datetime.fromtimestamp(s.started, UTC).isoformat(),
            "end": datetime.fromtimestamp(end, UTC).isoformat(),
            "seconds": round(end - s.started, 3),
            "bytes": s.bytes_out() + s.extra_bytes,
            "ended": reason,
        }
        if s.approval_id is not None:
            detail["approval_id"] = s.approval_id
        if p.token_id is not None:
            detail["api_token"] = p.token_id
        self.audit.append(
            f"{s.use.action.value}.session",
            "ok",
            actor_id=p.user_id,
            actor=p.username,
            role=p.role,
            actor_department=p.department,
            resource_type="channel" if s.use.channel_id else "stream",
            resource_id=s.use.channel_id or s.use.name,
            ip=s.remote,
            purpose=s.purpose,
            case_ref=s.case_ref,
            detail=detail,
        )

    # ---- re-checks ----------------------------------------------------------------------
    async def recheck(self) -> int:
        """Re-check every open session once; cut those whose rights are gone. Returns the cuts."""
        cut = 0
        now = time.monotonic()
        for s in list(self.open.values()):
            if s.ended:
                continue
            if s.idle_after is not None and now - s.last_seen > s.idle_after:
                self.end(s, "idle")
                continue
            try:
                p = await self._recheck_credential(s.credential)
                await s.still_allowed(p)
            except DomainError as exc:
                if s.ended:
                    continue
                log.info("viewing session %s of %s cut: %s", s.use.name, s.user.username, exc.detail)
                s.cut(exc.detail)
                self.end(s, f"cut: {exc.detail}")
                self.cuts += 1
                cut += 1
            except Exception:  # a broken check must not stop the others being checked
                log.exception("re-checking viewing session %s failed", s.use.name)
        return cut

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.recheck()


def check_standing(p: Principal, use: StreamUse, channel: Any, approval_id: int | None) -> None:
    """What a use of a stream that was authorized when it opened still needs: the role, the
    stream still the caller's, its channel still in scope, the approval it opened under still
    granted. No rule is asked again and no approval use is taken again (the opening did both).
    Raises Forbidden."""
    check_role(p, use.action)
    if not owns(p, use):
        raise Forbidden("the stream is no longer yours to read")
    if channel is not None:
        if not in_scope(p, channel, use.action):
            raise Forbidden(f"channel {channel.id} is no longer in your scope")
        if approval_id is not None and not approval_stands(p, approval_id, use.action, channel):
            raise Forbidden(f"approval {approval_id} was withdrawn or has expired")


def approval_stands(p: Principal, approval_id: int, action: Action, channel: Any) -> bool:
    """Is the approval a session opened under still granted (not withdrawn, not expired)?
    Its uses are not counted again: the session took its use when it opened."""
    if p.book is None:
        return False
    now = time.time()
    cid = getattr(channel, "id", None)
    for g in p.book.grants_of(p):
        if g.kind != "approval" or g.approval_id != approval_id or action.value not in g.actions:
            continue
        if g.ids is not None and cid not in g.ids:
            continue
        if g.in_window(now):
            return True
    return False
