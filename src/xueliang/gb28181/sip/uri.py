"""SIP URIs, name-addr values and Via headers (RFC 3261 §19.1, §20.10, §20.42; RFC 3581).

Parsing is liberal (real GB/T 28181 devices deviate in small ways) but every failure is a
`SipParseError`. Formatting is canonical: `str(parse_x(s))` gives a normalised form that
parses back to an equal value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from xueliang import _native

from .errors import SipParseError

__all__ = [
    "NameAddress",
    "SipUri",
    "Via",
    "format_params",
    "format_via",
    "header_param",
    "parse_name_addr",
    "parse_params",
    "parse_uri",
    "parse_via",
    "split_header_list",
    "stamp_via",
]

Params = dict[str, str | None]

_HOST_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
_IPV6_CHARS: Final = frozenset("0123456789abcdefABCDEF:.")
_DIGITS: Final = frozenset("0123456789")


def _parse_port(text: str) -> int:
    if not text or len(text) > 5 or not _DIGITS.issuperset(text):
        raise SipParseError(f"Invalid port {text[:20]!r}")
    port = int(text)
    if port > 65535:
        raise SipParseError(f"Port {port} out of range")
    return port


def _parse_hostport(text: str) -> tuple[str, int | None]:
    """Parse `host`, `host:port`, `[v6]` or `[v6]:port`; the host is returned without brackets."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError("Unterminated IPv6 reference")
        host = text[1:end]
        if not host or not _IPV6_CHARS.issuperset(host) or ":" not in host:
            raise SipParseError("Invalid IPv6 address")
        rest = text[end + 1 :]
        if not rest:
            return host, None
        if rest[0] != ":":
            raise SipParseError("Junk after IPv6 reference")
        return host, _parse_port(rest[1:])
    host, sep, port_text = text.partition(":")
    if not host or not _HOST_CHARS.issuperset(host):
        raise SipParseError(f"Invalid host {host[:40]!r}")
    return host, (_parse_port(port_text) if sep else None)


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _split_quoted(text: str, sep: str) -> list[str]:
    """Split on `sep` outside double quotes (backslash escapes honoured) and angle brackets."""
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if in_quotes:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quotes = False
        elif c == '"':
            in_quotes = True
        elif c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif c == sep and not in_angle:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def split_header_list(value: str) -> list[str]:
    """Split a comma-separated header value (Via, Contact, Route...) into its elements.

    Commas inside quoted strings and angle brackets do not split. Empty elements are dropped.
    """
    out: list[str] = []
    for part in _split_quoted(value, ","):
        part = part.strip(" \t")
        if part:
            out.append(part)
    return out


def parse_params(text: str) -> Params:
    """Parse `;a=b;c;d="x y"` (the leading `;` optional) into an ordered dict.

    Names are lower-cased (parameter names are case-insensitive); values keep their case and
    their quotes, so that formatting gives the input back.
    """
    params: Params = {}
    if not text:
        return params
    for part in _split_quoted(text, ";"):
        name, sep, value = part.partition("=")
        name = name.strip(" \t").lower()
        if not name:
            continue
        params.pop(name, None)  # repeated: the last one wins, and formats last (round trip)
        params[name] = value.strip(" \t") if sep else None
    return params


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def header_param(value: str, name: str) -> str | None:
    """Fast look-up of one header parameter (`tag`, `branch`, `expires`...), unquoted.

    Works on name-addr (`<sip:a@b>;tag=1`), addr-spec (`sip:a@b;tag=1`, where every `;` param
    belongs to the header, RFC 3261 §20.10) and Via values. `name` must be lower case.
    """
    gt = value.rfind(">")
    tail = value[gt + 1 :] if gt >= 0 else value
    if ";" not in tail:
        return None
    first = True
    for part in tail.split(";"):
        if first:
            first = False
            continue
        k, sep, v = part.partition("=")
        if k.strip(" \t").lower() == name:
            if not sep:
                return ""
            v = v.strip(" \t")
            if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
                v = v[1:-1]
            return v
    return None


