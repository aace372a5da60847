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
    ("repair", "xueliang-demo", "maintainer", None, None),
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
        await _demo_team(platform, city)
        # the demo map: its own basemap (unless one is configured) and division boundaries
        from xueliang.maps import demo as demo_map

        drawn = await demo_map.prepare(platform.maps, settings.storage.var_dir, city.divisions)
        if settings.map.basemap is None:
            settings.map.basemap = drawn
    finally:
        await platform.engine.dispose()
    return city


async def _demo_team(platform: object, city: object) -> None:
    """A maintenance team answering for the first county, with ``repair`` in it (once)."""
    from xueliang.health.teams import Duty, MaintenanceService, TeamIn

    sessions = platform.sessions  # type: ignore[attr-defined]
    teams = MaintenanceService(sessions)
    if await teams.list():
        return
    county = next(d["code"] for d in city.divisions if d["level"] == "county")  # type: ignore[attr-defined]
    user = await platform.users.by_name("repair")  # type: ignore[attr-defined]
    await teams.save(TeamIn(name="城区维保队", company="雪亮安防维保有限公司",
                            contacts=[{"name": "王工", "phone": "13800000001"}],  # type: ignore[list-item]
                            duties=[Duty(kind="division", ref=str(county))],
                            members=[user.id] if user is not None else []))


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
