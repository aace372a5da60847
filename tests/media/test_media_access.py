"""Who may read a stream, tried as an attacker would, against a real uvicorn and real video.

Each test has a principal that holds everything except the one right or identity needed (it
is refused, by every way of reaching the same video) and one that holds exactly it. Issue 10,
items 1, 2, 5, 7 and 8: playback and download video through the generic stream routes, pushed
streams replacing a camera, viewing sessions audited, single-use approvals over WebSocket,
media tokens that reach too far, and open streams cut when their rights go.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from test_hub_support import LiveServer, RtpPusher, ps_clip, read_for
from test_media_api import CH_A, CH_B, UNIT_B, FakeGbProvider, two_departments
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from xueliang.access.book import Rule
from xueliang.db.tables import AuditRecord, Recording

PW = "Harbour-Lamp-42"
WHEN = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z"}
READS = ("live.mp4", "live.flv", "live.m3u8", "hls/init.mp4", "live.info", "snapshot.jpg")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = LiveServer(tmp_path_factory.mktemp("media-access")).start()
    fake = FakeGbProvider()
    srv.platform.live.gb = fake
    for prefix in ("playback/", "download/", "record/"):
        # a device's recording, as the INVITE provider would; record/: the platform's own, its
        # video stood in for the same way (its real source: tests/recording/test_playback.py)
        srv.hub.set_provider(prefix, fake)
    srv.platform.access.viewing.every = 0.3  # re-check often: cuts are asserted within seconds
    reg = srv.platform.registry

    async def setup() -> None:
        await two_departments(reg)
        async with srv.platform.sessions() as s, s.begin():  # what the platform recorded of CH_A
            s.add(Recording(channel_id=CH_A, start=datetime(2026, 1, 1, tzinfo=UTC),
                            end=datetime(2026, 1, 1, 0, 10, tzinfo=UTC), size=1, path=f"{CH_A}/20260101/0.mp4",
                            tier="local", state="closed"))
        users = srv.platform.users
        await users.create("alice", PW, "operator")
        await users.create("bob", PW, "operator")
        await users.create("cgj", PW, "department_user", department=UNIT_B)
        await users.create("dana", PW, "department_user", department=UNIT_B)

    srv.run(setup())
    yield srv
    srv.stop()


@contextmanager
def approval_rule(server: LiveServer, name: str, action: str, **where: Any) -> Iterator[None]:
    """Every configured rule, and one more that demands an approval for ``action``."""
    book = server.platform.access.book
    saved = book.rules
    rule = Rule(name=name, actions=frozenset({action}), classes=None, key_site=where.get("key_site"),
                tiers=None, outside_department=where.get("outside_department", False),
                require="approval", case_required=False)
    server.call(lambda: book.set_rules([*saved, rule]))
    try:
        yield
    finally:
        server.call(lambda: book.set_rules(saved))


def bearer(server: LiveServer, user: str) -> dict[str, str]:
    if user == "ops":  # the maintainer LiveServer makes
        return {"Authorization": f"Bearer {server.token()}"}
    password = "Root-pass-1" if user == "root" else PW
    return {"Authorization": f"Bearer {server.token(user, password)}"}


def start_playback(server: LiveServer, who: dict[str, str], mode: str = "playback") -> str:
    """``mode`` record: a playback of the platform's own recording (``source: platform``)."""
    route, body = ("playback", {**WHEN, "source": "platform"}) if mode == "record" else (mode, WHEN)
    r = httpx.post(f"{server.base}/api/v1/channels/{CH_A}/{route}", json=body, headers=who, timeout=20)
    assert r.status_code == 200, r.text
    name: str = r.json()["stream"]
    assert name.startswith(f"{mode}/{CH_A}/")
    return name


def ws_status(url: str, headers: dict[str, str] | None = None) -> int:
    """101 when the socket opens (and sends its first message), else the refused status."""
    try:
        with connect(url, additional_headers=headers or {}, open_timeout=10) as ws:
            ws.recv(timeout=10)
            return 101
    except InvalidStatus as exc:
        return int(exc.response.status_code)


def ws_url(server: LiveServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}/api/v1/{path}"


async def audit_rows(server: LiveServer, action: str) -> list[AuditRecord]:
    await server.platform.access.audit.flush()
    async with server.platform.sessions() as s:
        rows = list((await s.scalars(select(AuditRecord).where(AuditRecord.action == action))).all())
    for r in rows:  # stored as JSON text
        r.detail = json.loads(r.detail) if isinstance(r.detail, str) else (r.detail or {})
    return rows


# --------------------------------------------------------------------------- item 1


