"""The one exception the SIP core raises for bad input: `SipParseError`.

It lives in its own module so that the URI, message, framing and digest parsers can share it
without importing one another.
"""

from __future__ import annotations

__all__ = ["SipParseError"]


class SipParseError(ValueError):
    """Malformed SIP input.

    `reason` is a human-readable phrase suitable for the reason phrase of the error response,
    `status` the SIP status code to answer with (400 by default, 513 for an oversized message,
    416 for an unsupported URI scheme).
    """

    __slots__ = ("reason", "status")

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status

    def __repr__(self) -> str:
        return f"SipParseError({self.reason!r}, {self.status})"
