"""SIP messages: `SipRequest`, `SipResponse`, their `Headers`, the parser and the builders.

`parse_message(data)` turns one datagram (or one message cut out of a stream by
`StreamFramer`) into a message and raises `SipParseError`, and nothing else, on any malformed
input. `msg.serialize()` / `bytes(msg)` gives canonical CRLF output with a correct
Content-Length.

Header bytes are decoded as UTF-8 with `surrogateescape`, so a GB2312 display name from an old
device survives a parse/serialize round trip byte for byte.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from xueliang import _native

from .errors import SipParseError
from .uri import header_param, split_header_list, stamp_via

__all__ = [
    "BRANCH_MAGIC",
    "MAX_MESSAGE_SIZE",
    "REASON_PHRASES",
    "Headers",
    "SipMessage",
    "SipParseError",
    "SipRequest",
    "SipResponse",
    "generate_branch",
    "generate_call_id",
    "generate_tag",
    "is_keepalive",
    "make_request",
    "make_response",
    "parse_message",
    "reason_phrase",
]

MAX_MESSAGE_SIZE: Final = 65_536
"""Largest message accepted, in bytes; larger input gets 513 Message Too Large."""

BRANCH_MAGIC: Final = "z9hG4bK"

# Compact forms (RFC 3261 §7.3.3, RFC 3265 §7.2, RFC 3515, RFC 3892, RFC 4028, RFC 3841, RFC 4474).
_COMPACT: Final[dict[str, str]] = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_CANONICAL_NAMES: Final = (
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "Path",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Server",
    "Session-Expires",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
    "X-GB-Ver",
    "X-PreferredPath",
    "X-RoutePath",
)

# name as written (any case, compact or full) -> (lower-case full key, canonical name).
# `_EXACT` holds the spellings met most often so the hot path is one dict hit.
_BY_LOWER: Final[dict[str, tuple[str, str]]] = {n.lower(): (n.lower(), n) for n in _CANONICAL_NAMES}
for _short, _full in _COMPACT.items():
    _BY_LOWER[_short] = _BY_LOWER[_full.lower()]
_EXACT: Final[dict[str, tuple[str, str]]] = {n: _BY_LOWER[n.lower()] for n in _CANONICAL_NAMES}
for _short in _COMPACT:
    _EXACT[_short] = _BY_LOWER[_short]
    _EXACT[_short.upper()] = _BY_LOWER[_short]
for _lower_name, _pair in list(_BY_LOWER.items()):
    _EXACT.setdefault(_lower_name, _pair)
_EXACT["Call-Id"] = _BY_LOWER["call-id"]
_EXACT["Cseq"] = _BY_LOWER["cseq"]
_EXACT["Www-Authenticate"] = _BY_LOWER["www-authenticate"]
_EXACT["X-Gb-Ver"] = _BY_LOWER["x-gb-ver"]

# Headers whose value is a comma-separated list (RFC 3261 §7.3.1); `get_all` splits them.
_LIST_HEADERS: Final = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "allow",
        "allow-events",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "content-encoding",
        "content-language",
        "path",
    }
)

_TOKEN_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")
_DIGITS: Final = frozenset("0123456789")
_KNOWN_METHODS: Final = frozenset(
    {
        "REGISTER",
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "MESSAGE",
        "INFO",
        "SUBSCRIBE",
        "NOTIFY",
        "UPDATE",
        "PRACK",
        "REFER",
        "PUBLISH",
    }
)
_REQUIRED: Final = ("via", "from", "to", "call-id", "cseq")

REASON_PHRASES: Final[dict[int, str]] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    428: "Use Identity Header",
    429: "Provide Referrer Identity",
    430: "Flow Failed",
    433: "Anonymity Disallowed",
    436: "Bad Identity-Info",
    437: "Unsupported Certificate",
    438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support",
    440: "Max-Breadth Exceeded",
    469: "Bad Info Package",
    470: "Consent Needed",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    555: "Push Notification Service Not Supported",
    580: "Precondition Failure",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",
    608: "Rejected",
}
_CLASS_REASONS: Final = {
    1: "Progress",
    2: "OK",
    3: "Redirection",
    4: "Client Error",
    5: "Server Error",
    6: "Global Failure",
}


def reason_phrase(status: int) -> str:
    """The standard reason phrase for `status` (a class default for unknown codes)."""
    return REASON_PHRASES.get(status) or _CLASS_REASONS.get(status // 100, "Unknown")


def _key_and_name(name: str) -> tuple[str, str]:
    pair = _EXACT.get(name)
    if pair is not None:
        return pair
    stripped = name.strip(" \t")
    low = stripped.lower()
    pair = _BY_LOWER.get(low)
    if pair is not None:
        return pair
    if not stripped or not _TOKEN_CHARS.issuperset(stripped):
        raise SipParseError(f"Invalid header name {stripped[:40]!r}")
    return low, stripped


_Item = tuple[str, str, str]  # (lower-case key, display name, value)
#: A reader of the header block from where the start line begins (see `_parse_with`): the start
#: line, the header items, where the body begins, each key's first value (`Headers._index`) and,
#: for a request it found well-formed all through, its (method, URI, Content-Length or None);
#: or None for the Python loop to read it.
_HeadScan = Callable[[bytes, int], tuple[str, list[_Item], int, dict[str, str], tuple[str, str, int | None] | None] | None]

_sipscan: Any = _native.extension("xueliang.gb28181.sip._sipscan")
#: The header block read in C when our extension is built (sip/_sipscan.c: the very items of the
#: Python loop below, its names from `_EXACT` and `_key_and_name`; None leaves a message to the
#: loop: non-ASCII bytes, a malformed line), else None: the loop reads every message.
_scanner: Any = _sipscan.HeadScanner(_EXACT, _key_and_name) if _sipscan is not None else None
_scan_head: _HeadScan | None = _scanner.scan if _scanner is not None else None
#: A CSeq value read in C (sip/_sipscan.c: `_parse_cseq`'s answer for a well-formed one), or None.
_cseq_c: Callable[[str], tuple[int, str] | None] | None = _sipscan.cseq if _sipscan is not None else None
#: A response written in C (sip/_sipscan.c: `_response_bytes_py`'s bytes), or None: the Python's.
_response_c: Callable[[str, list[_Item], list[tuple[str, str]], bool], bytes | None] | None = (
    _scanner.response if _scanner is not None else None
)
#: A message written in C (sip/_sipscan.c: `_serialize_py`'s bytes in one allocation), or None:
#: a part that is not ASCII, for the Python to encode.
_serialize_c: Callable[[str, list[_Item], bytes], bytes | None] | None = (
    _sipscan.serialize if _sipscan is not None else None
)


def _key(name: str) -> str:
    pair = _EXACT.get(name)
    if pair is not None:
        return pair[0]
    low = name.strip(" \t").lower()
    pair = _BY_LOWER.get(low)
    return low if pair is None else pair[0]


def _item(name: str, value: str) -> _Item:
    """A header line as `Headers` keeps it: the name's key and spelling, the value checked."""
    key, display = _key_and_name(name)
    return key, display, _check_value(value)


