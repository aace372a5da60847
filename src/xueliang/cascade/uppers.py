"""Upper platforms (上级平台) in the database: create, read, change, delete.

The password is sealed at rest bound to the row (``upper:<id>:password``) and never leaves
this module but to the link driver (`secret`). Every write tells ``on_change`` and, with a bus,
publishes ``cascade.upper.changed``: the running links (where signalling runs) reload it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.bus import Bus
from xueliang.db.tables import UpperPlatform
from xueliang.errors import Conflict, Invalid, NotFound
from xueliang.sealing import Sealer

from .catalog import SharedCatalog
from .share import Share, UpperScope, described, share_of

__all__ = ["CHANGED", "UpperIn", "UpperPatch", "UpperService", "password_context"]

CHANGED = "cascade.upper.changed"

_GB_ID = r"^\d{20}$"
_HOST = re.compile(r"^[A-Za-z0-9._:\-\[\]]{1,255}$")
_DOMAIN = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")

Transport = Literal["udp", "tcp"]
Charset = Literal["GB2312", "UTF-8"]
RtpTransport = Literal["udp", "tcp-active", "tcp-passive"]


def _lower(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


def _charset(v: Any) -> Any:
    if isinstance(v, str):
        u = v.upper()
        return "UTF-8" if u in ("UTF8", "UTF-8") else u
    return v


def _host(v: Any) -> Any:
    if v is not None and (not isinstance(v, str) or not _HOST.match(v)):
        raise ValueError("an IP address or a host name")
    return v


def _domain(v: Any) -> Any:
    if v is not None and (not isinstance(v, str) or not _DOMAIN.match(v)):
        raise ValueError("letters, digits, '.', '-' or '_', at most 64")
    return v


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("transport", "rtp_transport", mode="before", check_fields=False)
    @classmethod
    def _lowercase(cls, v: Any) -> Any:
        return _lower(v)

    @field_validator("charset", mode="before", check_fields=False)
    @classmethod
    def _cs(cls, v: Any) -> Any:
        return _charset(v)

    @field_validator("host", "announce_host", check_fields=False)
    @classmethod
    def _hosts(cls, v: Any) -> Any:
        return _host(v)

    @field_validator("domain", check_fields=False)
    @classmethod
    def _dom(cls, v: Any) -> Any:
        return _domain(v)


class UpperIn(_Fields):
    """A new upper platform."""

    name: str = Field(min_length=1, max_length=64)
    sip_id: str = Field(pattern=_GB_ID, description="the upper's 20-digit GB/T 28181 ID")
    domain: str | None = Field(default=None, description="SIP domain / realm; default: the first 10 digits of sip_id")
    host: str
    port: int = Field(default=5060, ge=1, le=65535)
    transport: Transport = "udp"
    password: str = Field(min_length=1, max_length=128)
    register_expires: int = Field(default=3600, ge=60, le=86400)
    keepalive_interval: int = Field(default=60, ge=1, le=3600)
    keepalive_max_missed: int = Field(default=3, ge=1, le=10)
    local_sip_id: str | None = Field(default=None, pattern=_GB_ID, description="our ID toward it; default sip.id")
    charset: Charset = "GB2312"
    rtp_transport: RtpTransport = "udp"
    announce_host: str | None = None
    announce_port: int | None = Field(default=None, ge=1, le=65535)
    enabled: bool = True
    share: Share = Field(default_factory=Share, description="what the upper is shown (cascade/share.py)")


class UpperPatch(_Fields):
    """A change to an upper platform: only the fields given."""

    name: str | None = Field(default=None, min_length=1, max_length=64)
    sip_id: str | None = Field(default=None, pattern=_GB_ID)
    domain: str | None = None
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    transport: Transport | None = None
    password: str | None = Field(default=None, min_length=1, max_length=128)
    register_expires: int | None = Field(default=None, ge=60, le=86400)
    keepalive_interval: int | None = Field(default=None, ge=1, le=3600)
    keepalive_max_missed: int | None = Field(default=None, ge=1, le=10)
    local_sip_id: str | None = Field(default=None, pattern=_GB_ID)
    charset: Charset | None = None
    rtp_transport: RtpTransport | None = None
    announce_host: str | None = None
    announce_port: int | None = Field(default=None, ge=1, le=65535)
    enabled: bool | None = None
    share: Share | None = None


#: Fields that may be set back to null (the default applies): the others keep their value.
_NULLABLE = frozenset({"domain", "local_sip_id", "announce_host", "announce_port"})


def password_context(upper_id: int) -> str:
    return f"upper:{upper_id}:password"


def public(row: UpperPlatform) -> dict[str, Any]:
    """The upper as the API shows it: everything but the password."""
    return {
        "id": row.id, "name": row.name, "sip_id": row.sip_id, "domain": row.domain, "host": row.host,
        "port": row.port, "transport": row.transport, "register_expires": row.register_expires,
        "keepalive_interval": row.keepalive_interval, "keepalive_max_missed": row.keepalive_max_missed,
        "local_sip_id": row.local_sip_id, "charset": row.charset, "rtp_transport": row.rtp_transport,
        "announce_host": row.announce_host, "announce_port": row.announce_port, "enabled": row.enabled,
        "has_password": bool(row.password), "share": row.share or {},
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }


class UpperService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], sealer: Sealer, bus: Bus | None = None) -> None:
        self.sessions = sessions
        self.sealer = sealer
        #: With a bus, every write is published (``cascade.upper.changed``), so that the node
        #: running the links hears of a change made through another node's API.
        self.bus = bus
        #: Told the ID of every upper created, changed or deleted (the running links reload it).
        self.on_change: list[Callable[[int], Any]] = []

    async def list(self) -> list[UpperPlatform]:
        async with self.sessions() as s:
            return list((await s.scalars(select(UpperPlatform).order_by(UpperPlatform.id))).all())

    async def get(self, upper_id: int) -> UpperPlatform:
        async with self.sessions() as s:
            row = await s.get(UpperPlatform, upper_id)
        if row is None:
            raise NotFound(f"upper platform {upper_id} not found")
        return row

    def secret(self, row: UpperPlatform) -> str:
        """The password in clear (memory only, for the link)."""
        return self.sealer.open(row.password, context=password_context(row.id))

    async def create(self, body: UpperIn) -> UpperPlatform:
        values = body.model_dump(exclude={"share"})
        values["share"] = described(body.share)
        password = values.pop("password")
        values["domain"] = values["domain"] or body.sip_id[:10]
        async with self.sessions() as s:
            row = UpperPlatform(**values, password="")
            s.add(row)
            try:
                await s.flush()  # the ID the password is sealed to
                row.password = self.sealer.seal(password, context=password_context(row.id))
                await s.commit()
            except IntegrityError as exc:
                raise Conflict(f"an upper platform named {body.name!r} exists") from exc
            await s.refresh(row)
        self._changed(row.id)
        return row

    async def update(self, upper_id: int, body: UpperPatch) -> UpperPlatform:
        changes = body.model_dump(exclude_unset=True)
        for k, v in changes.items():
            if v is None and k not in _NULLABLE:
                raise Invalid(f"{k} cannot be null")
        async with self.sessions() as s:
            row = await s.get(UpperPlatform, upper_id)
            if row is None:
                raise NotFound(f"upper platform {upper_id} not found")
            for k, v in changes.items():
                if k == "password":
                    row.password = self.sealer.seal(v, context=password_context(row.id))
                elif k == "share":
                    row.share = described(body.share or Share())
                else:
                    setattr(row, k, v)
            if "domain" in changes and not row.domain:
                row.domain = row.sip_id[:10]
            try:
                await s.commit()
            except IntegrityError as exc:
                raise Conflict(f"an upper platform named {changes.get('name')!r} exists") from exc
            await s.refresh(row)
        self._changed(row.id)
        return row

    async def delete(self, upper_id: int) -> None:
        async with self.sessions() as s:
            row = await s.get(UpperPlatform, upper_id)
            if row is None:
                raise NotFound(f"upper platform {upper_id} not found")
            await s.delete(row)
            await s.commit()
        self._changed(upper_id)

    async def preview(self, upper_id: int, platform_id: str, limit: int = 100) -> dict[str, Any]:
        """What the upper is shown: how many channels, and the first of the catalog items (its
        tree and its numbering), as it gets them."""
        row = await self.get(upper_id)
        scope = UpperScope(share_of(row.share), row.local_sip_id or platform_id)
        catalog = SharedCatalog(self.sessions)
        items = await catalog.items(scope)
        return {
            "id": row.id, "channels": await catalog.count(scope), "items_total": len(items),
            "items": [{"id": i.device_id, "name": i.name, "parent_id": i.parent_id, "status": i.status or None,
                       "civil_code": i.civil_code or None} for i in items[:limit]],
        }

    def _changed(self, upper_id: int) -> None:
        if self.bus is not None:
            self.bus.publish(CHANGED, str(upper_id))
        for fn in self.on_change:
            fn(upper_id)