@dataclass(slots=True)
class SipUri:
    """`sip:user:password@host:port;params?headers`; IPv6 hosts are stored without brackets."""

    host: str
    user: str | None = None
    port: int | None = None
    params: Params = field(default_factory=dict)
    scheme: str = "sip"
    password: str | None = None
    headers: str | None = None

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":")
                out.append(self.password)
            out.append("@")
        out.append(_format_host(self.host))
        if self.port is not None:
            out.append(f":{self.port}")
        if self.params:
            out.append(format_params(self.params))
        if self.headers is not None:
            out.append("?")
            out.append(self.headers)
        return "".join(out)

    @property
    def hostport(self) -> str:
        host = _format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.upper() if value else None


def parse_uri(text: str) -> SipUri:
    """Parse a `sip:` or `sips:` URI. Other schemes raise `SipParseError` with status 416."""
    text = text.strip(" \t")
    scheme, sep, rest = text.partition(":")
    if not sep or "<" in rest or ">" in rest:  # never unescaped in a URI; <...> would not hold it
        raise SipParseError(f"Malformed URI {text[:60]!r}")
    scheme = scheme.lower()
    if scheme not in ("sip", "sips"):
        raise SipParseError(f"Unsupported URI scheme {scheme[:20]!r}", 416)
    headers: str | None = None
    user: str | None = None
    password: str | None = None
    at = rest.rfind("@")
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        user, psep, pw = userinfo.partition(":")
        if psep:
            password = pw
        if not user or " " in user:
            raise SipParseError("Malformed user part in URI")
    rest, qsep, hdrs = rest.partition("?")
    if qsep:
        headers = hdrs
    hostport, psep2, params_text = rest.partition(";")
    # An IPv6 reference cannot contain ';', so partitioning before the bracket check is safe.
    host, port = _parse_hostport(hostport)
    params = parse_params(params_text) if psep2 else {}
    return SipUri(host, user, port, params, scheme, password, headers)


@dataclass(slots=True)
class NameAddress:
    """`"Display" <sip:...>;tag=...` (From, To, Contact, Route, Record-Route values)."""

    uri: SipUri
    display_name: str | None = None
    params: Params = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        if self.display_name is not None:
            escaped = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
            head = f'"{escaped}" <{self.uri}>'
        else:
            head = f"<{self.uri}>"
        return head + format_params(self.params)


def _unquote(text: str) -> str:
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            i += 1
            c = text[i]
        out.append(c)
        i += 1
    return "".join(out)


def parse_name_addr(text: str) -> NameAddress:
    """Parse a name-addr or addr-spec value with its header parameters."""
    text = text.strip(" \t")
    display: str | None = None
    if text.startswith('"'):
        i = 1
        n = len(text)
        while i < n:
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                break
            i += 1
        else:
            raise SipParseError("Unterminated quoted display name")
        display = _unquote(text[1:i])
        text = text[i + 1 :].lstrip(" \t")
        if not text.startswith("<"):
            raise SipParseError("Display name without <URI>")
    lt = text.find("<")
    if lt >= 0:
        gt = text.find(">", lt)
        if gt < 0:
            raise SipParseError("Unterminated <URI>")
        if display is None:
            name = text[:lt].strip(" \t")
            display = name or None
        uri = parse_uri(text[lt + 1 : gt])
        params = parse_params(text[gt + 1 :])
        return NameAddress(uri, display, params)
    uri_text, _, params_text = text.partition(";")
    return NameAddress(parse_uri(uri_text), None, parse_params(params_text))


