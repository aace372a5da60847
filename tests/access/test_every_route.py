"""Every route, HTTP and WebSocket, decides who may use it — tried against a real server.

The routes are enumerated from ``app.routes`` (not the OpenAPI document, which leaves out
WebSockets), and each must have an entry in :data:`TABLE` saying what it needs: nothing (open),
a valid token (about the caller themself), or an action — with what it legitimately needs
alongside, and whether it acts on something scoped (a channel, a device, a unit, a stream).
A route added without an entry fails :func:`test_every_route_has_an_entry`.

For every route and the action it performs, with roles made for the test (``ROLES`` patched):

- ``all-but-<action>``, every action except that one, the whole city: refused (401/403/404);
- ``only-<action>``, exactly that action (plus what the table states alongside): allowed, with
  the answer the table states (2xx where the state is set up for it; a precise non-authorization
  answer where the work needs what is absent here: SIP is off, so device commands answer 503);
- for scoped routes, ``outsider``: every action, but a department that does not own the
  channel (device, unit): refused exactly as a missing ID is (404 both), so that answers never
  tell which IDs exist (issue 10, item 12);
- streams are read for the action they exist for, by their opener (issue 10, items 1 and 2):
  a playback or download opened by one user is refused to another holding every right but
  ``media.manage``; an RTP receiver is its opener's;
- WebSockets: a refused principal is refused in the handshake (an HTTP answer, never an
  accepted socket);
- ``?token=``: a login token in the query is refused on every route; a media token reads its
  own stream for its own action only — not another channel, not playback or download, not PTZ,
  not a new media token (item 8);
- the sensitive-action rules: without a purpose refused, with one allowed; an approval rule
  refuses even with a purpose.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "media"))
from test_hub_support import LiveServer, RtpPusher, ps_clip
from test_media_api import FakeGbProvider
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.incidents import route_table as incident_routes
from tests.maps import route_table as map_routes
from tests.recording import evidence_routes
from tests.residents import route_table as resident_routes
from xueliang.access import policy
from xueliang.access.policy import Action
from xueliang.api.main import OPEN_ROUTES
from xueliang.db.tables import Recording

A = Action
#: Administration of streams (another's playback, download or receiver; stopping any); absent
#: before issue 10, where "every right but it" is every right.
MEDIA_MANAGE: Any = getattr(Action, "MEDIA_MANAGE", None)
PW = "Harbour-Lamp-42"
OWN, OTHER, THIRD = "甲局", "乙局", "丙局"  # THIRD: the department grants go to
DEV_IN = "34020000001110000011"  # unit of 甲局
DEV_OUT = "34020000001110000012"  # unit of 乙局
CH_IN = "34020000001310000011"  # 甲局, class II, street: no rule applies
CH_IN2 = "34020000001310000012"  # 甲局, another camera of the same department
CH_OUT = "34020000001310000013"  # 乙局
CH_KEY = "34020000001310000014"  # 甲局, class I key site: playback needs a purpose, download an approval
CH_HIGH = "34020000001310000015"  # 甲局, tier high: PTZ needs a purpose
CH_MISSING = "34020000001310000099"  # exists nowhere
DEV_MISSING = "34020000001110000099"
WHEN = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z"}
REFUSED = (401, 403, 404)
#: One client for the module's ~2,000 calls (a client per call costs an SSL context each).
HTTP = httpx.Client(timeout=20)


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Need:
    """What a route needs.

    ``action`` None with ``token`` True: a valid token only (self-service); ``token`` False:
    nothing (open). ``also``: actions the route legitimately needs alongside. ``scoped``: the
    path names a channel/device/unit/stream, and outside the caller's scope it must look
    missing (404). ``ok``: the answer of an allowed caller here. ``make``: what to create for
    the call (a fresh object the call may consume), returning path values and a body.
    """

    action: Action | None = None
    token: bool = True
    also: frozenset[Action] = frozenset()
    scoped: str | None = None
    ok: tuple[int, ...] = (200,)
    make: str | None = None
    body: Any = None
    params: dict[str, str] | None = None
    why: str = ""


def N(action: Action | None = None, *also: Action, **kw: Any) -> Need:
    return Need(action, also=frozenset(also), **kw)


OPEN = {
    ("GET", "/healthz"): "liveness for load balancers: says nothing but 'ok'",
    ("POST", "/api/v1/auth/login"): "how one gets a token",
    ("POST", "/api/v1/auth/totp/enroll"): "finishing a second factor with the setup token of a login (opens nothing else)",
    ("GET", "/api/v1/openapi.json"): "the API's shape, no data",
    ("GET", "/api/v1/docs"): "the API explorer page",
    ("GET", "/api/v1/docs/assets/{name}"): "the API explorer's static files",
    ("GET", "/"): "the console's page (static)",
    ("GET", "/app/{rest:path}"): "the console's page for its client-side routes (static, the same file as /)",
    ("GET", "/player"): "the player page (static; the stream it plays is authorized on its own)",
    ("GET", "/player.js"): "the player's script (static)",
    ("POST", "/api/v1/incidents/inbound"): "emergency systems: no bearer token, every request HMAC-signed with the link's key (tests/incidents/test_inbound_http.py)",
}

SELF = {
    ("POST", "/api/v1/auth/totp/setup"): "one's own second factor",
    ("GET", "/api/v1/auth/me"): "who one is",
    ("POST", "/api/v1/auth/logout"): "ending one's own token",
    ("POST", "/api/v1/auth/logout-everywhere"): "ending one's own tokens",
    ("POST", "/api/v1/auth/password"): "one's own password (needs the current one)",
    ("GET", "/api/v1/roles"): "what roles and actions exist",
    ("GET", "/api/v1/access/rules"): "which uses need a purpose or approval (to ask beforehand)",
    ("GET", "/api/v1/access/check"): "what one would be asked, about one's own rights",
    ("GET", "/api/v1/approvals"): "one's own requests (and, with access.approve, those to decide)",
    ("GET", "/api/v1/approvals/{request_id}"): "one's own request (404 unless one's own)",
    ("POST", "/api/v1/approvals/{request_id}/withdraw"): "one's own request (404 unless one's own)",
}

RM, RR = A.REGISTRY_MANAGE, A.REGISTRY_READ
TABLE: dict[tuple[str, str], Need] = {
    ("GET", "/metrics"): N(A.METRICS_READ),
    ("GET", "/api/v1/users"): N(A.USERS_MANAGE),
    ("POST", "/api/v1/users"): N(A.USERS_MANAGE, ok=(201,), make="new_user_body"),
    ("GET", "/api/v1/users/{user_id}"): N(A.USERS_MANAGE),
    ("PATCH", "/api/v1/users/{user_id}"): N(A.USERS_MANAGE, body={"department": OWN}),
    ("POST", "/api/v1/users/{user_id}/password"): N(A.USERS_MANAGE, ok=(204,), body={"password": "Another-pass-77"}),
    ("DELETE", "/api/v1/users/{user_id}/totp"): N(A.USERS_MANAGE, ok=(204,)),
    ("POST", "/api/v1/users/{user_id}/revoke-sessions"): N(A.USERS_MANAGE, ok=(204,)),
    ("GET", "/api/v1/channels/points"): N(RR),
    ("GET", "/api/v1/channels/near"): N(RR, params={"lon": "117.2", "lat": "31.8"}),
    ("GET", "/api/v1/console/config"): N(RR),
    ("GET", "/api/v1/patrols"): N(A.LIVE_VIEW),
    ("POST", "/api/v1/patrols"): N(A.LIVE_VIEW, ok=(201,), body={"name": "p", "channel_ids": [CH_IN]}),
    ("GET", "/api/v1/patrols/{patrol_id}"): N(A.LIVE_VIEW, make="patrol"),
    ("PUT", "/api/v1/patrols/{patrol_id}"): N(A.LIVE_VIEW, make="patrol", body={"name": "q", "channel_ids": [CH_IN]}),
    ("DELETE", "/api/v1/patrols/{patrol_id}"): N(A.LIVE_VIEW, make="patrol", ok=(204,)),
    ("GET", "/api/v1/divisions"): N(RR),
    ("PUT", "/api/v1/divisions/{code}"): N(RM, make="division_body"),
    ("GET", "/api/v1/divisions/{code}"): N(RR),
    ("GET", "/api/v1/grids"): N(RR, why="a scoped reader sees the grids holding a camera of their scope (test_grids_access.py)"),
    ("POST", "/api/v1/grids/import"): N(RM, make="survey_file", ok=(422,), why="an empty workbook is refused by the importer, after authorization"),
    ("DELETE", "/api/v1/divisions/{code}"): N(RM, make="division", ok=(204,)),
    ("GET", "/api/v1/units"): N(RR),
    ("POST", "/api/v1/units"): N(RM, ok=(201,), body={"name": "新单位", "department": OWN}),
    ("GET", "/api/v1/units/{unit_id}"): N(RR, scoped="unit"),
    ("PATCH", "/api/v1/units/{unit_id}"): N(RM, scoped="unit", body={"address": "一路"}),
    ("DELETE", "/api/v1/units/{unit_id}"): N(RM, make="unit", ok=(204,)),
    ("GET", "/api/v1/platforms"): N(RR),
    ("POST", "/api/v1/platforms"): N(RM, ok=(201,), make="platform_body"),
    ("GET", "/api/v1/platforms/{platform_id}"): N(RR, make="platform"),
    ("PATCH", "/api/v1/platforms/{platform_id}"): N(RM, make="platform", body={"installer": "甲"}),
    ("DELETE", "/api/v1/platforms/{platform_id}"): N(RM, make="platform", ok=(204,)),
    ("GET", "/api/v1/devices"): N(RR),
    ("POST", "/api/v1/devices"): N(RM, ok=(201,), make="device_body"),
    ("GET", "/api/v1/devices/{device_id}"): N(RR, scoped="device"),
    ("PATCH", "/api/v1/devices/{device_id}"): N(RM, scoped="device", body={"name": "NVR 1"}),
    ("DELETE", "/api/v1/devices/{device_id}"): N(RM, make="device", ok=(204,)),
    ("GET", "/api/v1/channels"): N(RR),
    ("POST", "/api/v1/channels"): N(RM, ok=(201,), make="channel_body"),
    ("GET", "/api/v1/channels/{channel_id}"): N(RR, scoped="channel"),
    ("PATCH", "/api/v1/channels/{channel_id}"): N(RM, scoped="channel", body={"address": "一路"}),
    ("DELETE", "/api/v1/channels/{channel_id}"): N(RM, make="channel", ok=(204,)),
    ("GET", "/api/v1/statistics"): N(A.STATS_READ),
    ("GET", "/api/v1/statistics.xlsx"): N(A.STATS_READ),
    ("POST", "/api/v1/survey/import"): N(RM, make="survey_file", ok=(422,), why="an empty workbook is refused by the importer, after authorization"),
    ("POST", "/api/v1/channels/import"): N(RM, make="survey_file", ok=(422,), why="as above"),
    ("GET", "/api/v1/survey/export"): N(RR),
    ("GET", "/api/v1/channels.xlsx"): N(RR),
    ("GET", "/api/v1/access/grants"): N(A.ACCESS_READ),
    ("GET", "/api/v1/access/grants/{grant_id}"): N(A.ACCESS_READ, make="grant"),
    ("POST", "/api/v1/access/grants"): N(A.ACCESS_MANAGE, ok=(201,), body={"department": THIRD, "channel_ids": [CH_IN]}),
    ("DELETE", "/api/v1/access/grants/{grant_id}"): N(A.ACCESS_MANAGE, make="grant", ok=(204,)),
    ("GET", "/api/v1/access/tokens"): N(A.ACCESS_READ),
    ("POST", "/api/v1/access/tokens"): N(A.ACCESS_MANAGE, ok=(201,), make="token_body"),
    ("DELETE", "/api/v1/access/tokens/{token_id}"): N(A.ACCESS_MANAGE, make="token", ok=(204,)),
    ("POST", "/api/v1/approvals/{request_id}/approve"): N(A.APPROVE, make="approval"),
    ("POST", "/api/v1/approvals/{request_id}/refuse"): N(A.APPROVE, make="approval"),
    ("GET", "/api/v1/audit/records"): N(A.AUDIT_READ),
    ("GET", "/api/v1/audit/transparency"): N(A.AUDIT_READ, why="or, for a user with a department, its own cameras"),
    ("POST", "/api/v1/approvals"): N(A.DOWNLOAD, ok=(201,), make="approval_body", why="one asks for what one's role may do"),
    ("GET", "/api/v1/audit/records.{fmt}"): N(A.AUDIT_READ),
    ("GET", "/api/v1/audit/verify"): N(A.AUDIT_READ),
    ("GET", "/api/v1/audit/checkpoints"): N(A.AUDIT_READ),
    ("POST", "/api/v1/audit/checkpoints"): N(A.AUDIT_READ, ok=(201,)),
    ("GET", "/api/v1/signalling/status"): N(A.SIGNALLING_MANAGE, ok=(503,), why="SIP is off here"),
    ("GET", "/api/v1/cluster/nodes"): N(A.SIGNALLING_MANAGE),
    ("GET", "/api/v1/cascade/uppers"): N(A.SIGNALLING_MANAGE),
    ("POST", "/api/v1/cascade/uppers"): N(A.SIGNALLING_MANAGE, ok=(201,), make="upper_body"),
    ("GET", "/api/v1/cascade/uppers/{upper_id}"): N(A.SIGNALLING_MANAGE, make="upper"),
    ("PATCH", "/api/v1/cascade/uppers/{upper_id}"): N(A.SIGNALLING_MANAGE, make="upper", body={"port": 5061}),
    ("DELETE", "/api/v1/cascade/uppers/{upper_id}"): N(A.SIGNALLING_MANAGE, make="upper", ok=(204,)),
    ("GET", "/api/v1/cascade/uppers/{upper_id}/status"): N(A.SIGNALLING_MANAGE, make="upper"),
    ("GET", "/api/v1/cascade/uppers/{upper_id}/catalog"): N(A.SIGNALLING_MANAGE, make="upper"),
    ("POST", "/api/v1/devices/{device_id}/catalog"): N(A.DEVICE_QUERY, scoped="device", ok=(503,), why="SIP is off here"),
    ("GET", "/api/v1/devices/{device_id}/info"): N(A.DEVICE_QUERY, scoped="device", ok=(503,), why="SIP is off here"),
    ("GET", "/api/v1/devices/{device_id}/status"): N(A.DEVICE_QUERY, scoped="device", ok=(503,), why="SIP is off here"),
    ("POST", "/api/v1/devices/{device_id}/control"): N(A.DEVICE_CONTROL, scoped="device", ok=(503,), body={"command": "iframe", "channel_id": CH_IN}, why="SIP is off here"),
    ("POST", "/api/v1/devices/{device_id}/subscriptions/catalog"): N(A.DEVICE_CONTROL, scoped="device", ok=(503,), why="SIP is off here"),
    ("GET", "/api/v1/channels/{channel_id}/records"): N(A.PLAYBACK, RR, scoped="channel", ok=(503,), params=WHEN, why="SIP is off here"),
    ("GET", "/api/v1/channels/{channel_id}/recordings"): N(A.PLAYBACK, RR, scoped="channel", params=WHEN),
    # Recording plans and storage compliance (issue 14).
    ("GET", "/api/v1/channels/{channel_id}/recording"): N(RR, scoped="channel"),
    ("PUT", "/api/v1/channels/{channel_id}/recording"): N(A.RECORDING_MANAGE, scoped="channel", body={"mode": "continuous"}),
    ("DELETE", "/api/v1/channels/{channel_id}/recording"): N(A.RECORDING_MANAGE, scoped="channel", ok=(204,)),
    ("POST", "/api/v1/channels/{channel_id}/recording/trigger"): N(
        A.RECORDING_TRIGGER, scoped="channel", ok=(409,),
        why="the channel does not record on event here (its class's default is off); answered after authorizing"),
    ("GET", "/api/v1/recordings/compliance"): N(A.STATS_READ),
    ("POST", "/api/v1/channels/{channel_id}/ptz"): N(A.PTZ, scoped="channel", ok=(503,), body={"action": "stop"}, why="SIP is off here"),
    ("GET", "/api/v1/events"): N(A.DEVICE_QUERY),
    ("POST", "/api/v1/events/{event_id}/ack"): N(A.DEVICE_QUERY, make="event", ok=(404,), why="no alarm exists here (SIP is off); the route answers after authorizing"),
    # Media: channels.
    ("POST", "/api/v1/channels/{channel_id}/playback"): N(A.PLAYBACK, scoped="channel", body=WHEN),
    ("POST", "/api/v1/channels/{channel_id}/download"): N(A.DOWNLOAD, scoped="channel", body=WHEN),
    ("GET", "/api/v1/channels/{channel_id}/live.mp4"): N(A.LIVE_VIEW, scoped="channel"),
    ("GET", "/api/v1/channels/{channel_id}/live.flv"): N(A.LIVE_VIEW, scoped="channel"),
    ("GET", "/api/v1/channels/{channel_id}/live.m3u8"): N(A.LIVE_VIEW, scoped="channel"),
    ("GET", "/api/v1/channels/{channel_id}/hls/{resource}"): N(A.LIVE_VIEW, scoped="channel", make="hls"),
    ("GET", "/api/v1/channels/{channel_id}/live.info"): N(A.LIVE_VIEW, scoped="channel"),
    ("POST", "/api/v1/channels/{channel_id}/media-token"): N(A.LIVE_VIEW, scoped="channel"),
    ("GET", "/api/v1/channels/{channel_id}/snapshot.jpg"): N(A.LIVE_VIEW, scoped="channel"),
    ("WS", "/api/v1/channels/{channel_id}/live.ws"): N(A.LIVE_VIEW, scoped="channel", ok=(101,)),
    ("GET", "/api/v1/media/status"): N(A.SIGNALLING_MANAGE),
    ("POST", "/api/v1/media/rtp-receivers"): N(A.SIGNALLING_MANAGE, ok=(201,), make="rtp_body"),
    ("GET", "/api/v1/media/rtp-receivers"): N(A.SIGNALLING_MANAGE),
    # Usable at all times: rates, timelines, tickets, maintenance teams (issue 12).
    ("GET", "/api/v1/health/availability"): N(A.HEALTH_READ),
    ("GET", "/api/v1/health/repeat-points"): N(A.HEALTH_READ),
    ("GET", "/api/v1/health/notifications"): N(A.HEALTH_READ),
    ("GET", "/api/v1/channels/{channel_id}/timeline"): N(A.HEALTH_READ, scoped="channel"),
    ("GET", "/api/v1/tickets"): N(A.HEALTH_READ),
    ("POST", "/api/v1/tickets"): N(A.TICKETS_MANAGE, ok=(201,), make="ticket_body"),
    ("GET", "/api/v1/tickets/{ticket_id}"): N(A.HEALTH_READ, make="ticket"),
    ("GET", "/api/v1/tickets/{ticket_id}/photo"): N(A.HEALTH_READ, make="ticket_photo"),
    ("POST", "/api/v1/tickets/{ticket_id}/acknowledge"): N(A.TICKETS_WORK, make="ticket",
                                                           why="the ticket of the caller's team"),
    ("POST", "/api/v1/tickets/{ticket_id}/repair"): N(A.TICKETS_WORK, make="ticket"),
    ("POST", "/api/v1/tickets/{ticket_id}/resolve"): N(A.TICKETS_WORK, make="ticket_resolve"),
    ("POST", "/api/v1/tickets/{ticket_id}/close"): N(A.TICKETS_MANAGE, make="ticket", body={"note": "拆除"}),
    ("POST", "/api/v1/tickets/{ticket_id}/reopen"): N(A.TICKETS_MANAGE, make="ticket_closed", body={"note": "又坏了"}),
    ("GET", "/api/v1/maintenance/teams"): N(A.TICKETS_MANAGE),
    ("POST", "/api/v1/maintenance/teams"): N(A.MAINTENANCE_MANAGE, ok=(201,), make="team_body"),
    ("GET", "/api/v1/maintenance/teams/{team_id}"): N(A.TICKETS_MANAGE, make="team"),
    ("PUT", "/api/v1/maintenance/teams/{team_id}"): N(A.MAINTENANCE_MANAGE, make="team_put"),
    ("DELETE", "/api/v1/maintenance/teams/{team_id}"): N(A.MAINTENANCE_MANAGE, make="team", ok=(204,)),
    # Picture diagnosis (issue 13): results are health data; pictures are video as well.
    ("GET", "/api/v1/diagnosis/faults"): N(A.HEALTH_READ),
    ("GET", "/api/v1/channels/{channel_id}/diagnoses"): N(A.HEALTH_READ, scoped="channel"),
    ("GET", "/api/v1/channels/{channel_id}/diagnosis/snapshot.jpg"): N(A.HEALTH_READ, A.LIVE_VIEW, scoped="channel",
                                                                      make="diagnosed"),
    ("GET", "/api/v1/channels/{channel_id}/diagnosis/reference.jpg"): N(A.HEALTH_READ, A.LIVE_VIEW, scoped="channel",
                                                                       make="referenced"),
    ("POST", "/api/v1/channels/{channel_id}/diagnose"): N(A.TICKETS_MANAGE, scoped="channel"),
    ("POST", "/api/v1/channels/{channel_id}/diagnosis/reference"): N(A.TICKETS_MANAGE, scoped="channel"),
    ("PUT", "/api/v1/channels/{channel_id}/diagnosis/thresholds"): N(A.TICKETS_MANAGE, scoped="channel",
                                                                     body={"day": {"blur": 0.6}}),
    ("GET", "/api/v1/reports"): N(A.REPORTS_READ),
    ("POST", "/api/v1/reports"): N(A.REPORTS_READ, ok=(201,), body={"kind": "daily", "date": "2026-11-01"}),
    ("GET", "/api/v1/reports/{report_id}"): N(A.REPORTS_READ, make="report"),
}
# The incident centre (issue 16).
TABLE.update(incident_routes.table(N, CH_IN))
# A clip of a camera attached to a case: incidents.read and media.download, the role checked first
# (tests/incidents/test_clips.py: the case out of scope, the camera out of scope, each refused).
TABLE[("POST", "/api/v1/incidents/{incident_id}/attachments/clip")] = N(
    A.INCIDENTS_READ, A.DOWNLOAD, make="incident", ok=(404,), body={"channel_id": CH_IN, **WHEN},
    why=incident_routes.NO_CASE.format(action="incidents.read"))
# Downloads of the platform's recordings, evidence exports and holds (issue 14).
TABLE.update(evidence_routes.table(N, CH_IN, WHEN))
OPEN.update(evidence_routes.OPEN)
# The phone app: residents' codes and joining, reports, grid members' positions (issue 16).
TABLE.update(resident_routes.table(N))
OPEN.update(resident_routes.OPEN)
# The offline map (issue 16): tiles and outlines for any logged-in user; loading outlines.
TABLE.update(map_routes.table(N))
SELF.update(map_routes.SELF)
#: Lists the streams the caller may read: needs some media action (tested per stream kind below).
LISTING = ("GET", "/api/v1/streams")
#: Stream routes: their action is the stream's (see STREAM_KINDS), checked per kind below.
STREAM_ROUTES = {
    ("POST", "/api/v1/streams/{name:path}/control"): "control",
    ("DELETE", "/api/v1/media/rtp-receivers/{name:path}"): "stop",
    ("GET", "/api/v1/streams/{name:path}/live.mp4"): "read",
    ("GET", "/api/v1/streams/{name:path}/live.flv"): "read",
    ("GET", "/api/v1/streams/{name:path}/live.m3u8"): "read",
    ("GET", "/api/v1/streams/{name:path}/hls/{resource}"): "read",
    ("GET", "/api/v1/streams/{name:path}/live.info"): "read",
    ("GET", "/api/v1/streams/{name:path}/snapshot.jpg"): "read",
    ("POST", "/api/v1/streams/{name:path}/media-token"): "read",
    ("WS", "/api/v1/streams/{name:path}/live.ws"): "read",
    ("GET", "/api/v1/streams/{name:path}"): "read",
    ("DELETE", "/api/v1/streams/{name:path}"): "stop",
}
#: Media read routes: the only ones where ``?token=`` (a media token) is accepted.
MEDIA_READS = {
    r for r, n in TABLE.items()
    if r[1].startswith("/api/v1/channels/{channel_id}/") and r[1].rsplit("/", 1)[-1] in
    ("live.mp4", "live.flv", "live.m3u8", "{resource}", "live.info", "snapshot.jpg", "live.ws")
    and "/diagnosis/" not in r[1]  # an inspection's kept picture is not the stream: no media token opens it
} | {r for r, k in STREAM_ROUTES.items() if k == "read" and not r[1].endswith("media-token") and r[0] != "POST"
     and r[1] != "/api/v1/streams/{name:path}"}


# --------------------------------------------------------------------------- the server


def app_routes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) of the application, WebSockets as ``WS``, included routers walked."""
    from fastapi.routing import APIRoute, APIWebSocketRoute
    from starlette.routing import Mount, Route, WebSocketRoute

    out: list[tuple[str, str]] = []

    def walk(routes: Any, prefix: str) -> None:
        for r in routes:
            if hasattr(r, "original_router"):  # FastAPI's included router
                walk(r.original_router.routes, prefix + r.include_context.prefix)
            elif isinstance(r, (APIWebSocketRoute, WebSocketRoute)):
                out.append(("WS", prefix + r.path))
            elif isinstance(r, (APIRoute, Route)):
                out.extend((m, prefix + r.path) for m in sorted(r.methods or ()) if m != "HEAD")
            elif isinstance(r, Mount):
                out.append(("MOUNT", prefix + r.path))
            else:
                raise AssertionError(f"unknown route type {r!r}")

    walk(app.routes, "")
    return out


