"""GB/T 28181 SDP: the INVITE offer the platform sends, the answer a device sends, a tolerant parser.

Offer (platform → device), lines joined with CRLF::

    v=0
    o=<platformId> 0 0 IN IP4 <mediaIp>
    s=Play                       (Playback / Download)
    u=<channelId>:0              (Playback / Download only)
    c=IN IP4 <mediaIp>
    t=0 0                        (Playback / Download: <unix start> <unix end>)
    m=video <port> RTP/AVP 96 97 98 99     (TCP: TCP/RTP/AVP)
    a=recvonly
    a=rtpmap:96 PS/90000
    a=rtpmap:98 H264/90000
    a=rtpmap:97 MPEG4/90000
    a=rtpmap:99 H265/90000
    a=setup:passive              (TCP only: passive = the platform listens, active = it connects)
    a=connection:new             (TCP only)
    a=downloadspeed:4            (Download only)
    y=0200000001                 (SSRC: 10 digits, first 0 = live, 1 = history)

The SSRC (``y=``) is 10 decimal digits: 0 live / 1 history, digits [3:8] of the domain, then a
4-digit sequence (:func:`make_ssrc`). A device may answer with its own ``y=``; use it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from xueliang.gb28181.ids import GbIdError, domain_of

__all__ = [
    "MediaDescription",
    "Origin",
    "SdpError",
    "SessionDescription",
    "answer_offer",
    "make_answer",
    "make_offer",
    "make_ssrc",
    "parse_sdp",
]

MAX_SDP_CHARS = 64 * 1024

SESSIONS = ("Play", "Playback", "Download")
TRANSPORTS = ("udp", "tcp-passive", "tcp-active")

_OFFER_RTPMAP: tuple[tuple[int, str], ...] = (
    (96, "PS/90000"),
    (98, "H264/90000"),
    (97, "MPEG4/90000"),
    (99, "H265/90000"),
)


class SdpError(ValueError):
    """An SDP cannot be built or parsed; the message says why."""


# --------------------------------------------------------------------------------------------
# building
# --------------------------------------------------------------------------------------------


def make_ssrc(domain_or_id: str, seq: int, history: bool) -> str:
    """10-digit SSRC: ``0``/``1`` (live/history) + digits [3:8] of the domain + 4-digit ``seq``.

    ``make_ssrc("3402000000", 1, False) == "0200000001"``. ``domain_or_id`` is a 10-digit
    domain or a 20-digit ID; ``seq`` is 0..9999.
    """
    try:
        domain = domain_of(domain_or_id)
    except GbIdError as exc:
        raise SdpError(f"cannot make an SSRC from {domain_or_id!r}: {exc}") from None
    if not isinstance(seq, int) or not 0 <= seq <= 9999:
        raise SdpError(f"SSRC sequence must be 0..9999, got {seq!r}")
    return f"{1 if history else 0}{domain[3:8]}{seq:04d}"


def _addr_type(ip: str) -> str:
    try:
        return "IP6" if ipaddress.ip_address(ip.strip("[]")).version == 6 else "IP4"
    except ValueError:
        if ":" in ip:
            return "IP6"
        return "IP4"  # a host name


def _check_common(ip: str, port: int, ssrc: str | None) -> None:
    if not ip or any(c.isspace() for c in ip):
        raise SdpError(f"invalid media address {ip!r}")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise SdpError(f"port must be 0..65535, got {port!r}")
    if ssrc is not None and not (len(ssrc) == 10 and ssrc.isascii() and ssrc.isdigit()):
        raise SdpError(f"SSRC must be 10 digits, got {ssrc!r}")


def _check_session(session: str, transport: str) -> None:
    if session not in SESSIONS:
        raise SdpError(f"session must be one of {', '.join(SESSIONS)}, got {session!r}")
    if transport not in TRANSPORTS:
        raise SdpError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")


def _check_id(what: str, value: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise SdpError(f"invalid {what} {value!r}")


def make_offer(
    platform_id: str,
    media_ip: str,
    port: int,
    ssrc: str,
    session: str = "Play",
    transport: str = "udp",
    channel_id: str | None = None,
    start: int = 0,
    end: int = 0,
    download_speed: int | None = None,
) -> str:
    """The platform's INVITE offer (see the module doc). ``transport`` is ``udp``,
    ``tcp-passive`` (the platform listens) or ``tcp-active`` (the platform connects).
    Playback and Download need ``channel_id`` (for ``u=``) and unix ``start``/``end``."""
    _check_session(session, transport)
    _check_id("platform ID", platform_id)
    _check_common(media_ip, port, ssrc)
    live = session == "Play"
    if not live:
        if not channel_id:
            raise SdpError(f"{session} needs channel_id for the u= line")
        _check_id("channel ID", channel_id)
        if start < 0 or end < 0 or (end and end < start):
            raise SdpError(f"invalid time range {start}..{end}")
    at = _addr_type(media_ip)
    tcp = transport != "udp"
    lines = [
        "v=0",
        f"o={platform_id} 0 0 IN {at} {media_ip}",
        f"s={session}",
    ]
    if not live:
        lines.append(f"u={channel_id}:0")
    lines += [
        f"c=IN {at} {media_ip}",
        f"t={int(start)} {int(end)}" if not live else "t=0 0",
        f"m=video {port} {'TCP/RTP/AVP' if tcp else 'RTP/AVP'} 96 97 98 99",
        "a=recvonly",
    ]
    lines += [f"a=rtpmap:{pt} {name}" for pt, name in _OFFER_RTPMAP]
    if tcp:
        lines.append(f"a=setup:{'passive' if transport == 'tcp-passive' else 'active'}")
        lines.append("a=connection:new")
    if session == "Download" and download_speed is not None:
        if not isinstance(download_speed, int) or download_speed < 1:
            raise SdpError(f"download_speed must be a positive integer, got {download_speed!r}")
        lines.append(f"a=downloadspeed:{download_speed}")
    lines.append(f"y={ssrc}")
    return "\r\n".join(lines) + "\r\n"


def make_answer(
    device_id: str,
    media_ip: str,
    port: int,
    ssrc: str,
    session: str = "Play",
    setup: str | None = None,
    start: int = 0,
    end: int = 0,
    f: str | None = None,
    payload_type: int = 96,
    encoding_name: str = "PS",
    file_size: int | None = None,
) -> str:
    """The device's 200 OK answer (simulator side): ``a=sendonly``, ``y=``, optional ``f=``.

    ``setup`` is the device's own TCP role: ``active`` (it connects; the answer to an offer
    with ``a=setup:passive``) or ``passive`` (it listens); None means UDP.
    """
    _check_session(session, "udp")
    _check_id("device ID", device_id)
    _check_common(media_ip, port, ssrc)
    if setup not in (None, "active", "passive"):
        raise SdpError(f"setup must be active, passive or None, got {setup!r}")
    if not 0 <= payload_type <= 127:
        raise SdpError(f"payload type must be 0..127, got {payload_type}")
    at = _addr_type(media_ip)
    tcp = setup is not None
    lines = [
        "v=0",
        f"o={device_id} 0 0 IN {at} {media_ip}",
        f"s={session}",
        f"c=IN {at} {media_ip}",
        f"t={int(start)} {int(end)}",
        f"m=video {port} {'TCP/RTP/AVP' if tcp else 'RTP/AVP'} {payload_type}",
        "a=sendonly",
        f"a=rtpmap:{payload_type} {encoding_name}/90000",
    ]
    if tcp:
        lines.append(f"a=setup:{setup}")
        lines.append("a=connection:new")
    if file_size is not None:
        lines.append(f"a=filesize:{file_size}")
    lines.append(f"y={ssrc}")
    if f is not None:
        lines.append(f"f={f}")
    return "\r\n".join(lines) + "\r\n"


def answer_offer(
    offer: SessionDescription,
    device_id: str,
    media_ip: str,
    port: int,
    ssrc: str | None = None,
    f: str | None = None,
) -> str:
    """Answer a parsed offer as a device would: same session and time range, the offer's
    SSRC unless ``ssrc`` is given, the complementary TCP role (offer passive → answer active),
    PS on the first offered payload type mapped to PS (96 if none)."""
    session = offer.session_name if offer.session_name in SESSIONS else "Play"
    setup: str | None = None
    if offer.is_tcp:
        setup = "passive" if offer.setup == "active" else "active"
    the_ssrc = ssrc or offer.ssrc
    if the_ssrc is None:
        raise SdpError("the offer has no y= SSRC and none was given")
    pt = next((p for p, name in offer.rtpmap.items() if name.upper().startswith("PS/")), 96)
    return make_answer(
        device_id,
        media_ip,
        port,
        the_ssrc,
        session=session,
        setup=setup,
        start=offer.start_time,
        end=offer.end_time,
        f=f,
        payload_type=pt,
    )


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Origin:
    username: str
    session_id: str
    session_version: str
    net_type: str
    address_type: str
    address: str


@dataclass(slots=True)
class MediaDescription:
    """One ``m=`` section with its attributes."""

    media: str
    port: int
    protocol: str
    payload_types: list[int] = field(default_factory=list)
    rtpmap: dict[int, str] = field(default_factory=dict)
    direction: str | None = None
    setup: str | None = None
    connection: str | None = None
    connection_address: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def is_tcp(self) -> bool:
        return "TCP" in self.protocol.upper()


@dataclass(slots=True)
class SessionDescription:
    """A parsed SDP. The top-level media properties refer to the first video ``m=`` section
    (the first section of any kind if there is no video)."""

    version: str | None
    origin: Origin | None
    session_name: str
    uri: str | None
    connection_address: str | None
    address_type: str | None
    start_time: int
    end_time: int
    media: list[MediaDescription]
    ssrc: str | None
    ssrc_raw: str | None
    f: str | None
    direction: str | None
    download_speed: int | None = None
    file_size: int | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def video(self) -> MediaDescription:
        return next((m for m in self.media if m.media.lower() == "video"), self.media[0])

    @property
    def media_port(self) -> int:
        return self.video.port

    @property
    def media_address(self) -> str | None:
        """Where to send/receive media: the media-level c= address, else the session's."""
        return self.video.connection_address or self.connection_address

    @property
    def protocol(self) -> str:
        return self.video.protocol

    @property
    def is_tcp(self) -> bool:
        return self.video.is_tcp

    @property
    def payload_types(self) -> list[int]:
        return self.video.payload_types

    @property
    def rtpmap(self) -> dict[int, str]:
        return self.video.rtpmap

    @property
    def setup(self) -> str | None:
        return self.video.setup

    @property
    def connection(self) -> str | None:
        return self.video.connection

    @property
    def media_direction(self) -> str | None:
        """Direction of the video section, else the session-level one."""
        return self.video.direction or self.direction

    @property
    def ssrc_int(self) -> int | None:
        return int(self.ssrc) if self.ssrc is not None else None

    @property
    def transport(self) -> str:
        """``udp``, ``tcp-passive`` or ``tcp-active`` as written (this SDP's own setup role)."""
        if not self.is_tcp:
            return "udp"
        return "tcp-active" if self.setup == "active" else "tcp-passive"


