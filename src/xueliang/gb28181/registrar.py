"""The registrar (注册与保活): who is registered, from where, and whether they are alive.

Sans-IO like the SIP core: requests, addresses and the time in; decisions and events out. It
keeps every device in memory (principle 5: keepalives never touch the database); the
signalling service persists what changes, in batches.

A device is where it last registered with the right password, and nowhere else: only an
authenticated REGISTER sets its address, and anything else in its name (keepalives, catalogs,
alarms, answers) counts only from that address and transport. A nonce is bound to the device
and the address it was issued to, and serves one registration (:class:`NonceLedger`). Wrong
passwords ban the address they come from, never the device ID, so no one can lock a device out.
"""

from __future__ import annotations

import heapq
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from xueliang.gb28181.ids import GbIdError, parse_gb_id
from xueliang.gb28181.sip import (
    NonceFactory,
    NonceLedger,
    NonceStatus,
    SipParseError,
    SipRequest,
    make_challenge,
    parse_authorization,
    parse_name_addr,
    verify,
)
from xueliang.gb28181.sip.transaction import Address
from xueliang.gb28181.sip.uri import header_param

log = logging.getLogger("xueliang.registrar")

MAX_EXPIRES: Final = 86_400


@dataclass(slots=True, init=False)
class DeviceSession:
    """What the registrar knows of a device. The ``__init__`` of this and of the events below is
    written out so that mypyc compiles it: a dataclass's generated one runs interpreted (and a
    frozen dataclass stays a Python class), and a registration storm builds three a device."""

    device_id: str
    #: Per-device password; None = the platform-wide one.
    password: str | None
    #: accepted / pending / rejected; "" for a device the registry does not know yet.
    admission: str
    online: bool
    registered: bool
    addr: Address | None
    transport: str
    contact: str
    call_id: str
    expires_at: float
    last_seen: float
    gb_version: str
    #: Wall-clock time of the last successful registration (for the registry).
    registered_wall: float

    def __init__(self, device_id: str, password: str | None = None, admission: str = "", online: bool = False,
                 registered: bool = False, addr: Address | None = None, transport: str = "udp", contact: str = "",
                 call_id: str = "", expires_at: float = 0.0, last_seen: float = 0.0, gb_version: str = "",
                 registered_wall: float = 0.0) -> None:
        self.device_id = device_id
        self.password = password
        self.admission = admission
        self.online = online
        self.registered = registered
        self.addr = addr
        self.transport = transport
        self.contact = contact
        self.call_id = call_id
        self.expires_at = expires_at
        self.last_seen = last_seen
        self.gb_version = gb_version
        self.registered_wall = registered_wall


# The events: values, compared by their fields (dataclass ``__eq__`` and ``__repr__``); not set
# after they are made.


@dataclass(slots=True, init=False)
class Online:
    device_id: str
    reason: str

    def __init__(self, device_id: str, reason: str) -> None:
        self.device_id = device_id
        self.reason = reason


@dataclass(slots=True, init=False)
class Offline:
    device_id: str
    reason: str

    def __init__(self, device_id: str, reason: str) -> None:
        self.device_id = device_id
        self.reason = reason


@dataclass(slots=True, init=False)
class Registered:
    """A successful REGISTER: persist the address; ``fresh`` = not a refresh (query the catalog)."""

    session: DeviceSession
    fresh: bool
    new_device: bool

    def __init__(self, session: DeviceSession, fresh: bool, new_device: bool) -> None:
        self.session = session
        self.fresh = fresh
        self.new_device = new_device


@dataclass(slots=True, init=False)
class AuthFailed:
    device_id: str
    ip: str
    banned: bool

    def __init__(self, device_id: str, ip: str, banned: bool) -> None:
        self.device_id = device_id
        self.ip = ip
        self.banned = banned


@dataclass(slots=True, init=False)
class Pending:
    device_id: str
    addr: Address

    def __init__(self, device_id: str, addr: Address) -> None:
        self.device_id = device_id
        self.addr = addr


@dataclass(slots=True, init=False)
class Moved:
    """A registered device registered again, with its password, from another address: NAT
    rebinding or a new lease, or someone else who has the password (worth a look)."""

    device_id: str
    old: Address
    new: Address

    def __init__(self, device_id: str, old: Address, new: Address) -> None:
        self.device_id = device_id
        self.old = old
        self.new = new


