"""Three levels of xueliang on loopback, county → city → province, each a whole platform with
its own database, over real UDP: a simulated camera registers to the county; the county is a
lower platform of the city, the city of the province (issue 15, item 4).

- the camera reaches the province's registry through two hops, under the province's number,
  in the county's virtual organisation (216, reported to the city and passed up by it) under
  the city's business group (215); the camera the city does not share does not;
- PTZ from the province reaches the camera's head through two hops;
- a status change at the county reaches the province within seconds (catalog NOTIFY, twice);
- the city restarting costs the province nothing but a re-registration.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from tests.ports import free_port
from tests.waiting import until

from xueliang.app import Platform
from xueliang.cascade.share import Share
from xueliang.cascade.uppers import UpperIn
from xueliang.config import Settings
from xueliang.db.tables import Channel, Device
from xueliang.sim.simulator import Simulator

PROVINCE = "34000000002000000001"
CITY = "34010000002000000001"
COUNTY = "34010200002000000001"
PASSWORD = "cascade-pass-1"
BG = "34010000002150000001"
MAPPED = "34000000001310000001"  # the province's number for the county's first camera
ORG = "34010200002160000001"  # the county's virtual organisation (216) its first camera sits under


def settings(tmp: Path, name: str, sip_id: str, port: int, media: bool = False) -> Settings:
    (tmp / name).mkdir(exist_ok=True)
    return Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp}/{name}/x.db"}, storage={"var_dir": tmp / name},
        secret_key="test-secret-0123456789abcdef", bootstrap_admin="root", bootstrap_password="Root-pass-1",
        sip={"enabled": True, "host": "127.0.0.1", "port": port, "id": sip_id, "password": PASSWORD,
             "admission": "open"},
        media={"enabled": True, "host": "127.0.0.1", "announce_ip": "127.0.0.1", "rtp_port": 0, "rtp_tcp_port": 0}
        if media else {"enabled": False},
        access={"totp_required_roles": []},
    )




async def channel(p: Platform, channel_id: str) -> Channel | None:
    async with p.sessions() as s:
        return await s.get(Channel, channel_id)


async def device(p: Platform, device_id: str) -> Device | None:
    async with p.sessions() as s:
        return await s.get(Device, device_id)


@pytest.fixture
async def chain(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    ports = {n: free_port() for n in ("province", "city", "county")}
    made = {"province": Platform(settings(tmp_path, "province", PROVINCE, ports["province"])),
            "city": Platform(settings(tmp_path, "city", CITY, ports["city"])),
            "county": Platform(settings(tmp_path, "county", COUNTY, ports["county"]))}
    for p in made.values():
        await p.start()
    sim = Simulator(f"127.0.0.1:{ports['county']}", devices=1, channels=2, password=PASSWORD, server_id=COUNTY,
                    center_code="34010201", video=False)
    await sim.start()
    w: dict[str, Any] = {**made, "sim": sim, "ports": ports, "tmp": tmp_path}
    try:
        assert await sim.wait_registered(1, timeout=10)
        yield w
    finally:
        await sim.stop()
        for name in ("county", "city", "province"):
            await w[name].stop()


@pytest.mark.serial
async def test_county_city_province(chain: dict[str, Any]) -> None:
    province, city, county, sim = chain["province"], chain["city"], chain["county"], chain["sim"]
    cam, other = sorted(sim.devices[0].channels)

    async def at(p: Platform) -> bool:
        return await channel(p, cam) is not None

    await until(lambda: at(county))
    await county.uppers.create(UpperIn(
        name="市平台", sip_id=CITY, host="127.0.0.1", port=chain["ports"]["city"], password=PASSWORD,
        keepalive_interval=5, share=Share(all=True, control=True,
                                          organisations=[{"id": ORG, "name": "一类点", "channels": [cam]}])))
    await until(lambda: at(city))
    # The city keeps the county's tree: the organisation, the camera under it.
    assert (await channel(city, ORG)).kind == "group"  # type: ignore[union-attr]
    assert (await channel(city, ORG)).device_id == COUNTY  # type: ignore[union-attr]
    assert (await channel(city, cam)).parent_id == ORG  # type: ignore[union-attr]
    await city.uppers.create(UpperIn(
        name="省平台", sip_id=PROVINCE, host="127.0.0.1", port=chain["ports"]["province"], password=PASSWORD,
        keepalive_interval=5, share=Share(channels=[cam], control=True, id_map={cam: MAPPED},
                                          business_group={"id": BG, "name": "市公安局"})))

    async def shared() -> bool:
        return await channel(province, MAPPED) is not None

    await until(shared)
    at_province = await channel(province, MAPPED)
    assert at_province is not None and at_province.device_id == CITY and at_province.status == "ON"
    # The county's organisation came up with it, under the city's business group (the top).
    assert at_province.parent_id == ORG and (await channel(province, BG)).kind == "group"  # type: ignore[union-attr]
    org = await channel(province, ORG)
    assert org is not None and org.kind == "group" and org.name == "一类点" and org.parent_id == BG
    assert (await channel(province, BG)).parent_id == CITY  # type: ignore[union-attr]
    assert await channel(province, cam) is None and await channel(province, other) is None
    assert (await channel(city, cam)).device_id == COUNTY  # type: ignore[union-attr]

    # PTZ from the province, on the camera as it numbers it: province → city → county → head.
    head = sim.devices[0].channels[cam]
    await province.devices.ptz(CITY, MAPPED, "A50F0101FF0000B5")

    async def moved() -> bool:
        return bool(head.ptz_log)

    await until(moved)
    assert head.ptz_log[-1].hex.upper() == "A50F0101FF0000B5"

    # A status change at the county reaches the province within seconds: each level subscribes
    # to the catalog of the one below, as an upper platform does.
    await city.signalling.subscribe_catalog(COUNTY)
    await province.signalling.subscribe_catalog(CITY)
    await asyncio.sleep(0.8)  # each lower level reads the baseline it tells changes against
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with county.sessions() as s:
        await s.execute(update(Channel).where(Channel.id == cam).values(status="OFF"))
        await s.commit()
    county.bus.publish("channel.status", cam, status="OFF", device=sim.devices[0].id)

    async def off() -> bool:
        c = await channel(province, MAPPED)
        return c is not None and c.status == "OFF"

    await until(off, timeout=10.0)
    took = loop.time() - t0
    assert took < 5.0, took

    # The city restarts (same database, same port): the province sees a re-registration and
    # keeps everything it knew.
    registered_before = (await device(province, CITY)).registered_at  # type: ignore[union-attr]
    await city.stop()
    chain["city"] = city = Platform(settings(chain["tmp"], "city", CITY, chain["ports"]["city"]))
    await city.start()

    async def registered_again() -> bool:
        d = await device(province, CITY)
        return d is not None and d.online and d.registered_at is not None and d.registered_at > registered_before

    await until(registered_again, timeout=15.0)
    async with province.sessions() as s:
        ids = (await s.scalars(select(Channel.id).where(Channel.device_id == CITY))).all()
    assert sorted(ids) == sorted([MAPPED, ORG, BG])  # nothing lost, nothing doubled


@pytest.fixture
async def media_chain(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    ports = {n: free_port() for n in ("province", "city", "county")}
    made = {n: Platform(settings(tmp_path, n, sip_id, ports[n], media=True))
            for n, sip_id in (("province", PROVINCE), ("city", CITY), ("county", COUNTY))}
    for p in made.values():
        await p.start()
    sim = Simulator(f"127.0.0.1:{ports['county']}", devices=1, channels=1, password=PASSWORD, server_id=COUNTY,
                    center_code="34010201", video=True, video_size=(320, 180), video_seconds=2.0)
    await sim.start()
    try:
        assert await sim.wait_registered(1, timeout=10)
        yield {**made, "sim": sim, "ports": ports}
    finally:
        # From the bottom up while the camera still answers: the county's BYE for the camera's
        # stream and each level's unregistering are answered by the level above, not waited out
        # (3 s each); then the camera, with no platform left to unregister from.
        for name in ("county", "city", "province"):
            await made[name].stop()
        await sim.stop(unregister=False)


async def test_the_county_camera_plays_at_the_province_through_two_hops(media_chain: dict[str, Any]) -> None:
    """The province opens the camera as it numbers it: its INVITE goes to the city, whose hub
    opens the county's channel (an INVITE to the county), whose hub opens the camera; PS over
    RTP comes back up both hops and the province's own demuxer reads frames from it."""
    province, city, county, sim = (media_chain[n] for n in ("province", "city", "county", "sim"))
    (cam,) = sorted(sim.devices[0].channels)

    async def at(p: Platform, cid: str) -> bool:
        return await channel(p, cid) is not None

    await until(lambda: at(county, cam))
    await county.uppers.create(UpperIn(name="市平台", sip_id=CITY, host="127.0.0.1",
                                       port=media_chain["ports"]["city"], password=PASSWORD,
                                       announce_host="127.0.0.1", share=Share(all=True)))
    await until(lambda: at(city, cam))
    await city.uppers.create(UpperIn(name="省平台", sip_id=PROVINCE, host="127.0.0.1",
                                     port=media_chain["ports"]["province"], password=PASSWORD,
                                     announce_host="127.0.0.1", share=Share(channels=[cam], id_map={cam: MAPPED})))
    await until(lambda: at(province, MAPPED))
    assert province.media is not None and city.media is not None and county.media is not None
    stream = await province.media.acquire(f"live/{MAPPED}", timeout=20.0)
    assert stream.ready and stream.demuxer is not None  # PS demuxed at the province

    async def frames() -> bool:
        return stream.stats.frames >= 20

    await until(frames, timeout=15.0)
    # One stream at each hop: the city relays the county's, the county the camera's.
    assert city.media.stream(f"live/{cam}") is not None and county.media.stream(f"live/{cam}") is not None
    assert await channel(province, cam) is None  # the province only ever knew its own number
