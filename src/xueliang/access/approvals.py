"""Approval of sensitive use (安全使用审核): a request names channels, actions, a purpose and a
duration; a second authorised person approves or refuses it; an approval becomes a grant for the
requester limited to those channels and actions, for that time (and maybe a number of uses).

Refused on purpose: deciding a request twice (replay), deciding one's own request, deciding
a request for channels outside one's own scope, deciding a lapsed request, using an approval
after its time or uses are over, or by anybody else than the requester.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.access.grants import GrantService
from xueliang.access.policy import CHANNEL_ACTIONS, Action, Principal, authorize, compiled
from xueliang.bus import Bus
from xueliang.db.tables import ApprovalRequest, Channel
from xueliang.errors import Conflict, Forbidden, Invalid, NotFound

MAX_CHANNELS = 200


def _aware(d: datetime | None) -> datetime | None:
    return d.replace(tzinfo=UTC) if d is not None and d.tzinfo is None else d


def describe(r: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": r.id,
        "requester_id": r.requester_id,
        "requester": r.requester,
        "department": r.department,
        "actions": r.actions,
        "channel_ids": r.channel_ids,
        "purpose": r.purpose,
        "case": r.case_ref,
        "minutes": r.minutes,
        "max_uses": r.max_uses,
        "status": r.status,
        "created_at": r.created_at,
        "expires_at": r.expires_at,
        "decided_at": r.decided_at,
        "decided_by": r.decided_by,
        "decision_note": r.decision_note,
        "grant_id": r.grant_id,
    }


class ApprovalService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        grants: GrantService,
        *,
        max_minutes: int,
        default_minutes: int,
        request_hours: int,
        bus: Bus | None = None,
    ) -> None:
        self.sessions = sessions
        self.grants = grants
        self.max_minutes = max_minutes
        self.default_minutes = default_minutes
        self.request_hours = request_hours
        self.bus = bus

    async def _channels(self, ids: list[str]) -> list[Channel]:
        async with self.sessions() as s:
            rows = list((await s.scalars(select(Channel).where(Channel.id.in_(ids)))).all())
        found = {c.id for c in rows}
        missing = [c for c in ids if c not in found]
        if missing:
            raise Invalid(f"channel(s) not in the registry: {', '.join(missing[:10])}")
        return rows

    async def request(
        self,
        p: Principal,
        channel_ids: list[str],
        actions: list[str],
        purpose: str,
        case_ref: str | None = None,
        minutes: int | None = None,
        max_uses: int | None = None,
    ) -> ApprovalRequest:
        ids = sorted(set(channel_ids))
        if not ids or len(ids) > MAX_CHANNELS:
            raise Invalid(f"name 1 to {MAX_CHANNELS} channels")
        acts = sorted(set(actions))
        bad = [a for a in acts if a not in {x.value for x in CHANNEL_ACTIONS}]
        if bad or not acts:
            raise Invalid(f"approvals cover channel actions ({', '.join(sorted(CHANNEL_ACTIONS))}); not {bad}")
        role_actions = {a.value for a in p.actions}
        beyond = [a for a in acts if a not in role_actions]
        if beyond:
            raise Forbidden(f"role {p.role} may not {beyond}: an approval does not change roles")
        purpose = (purpose or "").strip()
        if len(purpose) < 2:
            raise Invalid("state the purpose")
        minutes = minutes or self.default_minutes
        if minutes < 1 or minutes > self.max_minutes:
            raise Invalid(f"minutes must be 1..{self.max_minutes}")
        if max_uses is not None and max_uses < 1:
            raise Invalid("max_uses must be ≥ 1")
        await self._channels(ids)
        now = datetime.now(UTC)
        r = ApprovalRequest(
            requester_id=p.user_id,
            requester=p.username,
            department=p.department,
            actions=acts,
            channel_ids=ids,
            purpose=purpose[:1000],
            case_ref=(case_ref or None) and case_ref[:100],
            minutes=minutes,
            max_uses=max_uses,
            status="pending",
            created_at=now,
            expires_at=now + timedelta(hours=self.request_hours),
        )
        async with self.sessions() as s, s.begin():
            s.add(r)
        self._publish("access.approval.requested", r)
        return r

    def _publish(self, kind: str, r: ApprovalRequest) -> None:
        if self.bus is not None:
            self.bus.publish(kind, str(r.id), requester=r.requester, status=r.status,
                             channel_ids=r.channel_ids, actions=r.actions)

    async def get(self, p: Principal, request_id: int) -> ApprovalRequest:
        async with self.sessions() as s:
            r = await s.get(ApprovalRequest, request_id)
        if r is None:
            raise NotFound(f"approval request {request_id} not found")
        if not await self.may_see(p, r):
            raise NotFound(f"approval request {request_id} not found")
        return r

    async def may_see(self, p: Principal, r: ApprovalRequest) -> bool:
        if r.requester_id == p.user_id or r.decided_by_id == p.user_id:
            return True
        acts = p.actions
        if Action.AUDIT_READ in acts or Action.ACCESS_READ in acts:
            return True
        return Action.APPROVE in acts and await self._covers(p, r)

    async def _covers(self, p: Principal, r: ApprovalRequest) -> bool:
        scope = compiled(p)
        if scope.unrestricted:
            return True
        channels = await self._channels(list(r.channel_ids))
        return all(scope.match(a, c) for c in channels for a in r.actions)

    async def search(
        self, p: Principal, box: str = "mine", status: str | None = None, limit: int = 200
    ) -> list[ApprovalRequest]:
        stmt = select(ApprovalRequest).order_by(ApprovalRequest.id.desc()).limit(limit * 5 if box == "todo" else limit)
        if status:
            stmt = stmt.where(ApprovalRequest.status == status)
        if box == "mine":
            stmt = stmt.where(ApprovalRequest.requester_id == p.user_id)
        elif box == "todo":
            authorize(p, Action.APPROVE)
            stmt = stmt.where(ApprovalRequest.status == "pending", ApprovalRequest.requester_id != p.user_id)
        elif box == "decided":
            stmt = stmt.where(ApprovalRequest.decided_by_id == p.user_id)
        elif box == "all":
            if not ({Action.AUDIT_READ, Action.ACCESS_READ} & p.actions):
                authorize(p, Action.AUDIT_READ)  # refuses, with the reason
        else:
            raise Invalid("box is one of mine, todo, decided, all")
        async with self.sessions() as s:
            rows = list((await s.scalars(stmt)).all())
        await self._lapse(rows)
        if box == "todo":
            rows = [r for r in rows if r.status == "pending" and await self._covers(p, r)][:limit]
        return rows

    async def _lapse(self, rows: list[ApprovalRequest]) -> None:
        now = datetime.now(UTC)
        late = [r for r in rows if r.status == "pending" and (_aware(r.expires_at) or now) <= now]
        if not late:
            return
        async with self.sessions() as s, s.begin():
            await s.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id.in_([r.id for r in late]), ApprovalRequest.status == "pending")
                .values(status="lapsed")
            )
        for r in late:
            r.status = "lapsed"

    async def decide(
        self, p: Principal, request_id: int, approve: bool, note: str = "", minutes: int | None = None
    ) -> ApprovalRequest:
        authorize(p, Action.APPROVE)
        async with self.sessions() as s:
            r = await s.get(ApprovalRequest, request_id)
        if r is None:
            raise NotFound(f"approval request {request_id} not found")
        if r.requester_id == p.user_id:
            raise Forbidden("a request must be decided by a second person, not its requester")
        await self._lapse([r])
        if r.status != "pending":
            raise Conflict(f"request {request_id} is already {r.status}: a decision is made once")
        if not await self._covers(p, r):
            raise Forbidden(f"request {request_id} names channels outside your scope: you cannot decide it")
        now = datetime.now(UTC)
        grant_minutes = min(minutes or r.minutes, r.minutes)
        if grant_minutes < 1:
            raise Invalid("minutes must be ≥ 1")
        # Claim the decision atomically: a concurrent or replayed decision finds it taken.
        async with self.sessions() as s, s.begin():
            res = await s.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id == request_id, ApprovalRequest.status == "pending")
                .values(
                    status="approved" if approve else "refused",
                    decided_at=now,
                    decided_by_id=p.user_id,
                    decided_by=p.username,
                    decision_note=(note or "")[:1000] or None,
                )
            )
            if not res.rowcount:  # type: ignore[attr-defined]
                raise Conflict(f"request {request_id} was decided meanwhile")
        if approve:
            g = await self.grants.create(
                user_id=r.requester_id,
                channel_ids=r.channel_ids,
                actions=r.actions,
                valid_until=now + timedelta(minutes=grant_minutes),
                reason=r.purpose + (f" [{r.case_ref}]" if r.case_ref else ""),
                created_by=p.username,
                kind="approval",
                max_uses=r.max_uses,
                approval_id=r.id,
            )
            async with self.sessions() as s, s.begin():
                res = await s.execute(
                    update(ApprovalRequest)
                    .where(ApprovalRequest.id == request_id, ApprovalRequest.status == "approved")
                    .values(grant_id=g.id)
                )
                still_approved = bool(res.rowcount)  # type: ignore[attr-defined]
            if not still_approved:  # withdrawn while its grant was being made: the grant goes too
                await self.grants.revoke(g.id, r.requester)
        async with self.sessions() as s:
            r2 = await s.get(ApprovalRequest, request_id)
        assert r2 is not None
        self._publish("access.approval.decided", r2)
        return r2

    async def withdraw(self, p: Principal, request_id: int) -> ApprovalRequest:
        async with self.sessions() as s:
            r = await s.get(ApprovalRequest, request_id)
        if r is None or r.requester_id != p.user_id:
            raise NotFound(f"approval request {request_id} not found")
        # An approved request can be withdrawn too: its grant is revoked. Atomic against a
        # decision under way: either this sees the grant (and revokes it), or the decision,
        # recording its grant, finds the request withdrawn (and revokes it).
        async with self.sessions() as s, s.begin():
            row = (await s.execute(
                update(ApprovalRequest)
                .where(ApprovalRequest.id == request_id, ApprovalRequest.status.in_(("pending", "approved")))
                .values(status="withdrawn")
                .returning(ApprovalRequest.grant_id)
                .execution_options(synchronize_session=False)
            )).one_or_none()
        if row is None:
            async with self.sessions() as s:
                status = await s.scalar(select(ApprovalRequest.status).where(ApprovalRequest.id == request_id))
            raise Conflict(f"request {request_id} is already {status}")
        if row[0] is not None:
            await self.grants.revoke(row[0], p.username)
        async with self.sessions() as s:
            r2 = await s.get(ApprovalRequest, request_id)
        assert r2 is not None
        return r2