RegistrarEvent = Online | Offline | Registered | AuthFailed | Pending | Moved


@dataclass(slots=True, init=False)
class Decision:
    """What to answer, and what happened. ``__init__`` written out so that mypyc compiles it
    (a dataclass's own is interpreted: three a registration)."""

    status: int
    reason: str | None
    headers: list[tuple[str, str]]
    events: list[RegistrarEvent]

    def __init__(self, status: int, reason: str | None = None, headers: list[tuple[str, str]] | None = None,
                 events: list[RegistrarEvent] | None = None) -> None:
        self.status = status
        self.reason = reason
        self.headers = [] if headers is None else headers
        self.events = [] if events is None else events


@dataclass(slots=True)
class _Failures:
    count: int = 0
    first: float = 0.0
    banned_until: float = 0.0


_date_cache: tuple[int, str] = (-1, "")


def gb_date(wall: float | None = None) -> str:
    """The Date GB/T 28181 devices set their clocks from: local time, ``yyyy-MM-ddTHH:mm:ss.SSS``."""
    global _date_cache
    wall = time.time() if wall is None else wall
    second = int(wall)
    if _date_cache[0] != second:  # one strftime per second, not per response
        _date_cache = (second, datetime.fromtimestamp(second).strftime("%Y-%m-%dT%H:%M:%S."))
    return _date_cache[1] + str(int((wall - second) * 1000) + 1000)[1:]  # str: a format spec is a generic call


#: The form nearly every device sends, ``<sip:34020000001320000001@...>``: no full URI parse.
_PLAIN_GB_USER: Final = re.compile(r"[ \t]*<?sip:(\d{20})@")


def user_of(header_value: str | None) -> str:
    """The user part of a From/To value (the device ID), or ''."""
    if not header_value:
        return ""
    # What nearly every device sends, "<sip:" and 20 digits and "@", read without the regular
    # expression (a tenth of its cost): the same answer, isdecimal() being its \d.
    at = 5 if header_value.startswith("<sip:") else 4 if header_value.startswith("sip:") else 0
    if at and header_value[at + 20:at + 21] == "@":
        user = header_value[at:at + 20]
        if user.isdecimal():
            return user
    m = _PLAIN_GB_USER.match(header_value)
    if m is not None:
        return m.group(1)
    try:
        return parse_name_addr(header_value).uri.user or ""
    except (SipParseError, ValueError):
        return ""


