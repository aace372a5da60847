"""One link to an upper platform (上级平台), xueliang being the lower platform: sans-IO.

In the shape of h11 and aioquic: the caller owns the socket and the clock. It feeds what the
upper sent (`receive`), wakes the link at `next_deadline()` (`tick`), and asks it to `start`
and `close`; each call returns what to do now: `Send` datagrams for the upper's address and
events for the rest of the platform (registered, failed, lost...). Nothing here reads a
clock, touches a socket or sleeps, so every timing rule below is tested to the byte.

What the link does, in the order the field meets it:

* Registration (注册, GB/T 28181 §9.1): REGISTER without credentials, the upper answers 401 with
  a Digest challenge, we answer with MD5 (qop=auth when offered); 200 gives the Expires the
  upper granted, and we refresh well before it runs out. A second 401 after our answer means
  the password is wrong (uppers that follow the standard answer 403 instead): back off.
* Keepalive (心跳, §9.6): once registered, a MESSAGE with a MANSCDP Keepalive Notify every
  interval. The upper marks us offline after it misses a few; we mark the link lost after
  `keepalive_max_missed` unanswered ones (the upper restarted and forgot us, or stopped
  answering) and register again from scratch. A 401/403/404 to a keepalive says the upper no
  longer knows us (it restarted): register again at once.
* Back-off: every failure (403, any other error, no answer after the UDP retransmissions:
  T1 = 500 ms doubling to T2 = 4 s, giving up after 64*T1) waits longer, up to a cap, with
  jitter, so a wrong password or a dead province never becomes a REGISTER storm.
* Close: REGISTER with Expires: 0, so the upper shows us offline at once instead of after
  its keepalive timeout.

Requests the upper sends us (Catalog, DeviceInfo, INVITE...) are handed out as
`RequestFromUpper` untouched: answering them is another layer's job.

Over TCP the caller cuts the stream into messages (`sip.StreamFramer`) and passes them one by
one; the transactions then do not retransmit (RFC 3261 §17.1.2.2).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import Enum

from xueliang.gb28181.manscdp import ManscdpError, encode_keepalive
from xueliang.gb28181.sip import (
    Address,
    NonInviteClientTransaction,
    Send,
    SipParseError,
    SipRequest,
    SipResponse,
    Timers,
    TransactionTimeout,
    format_via,
    header_param,
    is_keepalive,
    make_request,
    parse_message,
)
from xueliang.gb28181.sip.transaction import ResponseReceived

from .backoff import Backoff
from .register import DigestClient, IdSource, challenge_of, register_request

__all__ = [
    "MANSCDP_CONTENT_TYPE",
    "Closed",
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
]

MANSCDP_CONTENT_TYPE = "Application/MANSCDP+xml"

#: Answers to `stale=TRUE` challenges in one registration round. A server says stale when our
#: nonce aged out between its 401 and our answer; more than twice in a row is not staleness.
_MAX_STALE_ANSWERS = 2


class LinkState(Enum):
    IDLE = "idle"  # not started
    REGISTERING = "registering"  # a registration round (REGISTER, 401, REGISTER) is under way
    REGISTERED = "registered"  # the upper accepted us; keepalives run, a refresh may be under way
    BACKING_OFF = "backing-off"  # the last round failed; waiting before the next
    CLOSING = "closing"  # REGISTER Expires: 0 sent, waiting for its answer
    CLOSED = "closed"


@dataclass(slots=True, frozen=True, kw_only=True)
class UpperConfig:
    """What the link needs to know about one upper platform and about us toward it."""

    server_id: str  # the upper's SIP ID (20 digits)
    host: str  # where its SIP signalling listens; an IP address (the caller resolves names)
    port: int = 5060
    domain: str | None = None  # SIP domain / realm; default: the first 10 digits of server_id
    transport: str = "UDP"  # or "TCP"
    local_id: str  # our platform's SIP ID toward this upper
    password: str = field(repr=False)  # kept out of logs that print the settings
    username: str | None = None  # digest username; default local_id, as GB/T 28181 does
    #: The address the upper must use to reach us (Contact and Via): behind NAT, the public one.
    announce_host: str
    announce_port: int = 5060
    register_expires: int = 3600
    keepalive_interval: float = 60.0
    keepalive_max_missed: int = 3
    charset: str = "GB2312"  # the MANSCDP encoding the upper reads (GB2312 or UTF-8)
    user_agent: str | None = "xueliang"
    gb_version: str | None = "2.0"  # X-GB-Ver: 2.0 = the 2016 edition, 3.0 = 2022
    backoff: Backoff = field(default_factory=Backoff)
    timers: Timers = field(default_factory=Timers)
    #: Never refresh sooner than this after a 200, whatever Expires the upper granted: an upper
    #: granting "Expires: 1" must not turn the link into a REGISTER flood.
    min_refresh: float = 5.0

    def __post_init__(self) -> None:
        if self.transport.upper() not in ("UDP", "TCP"):
            raise ValueError("transport is UDP or TCP")
        if not 0 < self.port < 65536 or not 0 < self.announce_port < 65536:
            raise ValueError("ports are 1-65535")
        if self.register_expires < 1:
            raise ValueError("register_expires must be at least 1 s")
        if not self.keepalive_interval >= 1.0:
            raise ValueError("keepalive_interval must be at least 1 s")
        if self.keepalive_max_missed < 1:
            raise ValueError("keepalive_max_missed must be at least 1")
        if not self.min_refresh > 0:
            raise ValueError("min_refresh must be positive")

    @property
    def realm(self) -> str:
        return self.domain or self.server_id[:10]

    @property
    def reliable(self) -> bool:
        return self.transport.upper() == "TCP"

    @property
    def peer(self) -> Address:
        return (self.host, self.port)

    @property
    def server_uri(self) -> str:
        """The REGISTER and MESSAGE Request-URI: sip:<serverId>@<host:port>."""
        return f"sip:{self.server_id}@{_hostport(self.host, self.port)}"

    @property
    def user_uri(self) -> str:
        """Our address of record: sip:<localId>@<domain> (From and To of the REGISTER)."""
        return f"sip:{self.local_id}@{self.realm}"

    @property
    def contact(self) -> str:
        return f"<sip:{self.local_id}@{_hostport(self.announce_host, self.announce_port)}>"


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


# -- events ----------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Registered:
    """The upper accepted a REGISTER. ``refreshed``: it was a refresh of a live registration.
    ``date`` is the upper's Date header (GB/T 28181 uses it for clock sync), if any."""

    expires: int
    until: float
    refreshed: bool
    date: str | None = None