ROLE_NAMES: dict[str, frozenset[Action]] = {"all": frozenset(A), "nothing": frozenset()}
for _a in A:
    ROLE_NAMES[f"all-but-{_a.value}"] = frozenset(A) - {_a}


@dataclass
class Env:
    srv: LiveServer
    fake: FakeGbProvider
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)
    seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    pushers: list[Any] = field(default_factory=list)

    @property
    def base(self) -> str:
        return str(self.srv.base)

    def user(self, name: str, role: str, **kw: Any) -> dict[str, str]:
        """Bearer headers of a user (created once) with ``role``."""
        if name not in self.tokens:
            users = self.srv.platform.users

            async def make() -> str:
                u = await users.create(name, PW, role, **kw)
                return str(users.issue(u))

            self.tokens[name] = self.srv.run(make())
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def only(self, actions: frozenset[Action]) -> dict[str, str]:
        actions = frozenset(a for a in actions if a is not None)
        role = "only-" + "+".join(sorted(a.value for a in actions))
        ROLE_NAMES.setdefault(role, actions)
        policy.ROLES.setdefault(role, actions)
        return self.user(role, role)

    def all_but(self, action: Action | None) -> dict[str, str]:
        if action is None:
            return self.root()
        return self.user(f"all-but-{action.value}", f"all-but-{action.value}")

    def root(self) -> dict[str, str]:
        return self.user("everything", "all")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from xueliang.registry.models import ChannelIn, DeviceIn, UnitIn

    mp = pytest.MonkeyPatch()
    for role, actions in ROLE_NAMES.items():
        mp.setitem(policy.ROLES, role, actions)
    srv = LiveServer(tmp_path_factory.mktemp("every-route"), idle_stop_seconds=120.0).start()
    try:
        fake = FakeGbProvider()
        if hasattr(srv.platform, "live"):
            srv.platform.live.gb = fake
        else:  # before the live service (the original code): the hub's provider for live/
            srv.hub.set_provider("live/", fake)
        for prefix in ("playback/", "download/", "record/"):
            srv.hub.set_provider(prefix, fake)  # record/: the platform's recording, its video stood in
        # ~1,000 requests from one address in seconds: no rate limit in the way.
        srv.platform.access.api_limiter.rate = srv.platform.access.api_limiter.burst = 1e9
        reg = srv.platform.registry
        e = Env(srv, fake)

        async def setup() -> None:
            ua = await reg.create_unit(UnitIn(name="甲单位", department=OWN))
            ub = await reg.create_unit(UnitIn(name="乙单位", department=OTHER))
            e.ids.update(unit_in=ua.id, unit_out=ub.id)
            await reg.create_device(DeviceIn(id=DEV_IN, name="NVR 甲", unit_id=ua.id))
            await reg.create_device(DeviceIn(id=DEV_OUT, name="NVR 乙", unit_id=ub.id))
            for ch, unit, dev, extra in (
                (CH_IN, ua.id, DEV_IN, {}), (CH_IN2, ua.id, DEV_IN, {}), (CH_OUT, ub.id, DEV_OUT, {}),
                (CH_KEY, ua.id, DEV_IN, {"point_class": 1, "key_site": True}),
                (CH_HIGH, ua.id, DEV_IN, {"tier": "high"}),
            ):
                await reg.create_channel(ChannelIn(id=ch, name=f"cam {ch[-2:]}", device_id=dev, unit_id=unit, **extra))
            # what the platform recorded of CH_IN and CH_OUT in WHEN (played back as record/…)
            async with srv.platform.sessions() as s, s.begin():
                for ch in (CH_IN, CH_OUT):
                    s.add(Recording(channel_id=ch, start=datetime(2026, 1, 1, tzinfo=UTC),
                                    end=datetime(2026, 1, 1, 0, 10, tzinfo=UTC), size=1, path=f"{ch}/20260101/0.mp4",
                                    tier="local", state="closed"))

        srv.run(setup())
        r = HTTP.put(f"{srv.base}/api/v1/divisions/34", json={"code": "34", "name": "省"}, headers=e.root())
        assert r.status_code in (200, 201), r.text
        # The outsider: every action, but another department than the one owning CH_IN & co.
        e.user("outsider", "all", department=OTHER)
        yield e
    finally:
        for pusher in e.pushers if "e" in locals() else ():
            pusher.stop()
        srv.stop()
        mp.undo()


