"""Request dependencies: the platform, the authenticated principal, and authorization."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from xueliang.access import context
from xueliang.access.policy import Action, Principal, authorize
from xueliang.access.ratelimit import RateLimited
from xueliang.access.service import AccessService
from xueliang.access.tokens import Credential
from xueliang.app import Platform
from xueliang.errors import Unauthorized

_bearer = HTTPBearer(auto_error=False)


async def get_platform(request: Request) -> Platform:
    # async, as every dependency here: FastAPI runs a plain ``def`` in its thread pool, and that
    # hop waits for the loop twice (into the thread, back out), 100 ms and more when busy.
    p: Platform = request.app.state.platform
    return p


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_access(platform: PlatformDep) -> AccessService:
    access = platform.access
    await access.ready()
    return access


AccessDep = Annotated[AccessService, Depends(get_access)]


async def authenticate(
    platform: Platform, access: AccessService, bearer: str | None, query_token: str | None,
    *, media: bool = False,
) -> tuple[Principal, Credential]:
    """The caller of a request (HTTP or WebSocket): a bearer token (login or API token), or —
    on media read routes only (``media``) — a media token in ``?token=``."""
    if bearer:
        p, cred = await platform.users.authenticate(bearer)
    elif query_token:
        if not media:
            raise Unauthorized("?token= opens media URLs only: send a bearer token")
        p, cred = await platform.users.authenticate(query_token, query=True)
    else:
        raise Unauthorized("log in first: send a bearer token")
    wait = await access.api_limiter.take(f"u:{p.user_id}")
    if wait:
        raise RateLimited(f"too many requests: retry in {wait:.1f} s", retry_after=round(wait, 1))
    ctx = context.current()
    if ctx is not None:
        ctx.principal = p
    return p, cred


async def _from_request(
    request: Request, platform: Platform, access: AccessService,
    creds: HTTPAuthorizationCredentials | None, media: bool,
) -> tuple[Principal, Credential]:
    p, cred = await authenticate(
        platform, access, creds.credentials if creds is not None else None,
        request.query_params.get("token"), media=media,
    )
    request.state.principal = p
    request.state.credential = cred
    return p, cred


async def current_principal(
    request: Request,
    platform: PlatformDep,
    access: AccessDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The bearer token's principal (login token or API token). ``?token=`` is refused here."""
    return (await _from_request(request, platform, access, creds, media=False))[0]


@dataclass(frozen=True, slots=True)
class MediaCaller:
    """Who reads media, and with what: a media token reads only its own stream and action."""

    principal: Principal
    credential: Credential


async def media_caller(
    request: Request,
    platform: PlatformDep,
    access: AccessDep,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> MediaCaller:
    """Media read routes: a bearer token, or a media token in ``?token=``."""
    return MediaCaller(*await _from_request(request, platform, access, creds, media=True))


MediaCallerDep = Annotated[MediaCaller, Depends(media_caller)]


def credential_of(request: Request) -> Credential:
    cred: Credential = request.state.credential
    return cred


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(action: Action) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency: the caller must be allowed ``action`` (resource-level checks call authorize again)."""

    async def dep(p: PrincipalDep) -> Principal:
        authorize(p, action)
        return p

    dep.__name__ = f"require_{action.name.lower()}"
    return dep


# One alias per action, so routes declare what they need in their signature.
RegistryReader = Annotated[Principal, Depends(require(Action.REGISTRY_READ))]
RegistryManager = Annotated[Principal, Depends(require(Action.REGISTRY_MANAGE))]
StatsReader = Annotated[Principal, Depends(require(Action.STATS_READ))]
UsersManager = Annotated[Principal, Depends(require(Action.USERS_MANAGE))]
MetricsReader = Annotated[Principal, Depends(require(Action.METRICS_READ))]
LiveViewer = Annotated[Principal, Depends(require(Action.LIVE_VIEW))]
PlaybackViewer = Annotated[Principal, Depends(require(Action.PLAYBACK))]
Downloader = Annotated[Principal, Depends(require(Action.DOWNLOAD))]
PtzOperator = Annotated[Principal, Depends(require(Action.PTZ))]
DeviceQuerier = Annotated[Principal, Depends(require(Action.DEVICE_QUERY))]
DeviceController = Annotated[Principal, Depends(require(Action.DEVICE_CONTROL))]
SignallingManager = Annotated[Principal, Depends(require(Action.SIGNALLING_MANAGE))]
AuditReader = Annotated[Principal, Depends(require(Action.AUDIT_READ))]
AccessReader = Annotated[Principal, Depends(require(Action.ACCESS_READ))]
AccessManager = Annotated[Principal, Depends(require(Action.ACCESS_MANAGE))]
Approver = Annotated[Principal, Depends(require(Action.APPROVE))]
HealthReader = Annotated[Principal, Depends(require(Action.HEALTH_READ))]
TicketWorker = Annotated[Principal, Depends(require(Action.TICKETS_WORK))]
TicketManager = Annotated[Principal, Depends(require(Action.TICKETS_MANAGE))]
MaintenanceManager = Annotated[Principal, Depends(require(Action.MAINTENANCE_MANAGE))]
ReportReader = Annotated[Principal, Depends(require(Action.REPORTS_READ))]
