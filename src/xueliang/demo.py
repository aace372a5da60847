"""``xueliang demo``: the platform on the embedded defaults with a generated fictional city."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from xueliang.config import Settings

log = logging.getLogger("xueliang.demo")
DEMO_USERS = [
    ("admin", "xueliang-demo", "administrator", None, None),
    ("duty", "xueliang-demo", "operator", None, None),
    ("education", "xueliang-demo", "department_user", "教育局", None),
]


async def prepare(settings: Settings, fresh: bool = False) -> object:
    """Migrate, load the city if the registry is empty, add the demo users. Returns the city."""
    from xueliang.app import Platform
    from xueliang.db.tables import Channel
    from xueliang.sim import city as democity

    if fresh and settings.database.url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        db = make_url(settings.database.url).database
        if db:
            from pathlib import Path

            for suffix in ("", "-wal", "-shm"):
                Path(db + suffix).unlink(missing_ok=True)
    platform = Platform(settings)
    await platform.migrate()  # the schema, then the national division list
    city = democity.generate()
    try:
        async with platform.sessions() as s:
            n = await s.scalar(select(func.count()).select_from(Channel))
        if not n:
            await democity.load(platform.sessions, city)
            log.info("demo city loaded: %d channels", len(city.channels))
        for name, pw, role, dept, div in DEMO_USERS:
            from xueliang.errors import Conflict

            try:
                await platform.users.create(
                    name, pw, role, department=dept, division_code=div, enforce_policy=False
                )
            except Conflict:
                pass
    finally:
        await platform.engine.dispose()
    return city


async def run_demo(settings: Settings, fresh: bool = False, simulate: bool = True) -> None:
    from xueliang.server import run

    access = getattr(settings, "access", None)
    if access is not None and hasattr(access, "totp_required_roles"):
        access.totp_required_roles = []  # the demo's users have no authenticator app
    # Every simulated device speaks from 127.0.0.1: one address, many devices.
    settings.sip.rate_limit_per_address = max(settings.sip.rate_limit_per_address, 5000.0)
    city = await prepare(settings, fresh)
    url = f"http://{settings.api.host}:{settings.api.port}/"
    print(f"\n  xueliang demo: {url}   log in as admin / xueliang-demo\n", flush=True)
    if simulate:
        from xueliang import demo_sim

        await demo_sim.run_with_devices(settings, city)
    else:
        await run(settings)
