"""Notifications: one interface (:class:`Notifier`), three channels (console, e-mail, webhook).

Messages go into an outbox table first (``notifications``, each with an idempotency key, so
the same message is queued once), and one dispatcher — a scheduler job — sends what is due.
A channel that is down is retried with doubling back-off up to ``health.notify_attempts``
times and never blocks anything: whoever notifies only writes a row. Webhooks are signed
(``X-Xueliang-Signature: sha256=<HMAC-SHA256 of timestamp "." body>``) and carry the key in
``Idempotency-Key``; SMS or chat apps connect through a webhook adapter.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xueliang.config import HealthConfig
from xueliang.db.tables import Notification
from xueliang.db.upsert import insert_for

log = logging.getLogger("xueliang.notify")


class Channel(Protocol):
    """A way to reach someone; raises on failure (the dispatcher retries)."""

    async def send(self, n: Notification) -> None: ...


class ConsoleChannel:
    """In-console: the row itself is the message (the console lists them)."""

    async def send(self, n: Notification) -> None:
        return None


class EmailChannel:
    def __init__(self, host: str, port: int, sender: str, timeout: float = 10.0) -> None:
        self.host, self.port, self.sender, self.timeout = host, port, sender, timeout

    async def send(self, n: Notification) -> None:
        if not self.host:
            raise RuntimeError("no SMTP server configured (health.smtp_host)")
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, n.target, n.subject
        msg["Message-ID"] = f"<{n.key}@xueliang>"
        msg.set_content(json.dumps(n.body or {}, ensure_ascii=False, indent=2, default=str))

        def deliver() -> None:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(msg)

        await asyncio.to_thread(deliver)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookChannel:
    def __init__(self, secret: bytes, timeout: float = 10.0) -> None:
        self.secret = secret
        self.client = httpx.AsyncClient(timeout=timeout)

    async def send(self, n: Notification) -> None:
        body = json.dumps({"key": n.key, "subject": n.subject, **(n.body or {})}, ensure_ascii=False,
                          default=str, sort_keys=True).encode()
        stamp = str(int(time.time()))
        r = await self.client.post(n.target, content=body, headers={
            "Content-Type": "application/json", "Idempotency-Key": n.key, "X-Xueliang-Timestamp": stamp,
            "X-Xueliang-Signature": sign(self.secret, stamp, body)})
        if r.status_code >= 300:
            raise RuntimeError(f"webhook answered {r.status_code}")

    async def close(self) -> None:
        await self.client.aclose()


class Notifier:
    """Queue messages (never blocks, never raises for a channel) and dispatch what is due."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], cfg: HealthConfig, webhook_secret: bytes) -> None:
        self.sessions = sessions
        self.cfg = cfg
        self.channels: dict[str, Channel] = {
            "console": ConsoleChannel(),
            "email": EmailChannel(cfg.smtp_host, cfg.smtp_port, cfg.smtp_from),
            "webhook": WebhookChannel(webhook_secret),
        }

    async def queue(self, messages: list[dict[str, Any]]) -> None:
        """Rows with key, channel, target, team_id, subject, body; a key queued before is kept."""
        if not messages:
            return
        now = datetime.now(UTC)
        async with self.sessions() as s, s.begin():
            ins = insert_for(s, Notification.__table__).on_conflict_do_nothing(index_elements=["key"])  # type: ignore[arg-type]
            await s.execute(ins, [{"status": "pending", "attempts": 0, "next_at": now, "created_at": now,
                                   "target": "", "team_id": None, **m} for m in messages])

    async def dispatch(self, limit: int = 200) -> int:
        """Send what is due; returns how many were sent now."""
        now = datetime.now(UTC)
        async with self.sessions() as s:
            due = (await s.scalars(select(Notification).where(Notification.status == "pending",
                                                              Notification.next_at <= now)
                                   .order_by(Notification.next_at).limit(limit))).all()
        if not due:
            return 0
        results = await asyncio.gather(*(self._send(n) for n in due))
        sent = 0
        async with self.sessions() as s, s.begin():
            for n, err in zip(due, results, strict=True):
                row = await s.get(Notification, n.id)
                if row is None:
                    continue
                row.attempts += 1
                if err is None:
                    row.status, row.sent_at, row.last_error = "sent", datetime.now(UTC), None
                    sent += 1
                else:
                    row.last_error = err[:400]
                    if row.attempts >= self.cfg.notify_attempts:
                        row.status = "failed"
                    else:
                        delay = min(3600.0, self.cfg.notify_backoff_seconds * 2 ** (row.attempts - 1))
                        row.next_at = datetime.now(UTC) + timedelta(seconds=delay)
        return sent

    async def _send(self, n: Notification) -> str | None:
        ch = self.channels.get(n.channel)
        if ch is None:
            return f"no channel {n.channel}"
        try:
            async with asyncio.timeout(15.0):
                await ch.send(n)
        except Exception as exc:
            log.warning("notification %s by %s to %s failed: %s", n.key, n.channel, n.target, exc)
            return f"{type(exc).__name__}: {exc}"
        return None

    async def close(self) -> None:
        wh = self.channels.get("webhook")
        if isinstance(wh, WebhookChannel):
            await wh.close()
