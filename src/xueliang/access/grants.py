"""Sharing grants: a set of channels (by filter or explicit ids) shared with a department or a
user, for some actions, optionally until a date. Stored in access_grants; compiled into the
PolicyBook (access/book.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.access.book import GrantSpec, PolicyBook
from xueliang.access.policy import CHANNEL_ACTIONS, Action
from xueliang.access.scope import Selector
from xueliang.db.tables import AccessGrant, AccessGrantChannel, Channel, User
from xueliang.errors import Invalid, NotFound

MAX_IDS = 100_000
DEFAULT_ACTIONS = (Action.LIVE_VIEW.value, Action.PLAYBACK.value)


def _ts(d: datetime | None) -> float | None:
    if d is None:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.timestamp()


def spec_of(g: AccessGrant, ids: frozenset[str] | None) -> GrantSpec:
    return GrantSpec(
        id=g.id,
        kind=g.kind,
        department=g.grantee_department,
        user_id=g.grantee_user_id,
        selector=Selector.from_json(g.selector),
        ids=ids,
        actions=frozenset(g.actions),
        valid_from=_ts(g.valid_from) or 0.0,
        valid_until=_ts(g.valid_until),
        max_uses=g.max_uses,
        uses=g.uses,
        approval_id=g.approval_id,
        reason=g.reason,
    )


def describe(g: AccessGrant, channel_count: int | None = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    until = g.valid_until.replace(tzinfo=UTC) if g.valid_until and g.valid_until.tzinfo is None else g.valid_until
    state = (
        "revoked" if g.revoked_at is not None
        else "lapsed" if until is not None and until <= now
        else "used" if g.max_uses is not None and g.uses >= g.max_uses
        else "active"
    )
    return {
        "id": g.id,
        "kind": g.kind,
        "department": g.grantee_department,
        "user_id": g.grantee_user_id,
        "filter": g.selector or {},
        "channel_count": channel_count,
        "actions": g.actions,
        "valid_from": g.valid_from,
        "valid_until": g.valid_until,
        "max_uses": g.max_uses,
        "uses": g.uses,
        "reason": g.reason,
        "created_by": g.created_by,
        "created_at": g.created_at,
        "revoked_at": g.revoked_at,
        "revoked_by": g.revoked_by,
        "approval_id": g.approval_id,
        "state": state,
    }


class GrantService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], book: PolicyBook) -> None:
        self.sessions = sessions
        self.book = book

    async def create(
        self,
        *,
        department: str | None = None,
        user_id: int | None = None,
        selector: Mapping[str, Any] | None = None,
        channel_ids: Iterable[str] | None = None,
        actions: Iterable[str] | None = None,
        valid_until: datetime | None = None,
        reason: str = "",
        created_by: str = "",
        kind: str = "share",
        max_uses: int | None = None,
        approval_id: int | None = None,
    ) -> AccessGrant:
        if (department is None) == (user_id is None):
            raise Invalid("a grant goes to exactly one of: a department, a user")
        try:
            sel = Selector.from_json(selector)
        except (ValueError, TypeError) as exc:
            raise Invalid(f"filter: {exc}") from exc
        ids = sorted(set(channel_ids or ()))
        if len(ids) > MAX_IDS:
            raise Invalid(f"at most {MAX_IDS} explicit channels per grant")
        if sel.empty and not ids:
            raise Invalid("say what is shared: a filter (divisions, departments, classes...) or channel ids")
        acts = sorted(set(actions or DEFAULT_ACTIONS))
        bad = [a for a in acts if a not in {x.value for x in CHANNEL_ACTIONS}]
        if bad or not acts:
            raise Invalid(f"grants give channel actions only ({', '.join(sorted(CHANNEL_ACTIONS))}); not {bad}")
        now = datetime.now(UTC)
        if valid_until is not None:
            if valid_until.tzinfo is None:
                valid_until = valid_until.replace(tzinfo=UTC)
            if valid_until <= now:
                raise Invalid("valid_until is in the past")
        async with self.sessions() as s, s.begin():
            if user_id is not None and await s.get(User, user_id) is None:
                raise NotFound(f"user {user_id} not found")
            if ids:
                found: set[str] = set()
                for i in range(0, len(ids), 5000):
                    chunk = ids[i : i + 5000]
                    found.update((await s.scalars(select(Channel.id).where(Channel.id.in_(chunk)))).all())
                missing = [c for c in ids if c not in found]
                if missing:
                    raise Invalid(f"{len(missing)} channel(s) not in the registry: {', '.join(missing[:10])}")
            g = AccessGrant(
                kind=kind,
                grantee_department=department,
                grantee_user_id=user_id,
                selector=sel.to_json() or None,
                has_ids=bool(ids),
                actions=acts,
                valid_from=now,
                valid_until=valid_until,
                max_uses=max_uses,
                uses=0,
                reason=reason[:400],
                created_by=created_by,
                approval_id=approval_id,
            )
            s.add(g)
            await s.flush()
            if ids:
                from sqlalchemy import insert

                await s.execute(insert(AccessGrantChannel), [{"grant_id": g.id, "channel_id": c} for c in ids])
        if sel.groups:
            # Catalog groups change as catalogs arrive: the share takes the hierarchy as it is
            # now, not as it was at the last reload.
            await self.load()
        else:
            self.book.put(spec_of(g, frozenset(ids) if ids else None))
        return g

    async def revoke(self, grant_id: int, by: str) -> AccessGrant:
        async with self.sessions() as s, s.begin():
            g = await s.get(AccessGrant, grant_id)
            if g is None:
                raise NotFound(f"grant {grant_id} not found")
            if g.revoked_at is None:
                g.revoked_at = datetime.now(UTC)
                g.revoked_by = by
        self.book.drop(grant_id)
        return g

    async def get(self, grant_id: int) -> tuple[AccessGrant, list[str]]:
        async with self.sessions() as s:
            g = await s.get(AccessGrant, grant_id)
            if g is None:
                raise NotFound(f"grant {grant_id} not found")
            ids = list(
                (await s.scalars(
                    select(AccessGrantChannel.channel_id).where(AccessGrantChannel.grant_id == grant_id)
                    .order_by(AccessGrantChannel.channel_id).limit(10_000)
                )).all()
            )
        return g, ids

    async def list(
        self, *, department: str | None = None, user_id: int | None = None, active_only: bool = True,
        kind: str | None = None, limit: int = 1000,
    ) -> list[dict[str, Any]]:
        from sqlalchemy import func

        stmt = select(AccessGrant).order_by(AccessGrant.id.desc()).limit(limit)
        if department is not None:
            stmt = stmt.where(AccessGrant.grantee_department == department)
        if user_id is not None:
            stmt = stmt.where(AccessGrant.grantee_user_id == user_id)
        if kind is not None:
            stmt = stmt.where(AccessGrant.kind == kind)
        if active_only:
            now = datetime.now(UTC)
            stmt = stmt.where(
                AccessGrant.revoked_at.is_(None),
                or_(AccessGrant.valid_until.is_(None), AccessGrant.valid_until > now),
            )
        async with self.sessions() as s:
            rows = list((await s.scalars(stmt)).all())
            counts = dict(
                (await s.execute(
                    select(AccessGrantChannel.grant_id, func.count())
                    .where(AccessGrantChannel.grant_id.in_([g.id for g in rows if g.has_ids]))
                    .group_by(AccessGrantChannel.grant_id)
                )).all()
            ) if any(g.has_ids for g in rows) else {}
        return [describe(g, counts.get(g.id)) for g in rows]

    async def record_use(self, grant_id: int, delta: int = 1) -> None:
        async with self.sessions() as s, s.begin():
            await s.execute(update(AccessGrant).where(AccessGrant.id == grant_id).values(uses=AccessGrant.uses + delta))

    async def load(self) -> None:
        """(Re)load every grant still of use, and the catalog group tree, into the book."""
        now = datetime.now(UTC)
        saved = self.book.saved_uses()  # the uses this process wrote before this read
        async with self.sessions() as s:
            grants = list(
                (await s.scalars(
                    select(AccessGrant).where(
                        AccessGrant.revoked_at.is_(None),
                        or_(AccessGrant.valid_until.is_(None), AccessGrant.valid_until > now),
                    )
                )).all()
            )
            with_ids = [g.id for g in grants if g.has_ids]
            ids: dict[int, set[str]] = {}
            for i in range(0, len(with_ids), 500):
                rows = await s.execute(
                    select(AccessGrantChannel.grant_id, AccessGrantChannel.channel_id).where(
                        AccessGrantChannel.grant_id.in_(with_ids[i : i + 500])
                    )
                )
                for gid, cid in rows:
                    ids.setdefault(gid, set()).add(cid)
            groups: dict[str, list[str]] = {}
            rows2 = await s.execute(
                select(Channel.id, Channel.parent_id).where(Channel.kind == "group", Channel.parent_id.is_not(None))
            )
            for cid, parent in rows2:
                if parent:
                    groups.setdefault(parent, []).append(cid)
        specs = []
        for g in grants:
            try:
                specs.append(spec_of(g, frozenset(ids.get(g.id, ())) if g.has_ids else None))
            except (ValueError, TypeError):
                continue  # a malformed stored filter shares nothing
        self.book.replace(specs, groups, saved)