@pytest.mark.parametrize("mode", ["playback", "download", "record"])
def test_a_playback_is_its_openers_alone_by_every_way(server: LiveServer, mode: str) -> None:
    alice, bob, root = (bearer(server, u) for u in ("alice", "bob", "root"))
    name = start_playback(server, alice, mode)
    base = f"{server.base}/api/v1/streams/{name}"
    # bob holds every right alice has (live, playback, download, the whole city): not hers.
    for path in READS:
        r = httpx.get(f"{base}/{path}", headers=bob, timeout=20)
        assert r.status_code == 404, (path, r.status_code, r.text)
    assert httpx.get(base, headers=bob).status_code == 404
    assert httpx.post(f"{base}/media-token", headers=bob).status_code == 404
    assert httpx.post(f"{base}/control", json={"action": "pause"}, headers=bob).status_code == 404
    assert httpx.delete(base, headers=bob).status_code == 404
    assert ws_status(ws_url(server, f"streams/{name}/live.ws"), bob) == 404
    assert name not in {s["name"] for s in httpx.get(f"{server.base}/api/v1/streams", headers=bob).json()}
    # A maintainer who may watch the channel live may not read its playback either.
    ops = bearer(server, "ops")
    assert httpx.get(f"{base}/live.flv", headers=ops, timeout=20).status_code in (403, 404)
    # alice reads her own, by the listing, over HTTP and over WebSocket.
    assert name in {s["name"] for s in httpx.get(f"{server.base}/api/v1/streams", headers=alice).json()}
    status, flv = read_for(f"{base}/live.flv", 0.5, alice)
    assert status == 200 and flv[:3] == b"FLV"
    assert ws_status(ws_url(server, f"streams/{name}/live.ws"), alice) == 101
    # An administrator may stop it; bob could not.
    assert httpx.delete(base, headers=root).status_code == 204


def test_reading_a_playback_needs_the_playback_right_too(server: LiveServer) -> None:
    """The owner's rights are checked again for the action the stream exists for: alice's own
    API token, scoped for everything she may do but playback, is refused her playback."""
    alice, root = bearer(server, "alice"), bearer(server, "root")
    name = start_playback(server, alice)
    scopes = ["registry.read", "stats.read", "media.live", "media.download", "device.ptz",
              "device.query", "device.control"]
    r = httpx.post(f"{server.base}/api/v1/access/tokens",
                   json={"username": "alice", "name": "no-playback", "scopes": scopes}, headers=root)
    assert r.status_code == 201, r.text
    narrow = {"Authorization": f"Bearer {r.json()['token']}"}
    base = f"{server.base}/api/v1/streams/{name}"
    assert httpx.get(f"{base}/live.flv", headers=narrow, timeout=20).status_code == 403
    assert ws_status(ws_url(server, f"streams/{name}/live.ws"), narrow) == 403
    assert httpx.get(f"{server.base}/api/v1/channels/{CH_A}/live.info", headers=narrow,
                     timeout=20).status_code == 200  # what it holds still works


# --------------------------------------------------------------------------- item 2


def test_a_pushed_stream_cannot_stand_in_for_a_camera(server: LiveServer) -> None:
    ops = bearer(server, "ops")
    r = httpx.post(f"{server.base}/api/v1/media/rtp-receivers",
                   json={"ssrc": 777001, "name": f"live/{CH_A}"}, headers=ops)
    assert r.status_code == 201, r.text
    assert r.json()["name"] == f"rtp/live/{CH_A}"  # its own namespace, whatever it asks for
    pusher = RtpPusher(r.json()["udp_port"], 777001, ps_clip()).start()
    try:
        assert server.hub.stream(f"live/{CH_A}") is None or server.hub.stream(f"live/{CH_A}").kind != "rtp"
        info = httpx.get(f"{server.base}/api/v1/channels/{CH_A}/live.info", headers=ops, timeout=20)
        assert info.status_code == 200 and info.json()["stream"] == f"live/{CH_A}"
        assert server.hub.stream(f"live/{CH_A}").kind == "gb28181"  # the camera's own source
        # The receiver is its opener's: another who may watch the channel may not read it ...
        bob = bearer(server, "bob")
        assert httpx.get(f"{server.base}/api/v1/streams/rtp/live/{CH_A}/live.info",
                         headers=bob, timeout=20).status_code in (403, 404)
        # ... nor stop it.
        assert httpx.delete(f"{server.base}/api/v1/media/rtp-receivers/rtp/live/{CH_A}",
                            headers=bob).status_code in (403, 404)
        # Its owner does.
        assert httpx.get(f"{server.base}/api/v1/streams/rtp/live/{CH_A}/live.info",
                         headers=ops, timeout=20).status_code == 200
    finally:
        pusher.stop()
        r = httpx.delete(f"{server.base}/api/v1/media/rtp-receivers/rtp/live/{CH_A}", headers=ops)
        assert r.status_code == 204