def _check_value(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("header value must not contain CR or LF")
    return value


class Headers:
    """Ordered multi-dict of SIP headers with case-insensitive names.

    Compact names are mapped to the full ones (`v` → `Via`); well-known headers get their
    canonical spelling (`call-id` → `Call-ID`). `get_all` splits comma-separated list headers
    (Via, Contact, Route, Record-Route, Allow, Supported...) into their elements;
    `get_lines` returns the header lines as they are.
    """

    __slots__ = ("_first", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] | None = None) -> None:
        self._items: list[_Item] = []
        #: Lazily built index: key -> value of its first line. A request is read far more often
        #: than it is changed (the registrar alone asks for six headers), so `get` is a lookup.
        self._first: dict[str, str] | None = None
        if items is None:
            return
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            self.add(name, value)

    @classmethod
    def _wrap(cls, items: list[_Item]) -> Headers:
        headers = cls()  # (not cls.__new__: mypyc compiles this class)
        headers._items = items
        return headers

    def _index(self) -> dict[str, str]:
        first = self._first
        if first is None:
            first = self._first = {k: v for k, _, v in reversed(self._items)}
        return first

    # -- reading -----------------------------------------------------------------------------

    def get(self, name: str, default: str | None = None) -> str | None:
        """Value of the first header line called `name` (unsplit), or `default`."""
        return self._index().get(_key(name), default)

    def get_first(self, name: str) -> str | None:
        """First element of a list header (e.g. the top Via), or the first value otherwise."""
        value = self.get(name)
        if value is None or _key(name) not in _LIST_HEADERS:
            return value
        if "," not in value:
            return value.strip(" \t") or None
        parts = split_header_list(value)
        return parts[0] if parts else None

    def get_all(self, name: str) -> list[str]:
        """Every value of `name` in order; list headers are split at commas."""
        key = _key(name)
        values = [item[2] for item in self._items if item[0] == key]
        if key not in _LIST_HEADERS:
            return values
        out: list[str] = []
        for value in values:
            if "," in value:
                out.extend(split_header_list(value))
            elif value.strip(" \t"):
                out.append(value)
        return out

    def get_lines(self, name: str) -> list[str]:
        """Every header line value called `name`, unsplit."""
        key = _key(name)
        return [item[2] for item in self._items if item[0] == key]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return _key(name) in self._index()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for _, name, value in self._items:
            yield name, value

    def items(self) -> list[tuple[str, str]]:
        return [(name, value) for _, name, value in self._items]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(k, v) for k, _, v in self._items] == [(k, v) for k, _, v in other._items]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"

    def copy(self) -> Headers:
        return Headers._wrap(list(self._items))

    # -- writing -----------------------------------------------------------------------------

    def add(self, name: str, value: str) -> None:
        """Append a header line."""
        item = _item(name, value)
        self._items.append(item)
        first = self._first
        if first is not None and item[0] not in first:
            first[item[0]] = value

    def prepend(self, name: str, value: str) -> None:
        """Insert a header line before all others (e.g. a new top Via)."""
        key, display = _key_and_name(name)
        self._items.insert(0, (key, display, _check_value(value)))
        if self._first is not None:
            self._first[key] = value

    def set(self, name: str, value: str) -> None:
        """Replace the first `name` line in place (removing later ones), or append it."""
        key, display = _key_and_name(name)
        _check_value(value)
        self._first = None
        items = self._items
        for i, item in enumerate(items):
            if item[0] == key:
                items[i] = (key, display, value)
                self._items = items[: i + 1] + [it for it in items[i + 1 :] if it[0] != key]
                return
        items.append((key, display, value))

    def remove(self, name: str) -> int:
        """Remove every `name` line; returns how many were removed."""
        key = _key(name)
        self._first = None
        before = len(self._items)
        self._items = [item for item in self._items if item[0] != key]
        return before - len(self._items)


