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

Requests the upper sends us (GB/T 28181 §9: the lower platform answers like a device):

* Who may ask: a request from another address than the upper's is refused 403 (to where it
  came from), one whose From is not the upper's SIP ID too (another upper on this upper's
  socket, a forger); a retransmission is answered from its server transaction, never handed
  out twice. `Refused` says so.
* MESSAGE with a MANSCDP body (GB2312 or UTF-8, read liberally; ours in ``charset``):
  Catalog, DeviceInfo, DeviceStatus queries are answered 200 at once and handed out
  (`CatalogQuery`, `DeviceInfoQuery`, `DeviceStatusQuery`); the driver gathers the data and
  calls `answer_catalog` (parts of at most ``message_limit`` bytes: SumNum, DeviceList Num, a
  window of ``catalog_window`` parts in flight, `CatalogSent` at the end), `answer_device_info`,
  `answer_device_status`. A catalog query beyond ``max_catalog_answers`` under way is 486.
  ``<Control>`` (DeviceControl, DeviceConfig) is handed out unanswered (`ControlReceived`): the
  driver decides 200, 403 (no control in the share), 404 (not shared) with `respond`, then
  `answer_control`. Unreadable bodies get 400, other content types 415, other queries 501.
* SUBSCRIBE (Catalog; Alarm and MobilePosition, often as ``Event: presence``): 200 with
  ``Result OK`` and a dialog; refreshed and ended in the dialog; lapses at its expiry; at most
  ``max_subscriptions`` of a kind (then 503). `notify_catalog` (ADD/DEL/UPDATE/ON/OFF items,
  in parts; ``only=`` one subscription: the driver's initial NOTIFY, the whole catalog as
  ADD items right after the 200) and `notify` (one body) send NOTIFY in every subscription of the kind; a NOTIFY
  answered 481 ends it (the upper restarted). `Subscribed` / `Unsubscribed` say so.
* The media side's dispatch point: INVITE, ACK (of a 2xx), BYE, INFO, CANCEL and the
  RecordInfo query come out unanswered as `InviteReceived`, `AckReceived`, `ByeReceived`,
  `InfoReceived`, `CancelReceived`, `RecordInfoQuery`. Answer with
  ``respond(request, status, now, reason=, headers=, body=, content_type=, to_tag=)`` (an
  INVITE's 2xx is retransmitted until its ACK); send in-dialog requests (BYE, MESSAGE
  MediaStatus) built with `via()` through `send_request(request, now)`, whose final answer
  comes back as `RequestAnswered` (None on timeout); `send_message(body, now)` sends a MANSCDP
  MESSAGE (RecordInfo Response parts). The driver (cascade/links.py) passes these events to
  ``CascadeLinks.media`` and answers 501 (CANCEL 481) while none is set.
* OPTIONS 200, REGISTER 405, NOTIFY 481 (we subscribe to nothing upstream), the rest 501.

Over TCP the caller cuts the stream into messages (`sip.StreamFramer`) and passes them one by
one; the transactions then do not retransmit (RFC 3261 §17.1.2.2).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from xueliang.gb28181.manscdp import (
    CatalogItem,
    ManscdpError,
    ManscdpMessage,
    decode,
    encode_device_info_response,
    encode_device_status_response,
    encode_keepalive,
    encode_response_result,
)
from xueliang.gb28181.sip import (
    Address,
    Dialog,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    Send,
    ServerTransaction,
    SipParseError,
    SipRequest,
    SipResponse,
    Timers,
    TransactionError,
    TransactionState,
    TransactionTimeout,
    format_via,
    header_param,
    is_keepalive,
    make_request,
    make_response,
    parse_message,
    parse_name_addr,
)
from xueliang.gb28181.sip.transaction import ResponseReceived, server_transaction_key

from .backoff import Backoff
from .parts import CatalogParts, encode_body
from .register import DigestClient, IdSource, challenge_of, register_request
from .subscriptions import KINDS, Subscription, SubscriptionTable