# --------------------------------------------------------------------------- item 8


def test_a_media_token_reads_one_stream_for_one_action(server: LiveServer) -> None:
    alice = bearer(server, "alice")
    r = httpx.post(f"{server.base}/api/v1/channels/{CH_A}/media-token", headers=alice)
    assert r.status_code == 200
    tok = r.json()["token"]
    q = {"token": tok}
    api = f"{server.base}/api/v1"
    status, flv = read_for(f"{api}/channels/{CH_A}/live.flv?token={tok}", 0.3)
    assert status == 200 and flv[:3] == b"FLV"
    # Not another channel, nor another action on this one, nor anything that is not a read.
    assert httpx.get(f"{api}/channels/{CH_B}/live.flv", params=q).status_code == 401
    assert httpx.post(f"{api}/channels/{CH_A}/playback", params=q, json=WHEN).status_code == 401
    assert httpx.post(f"{api}/channels/{CH_A}/download", params=q, json=WHEN).status_code == 401
    assert httpx.post(f"{api}/channels/{CH_A}/ptz", params=q, json={"command": "stop"}).status_code == 401
    assert httpx.get(f"{api}/channels/{CH_A}", params=q).status_code == 401
    assert httpx.get(f"{api}/streams", params=q).status_code == 401
    # It cannot renew itself: neither in the URL nor as a bearer.
    assert httpx.post(f"{api}/channels/{CH_A}/media-token", params=q).status_code == 401
    as_bearer = {"Authorization": f"Bearer {tok}"}
    assert httpx.post(f"{api}/channels/{CH_A}/media-token", headers=as_bearer).status_code == 401
    # A playback of the same channel is another stream and another action.
    name = start_playback(server, alice)
    assert httpx.get(f"{api}/streams/{name}/live.flv", params=q, timeout=20).status_code == 404
    pb = httpx.post(f"{api}/streams/{name}/media-token", headers=alice).json()
    assert pb["action"] == "media.playback" and pb["stream"] == name
    status, flv = read_for(f"{api}/streams/{name}/live.flv?token={pb['token']}", 0.3)
    assert status == 200 and flv[:3] == b"FLV"
    assert httpx.get(f"{api}/channels/{CH_A}/live.flv", params={"token": pb["token"]}).status_code == 401
    assert httpx.post(f"{api}/streams/{name}/control", params={"token": pb["token"]},
                      json={"action": "pause"}).status_code == 401


def test_login_and_api_tokens_are_refused_in_urls(server: LiveServer) -> None:
    alice = bearer(server, "alice")
    login = alice["Authorization"][7:]
    root = bearer(server, "root")
    r = httpx.post(f"{server.base}/api/v1/access/tokens",
                   json={"username": "alice", "name": "wall", "scopes": ["media.live"]}, headers=root)
    assert r.status_code == 201, r.text
    api_token = r.json()["token"]
    for tok in (login, api_token):
        for path in (f"channels/{CH_A}/live.flv", f"channels/{CH_A}/snapshot.jpg", "streams",
                     f"channels/{CH_A}", "auth/me"):
            assert httpx.get(f"{server.base}/api/v1/{path}", params={"token": tok}).status_code == 401, path
        assert ws_status(ws_url(server, f"channels/{CH_A}/live.ws?token={tok}")) == 401
    # The same tokens as bearers do open it.
    assert httpx.get(f"{server.base}/api/v1/channels/{CH_A}/live.info", headers=alice, timeout=20).status_code == 200
    api_bearer = {"Authorization": f"Bearer {api_token}"}
    assert httpx.get(f"{server.base}/api/v1/channels/{CH_A}/live.info", headers=api_bearer, timeout=20).status_code == 200


# --------------------------------------------------------------------------- item 5