# --------------------------------------------------------------------------- calling


def call(e: Env, method: str, path: str, headers: dict[str, str] | None = None, *,
         body: Any = None, params: dict[str, str] | None = None, files: Any = None) -> int:
    """The status of one call (WS: 101 when the socket is accepted, else the handshake's)."""
    if method == "WS":
        url = f"ws://127.0.0.1:{e.srv.port}{path}"
        if params:
            url += "?" + "&".join(f"{k}={quote(v)}" for k, v in params.items())
        try:
            with connect(url, additional_headers=headers or {}, open_timeout=10, close_timeout=1):
                return 101
        except InvalidStatus as exc:
            return int(exc.response.status_code)
        except TimeoutError:
            return 0  # no answer to the handshake (a stream with no video yet)
    with HTTP.stream(
        method, e.base + path, headers=headers, json=body, params=params, files=files
    ) as r:
        return r.status_code  # the head is enough: live bodies never end


def shape(e: Env, method: str, path: str, headers: dict[str, str], **kw: Any) -> tuple[Any, ...]:
    """What a refusal tells: status, problem type and title (the detail names the ID asked)."""
    if method == "WS":
        return (call(e, method, path, headers, **kw),)
    with HTTP.stream(method, e.base + path, headers=headers, json=kw.get("body"),
                                               params=kw.get("params"), files=kw.get("files")) as r:
        if r.status_code < 400:
            return (r.status_code,)
        r.read()
        j = r.json() if "json" in r.headers.get("content-type", "") else {}
        return r.status_code, j.get("type"), j.get("title"), r.headers.get("content-type")