@dataclass(slots=True, frozen=True)
class RegistrationFailed:
    """A registration round failed; the next one starts at ``retry_at``."""

    reason: str
    status: int | None  # the upper's answer, None when it gave none
    retry_at: float
    failures: int  # consecutive failures so far


@dataclass(slots=True, frozen=True)
class LinkLost:
    """A live registration is gone (keepalives unanswered or refused, refresh failed)."""

    reason: str


@dataclass(slots=True, frozen=True)
class KeepaliveMissed:
    missed: int  # consecutive misses, this one included


@dataclass(slots=True, frozen=True)
class Closed:
    """The link is closed; ``unregistered`` when the upper confirmed Expires: 0."""

    unregistered: bool


@dataclass(slots=True, frozen=True, eq=False)
class RequestFromUpper:
    """A request the upper sent (Catalog query, INVITE...), for the layer that answers it."""

    request: SipRequest


LinkEvent = Registered | RegistrationFailed | LinkLost | KeepaliveMissed | Closed | RequestFromUpper
Output = Send | LinkEvent


@dataclass(slots=True, frozen=True)
class LinkStatus:
    """A read-only view of the link, for the API."""

    state: LinkState
    last_error: str | None
    last_status: int | None
    registered_until: float | None
    next_action_at: float | None
    granted_expires: int | None
    consecutive_failures: int
    missed_keepalives: int
    registrations: int  # successful REGISTERs (refreshes included) since the link was made
    keepalives_sent: int
    keepalives_answered: int
    ignored_datagrams: int  # garbage, stray responses, foreign sources


