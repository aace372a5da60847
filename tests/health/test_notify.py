"""Notifications through real receivers on loopback: an SMTP server (aiosmtpd) and an HTTP
server (uvicorn) that checks the HMAC signature; a receiver that is down is retried later."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from tests.ports import free_port
from xueliang.config import HealthConfig
from xueliang.db.tables import Notification
from xueliang.health.notify import Notifier, sign

SECRET = b"webhook-secret"


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Any:
    box = Mailbox()
    port = free_port()
    c = Controller(box, hostname="127.0.0.1", port=port)
    c.start()
    yield port, box
    c.stop()


class Hook:
    """An HTTP receiver: 503 for the first ``fail`` calls, then 200; keeps what it got."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.got: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.got.append((headers, body))
        status = 503 if len(self.got) <= self.fail else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def serve(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    task = asyncio.create_task(srv.serve())
    while not srv.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.02)
    return srv, task, port


@pytest.fixture
async def hook() -> AsyncIterator[tuple[Hook, int]]:
    h = Hook(fail=2)
    srv, task, port = await serve(h)
    yield h, port
    srv.should_exit = True
    await task


async def due_now(sessions: Any) -> None:
    async with sessions() as s, s.begin():
        await s.execute(update(Notification).values(next_at=datetime.now(UTC) - timedelta(seconds=1)))


async def test_email_and_signed_webhook_with_retries(sessions, smtp, hook) -> None:
    smtp_port, box = smtp
    h, hook_port = hook
    cfg = HealthConfig(smtp_host="127.0.0.1", smtp_port=smtp_port, notify_backoff_seconds=60)
    n = Notifier(sessions, cfg, SECRET)
    msgs = [
        {"key": "t1-email", "channel": "email", "target": "team@example.org", "subject": "工单 1 opened",
         "body": {"ticket": 1}},
        {"key": "t1-hook", "channel": "webhook", "target": f"http://127.0.0.1:{hook_port}/in", "subject": "t1",
         "body": {"ticket": 1}},
        {"key": "t1-console", "channel": "console", "subject": "t1", "body": {}},
    ]
    await n.queue(msgs)
    await n.queue(msgs)  # the same keys again: queued once
    assert await n.dispatch() == 2  # e-mail and console; the webhook answered 503
    assert len(box.messages) == 1 and box.messages[0].rcpt_tos == ["team@example.org"]
    assert "t1-email@xueliang" in box.messages[0].content.decode()
    async with sessions() as s:
        hookrow = await s.scalar(select(Notification).where(Notification.key == "t1-hook"))
    assert hookrow is not None and hookrow.status == "pending" and hookrow.attempts == 1
    # Backed off: not due again at once.
    assert await n.dispatch() == 0
    await due_now(sessions)
    assert await n.dispatch() == 0  # 503 again
    await due_now(sessions)
    assert await n.dispatch() == 1
    # Every delivery carried the same key and a valid signature.
    assert len(h.got) == 3
    for headers, body in h.got:
        assert headers["idempotency-key"] == "t1-hook"
        assert headers["x-xueliang-signature"] == sign(SECRET, headers["x-xueliang-timestamp"], body)
        assert json.loads(body)["key"] == "t1-hook"
    await n.close()


async def test_a_channel_that_is_down_never_blocks_and_gives_up_in_the_end(sessions) -> None:
    dead = free_port()  # nothing listens here
    cfg = HealthConfig(smtp_host="127.0.0.1", smtp_port=dead, notify_attempts=2, notify_backoff_seconds=60)
    n = Notifier(sessions, cfg, SECRET)
    await n.queue([{"key": "k", "channel": "email", "target": "x@example.org", "subject": "s", "body": {}},
                   {"key": "h", "channel": "webhook", "target": f"http://127.0.0.1:{dead}/", "subject": "s", "body": {}}])
    t0 = asyncio.get_running_loop().time()
    assert await n.dispatch() == 0
    assert asyncio.get_running_loop().time() - t0 < 5
    await due_now(sessions)
    assert await n.dispatch() == 0
    async with sessions() as s:
        rows = (await s.scalars(select(Notification))).all()
    assert {r.status for r in rows} == {"failed"} and all(r.attempts == 2 and r.last_error for r in rows)
    await n.close()