def fill(path: str, values: dict[str, Any]) -> str:
    for k, v in values.items():
        path = path.replace("{" + k + "}", str(v))
    assert "{" not in path, f"give a value for {path}"
    return path


def defaults(e: Env) -> dict[str, Any]:
    return {
        "channel_id": CH_IN, "device_id": DEV_IN, "unit_id": e.ids["unit_in"], "code": "34",
        "user_id": e.ids.get("victim", 1), "resource": "init.mp4", "fmt": "csv", "name": "x",
        "rest:path": "x", "name:path": "live/" + CH_IN, "ticket_id": 999999, "team_id": 999999,
        "report_id": 999999, "upper_id": 999999,
        "incident_id": 999999, "dispatch_id": 999999, "attachment_id": 999999, "rule_id": 999999, "link_id": 999999, "code_id": 999999,
        **evidence_routes.DEFAULTS, **map_routes.DEFAULTS,
    }


def make(e: Env, what: str | None) -> tuple[dict[str, Any], Any, Any]:
    """Path values, a body and files for a call that may consume what it names."""
    root, n = e.root(), next(e.seq)
    if what is None:
        return {}, None, None

    def post(path: str, body: Any, status: int = 201) -> Any:
        r = HTTP.post(e.base + path, json=body, headers=root, timeout=20)
        assert r.status_code == status, (path, r.status_code, r.text)
        return r.json()

    if what == "new_user_body":
        return {}, {"username": f"new{n}", "password": PW, "role": "operator"}, None
    if what == "patrol":  # patrols are their owner's: the one allowed below
        r = HTTP.post(f"{e.base}/api/v1/patrols", json={"name": f"p{n}", "channel_ids": [CH_IN]},
                       headers=e.only(frozenset({A.LIVE_VIEW})))
        assert r.status_code == 201, r.text
        return {"patrol_id": r.json()["id"]}, None, None
    if what == "division_body":  # under the fictional city 3499: the national list holds 34xx
        HTTP.put(f"{e.base}/api/v1/divisions/3499", json={"code": "3499", "name": "雪亮市"}, headers=root)
        return {"code": f"3499{n % 100:02d}"}, {"code": f"3499{n % 100:02d}", "name": "新区"}, None
    if what == "hls":  # HLS starts on the playlist's first read; its init segment comes after
        for _ in range(100):
            r = HTTP.get(f"{e.base}/api/v1/channels/{CH_IN}/live.m3u8", headers=root, timeout=20)
            if r.status_code == 200 and ".m4s" in r.text:
                break
            time.sleep(0.1)
        return {}, None, None
    if what in ("diagnosed", "referenced"):  # an inspection (its snapshot) or a reference picture of CH_IN
        path = "diagnose" if what == "diagnosed" else "diagnosis/reference"
        if f"made:{what}" not in e.ids:
            r = HTTP.post(f"{e.base}/api/v1/channels/{CH_IN}/{path}", headers=root, timeout=30)
            assert r.status_code == 200, r.text
            e.ids[f"made:{what}"] = 1
        return {}, None, None
    if what == "rtp_body":
        return {}, {"ssrc": 1600000000 + n, "name": f"cam{n}"}, None
    if what == "division":  # a division entered here (one of the national list is not deleted)
        HTTP.put(f"{e.base}/api/v1/divisions/3499", json={"code": "3499", "name": "雪亮市"}, headers=root)
        code = f"3499{n % 100:02d}"
        r = HTTP.put(f"{e.base}/api/v1/divisions/{code}", json={"code": code, "name": f"区{n}"}, headers=root)
        assert r.status_code in (200, 201), r.text
        return {"code": code}, None, None
    if what == "unit":
        return {"unit_id": post("/api/v1/units", {"name": f"单位{n}", "department": OWN})["id"]}, None, None
    if what == "platform_body":
        return {}, {"unit_id": e.ids["unit_in"], "segment": f"s{n}"}, None
    if what == "platform":
        return {"platform_id": post("/api/v1/platforms", {"unit_id": e.ids["unit_in"], "segment": f"s{n}"})["id"]}, None, None
    if what in ("upper_body", "upper"):  # an upper platform (cascade); SIP is off: no link runs
        body = {"name": f"上级{n}", "sip_id": "34020000002000000001", "host": "10.1.2.3", "password": "Upper-pass-1"}
        if what == "upper_body":
            return {}, body, None
        return {"upper_id": post("/api/v1/cascade/uppers", body)["id"]}, None, None
    if what == "device_body":
        return {}, {"id": f"340200000011100{n:05d}", "name": f"NVR {n}"}, None
    if what == "device":
        return {"device_id": post("/api/v1/devices", {"id": f"340200000011101{n:05d}", "name": "d"})["id"]}, None, None
    if what == "channel_body":
        return {}, {"id": f"340200000013102{n:05d}", "name": "c", "unit_id": e.ids["unit_in"]}, None
    if what == "channel":
        body = {"id": f"340200000013103{n:05d}", "name": "c", "unit_id": e.ids["unit_in"]}
        return {"channel_id": post("/api/v1/channels", body)["id"]}, None, None
    if what == "survey_file":
        return {}, None, {"file": ("s.xlsx", b"", "application/octet-stream")}
    if what == "grant":
        return {"grant_id": post("/api/v1/access/grants", {"department": THIRD, "channel_ids": [CH_IN2]})["id"]}, None, None
    if what == "token_body":
        return {}, {"username": "everything", "name": f"t{n}", "scopes": ["registry.read"]}, None
    if what == "token":
        t = post("/api/v1/access/tokens", {"username": "everything", "name": f"t{n}", "scopes": ["registry.read"]})
        return {"token_id": t["id"]}, None, None
    if what == "approval":
        asker = e.user(f"asker{n}", "operator")
        r = HTTP.post(f"{e.base}/api/v1/approvals", headers=asker, json={
            "channel_ids": [CH_KEY], "actions": ["media.download"], "purpose": "案件取证"})
        assert r.status_code == 201, r.text
        return {"request_id": r.json()["id"]}, {}, None
    if what == "approval_body":
        return {}, {"channel_ids": [CH_KEY], "actions": ["media.download"], "purpose": "案件取证"}, None
    if what == "event":
        return {"event_id": 999999}, {}, None
    if what.startswith("ticket"):
        return make_ticket(e, what, n)
    if what.startswith("map_"):
        return map_routes.make(what)
    if what.startswith("incident"):
        return incident_routes.make(e, what)
    if what.startswith("resident"):
        return resident_routes.make(e, what)
    if what.startswith("evidence"):
        return evidence_routes.make(e, what, HTTP, CH_IN, WHEN)
    if what == "report":
        return {"report_id": post("/api/v1/reports", {"kind": "weekly", "date": "2026-11-04", "format": "pdf"})["id"]}, None, None
    if what == "team_body":
        return {}, {"name": f"维保{n}", "duties": [{"kind": "division", "ref": f"3401{n:04d}"}]}, None
    if what in ("team", "team_put"):
        t = post("/api/v1/maintenance/teams", {"name": f"维保{n}"})
        return {"team_id": t["id"]}, {"name": f"维保{n}b", "company": "某公司"} if what == "team_put" else None, None
    raise AssertionError(what)


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def make_ticket(e: Env, what: str, n: int) -> tuple[dict[str, Any], Any, Any]:
    """A fresh ticket on CH_IN (the one active ticket a point may have: earlier ones are closed
    first), in the team of CH_IN's unit, which the ``only-tickets.work`` caller belongs to."""
    root = e.root()
    if "team_in" not in e.ids:
        e.only(frozenset({A.TICKETS_WORK}))
        worker = e.srv.run(e.srv.platform.users.by_name("only-tickets.work"))
        r = HTTP.post(f"{e.base}/api/v1/maintenance/teams", headers=root, json={
            "name": "甲维保", "duties": [{"kind": "unit", "ref": str(e.ids["unit_in"])}], "members": [worker.id]})
        assert r.status_code == 201, r.text
        e.ids["team_in"] = r.json()["id"]
    active = HTTP.get(f"{e.base}/api/v1/tickets", headers=root,
                      params={"status": "open,acknowledged,repairing,resolved,verified"}).json()["items"]
    for t in active:
        r = HTTP.post(f"{e.base}/api/v1/tickets/{t['id']}/close", headers=root, json={"note": "下一个"})
        assert r.status_code == 200, r.text
    if what == "ticket_body":
        return {}, {"channel_id": CH_IN, "note": f"镜头脏污 {n}"}, None
    r = HTTP.post(f"{e.base}/api/v1/tickets", headers=root, json={"channel_id": CH_IN, "note": "镜头脏污"})
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    if what == "ticket_photo":
        r = HTTP.post(f"{e.base}/api/v1/tickets/{tid}/resolve", headers=root, data={"note": "已清洁"},
                      files={"photo": ("p.png", PNG, "image/png")})
        assert r.status_code == 200, r.text
    if what == "ticket_closed":
        r = HTTP.post(f"{e.base}/api/v1/tickets/{tid}/close", headers=root, json={"note": "已修"})
        assert r.status_code == 200, r.text
    if what == "ticket_resolve":
        return {"ticket_id": tid}, None, {"note": (None, "换了电源"), "photo": ("p.png", PNG, "image/png")}
    return {"ticket_id": tid}, None, None