# -- the link --------------------------------------------------------------------------------

_REGISTER = "register"
_KEEPALIVE = "keepalive"
_UNREGISTER = "unregister"


class UpperLink:
    """The state machine of one link to one upper platform. See the module docstring.

    ``rng`` (or ``seed``) drives branches, tags, Call-IDs, cnonces and back-off jitter. By
    default it is the operating system's generator: a branch or Call-ID someone can predict
    lets them forge the upper's answers. Pass a seed in tests to get the same bytes each run.
    """

    def __init__(
        self,
        config: UpperConfig,
        *,
        rng: random.Random | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = config
        if rng is None:
            rng = random.SystemRandom() if seed is None else random.Random(seed)
        self._rng = rng
        self._ids = IdSource(rng)
        self._digest = DigestClient(config.username or config.local_id, config.password, self._ids)
        self.state = LinkState.IDLE
        # Transactions in flight: key (branch, method) -> (transaction, what it is for).
        self._txns: dict[tuple[str, ...], tuple[NonInviteClientTransaction, str]] = {}
        self._reg_key: tuple[str, ...] | None = None
        # The registration: one Call-ID and From tag for all REGISTERs of a binding, CSeq
        # increasing (RFC 3261 §10.2); a new binding after a failure or loss gets new ones.
        self._call_id = ""
        self._tag = ""
        self._cseq = 0
        self._round_expires = config.register_expires
        self._auth_answers = 0
        self._stale_answers = 0
        self._interval_retried = False
        self._failures = 0
        self._losses = 0
        self._retry_at: float | None = None
        self._registered_until: float | None = None
        self._refresh_at: float | None = None
        self._next_keepalive: float | None = None
        self._refreshing = False
        self._granted: int | None = None
        self._missed = 0
        self._msg_cseq = 0
        self._sn = 0
        self._last_error: str | None = None
        self._last_status: int | None = None
        self._registrations = 0
        self._keepalives_sent = 0
        self._keepalives_answered = 0
        self._ignored = 0

    # -- public API ------------------------------------------------------------------------

    @property
    def status(self) -> LinkStatus:
        return LinkStatus(
            state=self.state,
            last_error=self._last_error,
            last_status=self._last_status,
            registered_until=self._registered_until,
            next_action_at=self.next_deadline(),
            granted_expires=self._granted,
            consecutive_failures=self._failures,
            missed_keepalives=self._missed,
            registrations=self._registrations,
            keepalives_sent=self._keepalives_sent,
            keepalives_answered=self._keepalives_answered,
            ignored_datagrams=self._ignored,
        )

    def start(self, now: float) -> list[Output]:
        """Begin registering (from IDLE only; a closed link stays closed)."""
        out: list[Output] = []
        if self.state is LinkState.IDLE:
            self._begin(now, out)
        return out

    def close(self, now: float) -> list[Output]:
        """Stop: unregister (REGISTER Expires: 0) when registered, then CLOSED."""
        out: list[Output] = []
        if self.state in (LinkState.CLOSING, LinkState.CLOSED):
            return out
        registered = self.state is LinkState.REGISTERED
        self._txns.clear()  # nothing in flight matters any more
        self._reg_key = None
        self._clear_registration()
        self._retry_at = None
        if registered:
            self.state = LinkState.CLOSING
            self._new_round(0)
            self._send_register(now, out)
        else:
            self.state = LinkState.CLOSED
            out.append(Closed(unregistered=False))
        return out

    def connection_lost(self, now: float, reason: str = "connection lost") -> list[Output]:
        """Over TCP: the connection to the upper closed. Everything in flight on it is gone.

        A registered link registers again at once on a new connection (the caller opens it
        when it sees the REGISTER to send); a registration round under way counts as failed
        and backs off, so a refusing upper is not redialled in a loop.
        """
        out: list[Output] = []
        state = self.state
        if state is LinkState.REGISTERED:
            self._lose(reason, None, now, out)
        elif state is LinkState.REGISTERING:
            self._fail(reason, None, now, out)
        elif state is LinkState.CLOSING:
            self._txns.clear()
            self._reg_key = None
            self.state = LinkState.CLOSED
            out.append(Closed(unregistered=False))
        return out

    def next_deadline(self) -> float | None:
        """When `tick` must next be called (None: only on input)."""
        deadlines = [d for d in self._state_deadlines() if d is not None]
        for txn, _ in self._txns.values():
            d = txn.next_deadline()
            if d is not None:
                deadlines.append(d)
        return min(deadlines) if deadlines else None

    def timers(self, now: float) -> float | None:
        """The next deadline, never earlier than ``now`` (a caller can sleep ``result - now``)."""
        d = self.next_deadline()
        return None if d is None else max(d, now)

    def tick(self, now: float) -> list[Output]:
        """Fire everything due at ``now``: retransmissions, timeouts, refresh, keepalive, retry."""
        out: list[Output] = []
        for key, (txn, kind) in list(self._txns.items()):
            d = txn.next_deadline()
            if d is None or d > now or self._txns.get(key) is None:
                continue
            for ev in txn.handle_timer(now):
                if isinstance(ev, Send):
                    out.append(ev)
                elif isinstance(ev, TransactionTimeout):
                    self._txns.pop(key, None)
                    self._on_timeout(key, kind, now, out)
            if txn.terminated:
                self._txns.pop(key, None)
        state = self.state
        if state is LinkState.BACKING_OFF:
            if self._retry_at is not None and now >= self._retry_at:
                self._begin(now, out)
        elif state is LinkState.REGISTERED:
            if self._registered_until is not None and now >= self._registered_until:
                self._lose("registration expired before a refresh succeeded", None, now, out)
                return out
            if not self._refreshing and self._refresh_at is not None and now >= self._refresh_at:
                # Refresh on the same Call-ID with the next CSeq (RFC 3261 §10.2.4); the upper
                # will challenge it again, which `_on_register_answer` handles.
                self._refreshing = True
                self._new_round(self.config.register_expires)
                self._send_register(now, out)
            if self._next_keepalive is not None and now >= self._next_keepalive:
                self._send_keepalive(now, out)
                # From now, not from the missed deadline: a caller that slept through several
                # intervals gets one keepalive, not a burst.
                self._next_keepalive = now + self.config.keepalive_interval
        return out

    def receive(self, data: bytes, now: float, addr: Address | None = None) -> list[Output]:
        """Feed one datagram (or one framed TCP message) from the upper.

        Timers due by ``now`` fire first, so an answer that arrives after its transaction gave
        up is treated as late whatever order the caller's loop ran things in. Garbage, stray
        responses and datagrams from another ``addr`` are counted and dropped: never raised.
        """
        out = self.tick(now)
        if addr is not None and addr != self.config.peer:
            self._ignored += 1
            return out
        if is_keepalive(data):  # a CRLF ping or pong (RFC 5626): nothing to do
            return out
        try:
            message = parse_message(data)
        except SipParseError:
            self._ignored += 1
            return out
        if isinstance(message, SipRequest):
            if self.state is LinkState.CLOSED:
                self._ignored += 1
            else:
                out.append(RequestFromUpper(message))
            return out
        self._on_response(message, now, out)
        return out

    # -- responses -------------------------------------------------------------------------

    def _on_response(self, response: SipResponse, now: float, out: list[Output]) -> None:
        branch = response.branch
        try:
            key: tuple[str, ...] = (branch or "", response.cseq[1])
            number = response.cseq[0]
            call_id = response.call_id
        except SipParseError:
            self._ignored += 1
            return
        entry = self._txns.get(key)
        # The branch alone identifies the transaction (RFC 3261 §17.1.3); Call-ID and CSeq must
        # agree too, so a forged or confused answer that only guessed one of them is dropped.
        if (
            entry is None
            or entry[0].request.call_id != call_id
            or entry[0].request.cseq[0] != number
        ):
            self._ignored += 1
            return
        txn, kind = entry
        for ev in txn.handle_message(response, now):
            if isinstance(ev, ResponseReceived) and ev.response.status >= 200:
                self._txns.pop(key, None)  # final: the transaction is done for us
                if kind == _KEEPALIVE:
                    self._on_keepalive_answer(ev.response, now, out)
                else:
                    self._on_register_answer(key, kind, ev.response, now, out)

    def _on_register_answer(
        self, key: tuple[str, ...], kind: str, response: SipResponse, now: float, out: list[Output]
    ) -> None:
        if key != self._reg_key:
            return
        self._reg_key = None
        status = response.status
        self._last_status = status
        if kind == _UNREGISTER:
            if status in (401, 407) and self._answer_challenge(response, now, out):
                return
            self.state = LinkState.CLOSED
            out.append(Closed(unregistered=200 <= status < 300))
            return
        if 200 <= status < 300:
            self._on_registered(response, now, out)
            return
        if status in (401, 407):
            if self._answer_challenge(response, now, out):
                return
            self._fail(
                "authentication rejected (wrong password or username?)"
                if self._auth_answers
                else "unusable digest challenge",
                status,
                now,
                out,
            )
            return
        if status == 423 and not self._interval_retried:
            # Interval Too Brief: ask again with the upper's Min-Expires (RFC 3261 §10.2.8).
            minimum = _seconds(response.headers.get("Min-Expires"))
            if minimum is not None and self._round_expires < minimum <= 7 * 86400:
                self._new_round(minimum)
                self._interval_retried = True
                self._send_register(now, out)
                return
        retry_after = _seconds(response.headers.get("Retry-After"))
        self._fail(f"{status} {response.reason}".strip(), status, now, out, retry_after)

    def _answer_challenge(self, response: SipResponse, now: float, out: list[Output]) -> bool:
        """Send the REGISTER again with credentials; False when we should not (again)."""
        found = challenge_of(response)
        if found is None:
            return False
        if self._auth_answers == 0:
            self._auth_answers = 1
        elif found.challenge.stale and self._stale_answers < _MAX_STALE_ANSWERS:
            # Our answer was right but its nonce had aged out: answer the fresh one.
            self._stale_answers += 1
        else:
            # A second plain 401 after a correct-looking answer: the password is wrong.
            return False
        uri = self.config.server_uri
        authorization = self._digest.answer(found.challenge, "REGISTER", uri)
        self._send_register(now, out, (found.answer_header, authorization))
        return True

    def _on_registered(self, response: SipResponse, now: float, out: list[Output]) -> None:
        granted = _granted_expires(response, self.config.contact) or self._round_expires
        refreshed = self.state is LinkState.REGISTERED
        self.state = LinkState.REGISTERED
        self._refreshing = False
        self._failures = 0
        self._retry_at = None
        self._last_error = None
        self._granted = granted
        self._registrations += 1
        self._registered_until = now + granted
        self._refresh_at = now + self._refresh_delay(granted)
        if not refreshed:
            self._missed = 0
            self._next_keepalive = now + self.config.keepalive_interval
        out.append(Registered(granted, now + granted, refreshed, response.headers.get("Date")))

    def _refresh_delay(self, granted: int) -> float:
        # Two thirds of the grant, but early enough that a refresh that gets no answer still
        # times out (64*T1) before the registration lapses; never before half of it, and
        # never sooner than min_refresh.
        timeout = self.config.timers.timeout
        delay = max(granted / 2, min(granted * 2 / 3, granted - timeout))
        return max(self.config.min_refresh, delay)

    def _on_keepalive_answer(self, response: SipResponse, now: float, out: list[Output]) -> None:
        if self.state is not LinkState.REGISTERED:
            return
        status = response.status
        if 200 <= status < 300:
            self._keepalives_answered += 1
            self._missed = 0
            self._losses = 0
            return
        if status in (401, 403, 404):
            # The upper no longer knows us (it restarted, or dropped us): register again now
            # rather than wait for it to time us out.
            self._lose(f"keepalive answered {status} {response.reason}".strip(), status, now, out)
            return
        self._miss(now, out, f"keepalive answered {status}")

    def _on_timeout(self, key: tuple[str, ...], kind: str, now: float, out: list[Output]) -> None:
        if kind == _KEEPALIVE:
            if self.state is LinkState.REGISTERED:
                self._miss(now, out, "keepalive unanswered")
            return
        if key != self._reg_key:
            return
        self._reg_key = None
        self._last_status = None
        if kind == _UNREGISTER:
            self.state = LinkState.CLOSED
            out.append(Closed(unregistered=False))
            return
        self._fail("no answer from the upper platform", None, now, out)

    def _miss(self, now: float, out: list[Output], reason: str) -> None:
        self._missed += 1
        self._last_error = reason
        out.append(KeepaliveMissed(self._missed))
        if self._missed >= self.config.keepalive_max_missed:
            self._lose(f"{self._missed} keepalives missed", None, now, out)

    # -- transitions -----------------------------------------------------------------------

    def _lose(self, reason: str, status: int | None, now: float, out: list[Output]) -> None:
        """A live registration is gone: register again from scratch, at once the first time.

        An upper that accepts every REGISTER and then refuses every keepalive would otherwise
        get a REGISTER each keepalive interval forever; the second loss in a row (no keepalive
        answered since) backs off like any failure.
        """
        self._losses += 1
        self._last_error = reason
        self._last_status = status
        out.append(LinkLost(reason))
        self._clear_registration()
        if self._losses >= 2:
            self._schedule_retry(reason, status, now, out, None)
        else:
            self._begin(now, out)

    def _fail(
        self,
        reason: str,
        status: int | None,
        now: float,
        out: list[Output],
        retry_after: int | None = None,
    ) -> None:
        if self.state is LinkState.REGISTERED:
            out.append(LinkLost(reason))  # a refresh failed: the platform is offline upstream
        self._clear_registration()
        self._schedule_retry(reason, status, now, out, retry_after)

    def _schedule_retry(
        self,
        reason: str,
        status: int | None,
        now: float,
        out: list[Output],
        retry_after: int | None,
    ) -> None:
        self._failures += 1
        backoff = self.config.backoff
        delay = backoff.delay(self._failures, self._rng)
        if retry_after is not None:
            # 503 or 480 with Retry-After: honour it, but within our own cap.
            delay = max(delay, min(float(retry_after), backoff.maximum))
        self._last_error = reason
        self._last_status = status
        self._retry_at = now + delay
        self._reg_key = None
        self._drop(_REGISTER)
        self.state = LinkState.BACKING_OFF
        out.append(RegistrationFailed(reason, status, self._retry_at, self._failures))

    def _begin(self, now: float, out: list[Output]) -> None:
        """A registration from scratch: new Call-ID and tag, no credentials yet."""
        self.state = LinkState.REGISTERING
        self._retry_at = None
        self._clear_registration()
        self._drop(_REGISTER)
        self._call_id = self._ids.call_id(self.config.announce_host)
        self._tag = self._ids.tag()
        self._cseq = 0
        self._new_round(self.config.register_expires)
        self._send_register(now, out)

    def _clear_registration(self) -> None:
        self._registered_until = None
        self._refresh_at = None
        self._next_keepalive = None
        self._refreshing = False
        self._missed = 0
        self._drop(_KEEPALIVE)  # answers to them no longer say anything about this binding

    def _new_round(self, expires: int) -> None:
        self._round_expires = expires
        self._auth_answers = 0
        self._stale_answers = 0
        self._interval_retried = False

    def _drop(self, kind: str) -> None:
        for key in [k for k, (_, what) in self._txns.items() if what == kind]:
            del self._txns[key]

    def _state_deadlines(self) -> list[float | None]:
        if self.state is LinkState.BACKING_OFF:
            return [self._retry_at]
        if self.state is LinkState.REGISTERED:
            refresh = None if self._refreshing else self._refresh_at
            return [refresh, self._next_keepalive, self._registered_until]
        return []

    # -- requests --------------------------------------------------------------------------

    def _via(self) -> str:
        c = self.config
        # rport (RFC 3581): behind NAT the upper answers to where the packet came from.
        return format_via(c.transport, c.announce_host, c.announce_port, self._ids.branch())

    def _common_headers(self) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        if self.config.user_agent:
            headers.append(("User-Agent", self.config.user_agent))
        if self.config.gb_version:
            headers.append(("X-GB-Ver", self.config.gb_version))
        return headers

    def _send_register(
        self, now: float, out: list[Output], authorization: tuple[str, str] | None = None
    ) -> None:
        c = self.config
        self._cseq += 1
        request = register_request(
            server_uri=c.server_uri,
            user_uri=c.user_uri,
            from_tag=self._tag,
            call_id=self._call_id,
            cseq=self._cseq,
            via=self._via(),
            contact=c.contact,
            expires=self._round_expires,
            authorization=authorization,
            headers=self._common_headers(),
        )
        kind = _UNREGISTER if self.state is LinkState.CLOSING else _REGISTER
        self._drop(kind)  # one REGISTER in flight at a time (RFC 3261 §10.2)
        self._reg_key = self._start(request, kind, now, out)

    def _send_keepalive(self, now: float, out: list[Output]) -> None:
        c = self.config
        self._sn += 1
        self._msg_cseq += 1
        try:
            body = encode_keepalive(self._sn, c.local_id, encoding=c.charset)
        except ManscdpError:  # an unknown charset in the settings: fall back to UTF-8
            body = encode_keepalive(self._sn, c.local_id, encoding="UTF-8")
        request = make_request(
            "MESSAGE",
            c.server_uri,
            via=self._via(),
            from_=f"<{c.user_uri}>;tag={self._ids.tag()}",
            to=f"<sip:{c.server_id}@{c.realm}>",
            call_id=self._ids.call_id(c.announce_host),
            cseq=self._msg_cseq,
            headers=[("Content-Type", MANSCDP_CONTENT_TYPE), *self._common_headers()],
            body=body,
        )
        self._keepalives_sent += 1
        self._start(request, _KEEPALIVE, now, out)

    def _start(
        self, request: SipRequest, kind: str, now: float, out: list[Output]
    ) -> tuple[str, ...]:
        c = self.config
        txn = NonInviteClientTransaction(request, c.peer, reliable=c.reliable, timers=c.timers)
        self._txns[txn.key] = (txn, kind)
        out.extend(ev for ev in txn.start(now) if isinstance(ev, Send))
        return txn.key


def _seconds(value: str | None) -> int | None:
    """The leading delta-seconds of Expires / Min-Expires / Retry-After (`120 (busy)` -> 120)."""
    if value is None:
        return None
    text = value.strip()
    digits = ""
    for ch in text:
        if not ch.isdigit() or not ch.isascii():
            break
        digits += ch
    if not digits or len(digits) > 10:
        return None
    return int(digits)


def _granted_expires(response: SipResponse, our_contact: str) -> int | None:
    """What the upper granted: our Contact's ``expires`` parameter, else the Expires header.

    RFC 3261 §10.2.4 puts the grant on each Contact; GB/T 28181 uppers mostly send only the
    Expires header. None (or 0) when absent or unreadable: the caller keeps what it asked for.
    """
    ours = our_contact.strip("<>").lower()
    for contact in response.headers.get_all("Contact"):
        if ours in contact.lower():
            granted = _seconds(header_param(contact, "expires"))
            if granted:
                return granted
    return _seconds(response.headers.get("Expires")) or None
