"""Secrets never reach the logs: a logging filter that masks tokens, passwords and keys."""

from __future__ import annotations

import logging
import re
from typing import Any

_PATTERNS = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1***"),
    (re.compile(r"xlt_\d+_[A-Za-z0-9_-]+"), "xlt_***"),
    (re.compile(r"(?i)([?&](?:token|access_token|setup_token)=)[^&\s\"']+"), r"\1***"),
    (
        re.compile(
            r"(?i)(\"?(?:password|passwd|secret|secret_key|token|access_token|setup_token|totp|code|"
            r"audit_key|bootstrap_password)\"?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,}&]+)"
        ),
        r"\1***",
    ),
]


def redact(text: str) -> str:
    for pat, rep in _PATTERNS:
        text = pat.sub(rep, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:
            return True
        clean = redact(msg)
        if clean != msg:
            record.msg = clean
            record.args = None
        return True


_FILTER = RedactingFilter()


def install() -> None:
    """Attach the filter to every handler of the root logger (and uvicorn's)."""
    for name in ("", "uvicorn", "uvicorn.error", "uvicorn.access"):
        for h in logging.getLogger(name).handlers:
            if _FILTER not in h.filters:
                h.addFilter(_FILTER)


#: Fields that say where a camera or device sits on the camera network and how to log in to it
#: (an RTSP URL carries its password): for who manages the registry or the signalling only.
NETWORK_FIELDS = ("rtsp_url", "remote_host", "remote_port")


def sees_network(actions: frozenset[Any]) -> bool:
    from xueliang.access.policy import Action

    return bool({Action.REGISTRY_MANAGE, Action.SIGNALLING_MANAGE} & actions)


def hide_network(item: dict[str, Any], actions: frozenset[Any]) -> dict[str, Any]:
    """``item`` with its network fields emptied unless ``actions`` may see them."""
    if sees_network(actions):
        return item
    return {k: (None if k in NETWORK_FIELDS else v) for k, v in item.items()}


#: Event data that says where a device sits on the network (signalling's events): the address a
#: device moved from and to, the address a failed or pending registration came from.
EVENT_NETWORK_FIELDS = ("ip", "old", "new", *NETWORK_FIELDS)


def hide_event_network(data: dict[str, Any], actions: frozenset[Any]) -> dict[str, Any]:
    """An event's ``data`` with its network fields emptied unless ``actions`` may see them (the
    same people as for a device's or channel's own fields: ``hide_network``)."""
    if sees_network(actions):
        return data
    return {k: (None if k in EVENT_NETWORK_FIELDS else v) for k, v in data.items()}