def problem_type(e: Env, method: str, path: str, headers: dict[str, str], **kw: Any) -> tuple[int, str]:
    r = HTTP.request(method, e.base + path, headers=headers, timeout=20, **kw)
    t = r.json().get("type", "") if r.headers.get("content-type", "").endswith("json") else ""
    return r.status_code, t


# --------------------------------------------------------------------------- the tests


OPEN[("MOUNT", "/assets")] = "the console's built files (static)"


def test_every_route_has_an_entry(env: Env) -> None:
    """A new route cannot be added without deciding who may use it."""
    from xueliang.api.main import create_app

    routes = set(app_routes(create_app(env.srv.platform, manage_lifecycle=False)))
    known = set(OPEN) | set(SELF) | set(TABLE) | set(STREAM_ROUTES) | {LISTING}
    assert routes - known == set(), "routes without an entry in the table: decide their rights"
    assert known - routes == set(), "entries for routes that no longer exist"
    assert {p for m, p in OPEN if m != "MOUNT" and p != "/app/{rest:path}" and p != "/player.js"} <= OPEN_ROUTES | {"/"}
    assert any(m == "WS" for m, _ in routes)


@pytest.mark.parametrize("route", sorted(OPEN), ids="{0[0]} {0[1]}".format)
def test_open_routes_need_nothing(env: Env, route: tuple[str, str]) -> None:
    method, path = route
    if method in ("MOUNT", "POST"):
        return  # login and enroll answer 422 to an empty body, not 401: nothing to ask first
    url = fill(path, {"name": "swagger-ui.css", "rest:path": "x"})
    assert call(env, method, url) not in (401, 403)


