"""The linked emergency systems (110/119/120/122).

Each link has a key id and a secret (sealed at rest, bound to its row: ``incident-link:<id>:secret``;
shown once, when made or rotated). Inbound, its requests are signed with the secret
(signature.py); outbound, the platform pushes dispatch and status to its webhook through the
notification outbox (health/notify.py: queued once by key, retried with back-off), signed with
the same secret the way every platform webhook is signed (``X-Xueliang-Signature: sha256=<HMAC
of timestamp "." body>``) and naming the key in ``X-Xueliang-Key``.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.db.tables import IncidentLink, Notification
from xueliang.errors import Conflict, Invalid, NotFound, Unauthorized
from xueliang.health.notify import sign as sign_webhook
from xueliang.incidents import signature
from xueliang.sealing import Sealer, SealError

KINDS = ("110", "119", "120", "122")
#: The notification channel of pushes to emergency systems; its target is ``link:<id>``.
CHANNEL = "emergency"
_DUMMY = secrets.token_bytes(32)


def secret_context(link_id: int) -> str:
    return f"incident-link:{link_id}:secret"


def link_out(r: IncidentLink) -> dict[str, Any]:
    """A link as the API shows it: never its secret."""
    return {"id": r.id, "name": r.name, "kind": r.kind, "key_id": r.key_id, "webhook_url": r.webhook_url,
            "department": r.department, "enabled": r.enabled, "created_at": r.created_at, "updated_at": r.updated_at}


def _check(kind: str | None, key_id: str | None, webhook_url: str | None, department: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise Invalid(f"kind is one of {', '.join(KINDS)}")
    if key_id is not None and not signature._KEY_ID.fullmatch(key_id):
        raise Invalid("key_id is 1-64 letters, digits, '.', '_' or '-'")
    if webhook_url and not webhook_url.startswith(("http://", "https://")):
        raise Invalid("webhook_url is an http(s) URL")
    if department is not None and not department.strip():
        raise Invalid("department names the agency's department (its people's, in the joint view)")


class LinkService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], sealer: Sealer) -> None:
        self.sessions = sessions
        self.sealer = sealer

    async def create(self, *, name: str, kind: str, key_id: str, department: str, webhook_url: str = "",
                     secret: str | None = None) -> dict[str, Any]:
        """A new link; its secret (given, or made here) is in the answer this once."""
        _check(kind, key_id, webhook_url, department)
        if secret is not None and len(secret) < 16:
            raise Invalid("a link's secret has at least 16 characters")
        plain = secret or secrets.token_urlsafe(32)
        try:
            async with self.sessions() as s, s.begin():
                row = IncidentLink(name=name.strip(), kind=kind, key_id=key_id, webhook_url=webhook_url,
                                   department=department.strip(), enabled=True)
                s.add(row)
                await s.flush()  # the id the secret is sealed to
                row.secret = self.sealer.seal(plain, context=secret_context(row.id))
                out = link_out(row)
        except IntegrityError:
            raise Conflict(f"a link named {name!r} or with key id {key_id!r} exists") from None
        return {**out, "secret": plain}

    async def update(self, link_id: int, changes: dict[str, Any], *, rotate: bool = False) -> dict[str, Any]:
        _check(changes.get("kind"), changes.get("key_id"), changes.get("webhook_url"), changes.get("department"))
        plain: str | None = None
        try:
            async with self.sessions() as s, s.begin():
                row = await s.get(IncidentLink, link_id)
                if row is None:
                    raise NotFound(f"link {link_id} not found")
                for k in ("name", "kind", "key_id", "webhook_url", "department", "enabled"):
                    if k in changes and changes[k] is not None:
                        setattr(row, k, changes[k])
                if rotate:
                    plain = secrets.token_urlsafe(32)
                    row.secret = self.sealer.seal(plain, context=secret_context(row.id))
                row.updated_at = datetime.now(UTC)
                await s.flush()
                out = link_out(row)
        except IntegrityError:
            raise Conflict("another link has that name or key id") from None
        return {**out, "secret": plain} if plain is not None else out

    async def delete(self, link_id: int) -> None:
        async with self.sessions() as s, s.begin():
            row = await s.get(IncidentLink, link_id)
            if row is None:
                raise NotFound(f"link {link_id} not found")
            await s.delete(row)

    async def list(self) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            return [link_out(r) for r in (await s.scalars(select(IncidentLink).order_by(IncidentLink.id))).all()]

    async def get(self, link_id: int) -> IncidentLink | None:
        async with self.sessions() as s:
            return await s.get(IncidentLink, link_id)

    def secret_of(self, row: IncidentLink) -> bytes:
        return self.sealer.open(row.secret, context=secret_context(row.id)).encode()

    async def verify(self, header: str | None, method: str, path: str, body: bytes, *,
                     window: float, now: float | None = None) -> IncidentLink:
        """The enabled link whose key signed this request; Unauthorized (saying why) otherwise.
        An unknown key and a wrong signature read alike, and cost alike (a MAC is computed either way)."""
        if not header:
            raise Unauthorized(f"sign the request: Authorization: {signature.SCHEME} Credential=…, Timestamp=…, "
                               "BodyHash=…, Signature=… (docs/api.md)")
        try:
            h = signature.parse(header)
        except signature.SignatureError as exc:
            raise Unauthorized(f"signature header: {exc}") from None
        async with self.sessions() as s:
            row = await s.scalar(select(IncidentLink).where(IncidentLink.key_id == h.key_id))
        secret = _DUMMY
        if row is not None and row.enabled:
            try:
                secret = self.secret_of(row)
            except SealError:
                row = None
        try:
            signature.check(h, secret, method, path, body, time.time() if now is None else now, window)
        except signature.SignatureError as exc:
            raise Unauthorized(f"signature: {exc}") from None
        if row is None or not row.enabled:
            raise Unauthorized("signature: the signature does not verify")
        return row


class EmergencyChannel:
    """The notifier's channel for pushes to emergency systems (health/notify.py ``Channel``):
    the target ``link:<id>`` names the link; the body is signed with that link's secret."""

    def __init__(self, links: LinkService, timeout: float = 10.0) -> None:
        self.links = links
        self.client = httpx.AsyncClient(timeout=timeout)

    async def send(self, n: Notification) -> None:
        kind, _, ref = n.target.partition(":")
        row = await self.links.get(int(ref)) if kind == "link" and ref.isdigit() else None
        if row is None or not row.enabled or not row.webhook_url:
            raise RuntimeError(f"no enabled link with a webhook for {n.target}")
        body = json.dumps({"key": n.key, **(n.body or {})}, ensure_ascii=False, default=str, sort_keys=True).encode()
        stamp = str(int(time.time()))
        r = await self.client.post(row.webhook_url, content=body, headers={
            "Content-Type": "application/json", "Idempotency-Key": n.key, "X-Xueliang-Key": row.key_id,
            "X-Xueliang-Timestamp": stamp, "X-Xueliang-Signature": sign_webhook(self.links.secret_of(row), stamp, body)})
        if r.status_code >= 300:
            raise RuntimeError(f"the emergency system answered {r.status_code}")

    async def close(self) -> None:
        await self.client.aclose()