class SipMessage:
    """What requests and responses share: header helpers and serialisation."""

    __slots__ = ()

    headers: Headers
    body: bytes

    def _start_line(self) -> str:
        raise NotImplementedError

    # -- helpers -----------------------------------------------------------------------------

    @property
    def call_id(self) -> str:
        value = self.headers.get("Call-ID")
        if not value:
            raise SipParseError("Missing Call-ID")
        return value

    @property
    def cseq(self) -> tuple[int, str]:
        """(sequence number, method) from the CSeq header."""
        value = self.headers.get("CSeq")
        if value is None:
            raise SipParseError("Missing CSeq")
        return _parse_cseq(value)

    @property
    def from_tag(self) -> str | None:
        value = self.headers.get("From")
        return None if value is None else header_param(value, "tag")

    @property
    def to_tag(self) -> str | None:
        value = self.headers.get("To")
        return None if value is None else header_param(value, "tag")

    @property
    def top_via(self) -> str | None:
        """The first Via value (a comma-combined Via line is split)."""
        return self.headers.get_first("Via")

    @property
    def branch(self) -> str | None:
        """The branch parameter of the top Via."""
        via = self.top_via
        return None if via is None else header_param(via, "branch")

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        return None if value is None else _parse_length(value)

    @property
    def expires(self) -> int | None:
        """The Expires header as seconds, None when absent; SipParseError when malformed."""
        value = self.headers.get("Expires")
        if value is None:
            return None
        if not value or len(value) > 10 or not _DIGITS.issuperset(value):
            raise SipParseError("Invalid Expires")
        return int(value)

    @property
    def content_type(self) -> str | None:
        """The media type in lower case, without parameters (`application/manscdp+xml`)."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.partition(";")[0].strip(" \t").lower()

    # -- serialisation -----------------------------------------------------------------------

    def serialize(self) -> bytes:
        """Canonical bytes: CRLF line ends, full header names, correct Content-Length.

        An existing Content-Length line keeps its position; otherwise one is appended.
        """
        return _serialize(self._start_line(), self.headers._items, self.body)

    def __bytes__(self) -> bytes:
        return self.serialize()


# The two messages' ``__init__`` are written out, so that mypyc compiles them (a dataclass's
# own is interpreted: a message parsed or answered costs one).
@dataclass(slots=True, init=False)
class SipRequest(SipMessage):
    method: str
    uri: str
    headers: Headers
    body: bytes

    def __init__(self, method: str, uri: str, headers: Headers | None = None, body: bytes = b"") -> None:
        self.method = method
        self.uri = uri
        self.headers = Headers() if headers is None else headers
        self.body = body

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    def stamp_via(self, source_host: str, source_port: int) -> None:
        """Record the packet's source in the top Via (`received`, `rport`; RFC 3581)."""
        items = self.headers._items
        for i, (key, name, value) in enumerate(items):
            if key == "via":
                stamped = stamp_via(value, source_host, source_port)
                items[i] = (key, name, stamped)
                if self.headers._first is not None:
                    self.headers._first["via"] = stamped  # it was the first Via
                return