class Registrar:
    def __init__(self, realm: str, password: str, *, admission: str = "open", keepalive_interval: float = 60.0,
                 keepalive_misses: int = 3, ban_after: int = 5, ban_seconds: float = 300.0,
                 failure_window: float = 600.0, nonce_secret: bytes | None = None, qop: bool = False) -> None:
        self.realm = realm
        self.password = password
        self.admission = admission
        self.keepalive_timeout = keepalive_interval * keepalive_misses
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        self.failure_window = failure_window
        self.qop = qop
        self.nonces = NonceFactory(nonce_secret)
        self.used_nonces = NonceLedger()
        self.devices: dict[str, DeviceSession] = {}
        self._failures: dict[str, _Failures] = {}
        self._heap: list[tuple[float, str]] = []
        #: Messages in a registered device's name from elsewhere than its registered address
        #: (ignored), and replayed REGISTERs (challenged again): counters for the status API.
        self.foreign_messages = 0
        self.replayed_registers = 0
        #: Alarms, positions and catalog entries a device sent for another device's channels.
        self.foreign_subjects = 0
        self._foreign_logged: dict[str, float] = {}

    # ---- registry mirror ---------------------------------------------------------------
    def load(self, device_id: str, password: str | None, admission: str) -> DeviceSession:
        s = self.devices.get(device_id)
        if s is None:
            s = self.devices[device_id] = DeviceSession(device_id)
        s.password = password
        s.admission = admission
        return s

    def forget(self, device_id: str) -> None:
        self.devices.pop(device_id, None)

    # ---- bans (by source address only) ---------------------------------------------------
    def is_banned(self, key: str, now: float) -> bool:
        f = self._failures.get(key)
        return f is not None and f.banned_until > now

    def _fail(self, key: str, now: float) -> bool:
        f = self._failures.get(key)
        if f is None or now - f.first > self.failure_window:
            if f is None and len(self._failures) >= 100_000:
                self._forget_failures(now)
            # a new window, but a ban under way stays
            f = self._failures[key] = _Failures(0, now, f.banned_until if f is not None else 0.0)
        f.count += 1
        if f.count >= self.ban_after:
            f.banned_until = now + self.ban_seconds
            f.count = 0
            f.first = now
            return True
        return False

    def _forget_failures(self, now: float) -> None:
        """Addresses come from the network (an IPv6 /64 is endless): keep what still matters, a
        ban under way or a count inside its window, and drop the rest."""
        self._failures = {k: f for k, f in self._failures.items()
                          if f.banned_until > now or now - f.first <= self.failure_window}
        if len(self._failures) >= 100_000:  # a flood of fresh addresses: keep only the bans
            self._failures = {k: f for k, f in self._failures.items() if f.banned_until > now}

    def unban(self, key: str) -> None:
        self._failures.pop(key, None)

    # ---- REGISTER ----------------------------------------------------------------------
    def register(self, req: SipRequest, addr: Address, transport: str, now: float, wall: float) -> Decision:
        device_id = user_of(req.headers.get("From")) or user_of(req.headers.get("To"))
        if not (len(device_id) == 20 and device_id.isdigit() and device_id.isascii()):
            try:
                parse_gb_id(device_id)
            except GbIdError as exc:
                return Decision(400, f"Bad Request (device ID: {exc})"[:120])
        ip = addr[0]
        if self.is_banned(ip, now):
            return Decision(403, "Forbidden (temporarily banned after repeated failures)")
        expires = _expires_of(req)
        if expires is None:
            return Decision(400, "Bad Request (missing Expires)")
        # The nonce answers for this device at this address only: a REGISTER captured on the
        # way cannot be played from anywhere else.
        context = f"{device_id}|{ip}|{addr[1]}"
        auth = req.headers.get("Authorization")
        if auth is None:
            return self._challenge(context, now)
        try:
            creds = parse_authorization(auth)
        except SipParseError as exc:
            return Decision(400, f"Bad Request ({exc.reason})"[:120])
        status = self.nonces.status(creds.nonce, now, context=context)
        if status is NonceStatus.INVALID:
            return self._challenge(context, now)
        if status is NonceStatus.STALE:
            return self._challenge(context, now, stale=True)
        session = self.devices.get(device_id)
        password = session.password if session is not None and session.password else self.password
        if creds.username != device_id or not verify(creds, "REGISTER", password):
            banned = self._fail(ip, now)
            if banned:
                log.warning("address %s banned for %.0f s after repeated wrong passwords (last for device %s)", ip,
                            self.ban_seconds, device_id)
            return Decision(403, "Forbidden (wrong password)", events=[AuthFailed(device_id, ip, banned)])
        # One registration per nonce (per nonce count with qop); a retransmission of that very
        # request (same address, Call-ID and CSeq) is answered again.
        if not self.used_nonces.use(creds.nonce, creds.nc or "", now, (addr, req.call_id, req.cseq[0])):
            self.replayed_registers += 1
            return self._challenge(context, now, stale=True)
        new_device = session is None or not session.admission
        if session is None or not session.admission:
            if self.admission == "reject":
                return Decision(403, "Forbidden (device not registered with this platform)")
            session = self.load(device_id, None, "accepted" if self.admission == "open" else "pending")
        if session.admission == "pending":
            return Decision(403, "Forbidden (awaiting admission by an administrator)", events=[Pending(device_id, addr)])
        if session.admission == "rejected":
            return Decision(403, "Forbidden (device rejected)")
        return self._accept(session, req, addr, transport, expires, now, wall, new_device)

    def _challenge(self, context: str, now: float, stale: bool = False) -> Decision:
        value = make_challenge(self.realm, self.nonces.issue(now, context), qop=self.qop, stale=stale)
        return Decision(401, None, [("WWW-Authenticate", value)])

    def _accept(self, s: DeviceSession, req: SipRequest, addr: Address, transport: str, expires: int, now: float,
                wall: float, new_device: bool) -> Decision:
        contact = req.headers.get("Contact") or ""
        headers = [("Date", gb_date(wall))]
        if expires == 0:
            headers.append(("Expires", "0"))
            events: list[RegistrarEvent] = []
            if s.online:
                events.append(Offline(s.device_id, "unregistered"))
            s.online = s.registered = False
            s.expires_at = 0.0
            return Decision(200, None, headers, events)
        granted = min(expires, MAX_EXPIRES)
        fresh = not s.registered or s.call_id != req.call_id or s.addr != addr
        old = s.addr if s.registered and s.addr is not None and s.addr != addr else None
        s.registered = True
        s.addr = addr
        s.transport = transport
        s.contact = contact
        s.call_id = req.call_id
        s.expires_at = now + granted
        s.last_seen = now
        s.gb_version = req.headers.get("X-GB-Ver") or s.gb_version
        s.registered_wall = wall
        if contact:
            headers.append(("Contact", contact))
        headers.append(("Expires", str(granted)))
        events = [Registered(s, fresh, new_device)]
        if old is not None:
            events.append(Moved(s.device_id, old, addr))
        if not s.online:
            s.online = True
            events.append(Online(s.device_id, "registered"))
        self._schedule(s)
        return Decision(200, None, headers, events)

    # ---- liveness ----------------------------------------------------------------------
    def keepalive(self, device_id: str, addr: Address, now: float, transport: str = "udp") -> Decision:
        """A Keepalive notify: 200 and maybe back online; 404 if not registered from this address
        (it will re-register; after a NAT rebinding that is how its new address is learnt)."""
        s = self.touch(device_id, addr, now, transport, "keepalive")
        if s is None or s.admission != "accepted":
            return Decision(404, NOT_REGISTERED)
        if not s.online:
            s.online = True
            self._schedule(s)
            return Decision(200, events=[Online(device_id, "keepalive")])
        return Decision(200)

    def touch(self, device_id: str, addr: Address, now: float, transport: str = "udp",
              what: str = "message") -> DeviceSession | None:
        """The registered device speaking from where it registered, now proved alive; None for
        anyone else (a message in its name from another address is counted and has no effect)."""
        s = self.devices.get(device_id)
        if s is None or not s.registered:
            return None
        if s.addr != addr or s.transport != transport:
            self.foreign(device_id, addr, transport, what, now)
            return None
        s.last_seen = now
        return s

    def foreign(self, device_id: str, addr: Address, transport: str, what: str, now: float) -> None:
        """Count (and log, at most once a minute per device) a message in a device's name that
        did not come from its registered address."""
        self.foreign_messages += 1
        logged = self._foreign_logged
        if now - logged.get(device_id, -1e18) < 60.0:
            return
        if len(logged) >= 10_000:  # addresses and IDs come from the network: stay bounded
            logged.clear()
        logged[device_id] = now
        s = self.devices.get(device_id)
        log.warning("%s in the name of device %s from %s:%s/%s ignored: it registered from %s/%s (%d such so far)",
                    what, device_id, addr[0], addr[1], transport, s.addr if s is not None else None,
                    s.transport if s is not None else "", self.foreign_messages)

    def _deadline(self, s: DeviceSession) -> float:
        return min(s.last_seen + self.keepalive_timeout, s.expires_at)

    def _schedule(self, s: DeviceSession) -> None:
        heapq.heappush(self._heap, (self._deadline(s), s.device_id))

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def expire(self, now: float) -> list[Offline]:
        """Devices whose keepalives stopped or whose registration ran out, as of ``now``."""
        out: list[Offline] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, device_id = heapq.heappop(heap)
            s = self.devices.get(device_id)
            if s is None or not s.online:
                continue
            real = self._deadline(s)
            if real > now:
                heapq.heappush(heap, (real, device_id))  # it spoke since: look again later
                continue
            s.online = False
            if s.expires_at <= now:
                s.registered = False
                out.append(Offline(device_id, "registration expired"))
            else:
                out.append(Offline(device_id, "keepalive timeout"))
        return out

    def online_count(self) -> int:
        return sum(1 for s in self.devices.values() if s.online)


NOT_REGISTERED: Final = "Not Found (not registered from this address)"


def _expires_of(req: SipRequest) -> int | None:
    value = req.headers.get("Expires")
    if value is None:
        contact = req.headers.get("Contact")
        value = header_param(contact, "expires") if contact else None
    if value is None:
        return None
    try:
        n = int(value.strip())
    except ValueError:
        return None
    return n if n >= 0 else None