@pytest.mark.parametrize("route", sorted(SELF), ids="{0[0]} {0[1]}".format)
def test_self_service_needs_a_token_only(env: Env, route: tuple[str, str]) -> None:
    method, path = route
    values = {"request_id": 999999, **map_routes.DEFAULTS}
    body: Any = {}
    if path == "/api/v1/approvals" and method == "POST":
        body = {"channel_ids": [CH_KEY], "actions": ["media.download"], "purpose": "案件取证"}
    if path.endswith("/password"):
        body = {"current_password": PW, "new_password": PW}
    url = fill(path, values)
    assert call(env, method, url, body=body) == 401
    nobody = env.user(f"nobody{next(env.seq)}", "nothing")
    got = call(env, method, url, nobody, body=body)
    assert got not in (401, 403), (method, path, got)


@pytest.mark.parametrize("route", sorted(TABLE), ids="{0[0]} {0[1]}".format)
def test_a_route_needs_its_action_and_no_other(env: Env, route: tuple[str, str]) -> None:
    method, path = route
    need = TABLE[route]
    assert need.action is not None
    if "victim" not in env.ids:
        env.user("victim", "operator")
        env.ids["victim"] = env.srv.run(env.srv.platform.users.by_name("victim")).id
    values, body, files = make(env, need.make)
    values = {**defaults(env), **values}
    body = body if body is not None else need.body
    url = fill(path, values)
    kw: dict[str, Any] = {"body": body, "params": need.params, "files": files}
    if files is not None:
        kw["body"] = None
    # Without a token: 401 (or a refused handshake).
    assert call(env, method, url, **kw) == 401
    # Every right but this one: refused by the role, before anything about the resource.
    got = call(env, method, url, env.all_but(need.action), **kw)
    assert got == 403, f"{method} {path}: all-but-{need.action.value} got {got}, expected 403"
    for extra in need.also:
        got = call(env, method, url, env.only(frozenset({need.action}) | need.also - {extra}), **kw)
        assert got == 403, f"{method} {path}: without {extra.value} got {got}"
    if need.scoped:
        # Every action, another department: the channel (device, unit) looks missing.
        out = shape(env, method, url, env.user("outsider", "all"), **kw)
        missing = fill(path, {**values, "channel_id": CH_MISSING, "device_id": DEV_MISSING, "unit_id": 999999})
        gone = shape(env, method, missing, env.user("outsider", "all"), **kw)
        assert out[0] == gone[0] == 404 and out == gone, (
            f"{method} {path}: outsider got {out} in scope of others, {gone} for a missing one; expected 404 both, alike")
    got = call(env, method, url, env.only(frozenset({need.action}) | need.also), **kw)
    assert got in need.ok, f"{method} {path}: only-{need.action.value} got {got}, expected {need.ok}"


# --------------------------------------------------------------------------- streams


@dataclass(frozen=True)
class Kind:
    """A kind of stream: the action it is read for, whether it is its opener's, and how one is opened."""

    action: Action
    owned: bool
    #: The opener's role (what opening needs, plus what reading it needs).
    opener: frozenset[Action]


KINDS = {
    "live": Kind(A.LIVE_VIEW, False, frozenset({A.LIVE_VIEW})),
    "playback": Kind(A.PLAYBACK, True, frozenset({A.PLAYBACK})),
    "download": Kind(A.DOWNLOAD, True, frozenset({A.DOWNLOAD})),
    #: playback of the platform's own recordings (source: platform)
    "record": Kind(A.PLAYBACK, True, frozenset({A.PLAYBACK})),
    "rtp": Kind(A.LIVE_VIEW, True, frozenset({A.SIGNALLING_MANAGE, A.LIVE_VIEW})),
}
READ_OK = {"live.mp4": 200, "live.flv": 200, "live.m3u8": 200, "hls/init.mp4": 200, "live.info": 200,
           "snapshot.jpg": 200, "media-token": 200, "": 200}