__all__ = [
    "MANSCDP_CONTENT_TYPE",
    "AckReceived",
    "ByeReceived",
    "CancelReceived",
    "CatalogQuery",
    "CatalogSent",
    "Closed",
    "ControlReceived",
    "DeviceInfoQuery",
    "DeviceStatusQuery",
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
    #: The largest SIP message we send (catalog parts are cut to fit). None: 1300 bytes over
    #: UDP (RFC 3261 §18.1.1, the path MTU being unknown), 32 KiB over TCP. The platform sets
    #: it from ``sip.cascade_udp_message`` / ``sip.cascade_tcp_message``.
    max_message: int | None = None
    #: Catalog parts (MESSAGE or NOTIFY) in flight at once, per answer: the next goes when one
    #: is answered, so a slow upper is never flooded and a fast one never waits on a timer.
    catalog_window: int = 16
    #: Catalog answers under way at once; a query beyond gets 486 Busy Here.
    max_catalog_answers: int = 2
    #: Subscriptions held per kind (Catalog, Alarm, MobilePosition); beyond: 503.
    max_subscriptions: int = 8
    #: The longest subscription granted, whatever the upper asks (seconds).
    max_subscription_expires: int = 86400

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

    @property
    def message_limit(self) -> int:
        if self.max_message is not None:
            return self.max_message
        return 32768 if self.reliable else 1300


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


# -- what the upper asks of us ---------------------------------------------------------------
#
# Queries whose answer comes later as MESSAGEs (Catalog, DeviceInfo, DeviceStatus) are answered
# 200 by the link at once; the driver gathers the data and calls `answer_catalog` and friends.
# Requests whose SIP answer depends on the platform (RecordInfo, DeviceControl, INVITE, BYE,
# INFO, CANCEL) are NOT answered: the driver must call `respond` (or the server transaction
# gives up after 64*T1, as the upper has by then).


@dataclass(slots=True, frozen=True, eq=False)
class CatalogQuery:
    """Catalog Query (already answered 200): answer with `UpperLink.answer_catalog`."""

    sn: int
    device_id: str  # our platform ID, or a group / channel ID the upper asks about
    request: SipRequest


@dataclass(slots=True, frozen=True, eq=False)
class DeviceInfoQuery:
    """DeviceInfo Query (already answered 200): answer with `UpperLink.answer_device_info`."""

    sn: int
    device_id: str


@dataclass(slots=True, frozen=True, eq=False)
class DeviceStatusQuery:
    """DeviceStatus Query (already answered 200): `UpperLink.answer_device_status`."""

    sn: int
    device_id: str


@dataclass(slots=True, frozen=True, eq=False)
class RecordInfoQuery:
    """RecordInfo Query, NOT answered: `respond(request, 200)` then `send_message(body)` with
    the RecordInfo Response parts (or `respond(request, 4xx/5xx)`)."""

    sn: int
    device_id: str
    message: ManscdpMessage
    request: SipRequest


@dataclass(slots=True, frozen=True, eq=False)
class ControlReceived:
    """A ``<Control>`` (DeviceControl: PTZCmd, RecordCmd...; DeviceConfig), NOT answered: the
    driver decides (200, 403 control not shared, 404 not shared) with `respond`."""

    sn: int
    device_id: str  # as the upper names it
    cmd_type: str
    fields: dict[str, str]
    request: SipRequest


@dataclass(slots=True, frozen=True, eq=False)
class InviteReceived:
    """INVITE (live, playback, download), NOT answered: `respond` (100..699; a 2xx is
    retransmitted by the link until the ACK comes, RFC 3261 §13.3.1.4)."""

    request: SipRequest


@dataclass(slots=True, frozen=True, eq=False)
class AckReceived:
    """ACK for a 2xx to an INVITE (the link stopped retransmitting the 2xx)."""

    request: SipRequest


@dataclass(slots=True, frozen=True, eq=False)
class ByeReceived:
    """BYE, NOT answered: `respond(request, 200)` (481 for an unknown dialog)."""

    request: SipRequest


@dataclass(slots=True, frozen=True, eq=False)
class InfoReceived:
    """INFO (MANSRTSP playback control), NOT answered: `respond`."""

    request: SipRequest


@dataclass(slots=True, frozen=True, eq=False)
class CancelReceived:
    """CANCEL of a pending INVITE, NOT answered: `respond(cancel, 200)` and 487 the INVITE."""

    request: SipRequest


@dataclass(slots=True, frozen=True, eq=False)
class RequestAnswered:
    """The final answer to a request sent with `send_request` (None: no answer, timed out)."""

    request: SipRequest
    response: SipResponse | None


@dataclass(slots=True, frozen=True)
class Subscribed:
    """The upper subscribed (or refreshed: ``refreshed``) to Catalog, Alarm or MobilePosition."""

    kind: str
    key: tuple[str, str, str]
    expires: int
    refreshed: bool


@dataclass(slots=True, frozen=True)
class Unsubscribed:
    kind: str
    key: tuple[str, str, str]
    reason: str  # ended by the upper, expired, 481 (it forgot it), no answer...


@dataclass(slots=True, frozen=True)
class CatalogSent:
    """A catalog answer (or catalog NOTIFY) finished: every part answered (``ok``) or not."""

    sn: int
    parts: int
    items: int
    ok: bool
    reason: str = ""
    notify: bool = False


@dataclass(slots=True, frozen=True)
class Refused:
    """A request refused before anyone saw it (wrong source, wrong From, malformed, flood)."""

    method: str
    status: int
    reason: str


LinkEvent = (
    Registered | RegistrationFailed | LinkLost | KeepaliveMissed | Closed | CatalogQuery
    | DeviceInfoQuery | DeviceStatusQuery | RecordInfoQuery | ControlReceived | InviteReceived
    | AckReceived | ByeReceived | InfoReceived | CancelReceived | RequestAnswered | Subscribed
    | Unsubscribed | CatalogSent | Refused
)
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
    ignored_datagrams: int  # garbage, stray responses
    refused_requests: int  # wrong source or From, malformed, over a limit
    subscriptions: int
    catalog_answers: int  # catalog answers (and catalog NOTIFYs) under way


# -- the link --------------------------------------------------------------------------------

_REGISTER = "register"
_KEEPALIVE = "keepalive"
_UNREGISTER = "unregister"
_MESSAGE = "message"  # a MESSAGE we send the upper (DeviceInfo answer...): its answer is not watched
_PART = "part"  # a catalog part (MESSAGE or NOTIFY)
_NOTIFY = "notify"  # a single NOTIFY (alarm, position, end of a subscription)
_REQUEST = "request"  # sent for the driver (`send_request`): its answer is an event

#: MANSCDP queries the link answers 200 at once (their answer is a later MESSAGE).
_QUERIES = {"Catalog": CatalogQuery, "DeviceInfo": DeviceInfoQuery, "DeviceStatus": DeviceStatusQuery}
_DIALOG_EVENTS: dict[str, type] = {"INVITE": InviteReceived, "BYE": ByeReceived, "INFO": InfoReceived,
                                   "CANCEL": CancelReceived}


@dataclass(slots=True, eq=False)
class _CatalogAnswer:
    """One catalog answer (MESSAGEs) or catalog NOTIFY (in one subscription) under way."""

    parts: CatalogParts
    budget_headers: int
    in_flight: set[tuple[str, ...]]
    subscription: Subscription | None = None
    sent: int = 0
    failed: str | None = None


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
        self._refused = 0
        #: Requests from the upper by server transaction key: retransmissions are answered
        #: from here, never handed out twice.
        self._server: dict[tuple[str, ...], ServerTransaction] = {}
        self.subscriptions = SubscriptionTable(config.max_subscriptions)
        self._answers: list[_CatalogAnswer] = []
        self._part_of: dict[tuple[str, ...], _CatalogAnswer] = {}
        self._pending_queries = 0  # catalog queries handed out, not answered yet
        self._notify_sn = 0
        self._sub_of: dict[tuple[str, ...], Subscription] = {}
        self._requests: dict[tuple[str, ...], SipRequest] = {}

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
            refused_requests=self._refused,
            subscriptions=len(self.subscriptions),
            catalog_answers=len(self._answers),
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
        self._server.clear()
        self._answers.clear()
        self._part_of.clear()
        self._sub_of.clear()
        self.subscriptions.clear()
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
        for stxn in self._server.values():
            d = stxn.next_deadline()
            if d is not None:
                deadlines.append(d)
        expiry = self.subscriptions.next_expiry()
        if expiry is not None:
            deadlines.append(expiry)
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
        for skey, stxn in list(self._server.items()):
            d = stxn.next_deadline()
            if d is not None and d <= now:
                out.extend(ev for ev in stxn.handle_timer(now) if isinstance(ev, Send))
            if stxn.terminated:
                del self._server[skey]
        for sub in self.subscriptions.expire(now):
            self._end_subscription(sub, "expired", "timeout", now, out)
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
        if is_keepalive(data):  # a CRLF ping or pong (RFC 5626): nothing to do
            return out
        try:
            message = parse_message(data)
        except SipParseError:
            self._ignored += 1
            return out
        peer = self.config.peer
        if addr is not None and addr != peer:
            # Not the upper: its answers are dropped; its requests refused (403 to where they
            # came from: no bigger than the request, so no use for reflection).
            if isinstance(message, SipRequest):
                self._refuse(message, addr, 403, "not the upper platform's address", out)
            else:
                self._ignored += 1
            return out
        if isinstance(message, SipRequest):
            if self.state in (LinkState.CLOSED, LinkState.IDLE):
                self._ignored += 1
            else:
                self._on_request(message, now, addr or peer, out)
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
                elif kind in (_REGISTER, _UNREGISTER):
                    self._on_register_answer(key, kind, ev.response, now, out)
                else:
                    self._on_other_answer(key, kind, txn.request, ev.response, now, out)

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
        if kind not in (_REGISTER, _UNREGISTER):
            self._on_other_answer(key, kind, None, None, now, out)
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
        try:
            body = encode_keepalive(self._sn, c.local_id, encoding=c.charset)
        except ManscdpError:  # an unknown charset in the settings: fall back to UTF-8
            body = encode_keepalive(self._sn, c.local_id, encoding="UTF-8")
        self._keepalives_sent += 1
        self._start(self._message_request(body), _KEEPALIVE, now, out)

    def _message_request(self, body: bytes) -> SipRequest:
        """An out-of-dialog MESSAGE to the upper with a MANSCDP body (GB/T 28181 §9.3)."""
        c = self.config
        self._msg_cseq += 1
        return make_request(
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

    def _start(
        self, request: SipRequest, kind: str, now: float, out: list[Output]
    ) -> tuple[str, ...]:
        c = self.config
        txn = NonInviteClientTransaction(request, c.peer, reliable=c.reliable, timers=c.timers)
        self._txns[txn.key] = (txn, kind)
        out.extend(ev for ev in txn.start(now) if isinstance(ev, Send))
        return txn.key

    # -- what the upper asks -----------------------------------------------------------------

    def _refuse(
        self, request: SipRequest, addr: Address, status: int, why: str, out: list[Output]
    ) -> None:
        """Answer ``status`` statelessly (no transaction kept: a flood costs no memory)."""
        self._refused += 1
        out.append(Refused(request.method, status, why))
        if request.method == "ACK":
            return
        try:
            out.append(Send(make_response(request, status, to_tag=self._ids.tag()).serialize(), addr))
        except (SipParseError, ValueError):
            pass

    def _on_request(self, request: SipRequest, now: float, addr: Address, out: list[Output]) -> None:
        c = self.config
        try:
            key = server_transaction_key(request)
            from_user = parse_name_addr(request.headers.get("From") or "").uri.user
        except (SipParseError, ValueError):
            self._refuse(request, addr, 400, "malformed From, Via or CSeq", out)
            return
        existing = self._server.get(key)
        if existing is not None:  # a retransmission (or the ACK of an error we sent)
            if request.method == "ACK" and isinstance(existing, InviteServerTransaction):
                if existing.state is TransactionState.ACCEPTED:
                    existing.ack_2xx(now)
                    out.append(AckReceived(request))
                    return
            out.extend(ev for ev in existing.handle_message(request, now) if isinstance(ev, Send))
            return
        if from_user != c.server_id:
            # Someone on the upper's address speaking as another platform (or another upper
            # asking for this upper's share): never answered as the upper.
            self._refuse(request, addr, 403, f"From is not the upper platform ({from_user})", out)
            return
        method = request.method
        if method == "ACK":
            # The ACK of a 2xx is a transaction of its own (a new branch, RFC 3261 §13.2.2.4):
            # it is matched to its INVITE by Call-ID and CSeq, and stops the 2xx retransmissions.
            for stxn in self._server.values():
                if (isinstance(stxn, InviteServerTransaction) and stxn.state is TransactionState.ACCEPTED
                        and stxn.request.call_id == request.call_id
                        and stxn.request.cseq[0] == request.cseq[0]):
                    stxn.ack_2xx(now)
                    break
            out.append(AckReceived(request))
            return
        txn: ServerTransaction
        if method == "INVITE":
            txn = InviteServerTransaction(request, addr, reliable=c.reliable, timers=c.timers, key=key)
        else:
            txn = NonInviteServerTransaction(request, addr, reliable=c.reliable, timers=c.timers, key=key)
        self._server[key] = txn
        out.extend(ev for ev in txn.start(now) if isinstance(ev, Send))
        if method == "MESSAGE":
            self._on_message(request, txn, now, out)
        elif method == "SUBSCRIBE":
            self._on_subscribe(request, txn, now, out)
        elif method in _DIALOG_EVENTS:
            out.append(_DIALOG_EVENTS[method](request))
        elif method == "OPTIONS":
            self._answer(txn, 200, now, out, headers=[("Allow", "INVITE, ACK, BYE, CANCEL, INFO, MESSAGE, SUBSCRIBE, NOTIFY, OPTIONS")])
        elif method == "NOTIFY":
            self._answer(txn, 481, now, out)  # we subscribe to nothing at the upper
        else:
            self._answer(txn, 405 if method == "REGISTER" else 501, now, out)

    def _answer(
        self,
        txn: ServerTransaction,
        status: int,
        now: float,
        out: list[Output],
        *,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        to_tag: str | None = None,
    ) -> None:
        extra = list(headers)
        if body:
            extra.append(("Content-Type", MANSCDP_CONTENT_TYPE))
        response = make_response(
            txn.request, status, reason, to_tag=to_tag or self._ids.tag(), headers=extra, body=body
        )
        try:
            out.extend(ev for ev in txn.respond(response, now) if isinstance(ev, Send))
        except TransactionError:
            return
        if txn.terminated:
            self._server.pop(txn.key, None)

    def _on_message(
        self, request: SipRequest, txn: ServerTransaction, now: float, out: list[Output]
    ) -> None:
        ctype = request.content_type
        if ctype is not None and ctype != "application/manscdp+xml":
            self._refused += 1
            self._answer(txn, 415, now, out)
            return
        try:
            msg = decode(request.body)
        except ManscdpError as exc:
            self._refused += 1
            out.append(Refused("MESSAGE", 400, exc.reason))
            self._answer(txn, 400, now, out, reason="Bad Request")
            return
        cmd = msg.cmd_type
        if msg.root == "Query":
            query = _QUERIES.get(cmd)
            if query is CatalogQuery:
                answering = sum(1 for a in self._answers if a.subscription is None)  # NOTIFYs apart
                if answering + self._pending_queries >= self.config.max_catalog_answers:
                    self._refused += 1
                    out.append(Refused("MESSAGE", 486, "catalog answers already under way"))
                    self._answer(txn, 486, now, out)
                    return
                self._pending_queries += 1
                self._answer(txn, 200, now, out)
                out.append(CatalogQuery(msg.sn, msg.device_id, request))
            elif query is not None:
                self._answer(txn, 200, now, out)
                out.append(query(msg.sn, msg.device_id))
            elif cmd == "RecordInfo":
                out.append(RecordInfoQuery(msg.sn, msg.device_id, msg, request))
            else:
                self._answer(txn, 501, now, out)
        elif msg.root == "Control":
            out.append(ControlReceived(msg.sn, msg.device_id, cmd, dict(msg.fields), request))
        else:  # a Notify or Response from the upper: nothing we asked for; acknowledged
            self._answer(txn, 200, now, out)

    def _on_subscribe(
        self, request: SipRequest, txn: ServerTransaction, now: float, out: list[Output]
    ) -> None:
        c = self.config
        try:
            asked = request.expires
        except SipParseError:
            self._answer(txn, 400, now, out, reason="Bad Expires")
            return
        kind = _subscription_kind(request)
        to_tag = request.to_tag
        if to_tag:  # inside a dialog: a refresh, or the end
            sub = self.subscriptions.get((request.call_id, to_tag, request.from_tag or ""))
            if sub is None:
                self._answer(txn, 481, now, out)
                return
            if not sub.dialog.receive_request(request):
                self._answer(txn, 500, now, out, reason="CSeq out of order")
                return
            if asked == 0:
                self._answer(txn, 200, now, out, headers=[("Expires", "0")], to_tag=to_tag)
                self.subscriptions.remove(sub.key)
                self._end_subscription(sub, "ended by the upper", "noresource", now, out)
                return
            granted = min(asked if asked is not None else 3600, c.max_subscription_expires)
            sub.expires_at = now + granted
            self._answer(txn, 200, now, out, headers=[("Expires", str(granted))], to_tag=to_tag)
            out.append(Subscribed(sub.kind, sub.key, granted, True))
            return
        if kind is None:
            self._answer(txn, 489, now, out)  # Bad Event
            return
        if asked == 0:  # a fetch with nothing kept
            self._answer(txn, 200, now, out, headers=[("Expires", "0")])
            return
        if self.subscriptions.full(kind):
            self._refused += 1
            out.append(Refused("SUBSCRIBE", 503, f"already {c.max_subscriptions} {kind} subscriptions"))
            self._answer(txn, 503, now, out, headers=[("Retry-After", "60")])
            return
        tag = self._ids.tag()
        try:
            dialog = Dialog.from_request(request, tag, local_contact=c.contact)
        except SipParseError:
            self._answer(txn, 400, now, out, reason="No From tag")
            return
        dialog.event = request.headers.get("Event") or kind
        granted = min(asked if asked is not None else 3600, c.max_subscription_expires)
        sn = _body_sn(request)
        sub = Subscription(kind, dialog, now + granted, sn)
        self.subscriptions.add(sub)
        body = encode_response_result(kind, sn, c.local_id, True, encoding=_charset(c.charset))
        self._answer(txn, 200, now, out, headers=[("Expires", str(granted)), ("Contact", c.contact)],
                     body=body, to_tag=tag)
        out.append(Subscribed(kind, sub.key, granted, False))

    def _end_subscription(
        self, sub: Subscription, reason: str, why: str, now: float, out: list[Output]
    ) -> None:
        """The last NOTIFY (RFC 6665 §4.2.2: Subscription-State terminated), and the event."""
        for key in [k for k, s in self._sub_of.items() if s is sub]:
            del self._sub_of[key]
        for answer in [a for a in self._answers if a.subscription is sub]:
            self._finish(answer, "subscription ended", out)
        if why in ("timeout", "noresource") and self.state is LinkState.REGISTERED:
            request = sub.dialog.create_request(
                "NOTIFY", via=self._via(),
                headers=[("Subscription-State", f"terminated;reason={why}"), *self._common_headers()],
            )
            self._start(request, _NOTIFY, now, out)
        out.append(Unsubscribed(sub.kind, sub.key, reason))

    def _on_other_answer(
        self,
        key: tuple[str, ...],
        kind: str,
        request: SipRequest | None,
        response: SipResponse | None,
        now: float,
        out: list[Output],
    ) -> None:
        ok = response is not None and 200 <= response.status < 300
        if kind == _REQUEST:
            sent = self._requests.pop(key, None)
            if sent is not None:
                out.append(RequestAnswered(sent, response))
            return
        sub = self._sub_of.pop(key, None)
        if sub is not None and response is not None and response.status in (481, 408):
            # The upper no longer knows this subscription (it restarted): it will subscribe again.
            if self.subscriptions.remove(sub.key) is not None:
                self._end_subscription(sub, f"NOTIFY answered {response.status}", "", now, out)
        if kind != _PART:
            return
        answer = self._part_of.pop(key, None)
        if answer is None:
            return
        answer.in_flight.discard(key)
        if not ok:
            status = "no answer" if response is None else f"{response.status} {response.reason}".strip()
            self._finish(answer, f"a part was answered {status}", out)
            return
        self._pump(answer, now, out)

    # -- answering the upper (the driver feeds the data) -----------------------------------

    def respond(
        self,
        request: SipRequest,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        to_tag: str | None = None,
    ) -> list[Output]:
        """Answer a request handed out unanswered (RecordInfoQuery, ControlReceived, INVITE,
        BYE, INFO, CANCEL). Unknown or already answered: nothing (a late answer is harmless)."""
        out: list[Output] = []
        try:
            key = server_transaction_key(request)
        except (SipParseError, ValueError):
            return out
        txn = self._server.get(key)
        if txn is None:
            return out
        extra = list(headers)
        if body and content_type:
            extra.append(("Content-Type", content_type))
        response = make_response(request, status, reason, to_tag=to_tag or self._ids.tag(),
                                 headers=extra, body=body)
        try:
            out.extend(ev for ev in txn.respond(response, now) if isinstance(ev, Send))
        except TransactionError:
            return out
        if txn.terminated:
            self._server.pop(key, None)
        return out

    def send_message(self, body: bytes, now: float) -> list[Output]:
        """A MESSAGE with a MANSCDP body to the upper (an answer, a MediaStatus, an alarm)."""
        out: list[Output] = []
        if self.state is LinkState.REGISTERED:
            self._start(self._message_request(body), _MESSAGE, now, out)
        return out

    def send_request(self, request: SipRequest, now: float) -> list[Output]:
        """Send a request the caller built (BYE or MESSAGE in an INVITE dialog...) in a client
        transaction; its final answer comes back as `RequestAnswered` (None on timeout)."""
        out: list[Output] = []
        key = self._start(request, _REQUEST, now, out)
        self._requests[key] = request
        return out

    def via(self) -> str:
        """A Via value with a fresh branch, for requests the caller builds (`send_request`)."""
        return self._via()

    def answer_device_info(
        self,
        query: DeviceInfoQuery,
        now: float,
        *,
        found: bool = True,
        name: str = "",
        manufacturer: str = "",
        model: str = "",
        firmware: str = "",
        channels: int | None = None,
    ) -> list[Output]:
        body = encode_device_info_response(
            query.sn, query.device_id, device_name=name, manufacturer=manufacturer, model=model,
            firmware=firmware, channel=channels, ok=found, encoding=_charset(self.config.charset),
        )
        return self.send_message(body, now)

    def answer_device_status(
        self,
        query: DeviceStatusQuery,
        now: float,
        *,
        found: bool = True,
        online: bool = True,
        status_ok: bool = True,
        device_time: str | None = None,
    ) -> list[Output]:
        body = encode_device_status_response(
            query.sn, query.device_id, online=online and found, status_ok=status_ok and found,
            device_time=device_time, ok=found, encoding=_charset(self.config.charset),
        )
        return self.send_message(body, now)

    def answer_control(self, control: ControlReceived, ok: bool, now: float) -> list[Output]:
        """The DeviceControl Response (Result OK/ERROR) after the device answered."""
        body = encode_response_result(control.cmd_type, control.sn, control.device_id, ok,
                                      encoding=_charset(self.config.charset))
        return self.send_message(body, now)

    def answer_catalog(
        self, query: CatalogQuery, items: Sequence[CatalogItem], now: float
    ) -> list[Output]:
        """Send the catalog in parts (SumNum = len(items)), a window of parts at a time."""
        out: list[Output] = []
        self._pending_queries = max(0, self._pending_queries - 1)
        if self.state is not LinkState.REGISTERED:
            return out
        parts = CatalogParts(root="Response", sn=query.sn, device_id=query.device_id, items=items,
                             charset=self.config.charset, budget=0)
        answer = _CatalogAnswer(parts, self._header_budget(), set())
        parts.budget = max(256, self.config.message_limit - answer.budget_headers)
        self._answers.append(answer)
        self._pump(answer, now, out)
        return out

    def catalog_failed(self, query: CatalogQuery) -> None:
        """The driver could not gather the catalog: the query no longer counts as pending."""
        self._pending_queries = max(0, self._pending_queries - 1)

    def notify_catalog(
        self, items: Sequence[CatalogItem], now: float, *, only: tuple[str, str, str] | None = None
    ) -> list[Output]:
        """NOTIFY every catalog subscription of changes (each item carries its ``event``: ADD,
        DEL, UPDATE, ON, OFF...), in parts like a query answer. ``only``: that subscription
        alone (the initial NOTIFY with the current state, RFC 6665 §4.2.1), sent even when the
        catalog is empty (one part, SumNum 0)."""
        out: list[Output] = []
        if (not items and only is None) or self.state is not LinkState.REGISTERED:
            return out
        subs = self.subscriptions.of_kind("Catalog")
        if only is not None:
            subs = [s for s in subs if s.key == only]
        for sub in subs:
            self._notify_sn += 1
            parts = CatalogParts(root="Notify", sn=self._notify_sn, device_id=self.config.local_id,
                                 items=items, charset=self.config.charset, budget=0)
            answer = _CatalogAnswer(parts, self._header_budget(sub), set(), sub)
            parts.budget = max(256, self.config.message_limit - answer.budget_headers)
            self._answers.append(answer)
            self._pump(answer, now, out)
        return out

    def notify(self, kind: str, body: bytes, now: float) -> list[Output]:
        """One NOTIFY with ``body`` (an Alarm or MobilePosition Notify) in every subscription of
        ``kind``. Nobody subscribed: nothing sent."""
        out: list[Output] = []
        if self.state is not LinkState.REGISTERED:
            return out
        for sub in self.subscriptions.of_kind(kind):
            key = self._start(self._notify_request(sub, body, now), _NOTIFY, now, out)
            self._sub_of[key] = sub
        return out

    def encode_items(self, items: Sequence[CatalogItem], sn: int, device_id: str) -> bytes:
        """One catalog Response body in the upper's charset (for tests and the bench)."""
        return encode_body("Response", sn, device_id, len(items), items, self.config.charset)

    def _notify_request(self, sub: Subscription, body: bytes, now: float) -> SipRequest:
        sub.notifies_sent += 1
        remaining = max(0, int(sub.expires_at - now))
        return sub.dialog.create_request(
            "NOTIFY", via=self._via(), body=body, content_type=MANSCDP_CONTENT_TYPE,
            headers=[("Subscription-State", f"active;expires={remaining}"), *self._common_headers()],
        )

    def _header_budget(self, sub: Subscription | None = None) -> int:
        """The bytes a MESSAGE (or NOTIFY) takes besides its body, with room for longer numbers."""
        c = self.config
        if sub is None:
            probe = make_request(
                "MESSAGE", c.server_uri, via=format_via(c.transport, c.announce_host, c.announce_port, "z9hG4bK" + "x" * 32),
                from_=f"<{c.user_uri}>;tag={'x' * 16}", to=f"<sip:{c.server_id}@{c.realm}>",
                call_id="x" * 48, cseq=2**31 - 1,
                headers=[("Content-Type", MANSCDP_CONTENT_TYPE), *self._common_headers()], body=b"",
            )
        else:
            probe = sub.dialog._build(
                "NOTIFY", 2**31 - 1, format_via(c.transport, c.announce_host, c.announce_port, "z9hG4bK" + "x" * 32),
                b"", MANSCDP_CONTENT_TYPE,
                [("Subscription-State", "active;expires=9999999999"), *self._common_headers()], 70,
            )
        return len(probe.serialize()) + 8  # Content-Length digits

    def _pump(self, answer: _CatalogAnswer, now: float, out: list[Output]) -> None:
        """Send parts while the window has room; done when every part was answered."""
        if answer.failed is not None:
            return
        while len(answer.in_flight) < self.config.catalog_window:
            body = answer.parts.next_part()
            if body is None:
                break
            sub = answer.subscription
            request = self._message_request(body) if sub is None else self._notify_request(sub, body, now)
            key = self._start(request, _PART, now, out)
            answer.in_flight.add(key)
            self._part_of[key] = answer
            if sub is not None:
                self._sub_of[key] = sub
            answer.sent += 1
        if not answer.in_flight and answer.parts.done:
            self._finish(answer, "", out)

    def _finish(self, answer: _CatalogAnswer, failure: str, out: list[Output]) -> None:
        if answer in self._answers:
            self._answers.remove(answer)
        answer.failed = failure or None
        for key in answer.in_flight:
            self._part_of.pop(key, None)
        answer.in_flight.clear()
        parts = answer.parts
        out.append(CatalogSent(parts.sn, answer.sent, len(parts.items), not failure, failure,
                               answer.subscription is not None))


def _charset(charset: str) -> str:
    return "UTF-8" if charset.upper().replace("_", "-") in ("UTF-8", "UTF8") else "GB2312"


def _subscription_kind(request: SipRequest) -> str | None:
    """Catalog, Alarm or MobilePosition: the body's CmdType, else the Event header."""
    if request.body:
        try:
            cmd = decode(request.body).cmd_type
        except ManscdpError:
            cmd = ""
        if cmd in KINDS:
            return cmd
    event = (request.headers.get("Event") or "").partition(";")[0].strip().lower()
    for kind in KINDS:
        if event == kind.lower():
            return kind
    return None


def _body_sn(request: SipRequest) -> int:
    try:
        return decode(request.body).sn if request.body else 0
    except ManscdpError:
        return 0


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
