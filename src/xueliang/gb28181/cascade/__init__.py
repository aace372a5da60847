"""Cascade (级联): xueliang as a lower platform registered to upper platforms.

`link.UpperLink` is the sans-IO state machine of one link (registration with digest, refresh,
keepalive, back-off, unregistration; the upper's requests: queries, controls, subscriptions,
and the dispatch of INVITE/ACK/BYE/INFO/CANCEL and RecordInfo to the media side); `register`
holds the REGISTER and digest pieces a device and a lower platform share; `backoff.Backoff` the
retry policy; `parts` cuts a catalog into MESSAGE bodies that fit; `subscriptions` keeps the
upper's subscriptions.
"""

from .backoff import Backoff
from .link import (
    MANSCDP_CONTENT_TYPE,
    AckReceived,
    ByeReceived,
    CancelReceived,
    CatalogQuery,
    CatalogSent,
    Closed,
    ControlReceived,
    DeviceInfoQuery,
    DeviceStatusQuery,
    InfoReceived,
    InviteReceived,
    KeepaliveMissed,
    LinkEvent,
    LinkLost,
    LinkState,
    LinkStatus,
    Output,
    RecordInfoQuery,
    Refused,
    Registered,
    RegistrationFailed,
    RequestAnswered,
    Subscribed,
    Unsubscribed,
    UpperConfig,
    UpperLink,
)
from .parts import CatalogParts
from .register import Challenge, DigestClient, IdSource, challenge_of, register_request

__all__ = [
    "MANSCDP_CONTENT_TYPE",
    "AckReceived",
    "Backoff",
    "ByeReceived",
    "CancelReceived",
    "CatalogParts",
    "CatalogQuery",
    "CatalogSent",
    "Challenge",
    "Closed",
    "ControlReceived",
    "DeviceInfoQuery",
    "DeviceStatusQuery",
    "DigestClient",
    "IdSource",
    "InfoReceived",
    "InviteReceived",
    "KeepaliveMissed",
    "LinkEvent",
    "LinkLost",
    "LinkState",
    "LinkStatus",
    "Output",
    "RecordInfoQuery",
    "Refused",
    "Registered",
    "RegistrationFailed",
    "RequestAnswered",
    "Subscribed",
    "Unsubscribed",
    "UpperConfig",
    "UpperLink",
    "challenge_of",
    "register_request",
]