@dataclass(slots=True, init=False)
class SipResponse(SipMessage):
    status: int
    reason: str
    headers: Headers
    body: bytes

    def __init__(self, status: int, reason: str = "", headers: Headers | None = None, body: bytes = b"") -> None:
        self.status = status
        self.reason = reason
        self.headers = Headers() if headers is None else headers
        self.body = body

    def _start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    @property
    def is_provisional(self) -> bool:
        return self.status < 200

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


def _serialize(start_line: str, items: list[_Item], body: bytes) -> bytes:
    fast = _serialize_c
    if fast is not None:
        out = fast(start_line, items, body)
        if out is not None:
            return out
    return _serialize_py(start_line, items, body)


def _serialize_py(start_line: str, items: list[_Item], body: bytes) -> bytes:
    """A message's bytes: every header line in order, one Content-Length saying len(body)."""
    lines = [start_line]
    append = lines.append
    has_length = False
    for key, name, value in items:
        if key == "content-length":
            if has_length:
                continue
            has_length = True
            value = str(len(body))
        append(f"{name}: {value}")
    if not has_length:
        append(f"Content-Length: {len(body)}")
    append("\r\n")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body


# -- parsing ---------------------------------------------------------------------------------


def _parse_length(value: str) -> int:
    if not value or len(value) > 10 or not _DIGITS.issuperset(value):
        raise SipParseError("Invalid Content-Length")
    return int(value)


def _parse_cseq(value: str) -> tuple[int, str]:
    if _cseq_c is not None:  # C (sip/_sipscan.c) where it reads the value as split() would
        fast = _cseq_c(value)
        if fast is not None:
            return fast
    parts = value.split()
    if len(parts) != 2:
        raise SipParseError("Malformed CSeq")
    number, method = parts
    if len(number) > 10 or not _DIGITS.issuperset(number):
        raise SipParseError("Malformed CSeq number")
    seq = int(number)
    if seq >= 2**31:
        raise SipParseError("CSeq number out of range")
    return seq, method