def open_stream(e: Env, kind: str, fresh: bool = False) -> str:
    """A stream of ``kind`` on CH_IN opened by its opener (cached unless ``fresh``)."""
    key = f"stream:{kind}"
    if key in e.ids and not fresh and kind != "live":  # live: a stop test may have stopped it
        return str(e.ids[key])
    k = KINDS[kind]
    who = e.only(k.opener)
    if kind == "live":
        name = f"live/{CH_IN}"
        for _ in range(100):  # the live stream opens on the first read of its video
            with HTTP.stream("GET", f"{e.base}/api/v1/channels/{CH_IN}/live.m3u8", headers=e.root()) as r:
                text = r.read().decode(errors="replace")
            if r.status_code == 200 and ".m4s" in text:
                break
            time.sleep(0.1)
    elif kind == "rtp":
        ssrc = 1500000000 + next(e.seq)
        r = HTTP.post(f"{e.base}/api/v1/media/rtp-receivers", headers=who, timeout=20,
                       json={"ssrc": ssrc, "name": f"r{next(e.seq)}"})
        assert r.status_code == 201, r.text
        name = r.json()["name"] if "name" in r.json() else r.json()["stream"]
        e.pushers.append(RtpPusher(e.srv.hub.rtp.udp_port, ssrc, ps_clip()).start())  # its video
        for _ in range(100):
            r = HTTP.get(f"{e.base}/api/v1/streams/{name}/live.m3u8", headers=who, timeout=20)
            if r.status_code == 200 and ".m4s" in r.text:
                break
            time.sleep(0.1)
    else:
        mode, body = ("playback", {**WHEN, "source": "platform"}) if kind == "record" else (kind, WHEN)
        r = HTTP.post(f"{e.base}/api/v1/channels/{CH_IN}/{mode}", json=body, headers=who, timeout=20)
        assert r.status_code == 200, r.text
        name = r.json()["stream"]
        for _ in range(100):  # HLS (hls/init.mp4) is ready once a playlist has a segment
            r = HTTP.get(f"{e.base}/api/v1/streams/{name}/live.m3u8", headers=who, timeout=20)
            if r.status_code == 200 and ".m4s" in r.text:
                break
            time.sleep(0.1)
    if not fresh:
        e.ids[key] = name
    return name


def stream_call(e: Env, method: str, path: str, name: str, headers: dict[str, str] | None,
                params: dict[str, str] | None = None) -> int:
    url = fill(path, {"name:path": name, "resource": "init.mp4"})
    body = {"action": "pause"} if path.endswith("/control") else None
    return call(e, method, url, headers, body=body, params=params)


def stream_shape(e: Env, method: str, path: str, name: str, headers: dict[str, str]) -> tuple[Any, ...]:
    url = fill(path, {"name:path": name, "resource": "init.mp4"})
    return shape(e, method, url, headers, body={"action": "pause"} if path.endswith("/control") else None)


STREAM_CASES = [
    (kind, route) for kind in KINDS for route in sorted(STREAM_ROUTES)
    if not (route[1].startswith("/api/v1/media/rtp-receivers") and kind != "rtp")
    and not (route[1].endswith("/control") and kind not in ("playback", "download", "record"))
]


@pytest.mark.parametrize(("kind", "route"), STREAM_CASES, ids=lambda x: x if isinstance(x, str) else f"{x[0]} {x[1]}")
def test_a_stream_is_read_for_its_action_by_its_opener(env: Env, kind: str, route: tuple[str, str]) -> None:
    """Every way of reaching a stream asks the action it exists for on its channel, and for
    playback, download and RTP receivers, that the caller opened it (or holds media.manage)."""
    method, path = route
    k = KINDS[kind]
    stop = STREAM_ROUTES[route] == "stop"
    name = open_stream(env, kind, fresh=stop)
    missing = {"live": f"live/{CH_MISSING}", "playback": f"playback/{CH_IN}/0000dead",
               "download": f"download/{CH_IN}/0000dead", "record": f"record/{CH_IN}/0000dead",
               "rtp": "rtp/no-such"}[kind]
    # What it needs: to stop a stream, media.manage (live streams are everyone's; another's
    # playback, download or receiver) unless one opened it; else the stream's action (and
    # being its opener).
    need = MEDIA_MANAGE if stop else k.action
    got = stream_call(env, method, path, name, None)
    assert got == 401, f"{method} {path} [{kind}]: no token got {got}"
    got = stream_call(env, method, path, name, env.all_but(need))
    assert got in (403, 404), f"{method} {path} [{kind}]: all-but-{getattr(need, 'value', need)} got {got}, expected 403/404"
    if k.owned:
        # Every right but media.manage, the whole city, not the opener: it looks missing.
        other = env.all_but(MEDIA_MANAGE)
        mine, gone = stream_shape(env, method, path, name, other), stream_shape(env, method, path, missing, other)
        assert mine[0] == gone[0] == 404 and mine == gone, (
            f"{method} {path} [{kind}]: not the opener got {mine}, missing {gone}; expected 404 both, alike")
    if kind != "rtp":
        # Every right, media.manage included, another department: the channel's stream looks missing.
        out = env.user("outsider", "all")
        theirs, gone = stream_shape(env, method, path, name, out), stream_shape(env, method, path, missing, out)
        assert theirs[0] == gone[0] == 404 and theirs == gone, (
            f"{method} {path} [{kind}]: outsider got {theirs}, missing {gone}; expected 404 both, alike")
    if stop:  # media.manage stops anyone's stream
        got = stream_call(env, method, path, name, env.only(frozenset({MEDIA_MANAGE})))
        assert got == 204, f"{method} {path} [{kind}]: only-media.manage got {got}, expected 204"
        if not k.owned:
            return
        name = open_stream(env, kind, fresh=True)
    got = stream_call(env, method, path, name, env.only(k.opener))
    tail = path.split("{name:path}", 1)[1].lstrip("/").replace("{resource}", "init.mp4")
    expected = 204 if stop else 101 if method == "WS" else READ_OK.get(tail, 200)
    if tail == "control":
        expected = 422  # the stand-in device's handle cannot pause: answered after authorizing
    assert got == expected, f"{method} {path} [{kind}]: the opener got {got}, expected {expected}"


def test_playing_back_the_platforms_recording_needs_playback_in_scope(env: Env) -> None:
    """``POST …/playback`` with ``source: platform`` asks what a device playback asks: the role
    first, then the channel in scope (another department's looks missing), then recordings."""
    body = {**WHEN, "source": "platform"}
    url = f"/api/v1/channels/{CH_IN}/playback"
    assert call(env, "POST", url, body=body) == 401
    got = call(env, "POST", url, env.all_but(A.PLAYBACK), body=body)
    assert got == 403, f"all-but-media.playback got {got}"
    out = env.user("outsider", "all")
    theirs = shape(env, "POST", url, out, body=body)
    gone = shape(env, "POST", f"/api/v1/channels/{CH_MISSING}/playback", out, body=body)
    assert theirs[0] == gone[0] == 404 and theirs == gone, (theirs, gone)
    player = env.only(frozenset({A.PLAYBACK}))
    # nothing recorded in the range: a clear 404
    later = {"start": "2026-01-02T00:00:00Z", "end": "2026-01-02T01:00:00Z", "source": "platform"}
    r = HTTP.post(f"{env.base}{url}", json=later, headers=player, timeout=20)
    assert r.status_code == 404 and "no recording" in r.json()["detail"], r.text
    assert call(env, "POST", url, player, body=body) == 200


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_stream_listing_shows_only_what_the_caller_may_read(env: Env, kind: str) -> None:
    name = open_stream(env, kind)
    k = KINDS[kind]

    def names(h: dict[str, str]) -> set[str]:
        r = HTTP.get(f"{env.base}/api/v1/streams", headers=h, timeout=20)
        assert r.status_code == 200, r.text
        return {s["name"] for s in r.json()}

    assert HTTP.get(f"{env.base}/api/v1/streams").status_code == 401
    assert HTTP.get(f"{env.base}/api/v1/streams", headers=env.user("nobody", "nothing")).status_code == 403
    assert name in names(env.only(k.opener))
    assert name not in names(env.all_but(k.action)) or (kind == "rtp"), "listed to one without its action"
    if k.owned:
        assert name not in names(env.all_but(MEDIA_MANAGE)), "another's stream listed"
    if kind != "rtp":
        assert name not in names(env.user("outsider", "all")), "a stream of a channel out of scope listed"


