"""A recording downloads through a plain link (the console's: the browser saves the file and
shows its progress): ``?token=`` takes a media token minted for this channel's recordings, and
nothing else (not a login token, not a live media token, not another channel's)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import admin, client, login, platform  # noqa: F401  (fixtures)
from tests.recording._segments import lay_out
from xueliang.app import Platform
from xueliang.registry.models import ChannelIn

CH, OTHER = "34020000001310000077", "34020000001310000078"
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
WHEN = {"start": T0.isoformat(), "end": (T0 + timedelta(minutes=2)).isoformat()}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_download_link_carries_a_media_token_of_its_channel_only(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    for cid in (CH, OTHER):
        await platform.registry.create_channel(ChannelIn(id=cid, name=cid[-2:]))
        await lay_out(platform.sessions, tmp_path / "recordings", cid, T0, 2)
    url = f"/api/v1/channels/{CH}/recordings/download"
    whole = await client.get(url, params=WHEN, headers=admin)
    assert whole.status_code == 200, whole.text

    r = await client.post(f"/api/v1/channels/{CH}/recordings/media-token", headers=admin)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    link = await client.get(url, params={**WHEN, "token": token})
    assert link.status_code == 200 and link.content == whole.content
    assert link.headers["content-disposition"].startswith("attachment;")
    # not another channel's recordings, not as a bearer, not to mint another
    other = await client.get(f"/api/v1/channels/{OTHER}/recordings/download", params={**WHEN, "token": token})
    assert other.status_code == 401
    bearer = await client.get(url, params=WHEN, headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 401
    again = await client.post(f"/api/v1/channels/{CH}/recordings/media-token",
                              headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401
    # a login token in the URL opens nothing; a missing channel looks missing
    login = admin["Authorization"].removeprefix("Bearer ")
    assert (await client.get(url, params={**WHEN, "token": login})).status_code == 401
    missing = await client.post("/api/v1/channels/34020000001310000099/recordings/media-token", headers=admin)
    assert missing.status_code == 404


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_export_files_token_is_its_requesters_and_opens_its_files_only(
        platform: Platform, client: httpx.AsyncClient, admin: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    await platform.registry.create_channel(ChannelIn(id=CH, name="cam"))
    await lay_out(platform.sessions, tmp_path / "recordings", CH, T0, 2)
    r = await client.post("/api/v1/exports", headers=admin, json={
        "channels": [CH], **WHEN, "purpose": "案件取证", "case_number": "A-7"})
    assert r.status_code == 201, r.text
    eid = r.json()["id"]
    r = await client.post(f"/api/v1/exports/{eid}/media-token", headers=admin)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    # not another export's files, not a recording, not as a bearer
    assert (await client.get(f"/api/v1/exports/{eid + 1}/files/manifest.json", params={"token": token})).status_code == 401
    assert (await client.get(f"/api/v1/channels/{CH}/recordings/download",
                             params={**WHEN, "token": token})).status_code == 401
    assert (await client.get(f"/api/v1/exports/{eid}", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    # not finished yet (no runner here): its own token reaches the route, which finds no such file yet
    assert (await client.get(f"/api/v1/exports/{eid}/files/manifest.json", params={"token": token})).status_code == 404
    # another user who may export: the export looks missing to them, token and all
    r = await client.post("/api/v1/users", headers=admin, json={
        "username": "other-op", "password": "Other-pass-12", "role": "operator"})
    assert r.status_code == 201, r.text
    other = await login(client, "other-op", "Other-pass-12")
    assert (await client.post(f"/api/v1/exports/{eid}/media-token", headers=other)).status_code == 404
    assert (await client.post("/api/v1/exports/x/media-token", headers=admin)).status_code == 422
