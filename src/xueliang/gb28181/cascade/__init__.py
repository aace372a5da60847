"""Cascade (级联): xueliang as a lower platform registered to upper platforms.

`link.UpperLink` is the sans-IO state machine of one link (registration with digest, refresh,
keepalive, back-off, unregistration); `register` holds the REGISTER and digest pieces a device
and a lower platform share; `backoff.Backoff` the retry policy.
"""

from .backoff import Backoff
from .link import (
    MANSCDP_CONTENT_TYPE,
    Closed,
    KeepaliveMissed,
    LinkEvent,
    LinkLost,
    LinkState,
    LinkStatus,
    Output,
    Registered,
    RegistrationFailed,
    RequestFromUpper,
    UpperConfig,
    UpperLink,
)
from .register import Challenge, DigestClient, IdSource, challenge_of, register_request

__all__ = [
    "MANSCDP_CONTENT_TYPE",
    "Backoff",
    "Challenge",
    "Closed",
    "DigestClient",
    "IdSource",
    "KeepaliveMissed",
    "LinkEvent",
    "LinkLost",
    "LinkState",
    "LinkStatus",
    "Output",
    "Registered",
    "RegistrationFailed",
    "RequestFromUpper",
    "UpperConfig",
    "UpperLink",
    "challenge_of",
    "register_request",
]