def test_every_viewing_session_is_one_audit_record(server: LiveServer) -> None:
    alice = {**bearer(server, "alice"), "X-Purpose": "flood%20watch", "X-Case": "F-17"}
    async def last_seq() -> int:
        await server.platform.access.audit.flush()
        async with server.platform.sessions() as s:
            return int(await s.scalar(select(func.max(AuditRecord.seq))) or 0)

    first = server.run(last_seq())
    before = set(range(first + 1))
    status, flv = read_for(f"{server.base}/api/v1/channels/{CH_A}/live.flv", 1.0, alice)
    assert status == 200
    assert ws_status(ws_url(server, f"channels/{CH_A}/live.ws"), alice) == 101
    deadline = time.monotonic() + 10
    while True:
        rows = [r for r in server.run(audit_rows(server, "media.live.session")) if r.seq not in before]
        if len(rows) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(rows) == 2, [r.detail for r in rows]
    by_format = {r.detail["format"]: r for r in rows}
    assert set(by_format) == {"flv", "fmp4"}
    flv_row = by_format["flv"]
    assert flv_row.actor == "alice" and flv_row.resource_id == CH_A
    assert flv_row.purpose == "flood watch" and flv_row.case_ref == "F-17"
    assert flv_row.detail["bytes"] >= len(flv) > 0
    assert flv_row.detail["start"] < flv_row.detail["end"]
    assert flv_row.detail["ended"] == by_format["fmp4"].detail["ended"] == "client left"
    # The request did not make a second record of its own.
    reads = [r for r in server.run(audit_rows(server, "media.live")) if r.actor == "alice" and r.seq not in before]
    assert reads == []


def test_websocket_refusals_are_audited_and_nothing_is_served(server: LiveServer) -> None:
    cgj = bearer(server, "cgj")  # department B: channel A is not theirs
    assert ws_status(ws_url(server, f"channels/{CH_A}/live.ws"), cgj) == 404
    rows = [r for r in server.run(audit_rows(server, "media.live")) if r.actor == "cgj"]
    assert rows and rows[-1].outcome in ("denied", "failed") and rows[-1].status == 404
    sessions = [r for r in server.run(audit_rows(server, "media.live.session")) if r.actor == "cgj"]
    assert sessions == []


# --------------------------------------------------------------------------- cuts


def _watch(url: str, headers: dict[str, str]) -> tuple[threading.Thread, dict[str, Any]]:
    """Read a live URL in a thread until it ends; ``out["ended"]`` is when."""
    out: dict[str, Any] = {"bytes": 0, "ended": None, "started": threading.Event()}

    def run() -> None:
        try:
            with httpx.Client(timeout=30) as c, c.stream("GET", url, headers=headers) as r:
                out["status"] = r.status_code
                if r.status_code != 200:
                    out["body"] = r.read()
                for chunk in r.iter_raw():
                    out["bytes"] += len(chunk)
                    out["started"].set()
        except httpx.HTTPError as exc:
            out["error"] = exc
        finally:
            out["ended"] = time.monotonic()
            out["started"].set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert out["started"].wait(20)
    assert out.get("status") == 200 and out["ended"] is None, out.get("body")
    return t, out


def _cut_within(t: threading.Thread, out: dict[str, Any], seconds: float) -> None:
    t0 = time.monotonic()
    t.join(seconds)
    assert not t.is_alive(), f"the stream still runs {seconds} s after its right was withdrawn"
    assert out["ended"] - t0 < seconds


def test_an_open_stream_is_cut_when_its_user_is_disabled(server: LiveServer) -> None:
    dana = bearer(server, "dana")
    t, out = _watch(f"{server.base}/api/v1/channels/{CH_B}/live.flv", dana)
    uid = server.run(server.platform.users.by_name("dana")).id
    server.run(server.platform.users.update(uid, {"disabled": True}))
    try:
        _cut_within(t, out, 5.0)
    finally:
        server.run(server.platform.users.update(uid, {"disabled": False}))
    rows = [r for r in server.run(audit_rows(server, "media.live.session")) if r.actor == "dana"]
    assert rows and rows[-1].detail["ended"].startswith("cut:")


def test_an_open_stream_is_cut_when_its_login_is_logged_out(server: LiveServer) -> None:
    dana = bearer(server, "dana")
    tok = httpx.post(f"{server.base}/api/v1/channels/{CH_B}/media-token", headers=dana).json()["token"]
    t1, out1 = _watch(f"{server.base}/api/v1/channels/{CH_B}/live.flv", dana)
    t2, out2 = _watch(f"{server.base}/api/v1/channels/{CH_B}/live.mp4?token={tok}", {})
    other = bearer(server, "dana")  # another login of the same user keeps watching
    t3, out3 = _watch(f"{server.base}/api/v1/channels/{CH_B}/live.flv", other)
    assert httpx.post(f"{server.base}/api/v1/auth/logout", headers=dana).status_code == 204
    _cut_within(t1, out1, 5.0)
    _cut_within(t2, out2, 5.0)  # the media token minted by that login goes with it
    assert t3.is_alive()
    httpx.post(f"{server.base}/api/v1/auth/logout", headers=other)
    _cut_within(t3, out3, 5.0)


