"""Requests from one node to another over Redis lists: ask, and wait for the answer.

A node serves ``<prefix>:rpc:<node>``: a list it pops requests from (BLPOP). A request names the
method, its keyword arguments, a reply key and a deadline; the answer (a value, or an error
named by its domain class) is pushed to the reply key, which expires soon after. A request whose
deadline has passed when it is popped is dropped: its caller has already given up. A node that
died leaves its list unserved, and its callers time out (504), as with a device that does not
answer.

Only trusted nodes reach Redis (docs/security.md): what arrives here is not re-authorized. The
API node has authorized the caller before it asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from xueliang import errors
from xueliang.cluster import cancelled
from xueliang.errors import DomainError, GatewayTimeout, Unavailable

log = logging.getLogger("xueliang.cluster")

Handler = Callable[..., Awaitable[Any]]

#: The errors an answer may carry, by name: a domain error crosses nodes as itself.
_ERRORS: dict[str, type[DomainError]] = {
    c.__name__: c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, DomainError)
}


class RpcServer:
    def __init__(self, url: str, node: str, handlers: Mapping[str, Handler], *, prefix: str = "xueliang") -> None:
        self.node = node
        self.handlers = dict(handlers)
        self.key = f"{prefix}:rpc:{node}"
        self._url = url
        self.redis = Redis.from_url(url)
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.served = 0
        self.late = 0
        #: redis-py can swallow a cancellation that lands in a blocking read: the loop stops on this
        self._closing = False

    async def start(self) -> None:
        await self.redis.delete(self.key)  # what waited for a previous life of this node is stale
        self._task = asyncio.create_task(self._serve(), name="rpc-server")

    async def stop(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for t in list(self._running):
            t.cancel()
        await self.redis.aclose()

    async def _serve(self) -> None:
        r = Redis.from_url(self._url)
        delay = 0.2
        try:
            while not self._closing and not cancelled():
                try:
                    got = await r.blpop([self.key], timeout=1)
                    delay = 0.2
                except (RedisError, OSError):
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if got is None:
                    continue
                t = asyncio.create_task(self._handle(got[1]))
                self._running.add(t)
                t.add_done_callback(self._running.discard)
        finally:
            await r.aclose()

    async def _handle(self, raw: bytes | str) -> None:
        try:
            req = json.loads(raw)
            reply, deadline = str(req["reply"]), float(req["deadline"])
        except (ValueError, KeyError, TypeError):
            log.warning("rpc: dropped a malformed request")
            return
        if time.time() > deadline:
            self.late += 1
            return
        fn = self.handlers.get(str(req.get("method")))
        try:
            if fn is None:
                raise Unavailable(f"node {self.node} does not serve {req.get('method')!r}")
            kwargs = req.get("args") or {}
            if not isinstance(kwargs, dict):
                raise Unavailable("bad arguments")
            async with asyncio.timeout(max(0.1, deadline - time.time())):
                out: dict[str, Any] = {"ok": await fn(**kwargs)}
        except DomainError as exc:
            out = {"error": type(exc).__name__, "detail": exc.detail}
        except TimeoutError:
            out = {"error": "GatewayTimeout", "detail": f"node {self.node} did not finish in time"}
        except Exception as exc:  # an answer, not a hung caller
            log.exception("rpc %s failed", req.get("method"))
            out = {"error": "Unavailable", "detail": f"node {self.node} failed: {type(exc).__name__}"}
        self.served += 1
        with contextlib.suppress(RedisError, OSError):
            pipe = self.redis.pipeline(transaction=False)
            pipe.rpush(reply, json.dumps(out, default=str, ensure_ascii=False))
            pipe.expire(reply, 60)
            await pipe.execute()


class RpcClient:
    def __init__(self, url: str, *, prefix: str = "xueliang", timeout: float = 30.0) -> None:
        self.prefix = prefix
        self.timeout = timeout
        self.redis = Redis.from_url(url)

    async def call(self, node: str, method: str, *, timeout: float | None = None, **args: Any) -> Any:
        """The answer of ``method(**args)`` on ``node``; its domain error raised here as itself."""
        wait = self.timeout if timeout is None else timeout
        reply = f"{self.prefix}:rpc:reply:{uuid.uuid4().hex}"
        req = {"method": method, "args": args, "reply": reply, "deadline": time.time() + wait}
        try:
            await self.redis.rpush(f"{self.prefix}:rpc:{node}", json.dumps(req, ensure_ascii=False))
            got = await self.redis.blpop([reply], timeout=max(1, round(wait)))
        except (RedisError, OSError) as exc:
            raise Unavailable(f"cluster state (Redis) unavailable: {exc}") from exc
        if got is None:
            raise GatewayTimeout(f"node {node} did not answer {method} in {wait:.0f} s")
        out = json.loads(got[1])
        if "error" in out:
            raise _ERRORS.get(str(out["error"]), Unavailable)(str(out.get("detail", "")))
        return out["ok"]

    async def close(self) -> None:
        await self.redis.aclose()
