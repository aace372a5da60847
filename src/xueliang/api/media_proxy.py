"""On an API node without a media hub, in a cluster: a stream's HTTP requests go to the media node
that holds it, or would take it (cluster/placement.py), and its answer streams back.

The media node is a whole API: it authenticates and authorizes the request again, so passing
the caller's credentials on (header, cookie, ``?token=``) is all the proxy does for access, and
nothing here decides who may watch. WebSockets are not proxied (the console uses fMP4 over HTTP).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xueliang.cluster.placement import MediaPlacement
from xueliang.presence import NodeInfo

log = logging.getLogger("xueliang.api")

_PREFIX = "/api/v1"
#: a live channel's readings: the stream live/<channel>
_LIVE = re.compile(rf"^{_PREFIX}/channels/([^/]+)/(live\.(mp4|flv|m3u8|info)|hls/[^/]+|snapshot\.jpg)$")
#: a stream the media node names when it opens it
_OPEN = re.compile(rf"^{_PREFIX}/channels/([^/]+)/(playback|download)$")
#: a named stream's readings and control
_NAMED = re.compile(rf"^{_PREFIX}/streams/(.+?)(/(live\.(mp4|flv|m3u8|info)|hls/[^/]+|snapshot\.jpg|control|media-token))?$")
_WS = re.compile(rf"^{_PREFIX}/(channels|streams)/.+/live\.ws$")
_HOP = {b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"host", b"content-length"}


class MediaProxy:
    def __init__(self, app: ASGIApp, placement: MediaPlacement) -> None:
        self.app = app
        self.placement = placement
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=2.0, read=None), follow_redirects=False)
        self.proxied = 0

    async def _target(self, path: str, method: str, exclude: frozenset[str]) -> tuple[bool, NodeInfo | None]:
        """(is this a stream request, the node to send it to)."""
        if m := _LIVE.match(path):
            return True, await self.placement.node_for(f"live/{m.group(1)}", exclude)
        if method == "POST" and _OPEN.match(path):
            return True, await self.placement.least_loaded(exclude)
        if (m := _NAMED.match(path)) and m.group(1):
            return True, await self.placement.where(m.group(1), exclude)
        return False, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and _WS.match(scope["path"]):
            # Not relayed: refusing the handshake makes the console's player fall back to the
            # HTTP fMP4 stream, which is (media/mse.ts: a socket that never opened, code 1006).
            await send({"type": "websocket.close", "code": 1013})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exclude: frozenset[str] = frozenset()
        is_stream, node = await self._target(scope["path"], scope["method"], exclude)
        if not is_stream:
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        while node is not None:
            r = await self._open(scope, body, node)
            if r is not None:
                await self._relay(r, receive, send, node)
                return
            # Unreachable: dead before its announcement ran out, or not listening yet. Ask the
            # next node: a stream not running there is placed there.
            exclude |= {node.id}
            node = (await self._target(scope["path"], scope["method"], exclude))[1]
        await _problem(send, 503, "no media node holds or can take this stream")

    async def _open(self, scope: Scope, body: bytes, node: NodeInfo) -> httpx.Response | None:
        url = node.addresses["http"] + scope["path"]
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP]
        client = scope.get("client")
        if client:
            headers.append((b"x-forwarded-for", str(client[0]).encode()))
        for attempt in range(2):
            req = self.client.build_request(scope["method"], url, headers=headers, content=body)
            try:
                return await self.client.send(req, stream=True)
            except httpx.HTTPError as exc:
                log.warning("media node %s unreachable: %s", node.id, exc)
                if attempt == 0:
                    await asyncio.sleep(0.2)
        return None

    async def _relay(self, r: httpx.Response, receive: Receive, send: Send, node: NodeInfo) -> None:
        self.proxied += 1

        async def relay() -> None:
            out = [(k, v) for k, v in r.headers.raw if k.lower() not in _HOP]
            await send({"type": "http.response.start", "status": r.status_code, "headers": out})
            async for chunk in r.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def viewer_left() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        # A live answer never ends by itself: when the viewer leaves, stop reading the media node
        # (which then ends its reader, and the stream when it was the last).
        tasks = [asyncio.create_task(relay()), asyncio.create_task(viewer_left())]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            for t in done:
                if not t.cancelled() and t.exception() is not None and not isinstance(t.exception(), OSError):
                    log.warning("relaying from media node %s failed: %r", node.id, t.exception())
        finally:
            for t in tasks:
                t.cancel()
            await r.aclose()


async def _problem(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"type": "about:blank", "title": "Unavailable" if status == 503 else "Bad gateway",
                       "status": status, "detail": detail}).encode()
    start: Message = {"type": "http.response.start", "status": status,
                      "headers": [(b"content-type", b"application/problem+json"),
                                  (b"content-length", str(len(body)).encode())]}
    await send(start)
    await send({"type": "http.response.body", "body": body})
