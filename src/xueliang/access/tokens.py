"""Signed, stateless tokens: login tokens (bearer) and short-lived media URL tokens.

Format: ``<base64url(json payload)>.<base64url(HMAC-SHA256)>``. A token names its user and the
user's ``token_version``; bumping the version revokes every token issued before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any


class TokenError(Exception):
    pass


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    version: int
    kind: str  # "access" | "media" | "totp-setup"
    expires: float
    #: For media tokens: the one stream they open, ``channel:<id>`` or ``stream:<name>``.
    scope: str = ""
    #: Token id, for revoking one token (logout) without the others.
    jti: str = ""
    #: Media tokens carry the purpose stated when they were issued (players cannot send headers).
    purpose: str = ""
    case_ref: str = ""
    #: For media tokens: the one action they read for (media.live, media.playback, ...).
    action: str = ""


class TokenSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("token secret too short")
        self._key = secret

    def _sig(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()

    def issue(
        self,
        user_id: int,
        version: int,
        ttl: float,
        kind: str = "access",
        scope: str = "",
        now: float | None = None,
        *,
        jti: str = "",
        purpose: str = "",
        case_ref: str = "",
        action: str = "",
    ) -> str:
        now = time.time() if now is None else now
        payload: dict[str, Any] = {"u": user_id, "v": version, "k": kind, "e": int(now + ttl)}
        if scope:
            payload["s"] = scope
        if jti:
            payload["j"] = jti
        if purpose:
            payload["p"] = purpose
        if case_ref:
            payload["c"] = case_ref
        if action:
            payload["a"] = action
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return body + "." + _b64(self._sig(body.encode()))

    def verify(self, token: str, now: float | None = None) -> TokenClaims:
        now = time.time() if now is None else now
        try:
            body, sig = token.split(".", 1)
            good = hmac.compare_digest(_unb64(sig), self._sig(body.encode()))
        except (ValueError, TypeError, UnicodeEncodeError) as exc:
            raise TokenError("malformed token") from exc
        if not good:
            raise TokenError("bad token signature")
        try:
            p = json.loads(_unb64(body))
            claims = TokenClaims(
                int(p["u"]),
                int(p["v"]),
                str(p["k"]),
                float(p["e"]),
                str(p.get("s", "")),
                str(p.get("j", "")),
                str(p.get("p", "")),
                str(p.get("c", "")),
                str(p.get("a", "")),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TokenError("malformed token") from exc
        if claims.expires < now:
            raise TokenError("token expired")
        return claims


@dataclass(frozen=True, slots=True)
class Credential:
    """The token a request presented, kept by open viewing sessions so that they can be cut
    when it is revoked (:meth:`xueliang.access.users.UserService.recheck`)."""

    kind: str  # "access" | "media" | "api"
    user_id: int
    version: int = 0
    #: Login tokens: their id; media tokens: the id of the login token that minted them, so
    #: that logging that one out also closes what it opened.
    jti: str = ""
    #: API tokens: the token itself (re-resolved for revocation and expiry).
    api_token: str = field(default="", repr=False)
    #: Media tokens: the one stream (``channel:<id>`` / ``stream:<name>``) and action.
    target: str = ""
    action: str = ""

    def opens(self, target: str, action: str) -> bool:
        """May this credential read ``target`` for ``action``? Anything but a media token may
        (authorization decides); a media token only its own stream and action."""
        return self.kind != "media" or (self.target == target and self.action == action)