def is_keepalive(data: bytes) -> bool:
    """True for a CRLF keep-alive (RFC 5626 §4.4.1: `\\r\\n\\r\\n` ping, `\\r\\n` pong)."""
    return not data.strip(b"\r\n") and bool(data)


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parse one SIP message; raises `SipParseError` (only) when it is malformed.

    Tolerates LF-only line ends, leading CRLFs, folded header lines, any header-name case,
    compact names and a missing Content-Length (the body is the rest of the datagram). A body
    longer than Content-Length is cut to it (RFC 3261 §18.3); a shorter one is an error.
    """
    try:
        return _parse(data)
    except SipParseError:
        raise
    except Exception as exc:  # a last safety net: a malformed datagram must never crash us
        raise SipParseError(f"Malformed message ({type(exc).__name__})") from None


def _parse(data: bytes) -> SipRequest | SipResponse:
    return _parse_with(data, _scan_head)


def _parse_with(data: bytes, scan: _HeadScan | None) -> SipRequest | SipResponse:
    """`_parse`, the header block read by `scan` (the C scanner) or, when it is None or gives
    None, by `_head_lines` and `_read_headers`: the same message or the same error."""
    size = len(data)
    if size > MAX_MESSAGE_SIZE:
        raise SipParseError("Message Too Large", 513)
    start = 0
    while start < size and data[start] in b"\r\n":
        start += 1
    if start == size:
        raise SipParseError("Empty message")

    scanned = None if scan is None else scan(data, start)
    message: SipRequest | SipResponse
    firsts: dict[str, str]
    if scanned is not None:
        first, items, body_start, firsts, request = scanned
        if request is not None:  # the C checked all that the Python checks below
            method, uri, length = request
            message = SipRequest(method, uri, Headers._wrap(items))
            message.headers._first = firsts
            return _with_body(message, data, body_start, length)
        message = _start_line(first, items)
        message.headers._first = firsts  # the C made Headers._index too
    else:
        lines, body_start = _head_lines(data, start)
        message = _start_line(lines[0].strip(" \t\r"), [])
        _read_headers(lines, message.headers._items)
        firsts = message.headers._index()
    for required in _REQUIRED:
        if required not in firsts:
            raise SipParseError(f"Missing {_BY_LOWER[required][1]} header")

    cseq_method = _parse_cseq(firsts["cseq"])[1]
    if isinstance(message, SipRequest) and cseq_method != message.method:
        raise SipParseError("CSeq method does not match the request method")

    clen = firsts.get("content-length")
    return _with_body(message, data, body_start, None if clen is None else _parse_length(clen))


def _with_body(message: SipRequest | SipResponse, data: bytes, body_start: int,
               length: int | None) -> SipRequest | SipResponse:
    """The message with its body: the rest of the datagram, cut to ``length`` (Content-Length)."""
    body = data[body_start:]
    if length is not None:
        if length > len(body):
            raise SipParseError("Content-Length larger than the body")
        if length < len(body):
            body = body[:length]
    message.body = body
    return message


def _start_line(first: str, items: list[_Item]) -> SipRequest | SipResponse:
    """The message that the start line `first` begins, its headers `items`."""
    if first[:4].upper() == "SIP/":
        parts = first.split(None, 2)
        if len(parts) < 2:
            raise SipParseError("Malformed status line")
        if parts[0].upper() != "SIP/2.0":
            raise SipParseError("Unsupported SIP version", 505)
        code = parts[1]
        if len(code) != 3 or not _DIGITS.issuperset(code) or code[0] == "0":
            raise SipParseError("Malformed status code")
        status = int(code)
        if status < 100 or status > 699:
            raise SipParseError("Status code out of range")
        return SipResponse(status, parts[2] if len(parts) == 3 else "", Headers._wrap(items))
    parts = first.split()
    if len(parts) != 3:
        raise SipParseError("Malformed request line")
    method, uri, version = parts
    if version.upper() != "SIP/2.0":
        if version.upper().startswith("SIP/"):
            raise SipParseError("Unsupported SIP version", 505)
        raise SipParseError("Malformed request line")
    if method not in _KNOWN_METHODS and not _TOKEN_CHARS.issuperset(method):
        raise SipParseError("Malformed method")
    if ":" not in uri:
        raise SipParseError("Malformed Request-URI")
    return SipRequest(method, uri, Headers._wrap(items))


def _head_lines(data: bytes, start: int) -> tuple[list[str], int]:
    """The head's lines from ``data[start]`` on, and where the body begins."""
    # End of the header block: the first empty line, whatever the line-end style.
    crlf = data.find(b"\n\r\n", start)
    lf = data.find(b"\n\n", start)
    if crlf < 0 and lf < 0:
        head_end = body_start = len(data)
    elif lf < 0 or 0 <= crlf < lf:
        head_end, body_start = crlf, crlf + 3
    else:
        head_end, body_start = lf, lf + 2
    head = data[start:head_end].decode("utf-8", "surrogateescape")
    if "\r" in head:
        head = head.replace("\r\n", "\n")
    return head.split("\n"), body_start


def _read_headers(lines: list[str], items: list[_Item]) -> None:
    """The header lines (`lines[1:]`, the head split at line ends) into `items`."""
    exact = _EXACT
    for index in range(1, len(lines)):
        line = lines[index]
        if not line:
            continue
        if line[0] in " \t":
            if not items:
                raise SipParseError("Continuation line before the first header")
            key, name, value = items[-1]
            more = line.strip(" \t\r")
            if more:
                items[-1] = (key, name, f"{value} {more}" if value else more)
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise SipParseError("Malformed header line (no colon)")
        pair = exact.get(name)
        if pair is None:
            pair = _key_and_name(name)
        items.append((pair[0], pair[1], value.strip(" \t\r")))


# -- builders --------------------------------------------------------------------------------

_RESPONSE_COPY: Final = frozenset({"via", "from", "call-id", "cseq"})
_DIALOG_METHODS: Final = frozenset({"INVITE", "SUBSCRIBE", "REFER"})


