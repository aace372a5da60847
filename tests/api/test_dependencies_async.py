"""Every dependency and endpoint of the API runs on the event loop, none in FastAPI's thread pool.

A plain ``def`` dependency is run in the thread pool: the request then waits for the loop twice
(into the thread and back), which on a busy media server is 100 ms and more for every joining
viewer (bench/media.py at 600 streams). Blocking work belongs in the services, handed to a
thread there on purpose, not in a dependency by accident."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.routing import APIRoute, APIWebSocketRoute

from xueliang.app import Platform


def _routes(routes: list[Any]) -> Iterator[Any]:
    for r in routes:
        inner = getattr(r, "original_router", None)  # FastAPI's included router, walked lazily
        if inner is not None:
            yield from _routes(inner.routes)
        else:
            yield r


def _on_the_loop(call: Any) -> bool:
    if inspect.isclass(call):
        return False  # constructed in the thread pool
    fn = call if inspect.isroutine(call) else type(call).__call__
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


def _threaded(dependant: Any, where: str, out: list[str]) -> None:
    for sub in dependant.dependencies:
        if sub.call is not None and not _on_the_loop(sub.call):
            out.append(f"{where}: {getattr(sub.call, '__qualname__', sub.call)}")
        _threaded(sub, where, out)


def test_no_dependency_or_endpoint_runs_in_the_thread_pool(platform: Platform) -> None:
    from xueliang.api.main import create_app

    app = create_app(platform, manage_lifecycle=False)
    routes = [r for r in _routes(app.routes) if isinstance(r, APIRoute | APIWebSocketRoute)]
    assert len(routes) > 150  # the walk reached the routers (not a vacuous pass)
    threaded: list[str] = []
    for r in routes:
        if not _on_the_loop(r.endpoint):
            threaded.append(f"{r.path}: endpoint {r.endpoint.__qualname__}")
        _threaded(r.dependant, r.path, threaded)
    assert threaded == []


def test_the_check_sees_a_plain_def() -> None:
    """The predicate itself: a plain function, a class and a sync callable are threaded."""

    def plain() -> None:
        pass

    async def coro() -> None:
        pass

    class Sync:
        def __call__(self) -> None:
            pass

    class Async:
        async def __call__(self) -> None:
            pass

    assert not _on_the_loop(plain) and not _on_the_loop(Sync) and not _on_the_loop(Sync())
    assert _on_the_loop(coro) and _on_the_loop(Async())
