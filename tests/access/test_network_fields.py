"""Where a camera sits on the camera network and how to log in to it (RTSP URLs carry their
password; devices' addresses) is for who manages the registry or the signalling: a department
user who may see the camera gets neither, by any route (single read, listing, the map's
nearby cameras); the administrator and the maintainer do."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from tests.access.conftest import DEV_SCHOOL, SCHOOL, user
from xueliang.db.tables import Channel, Device

RTSP = "rtsp://admin:Cam-Secret-9@10.20.30.40:554/Streaming/Channels/101"


async def test_network_fields_only_for_who_manages_them(client: httpx.AsyncClient, platform) -> None:  # type: ignore[no-untyped-def]
    async with platform.sessions() as s, s.begin():
        await s.execute(update(Channel).where(Channel.id == SCHOOL).values(rtsp_url=RTSP, longitude=117.2, latitude=31.8, device_id=DEV_SCHOOL))
        await s.execute(update(Device).where(Device.id == DEV_SCHOOL).values(remote_host="10.20.30.41", remote_port=5060))
    edu = await user(platform, "edu", "department_user", department="教育局")
    mnt = await user(platform, "mnt", "maintainer")
    for who, sees in ((edu, False), (mnt, True)):
        one = (await client.get(f"/api/v1/channels/{SCHOOL}", headers=who)).json()
        listed = [c for c in (await client.get("/api/v1/channels", headers=who)).json()["items"] if c["id"] == SCHOOL]
        near = (await client.get("/api/v1/channels/near", params={"lon": 117.2, "lat": 31.8}, headers=who)).json()
        nearby = [c for tier in near.values() for c in tier if c["id"] == SCHOOL]
        dev = (await client.get(f"/api/v1/devices/{DEV_SCHOOL}", headers=who)).json()
        devs = [d for d in (await client.get("/api/v1/devices", headers=who)).json()["items"] if d["id"] == DEV_SCHOOL]
        assert one.get("id") == SCHOOL, one
        assert listed and nearby and dev["id"] == DEV_SCHOOL and devs
        urls = {one["rtsp_url"], listed[0]["rtsp_url"], nearby[0]["rtsp_url"]}
        hosts = {(dev["remote_host"], dev["remote_port"]), (devs[0]["remote_host"], devs[0]["remote_port"])}
        if sees:
            assert urls == {RTSP} and hosts == {("10.20.30.41", 5060)}
        else:
            assert urls == {None} and hosts == {(None, None)}, (urls, hosts)
