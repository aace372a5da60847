"""The access edge of the API, as one ASGI middleware around everything:

- binds the request context (client address, stated purpose from ``X-Purpose``/``X-Case``,
  URL-encoded — or ``?purpose=``/``?case=`` on GETs from players that cannot send headers);
- rate limits per client address (login more tightly);
- adds security headers (CSP, HSTS on HTTPS, no-store on API answers, nosniff, ...);
- writes the audit record of the request: every non-GET API request, and GETs that authorized
  a sensitive action (media, audit, access) or were refused — who, what, which resource,
  from where, when, with what purpose, and the outcome.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs, unquote

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xueliang.access import context
from xueliang.access.context import RequestContext, clean_purpose
from xueliang.app import Platform

LOGIN_PATHS = ("/api/v1/auth/login", "/api/v1/auth/totp/enroll")
#: GETs audited by path even when they authorize nothing sensitive (exports, snapshots).
SENSITIVE_GET = ("/snapshot", "/export", ".xlsx", ".csv", "/download", "/audit/", "/live.", "/streams/")
DOCS = ("/api/v1/docs", "/api/v1/docs/oauth2-redirect")
DEDUPE_SECONDS = 30.0


def _outcome(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (401, 403, 429):
        return "denied"
    if status < 500:
        return "failed"
    return "error"


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform
        self.access = platform.access
        cfg = platform.settings.access
        self.csp = cfg.csp
        self.hsts = cfg.hsts_seconds
        self._recent: dict[tuple[Any, ...], float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        method: str = scope.get("method", "WS") if scope["type"] == "http" else "WS"
        client = scope.get("client")
        ip = str(client[0]) if client else ""
        headers = Headers(scope=scope)
        purpose = headers.get("x-purpose")
        case_ref = headers.get("x-case")
        if purpose is None and method in ("GET", "WS", "HEAD") and scope.get("query_string"):
            q = parse_qs(scope["query_string"].decode("latin-1"))
            purpose = (q.get("purpose") or [None])[0]
            case_ref = case_ref or (q.get("case") or [None])[0]
        ctx = RequestContext(
            ip=ip,
            method=method,
            path=path,
            purpose=clean_purpose(unquote(purpose)) if purpose else None,
            case_ref=clean_purpose(unquote(case_ref), context.MAX_CASE) if case_ref else None,
        )
        token = context.bind(ctx)
        try:
            if path.startswith("/api/"):
                wait = await self._limited(ctx, path, headers)
                if wait:
                    await self._too_many(scope, send, wait, ctx)
                    return
            await self._serve(scope, receive, send, ctx)
        finally:
            context.unbind(token)

    # ---- rate limits --------------------------------------------------------------------
    async def _limited(self, ctx: RequestContext, path: str, headers: Headers) -> float:
        a = self.access
        if path in LOGIN_PATHS and ctx.method == "POST":
            wait = await a.login_limiter.take("ip:" + ctx.ip)
            if wait:
                return wait
        return await a.api_limiter.take("ip:" + ctx.ip)

    async def _too_many(self, scope: Scope, send: Send, wait: float, ctx: RequestContext) -> None:
        key = ("429", ctx.ip, ctx.path in LOGIN_PATHS)
        if self._fresh(key, 60.0):
            self.access.audit.append(
                "http.rate_limited", "denied", ip=ctx.ip, status=429,
                detail={"method": ctx.method, "path": ctx.path},
            )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({
            "type": "about:blank", "title": "Too many requests", "status": 429,
            "detail": f"too many requests from {ctx.ip}: retry in {wait:.1f} s", "instance": ctx.path,
        }).encode()
        hdrs = [
            (b"content-type", b"application/problem+json"),
            (b"retry-after", str(max(1, round(wait))).encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 429, "headers": hdrs})
        await send({"type": "http.response.body", "body": body})

    # ---- serving and auditing -----------------------------------------------------------
    async def _serve(self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext) -> None:
        recorded = False
        is_api = ctx.path.startswith("/api/")
        https = scope.get("scheme") in ("https", "wss")

        async def wrapped(message: Message) -> None:
            nonlocal recorded
            t = message["type"]
            if t == "http.response.start":
                h = MutableHeaders(scope=message)
                self._headers(h, ctx.path, https, is_api)
                self._settle_uses(ctx, int(message["status"]) < 400)
                if is_api and not recorded:
                    recorded = True
                    self._record(scope, ctx, int(message["status"]))
            elif t == "websocket.accept" and not recorded:
                recorded = True
                self._settle_uses(ctx, True)
                self._record(scope, ctx, 101)
            elif t in ("websocket.close", "websocket.http.response.start") and not recorded:
                recorded = True
                self._settle_uses(ctx, False)
                self._record(scope, ctx, int(message.get("status", 403)))
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        except Exception:
            if is_api and not recorded:
                recorded = True
                self._record(scope, ctx, 500)
            raise
        finally:
            self._settle_uses(ctx, False)  # never answered (client gone): nothing was done

    def _settle_uses(self, ctx: RequestContext, ok: bool) -> None:
        """An approval's limited use counts when the action succeeds; a failed one gives it back."""
        reserved, ctx.reserved_uses = ctx.reserved_uses, []
        if not ok:
            for g in reserved:
                self.access.book.release(g)

    def _headers(self, h: MutableHeaders, path: str, https: bool, is_api: bool) -> None:
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("X-Frame-Options", "SAMEORIGIN")
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(self)")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if self.csp and not path.startswith(DOCS):
            h.setdefault("Content-Security-Policy", self.csp)
        if https and self.hsts:
            h.setdefault("Strict-Transport-Security", f"max-age={self.hsts}; includeSubDomains")
        if is_api:
            h.setdefault("Cache-Control", "no-store")

    def _fresh(self, key: tuple[Any, ...], window: float) -> bool:
        now = time.monotonic()
        last = self._recent.get(key)
        if last is not None and now - last < window:
            return False
        self._recent[key] = now
        if len(self._recent) > 50_000:
            cutoff = now - window
            self._recent = {k: v for k, v in self._recent.items() if v > cutoff}
        return True

    def _record(self, scope: Scope, ctx: RequestContext, status: int) -> None:
        if ctx.audited:
            return
        path = ctx.path
        if path in LOGIN_PATHS and status < 400:
            return  # the login service wrote it, with the user name
        p = ctx.principal
        write = ctx.method not in ("GET", "HEAD", "OPTIONS", "WS")
        if not write:
            sensitive = ctx.sensitive or any(s in path for s in SENSITIVE_GET)
            if not (sensitive or status in (401, 403)):
                return
            who = p.user_id if p is not None else ctx.ip
            if not self._fresh((who, ctx.action, ctx.resource_id or path, status), DEDUPE_SECONDS):
                return
        action = ctx.event or ctx.action or f"http.{ctx.method.lower()}"
        if action.startswith("media.") and "snapshot" in path:
            action = "media.snapshot"
        route = scope.get("route")
        detail: dict[str, Any] = {"method": ctx.method, "path": path}
        if route is not None and getattr(route, "path", None):
            detail["route"] = route.path
        if ctx.refused:
            detail["refused"] = ctx.refused
        if ctx.approval_id is not None:
            detail["approval_id"] = ctx.approval_id
        if p is not None and p.token_id is not None:
            detail["api_token"] = p.token_id
        detail.update(ctx.detail)
        self.access.audit.append(
            action,
            # A refusal answered as 404 (out of scope looks like missing) is still a refusal.
            "denied" if ctx.refused and status >= 400 else _outcome(status),
            actor_id=p.user_id if p is not None else None,
            actor=p.username if p is not None else "",
            role=p.role if p is not None else "",
            actor_department=p.department if p is not None else None,
            resource_type=ctx.resource_type,
            resource_id=ctx.resource_id,
            resource_department=ctx.resource_department,
            ip=ctx.ip,
            purpose=ctx.purpose,
            case_ref=ctx.case_ref,
            status=status,
            detail=detail,
        )