@dataclass(slots=True)
class Via:
    """One Via value: `SIP/2.0/UDP host:port;branch=z9hG4bK...;rport;received=...`."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The rport value the server filled in, or None (also when requested but empty)."""
        value = self.params.get("rport")
        if value and value.isascii() and value.isdigit():
            return int(value)
        return None

    @property
    def wants_rport(self) -> bool:
        return "rport" in self.params

    @property
    def sent_by(self) -> str:
        host = _format_host(self.host)
        return host if self.port is None else f"{host}:{self.port}"

    def response_address(self, default_port: int = 5060) -> tuple[str, int]:
        """Where a response goes (RFC 3261 §18.2.2 with RFC 3581): received/rport first."""
        host = self.received or self.host
        port = self.rport or self.port or default_port
        return host, port

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{format_params(self.params)}"


def parse_via(text: str) -> Via:
    """Parse ONE Via value (use `split_header_list` first on a combined header)."""
    sent, sep, params_text = text.strip(" \t").partition(";")
    tokens = sent.split()
    if len(tokens) < 2:
        raise SipParseError("Malformed Via")
    sent_by = tokens[-1]
    proto = "".join(tokens[:-1])
    parts = proto.split("/")
    if len(parts) != 3 or not all(parts):
        raise SipParseError("Malformed Via protocol")
    host, port = _parse_hostport(sent_by)
    params = parse_params(params_text) if sep else {}
    return Via(parts[2].upper(), host, port, params, f"{parts[0].upper()}/{parts[1]}")


def format_via(
    transport: str, host: str, port: int | None, branch: str, *, rport: bool = True
) -> str:
    """A Via value for a request we send: `SIP/2.0/UDP host:port;rport;branch=...`."""
    sent_by = _format_host(host) if port is None else f"{_format_host(host)}:{port}"
    return f"SIP/2.0/{transport.upper()} {sent_by}{';rport' if rport else ''};branch={branch}"


_sipscan: Any = _native.extension("xueliang.gb28181.sip._sipscan")
#: The Via stamp in C (sip/_sipscan.c), or None when not built: the Python stamps every one.
_stamp_via_c: Callable[[str, str, int], str | bool | None] | None = (
    _sipscan.stamp_via if _sipscan is not None else None
)


def _stamp_via_fast(value: str, source_host: str, source_port: int) -> str | None:
    """The common case without a parse: one plain Via with a bare `;rport` and no `received`.

    Every keepalive and REGISTER passes here, so it matters; anything unusual (several Vias,
    quotes, an rport that already has a value, a `received`) takes the full path. In C where
    it is built (sip/_sipscan.c's stamp_via: 4,000 instructions a request here, two lower-cased
    copies and five new strings among them), which leaves what is not ASCII to the Python.
    """
    if _stamp_via_c is not None:
        stamped = _stamp_via_c(value, source_host, source_port)
        if stamped is None or isinstance(stamped, str):  # not False: the C read it
            return stamped
    return _stamp_via_fast_py(value, source_host, source_port)


def _stamp_via_fast_py(value: str, source_host: str, source_port: int) -> str | None:
    low = value.lower()
    if "," in value or '"' in value or "received" in low:
        return None
    i = low.find(";rport")
    if i < 0:
        return None
    end = i + 6
    if end < len(value) and value[end] not in ";, \t":
        return None  # ;rport=1234 or ;rportx
    return f"{value[:end]}={source_port}{value[end:]};received={source_host}"


def stamp_via(value: str, source_host: str, source_port: int) -> str:
    """Add `received` (and fill `rport`, RFC 3581) to the top Via value of a received request.

    `received` is added when the sent-by host differs from the packet's source address, or
    whenever `rport` was requested (RFC 3581 §4). Returns the new header value; the other Via
    values of a comma-combined header are kept as they are.
    """
    fast = _stamp_via_fast(value, source_host, source_port)
    if fast is not None:
        return fast
    parts = _split_quoted(value, ",")
    via = parse_via(parts[0])
    changed = False
    if "rport" in via.params:
        via.params["rport"] = str(source_port)
        via.params["received"] = source_host
        changed = True
    elif via.host != source_host:
        via.params["received"] = source_host
        changed = True
    if not changed:
        return value
    parts[0] = str(via)
    return ",".join(parts)