_DIRECTIONS = frozenset({"sendonly", "recvonly", "sendrecv", "inactive"})
_PORT_RE = re.compile(r"([0-9]{1,5})(?:/[0-9]+)?")


def _small_int(s: str) -> int | None:
    s = s.strip()
    if not s or len(s) > 18 or not s.isascii() or not s.isdigit():
        return None
    return int(s)


def parse_sdp(text: str | bytes) -> SessionDescription:
    """Parse an SDP body tolerantly (LF or CRLF, blank lines, unknown lines, missing ``y=``,
    ``c=`` only at media level or missing when ``o=`` has an address). Needs an ``m=`` line
    with a valid port. Raises :class:`SdpError`, and only that."""
    try:
        return _parse(text)
    except SdpError:
        raise
    except Exception as exc:  # the contract: whatever the input, only SdpError escapes
        raise SdpError(f"unreadable SDP: {type(exc).__name__}: {exc}") from exc


def _parse(text: str | bytes) -> SessionDescription:
    if isinstance(text, bytes | bytearray | memoryview):
        text = bytes(text).decode("utf-8", errors="replace")
    if len(text) > MAX_SDP_CHARS:
        raise SdpError(f"SDP too long: {len(text)} characters (limit {MAX_SDP_CHARS})")
    version: str | None = None
    origin: Origin | None = None
    session_name = ""
    uri: str | None = None
    conn_addr: str | None = None
    addr_type: str | None = None
    start = end = 0
    media: list[MediaDescription] = []
    ssrc_raw: str | None = None
    f_line: str | None = None
    direction: str | None = None
    download_speed: int | None = None
    file_size: int | None = None
    session_attrs: list[tuple[str, str | None]] = []

    for raw_line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw_line.strip().lstrip("\ufeff")
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0].lower(), line[2:].strip()
        cur = media[-1] if media else None
        if kind == "v":
            version = value
        elif kind == "o":
            parts = value.split()
            if len(parts) >= 6:
                origin = Origin(*parts[:6])
            elif parts:
                origin = Origin(parts[0], "", "", "", "", parts[-1] if len(parts) > 1 else "")
        elif kind == "s":
            session_name = value
        elif kind == "u":
            uri = value
        elif kind == "c":
            parts = value.split()
            if len(parts) < 3:
                continue
            addr = parts[2].split("/")[0]
            if cur is not None:
                cur.connection_address = addr
            else:
                conn_addr = addr
                addr_type = parts[1].upper()
        elif kind == "t":
            parts = value.split()
            if len(parts) >= 2:
                start = _small_int(parts[0]) or 0
                end = _small_int(parts[1]) or 0
        elif kind == "m":
            parts = value.split()
            if len(parts) < 3:
                raise SdpError(f"malformed m= line: {line[:80]!r}")
            pm = _PORT_RE.fullmatch(parts[1])
            if pm is None or int(pm.group(1)) > 65535:
                raise SdpError(f"invalid media port in m= line: {line[:80]!r}")
            pts = [p for p in (_small_int(x) for x in parts[3:]) if p is not None and p <= 127]
            media.append(MediaDescription(parts[0], int(pm.group(1)), parts[2], pts))
        elif kind == "y":
            ssrc_raw = ssrc_raw if ssrc_raw is not None else value
        elif kind == "f":
            f_line = f_line if f_line is not None else value
        elif kind == "a":
            name, sep, val = value.partition(":")
            name = name.strip().lower()
            attr: tuple[str, str | None] = (name, val.strip() if sep else None)
            if name in _DIRECTIONS:
                if cur is not None:
                    cur.direction = name
                else:
                    direction = name
            elif name == "downloadspeed":
                download_speed = _small_int(val)
            elif name == "filesize":
                file_size = _small_int(val)
            if cur is not None:
                cur.attributes.append(attr)
                if name == "rtpmap":
                    pt_s, _, enc = val.strip().partition(" ")
                    pt = _small_int(pt_s)
                    if pt is not None and enc.strip():
                        cur.rtpmap[pt] = enc.strip()
                elif name == "setup":
                    cur.setup = val.strip().lower() or None
                elif name == "connection":
                    cur.connection = val.strip().lower() or None
            else:
                session_attrs.append(attr)

    if not media:
        raise SdpError("SDP has no m= line")
    primary = next((m for m in media if m.media.lower() == "video"), media[0])
    if conn_addr is None and primary.connection_address is None:
        if origin is not None and origin.address:
            conn_addr = origin.address
            addr_type = origin.address_type.upper() or None
        else:
            raise SdpError("SDP has no connection address (no c= line and no o= address)")
    ssrc: str | None = None
    if ssrc_raw is not None:
        digits = ssrc_raw.strip()
        if digits.isascii() and digits.isdigit() and len(digits) <= 10:
            ssrc = digits.zfill(10)
    return SessionDescription(
        version=version,
        origin=origin,
        session_name=session_name,
        uri=uri,
        connection_address=conn_addr,
        address_type=addr_type,
        start_time=start,
        end_time=end,
        media=media,
        ssrc=ssrc,
        ssrc_raw=ssrc_raw,
        f=f_line,
        direction=direction,
        download_speed=download_speed,
        file_size=file_size,
        attributes=session_attrs,
    )
