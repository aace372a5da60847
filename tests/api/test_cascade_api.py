"""Upper platforms through the API: validation, the password never answered, the audit, and
(with signalling on) the link running in the platform and its status."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.api.conftest import login
from xueliang.app import Platform
from xueliang.config import Settings
from xueliang.db.tables import AuditRecord, UpperPlatform

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gb28181" / "cascade"))
from _cascade_upper import PASSWORD, UPPER_ID, Upper

URL = "/api/v1/cascade/uppers"
SECRET = "S3cret-toward-province"
BODY: dict[str, Any] = {"name": "省平台", "sip_id": UPPER_ID, "host": "10.1.2.3", "port": 5060,
                        "transport": "udp", "password": SECRET}


def no_password(r: httpx.Response) -> None:
    assert "password\"" not in r.text.replace("has_password\"", ""), r.text
    assert SECRET not in r.text and "v1:" not in r.text, r.text


async def test_crud_validation_and_the_password_never_answered(client: httpx.AsyncClient, admin: dict[str, str],
                                                               platform: Platform) -> None:
    r = await client.post(URL, json=BODY, headers=admin)
    assert r.status_code == 201, r.text
    no_password(r)
    up = r.json()
    assert up["domain"] == UPPER_ID[:10] and up["charset"] == "GB2312" and up["rtp_transport"] == "udp"
    assert up["has_password"] is True and up["enabled"] is True
    assert up["status"]["state"] == "not-running"  # SIP is off here: no link runs
    uid = up["id"]

    for bad, field in [({"sip_id": "3402000000200000001"}, "sip_id"), ({"port": 70000}, "port"),
                       ({"transport": "sctp"}, "transport"), ({"charset": "latin1"}, "charset"),
                       ({"rtp_transport": "tcp"}, "rtp_transport"), ({"host": "a b"}, "host"),
                       ({"local_sip_id": "x" * 20}, "local_sip_id"), ({"register_expires": 5}, "register_expires"),
                       ({"share": {"classes": [5]}}, "share"), ({"share": {"channels": ["12"]}}, "share"),
                       ({"share": {"all": True, "control": "maybe"}}, "share")]:
        r = await client.post(URL, json={**BODY, "name": f"n-{field}", **bad}, headers=admin)
        assert r.status_code == 422, (bad, r.text)
        assert field in r.text, r.text
        no_password(r)
    r = await client.post(URL, json={k: v for k, v in BODY.items() if k != "password"} | {"name": "x"}, headers=admin)
    assert r.status_code == 422 and "password" in r.text
    r = await client.post(URL, json=BODY, headers=admin)  # the same name again
    assert r.status_code == 409, r.text

    for r in [await client.get(URL, headers=admin), await client.get(f"{URL}/{uid}", headers=admin),
              await client.get(f"{URL}/{uid}/status", headers=admin)]:
        assert r.status_code == 200, r.text
        no_password(r)
    assert [u["id"] for u in (await client.get(URL, headers=admin)).json()] == [uid]

    r = await client.patch(f"{URL}/{uid}", json={"transport": "TCP", "charset": "utf8", "password": "Another-1",
                                                   "announce_host": "203.0.113.9", "announce_port": 15060},
                           headers=admin)
    assert r.status_code == 200, r.text
    no_password(r)
    assert "Another-1" not in r.text
    assert (r.json()["transport"], r.json()["charset"], r.json()["announce_port"]) == ("tcp", "UTF-8", 15060)
    for bad in [{"port": 0}, {"name": None}, {"keepalive_max_missed": 0}, {"nope": 1}]:
        r = await client.patch(f"{URL}/{uid}", json=bad, headers=admin)
        assert r.status_code == 422, (bad, r.text)
    async with platform.sessions() as s:
        row = await s.get(UpperPlatform, uid)
        assert row is not None and row.password.startswith("v1:") and "Another-1" not in row.password
    assert platform.uppers.secret(row) == "Another-1"

    assert (await client.get(f"{URL}/999999", headers=admin)).status_code == 404
    assert (await client.patch(f"{URL}/999999", json={"port": 5061}, headers=admin)).status_code == 404
    r = await client.delete(f"{URL}/{uid}", headers=admin)
    assert r.status_code == 204
    assert (await client.get(f"{URL}/{uid}", headers=admin)).status_code == 404
    assert (await client.delete(f"{URL}/{uid}", headers=admin)).status_code == 404

    await platform.access.audit.flush()  # the audit writer is asynchronous
    async with platform.sessions() as s:
        actions = [a for a in (await s.scalars(select(AuditRecord.action))).all() if a.startswith("cascade.")]
    assert {"cascade.upper.create", "cascade.upper.update", "cascade.upper.delete"} <= set(actions), actions


async def test_an_operator_cannot_touch_uppers(client: httpx.AsyncClient, admin: dict[str, str],
                                               platform: Platform) -> None:
    await platform.users.create("op", "Operator-pass-9", "operator", enforce_policy=False)
    op = await login(client, "op", "Operator-pass-9")
    assert (await client.get(URL, headers=op)).status_code == 403
    assert (await client.post(URL, json=BODY, headers=op)).status_code == 403


@pytest.fixture
async def sip_platform(db_url: str, tmp_path: Path) -> AsyncIterator[Platform]:
    settings = Settings(
        database={"url": db_url}, storage={"var_dir": tmp_path}, secret_key="test-secret-0123456789abcdef",
        bootstrap_admin="root", bootstrap_password="Root-pass-1",
        sip={"enabled": True, "host": "127.0.0.1", "port": 0, "id": "34020100002000000001"},
        media={"enabled": False}, access={"totp_required_roles": []},
    )
    p = Platform(settings)
    await p.start(migrate=False)
    yield p
    await p.stop()


async def test_the_platform_registers_to_an_upper_configured_through_the_api(sip_platform: Platform) -> None:
    from xueliang.api.main import create_app

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gb28181" / "cascade"))
    from test_cascade_links_udp import serve

    assert sip_platform.cascade is not None
    proto, port, transport = await serve(Upper())
    app = create_app(sip_platform, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            admin = await login(client)
            r = await client.post(URL, json={**BODY, "host": "127.0.0.1", "port": port, "password": PASSWORD,
                                             "keepalive_interval": 1}, headers=admin)
            assert r.status_code == 201, r.text
            uid = r.json()["id"]
            for _ in range(250):
                st = (await client.get(f"{URL}/{uid}/status", headers=admin)).json()
                if st["state"] == "registered" and st["keepalives_answered"] >= 1:
                    break
                await asyncio.sleep(0.02)
            assert st["state"] == "registered" and st["registered_until"], st
            # our ID toward it: the platform's own (sip.id), none being set on the row
            assert "34020100002000000001" in str(proto.registers()[0][1].headers.get("From"))
            r = await client.patch(f"{URL}/{uid}", json={"enabled": False}, headers=admin)
            assert r.status_code == 200 and r.json()["status"]["state"] == "closed", r.text
            assert proto.registers()[-1][1].expires == 0
    finally:
        transport.close()


async def test_the_share_stored_answered_changed_previewed_and_audited(client: httpx.AsyncClient,
                                                                       admin: dict[str, str],
                                                                       platform: Platform) -> None:
    from xueliang.db.tables import Channel

    async with platform.sessions() as s:
        for i, div in enumerate(["340201", "340201", "340202", "340301"]):
            s.add(Channel(id=f"{div}0000131{i:07d}", name=f"点{i}", division_code=div, point_class=1 + i % 2,
                          status="ON"))
        await s.commit()
    share = {"divisions": ["3402"], "classes": [1],
             "business_group": {"id": "34020100002150000001", "name": "市局"},
             "organisations": [{"id": "34020100002160000001", "name": "一分局", "divisions": ["340201"]}],
             "id_map": {"3402010000131" + "0000000": "44030000001310000000"}}
    r = await client.post(URL, json={**BODY, "name": "city-share", "share": share}, headers=admin)
    assert r.status_code == 201, r.text
    up = r.json()
    assert up["share"]["divisions"] == ["3402"] and up["share"]["classes"] == [1]
    assert "channels" not in up["share"]  # only what was given is kept
    uid = up["id"]
    r = await client.get(f"{URL}/{uid}/catalog", headers=admin)
    assert r.status_code == 200, r.text
    prev = r.json()
    # 3402 and class I: channels 0 and 2 (1 is class II, 3 is in 3403)
    assert prev["channels"] == 2
    ids = [i["id"] for i in prev["items"]]
    assert ids == ["34020100002150000001", "34020100002160000001", "44030000001310000000",
                   "34020200001310000002"]
    parents = {i["id"]: i["parent_id"] for i in prev["items"]}
    assert parents["44030000001310000000"] == "34020100002160000001"
    assert parents["34020200001310000002"] == "34020100002150000001"

    r = await client.patch(f"{URL}/{uid}", json={"share": {"all": True, "control": True}}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["share"] == {"all": True, "control": True}
    assert (await client.get(f"{URL}/{uid}/catalog?limit=1", headers=admin)).json()["channels"] == 4
    assert (await client.patch(f"{URL}/{uid}", json={"share": None}, headers=admin)).status_code == 422
    assert (await client.get(f"{URL}/999999/catalog", headers=admin)).status_code == 404

    await platform.access.audit.flush()
    async with platform.sessions() as s:
        rows = (await s.scalars(select(AuditRecord).where(AuditRecord.action == "cascade.upper.update"))).all()
    assert any('"share":{"all":true,"control":true}' in (r.detail or "") for r in rows), [r.detail for r in rows]