def test_an_open_stream_is_cut_when_its_sharing_grant_is_withdrawn(server: LiveServer) -> None:
    root, cgj = bearer(server, "root"), bearer(server, "cgj")
    r = httpx.post(f"{server.base}/api/v1/access/grants",
                   json={"user_id": server.run(server.platform.users.by_name("cgj")).id,
                         "channel_ids": [CH_A], "actions": ["media.live"]}, headers=root)
    assert r.status_code == 201, r.text
    grant = r.json()["id"]
    # Another department's camera through a grant: with a purpose (the default rule).
    t, out = _watch(f"{server.base}/api/v1/channels/{CH_A}/live.flv", {**cgj, "X-Purpose": "patrol"})
    own, own_out = _watch(f"{server.base}/api/v1/channels/{CH_B}/live.flv", cgj)
    assert httpx.delete(f"{server.base}/api/v1/access/grants/{grant}", headers=root).status_code == 204
    _cut_within(t, out, 5.0)
    assert own.is_alive()  # their own department's camera stays
    httpx.post(f"{server.base}/api/v1/auth/logout", headers=cgj)
    _cut_within(own, own_out, 5.0)


# --------------------------------------------------------------------------- item 7


def test_a_single_use_approval_is_used_up_over_websocket(server: LiveServer) -> None:
    with approval_rule(server, "outside-live", "media.live", outside_department=True):
        cgj, root = bearer(server, "cgj"), bearer(server, "root")
        url = ws_url(server, f"channels/{CH_A}/live.ws")
        assert ws_status(url, cgj) == 404  # not theirs without an approval
        r = httpx.post(f"{server.base}/api/v1/approvals", headers=cgj,
                       json={"channel_ids": [CH_A], "actions": ["media.live"],
                             "purpose": "a fire on the quay", "max_uses": 1})
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        assert httpx.post(f"{server.base}/api/v1/approvals/{rid}/approve", headers=root,
                          json={}).status_code == 200
        assert ws_status(url, cgj) == 101  # its one use
        time.sleep(0.5)
        assert ws_status(url, cgj) == 404  # used up: not theirs again
        assert httpx.get(f"{server.base}/api/v1/channels/{CH_A}/live.info", headers=cgj,
                         timeout=20).status_code == 404


def test_a_download_opened_on_a_single_use_approval_is_read_without_asking_again(server: LiveServer) -> None:
    """The approval is used when the download opens; reading, steering and minting a media
    token for it stand on that opening (nothing asked or used again); withdrawing the approval
    closes it."""
    with approval_rule(server, "download-approval", "media.download", key_site=False):
        alice, root = bearer(server, "alice"), bearer(server, "root")
        r = httpx.post(f"{server.base}/api/v1/channels/{CH_A}/download", json=WHEN, headers=alice, timeout=20)
        assert r.status_code == 403 and r.json()["type"].endswith("approval-required"), r.text
        r = httpx.post(f"{server.base}/api/v1/approvals", headers=alice,
                       json={"channel_ids": [CH_A], "actions": ["media.download"],
                             "purpose": "evidence for case 7", "case": "XA-7", "max_uses": 1})
        rid = r.json()["id"]
        assert httpx.post(f"{server.base}/api/v1/approvals/{rid}/approve", headers=root,
                          json={}).status_code == 200
        name = start_playback(server, alice, "download")  # the one use
        base = f"{server.base}/api/v1/streams/{name}"
        status, flv = read_for(f"{base}/live.flv", 0.3, alice)
        assert status == 200 and flv[:3] == b"FLV"
        assert ws_status(ws_url(server, f"streams/{name}/live.ws"), alice) == 101
        tok = httpx.post(f"{base}/media-token", headers=alice)
        assert tok.status_code == 200, tok.text
        status, _ = read_for(f"{base}/live.mp4?token={tok.json()['token']}", 0.3)
        assert status == 200
        # Used up for a second download ...
        r = httpx.post(f"{server.base}/api/v1/channels/{CH_A}/download", json=WHEN, headers=alice, timeout=20)
        assert r.status_code in (403, 404), r.text
        # ... and the session records carry the approval's purpose and case.
        rows = [r for r in server.run(audit_rows(server, "media.download.session")) if r.actor == "alice"]
        assert rows and rows[-1].purpose.startswith("evidence for case 7") and rows[-1].detail["approval_id"]
        # Withdrawn: the download is no longer readable.
        assert httpx.post(f"{server.base}/api/v1/approvals/{rid}/withdraw", headers=alice).status_code == 200
        assert httpx.get(f"{base}/live.flv", headers=alice, timeout=20).status_code == 404
