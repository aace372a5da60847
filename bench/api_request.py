"""The CPU of one API request through the whole application, in-process, no sockets.

The real platform (SQLite under a temporary directory, SIP and media off) and the real app
(every middleware, FastAPI's routing and dependencies); each request is one ASGI call with a
bearer token, answered 200. Prints ``name: value unit`` lines: the process CPU per request, and
with ``--profile N`` the N functions with the most own time (cProfile; a map, not a figure).

    .venv/bin/python bench/api_request.py [--path /api/v1/auth/me] [--requests 2000] [--profile 25]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))


async def run(args: argparse.Namespace) -> None:
    import httpx

    from xueliang.api.main import create_app
    from xueliang.app import Platform
    from xueliang.config import Settings

    d = tempfile.mkdtemp()
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{d}/bench.db"}, storage={"var_dir": d},
        secret_key="bench-secret-0123456789abcdef", bootstrap_admin="root",
        bootstrap_password="Root-pass-1", sip={"enabled": False}, media={"enabled": False},
        access={"totp_required_roles": [], "api_burst": 10**9, "api_rate": 10**9},
    )
    platform = Platform(settings)
    await platform.start()
    try:
        app = create_app(platform, manage_lifecycle=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as c:
            r = await c.post("/api/v1/auth/login", json={"username": "root", "password": "Root-pass-1"})
            token = r.json()["access_token"]
        path = args.path
        scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5555), "server": ("b", 80),
            "headers": [(b"host", b"b"), (b"authorization", f"Bearer {token}".encode())],
        }
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        async def requests(n: int) -> None:
            for _ in range(n):
                await app(dict(scope), receive, send)

        await requests(200)  # warm caches
        status.clear()
        t0 = time.process_time()
        await requests(args.requests)
        cpu = (time.process_time() - t0) / args.requests
        if set(status) != {200}:
            raise SystemExit(f"{path} answered {sorted(set(status))}, not 200")
        print(f"api_request_path: {path}")
        print(f"api_request_cpu: {cpu * 1e6:.0f} us")
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            await requests(args.requests)
            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(args.profile)
    finally:
        await platform.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", default="/api/v1/auth/me")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--profile", type=int, default=0)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