def _header_items(
    headers: Iterable[tuple[str, str]] | Mapping[str, str] | None,
) -> Iterable[tuple[str, str]]:
    if headers is None:
        return ()
    return headers.items() if isinstance(headers, Mapping) else headers


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] | Mapping[str, str] | None = None,
    body: bytes = b"",
) -> SipResponse:
    """A response to `request` per RFC 3261 §8.2.6.

    Copies every Via (in order), From, To (adding `to_tag` when the To has none), Call-ID and
    CSeq; Record-Route too for a 101-299 answer to a dialog-creating request (§12.1.1). Extra
    `headers` are appended; Content-Length is written at serialisation.
    """
    response = SipResponse(
        status,
        reason if reason is not None else reason_phrase(status),
        Headers._wrap(_response_items(request, status, to_tag)),
        body,
    )
    for name, value in _header_items(headers):
        response.headers.add(name, value)
    return response


def response_bytes(
    request: SipRequest, status: int, reason: str | None, headers: list[tuple[str, str]]
) -> bytes:
    """``make_response(request, status, reason, headers=headers).serialize()``, with no response
    object built on the way: the answers to REGISTERs and keepalives, a storm's every message.
    Written in C where it is built (sip/_sipscan.c's HeadScanner.response), which leaves to the
    Python what is not plain ASCII, and names not in `_EXACT`."""
    start = f"SIP/2.0 {status} {reason if reason is not None else reason_phrase(status)}"
    if _response_c is not None:
        out = _response_c(start, request.headers._items, headers,
                          100 < status < 300 and request.method in _DIALOG_METHODS)
        if out is not None:
            return out
    return _response_bytes_py(request, start, status, headers)


def _response_bytes_py(request: SipRequest, start: str, status: int, headers: list[tuple[str, str]]) -> bytes:
    items = _response_items(request, status, None)
    items.extend(_item(name, value) for name, value in headers)
    return _serialize(start, items, b"")


def _response_items(request: SipRequest, status: int, to_tag: str | None) -> list[_Item]:
    """The request's headers that its response repeats (RFC 3261 §8.2.6, §12.1.1)."""
    items: list[_Item] = []
    copy_routes = 100 < status < 300 and request.method in _DIALOG_METHODS
    for item in request.headers._items:
        key = item[0]
        if key in _RESPONSE_COPY:
            items.append(item)
        elif key == "to":
            if to_tag is not None and header_param(item[2], "tag") is None:
                item = (key, item[1], f"{item[2]};tag={to_tag}")
            items.append(item)
        elif copy_routes and key == "record-route":
            items.append(item)
    return items


def make_request(
    method: str,
    uri: str,
    *,
    via: str,
    from_: str,
    to: str,
    call_id: str,
    cseq: int,
    contact: str | None = None,
    max_forwards: int = 70,
    headers: Iterable[tuple[str, str]] | Mapping[str, str] | None = None,
    body: bytes = b"",
) -> SipRequest:
    """An out-of-dialog request with the mandatory headers (RFC 3261 §8.1.1).

    `via` is a full Via value (see `format_via`), `from_`/`to` full name-addr values (the From
    should carry a tag, see `generate_tag`). Extra `headers` (Expires, Content-Type, Subject,
    Authorization...) are appended in order.
    """
    items: list[_Item] = [
        ("via", "Via", _check_value(via)),
        ("from", "From", _check_value(from_)),
        ("to", "To", _check_value(to)),
        ("call-id", "Call-ID", _check_value(call_id)),
        ("cseq", "CSeq", f"{cseq} {method}"),
        ("max-forwards", "Max-Forwards", str(max_forwards)),
    ]
    if contact is not None:
        items.append(("contact", "Contact", _check_value(contact)))
    request = SipRequest(method, uri, Headers._wrap(items), body)
    for name, value in _header_items(headers):
        request.headers.add(name, value)
    return request


def generate_branch() -> str:
    """A fresh RFC 3261 branch (`z9hG4bK` + 96 random bits)."""
    return BRANCH_MAGIC + secrets.token_hex(12)


def generate_tag() -> str:
    """A fresh From/To tag (64 random bits, decimal like most GB/T 28181 devices use)."""
    return str(secrets.randbits(63))


def generate_call_id(host: str | None = None) -> str:
    token = secrets.token_hex(16)
    return f"{token}@{host}" if host else token