# --------------------------------------------------------------------------- ?token=


def every_call(e: Env) -> Iterator[tuple[str, str, str]]:
    """(method, filled path, template) for every route but the open ones, streams as live/CH_IN."""
    values = {**defaults(e), "patrol_id": 1, "platform_id": 1, "grant_id": 1, "token_id": 1,
              "request_id": 1, "event_id": 1, "name:path": f"live/{CH_IN}"}
    for method, path in sorted(set(TABLE) | set(SELF) | set(STREAM_ROUTES) | {LISTING}):
        if path.startswith("/api/v1/media/rtp-receivers/"):
            yield method, fill(path, {"name:path": "rtp/x"}), path
        else:
            yield method, fill(path, values), path


def test_a_login_token_in_the_url_opens_nothing(env: Env) -> None:
    """URLs land in logs and browser history: ?token= takes media tokens only (item 8)."""
    login = env.tokens["everything"]
    open_stream(env, "live")
    bad = []
    for method, url, path in every_call(env):
        if method in ("DELETE",) or path.endswith("/password") or "logout" in path:
            continue  # would only refuse too; spared so as not to end the token under test
        got = call(env, method, url, params={"token": login})
        if got not in (401,):
            bad.append((method, path, got))
    assert bad == [], f"a login token in ?token= was not refused with 401: {bad}"


def media_token(e: Env, channel: str = CH_IN) -> str:
    r = HTTP.post(f"{e.base}/api/v1/channels/{channel}/media-token", headers=e.only(frozenset({A.LIVE_VIEW})), timeout=20)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def test_a_media_token_reads_its_channel_live_and_nothing_else(env: Env) -> None:
    """A media token for CH_IN's live video: its media read routes on CH_IN, and nothing else —
    not CH_IN2, not a playback, not PTZ, not a new media token, no other route (item 8)."""
    open_stream(env, "live")
    playback = open_stream(env, "playback")
    token = media_token(env)
    q = {"token": token}
    for route in sorted(MEDIA_READS):
        method, path = route
        if "{channel_id}" not in path:
            continue
        url = fill(path, {"channel_id": CH_IN, "resource": "init.mp4"})
        got = call(env, method, url, params=q)
        assert got == (101 if method == "WS" else 200), f"{method} {path}: its own media token got {got}"
        other = fill(path, {"channel_id": CH_IN2, "resource": "init.mp4"})
        got = call(env, method, other, params=q)
        assert got in REFUSED, f"{method} {path}: a media token for {CH_IN} opened {CH_IN2}: {got}"
    for route in sorted(STREAM_ROUTES):
        method, path = route
        got = stream_call(env, method, path, playback, None, params=q)
        assert got in REFUSED, f"{method} {path}: a live media token reached a playback: {got}"
    bad = []
    for method, url, path in every_call(env):
        if (method, path) in MEDIA_READS or path.startswith("/api/v1/streams/{name:path}/"):
            continue  # the stream routes of live/CH_IN read the same video (tested above for others)
        got = call(env, method, url, params=q, body={"action": "stop"} if path.endswith("/ptz") else None)
        if got not in (401,):
            bad.append((method, path, got))
    assert bad == [], f"a media token in ?token= reached beyond media reads: {bad}"
    # Nor as a bearer token: it cannot mint another, move a camera or open a playback.
    bearer = {"Authorization": f"Bearer {token}"}
    for method, path, body in (
        ("POST", f"/api/v1/channels/{CH_IN}/media-token", None),
        ("POST", f"/api/v1/streams/live/{CH_IN}/media-token", None),
        ("POST", f"/api/v1/channels/{CH_IN}/ptz", {"action": "stop"}),
        ("POST", f"/api/v1/channels/{CH_IN}/playback", WHEN),
        ("GET", f"/api/v1/channels/{CH_IN}", None),
    ):
        got = call(env, method, path, bearer, body=body)
        assert got in (401, 403), f"{method} {path}: a media token as bearer got {got}"


# --------------------------------------------------------------------------- rules


def test_sensitive_actions_need_their_purpose_or_approval(env: Env) -> None:
    """The rules: class I / key-site playback needs a purpose, key-site download an approval,
    PTZ on a high lookout a purpose. Everything but the purpose is refused; with it, allowed."""
    why = {"X-Purpose": quote("案件调查")}
    pb, dl, ptz = (env.only(frozenset({a})) for a in (A.PLAYBACK, A.DOWNLOAD, A.PTZ))
    url = f"/api/v1/channels/{CH_KEY}/playback"
    assert problem_type(env, "POST", url, pb, json=WHEN) == (403, "urn:xueliang:problem:purpose-required")
    r = HTTP.post(env.base + url, json=WHEN, headers={**pb, **why}, timeout=20)
    assert r.status_code == 200, r.text
    url = f"/api/v1/channels/{CH_KEY}/download"
    assert problem_type(env, "POST", url, {**dl, **why}, json=WHEN) == (403, "urn:xueliang:problem:approval-required")
    url = f"/api/v1/channels/{CH_HIGH}/ptz"
    assert problem_type(env, "POST", url, ptz, json={"action": "stop"}) == (403, "urn:xueliang:problem:purpose-required")
    got = call(env, "POST", url, {**ptz, **why}, body={"action": "stop"})
    assert got == 503, f"PTZ with a purpose got {got} (503: SIP is off, past authorization)"


def test_a_purpose_rule_on_live_video_holds_on_every_way_of_reading(env: Env) -> None:
    """outside-department: live video of another department's camera (shared by a grant) needs a
    purpose — over HTTP and in the WebSocket handshake — and with one (``?purpose=``) is read."""
    r = HTTP.post(f"{env.base}/api/v1/access/grants", headers=env.root(),
                  json={"department": OWN, "channel_ids": [CH_OUT], "actions": ["media.live"]})
    assert r.status_code == 201, r.text
    env.only(frozenset({A.LIVE_VIEW}))  # the role exists
    viewer = env.user("own-viewer", "only-media.live", department=OWN)
    for method, tail in (("GET", "live.m3u8"), ("GET", "live.info"), ("GET", "live.flv"), ("WS", "live.ws")):
        url = f"/api/v1/channels/{CH_OUT}/{tail}"
        got = call(env, method, url, viewer)
        assert got == 403, f"{method} {url} without a purpose got {got}, expected 403"
        if method == "GET":
            assert problem_type(env, method, url, viewer)[1] == "urn:xueliang:problem:purpose-required"
        ok = 0
        for _ in range(50):  # the camera's stream starts on the first permitted read
            ok = call(env, method, url, viewer, params={"purpose": "巡查"})
            if ok in (101, 200):
                break
            time.sleep(0.1)
        assert ok == (101 if method == "WS" else 200), f"{method} {url} with a purpose got {ok}"


# --------------------------------------------------------------------------- evidence (issue 14)


def test_another_users_export_is_refused_by_id_file_name_and_listing(env: Env) -> None:
    evidence_routes.another_users_export_is_missing(env, HTTP, CH_IN, WHEN, A.EXPORTS_MANAGE)


def test_an_export_or_hold_names_channels_in_scope_only(env: Env) -> None:
    evidence_routes.bodies_name_channels_in_scope_only(env, HTTP, CH_IN, CH_MISSING, WHEN)


def test_exporting_a_key_site_needs_an_approval(env: Env) -> None:
    """key-site-export: media.export on a key site needs an approval, even with the body's purpose."""
    body = {"channels": [CH_KEY], **WHEN, "purpose": "案件取证", "case_number": "A-1"}
    assert problem_type(env, "POST", "/api/v1/exports", env.only(frozenset({A.EXPORT})), json=body) == (
        403, "urn:xueliang:problem:approval-required")
