"""SIP transactions (RFC 3261 §17, with the RFC 6026 "Accepted" states), sans-IO.

Every transaction is a state machine fed with messages and the current time:
`handle_message(msg, now)`, `handle_timer(now)` and, for server transactions,
`respond(response, now)` return a list of events (`Send` datagrams to write, messages for the
transaction user, timeouts, termination); `next_deadline()` says when `handle_timer` should be
called next. Nothing here reads a clock or touches a socket.

`TransactionLayer` holds the transactions of one SIP endpoint: it matches incoming messages to
them (RFC 3261 §17.1.3, §17.2.3, with the RFC 2543 fallback for devices whose branch lacks the
magic cookie), absorbs retransmitted requests by replaying the last response, keeps one heap of
deadlines for all transactions, and forgets terminated transactions at once.

Timers: T1 = 0.5 s, T2 = 4 s, T4 = 5 s. A, B (INVITE client), D, E, F (non-INVITE client),
G, H, I (INVITE server), J (non-INVITE server), K, L, M (RFC 6026). On a reliable transport
(TCP) there are no retransmissions and the wait states last zero seconds.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from .message import (
    BRANCH_MAGIC,
    Headers,
    SipRequest,
    SipResponse,
    make_response,
)
from .uri import header_param

__all__ = [
    "Address",
    "ClientTransaction",
    "Event",
    "InviteClientTransaction",
    "InviteServerTransaction",
    "NonInviteClientTransaction",
    "NonInviteServerTransaction",
    "RequestReceived",
    "ResponseReceived",
    "Send",
    "ServerTransaction",
    "Timers",
    "Transaction",
    "TransactionError",
    "TransactionLayer",
    "TransactionState",
    "TransactionTerminated",
    "TransactionTimeout",
    "make_cancel",
    "make_error_ack",
    "server_transaction_key",
]

Address = tuple[str, int]
"""Where a datagram goes or came from: (host, port). For TCP, the adapter maps it to a connection."""


@dataclass(slots=True, frozen=True)
class Timers:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    trying: float = 0.2  # INVITE server: send 100 Trying if the TU has not answered by then
    invite_answer: float = 180.0  # INVITE server: give up on a TU that never answers

    @property
    def timeout(self) -> float:
        """64*T1: timers B, F, H, J, L, M."""
        return 64 * self.t1

    @property
    def d(self) -> float:
        return max(32.0, self.timeout)


class TransactionState(Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class TransactionError(Exception):
    """The transaction user did something the state machine does not allow."""


# -- events ----------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Send:
    """Bytes to write to `addr`."""

    data: bytes
    addr: Address


@dataclass(slots=True, frozen=True, eq=False)
class RequestReceived:
    """A new request for the transaction user.

    `transaction` is the server transaction to answer through, or None for an ACK to a 2xx
    (which is end-to-end and belongs to the dialog, not to a transaction).
    """

    request: SipRequest
    addr: Address
    transaction: ServerTransaction | None


@dataclass(slots=True, frozen=True, eq=False)
class ResponseReceived:
    """A response for the transaction user.

    `transaction` is None for a 2xx to an INVITE whose client transaction is gone (a 2xx
    retransmission: the dialog answers it with its ACK again).
    """

    response: SipResponse
    transaction: ClientTransaction | None


@dataclass(slots=True, frozen=True, eq=False)
class TransactionTimeout:
    """Timer B/F (no final response), H (no ACK for an error) or L (no ACK for a 2xx) fired."""

    transaction: Transaction


@dataclass(slots=True, frozen=True, eq=False)
class TransactionTerminated:
    transaction: Transaction


Event = Send | RequestReceived | ResponseReceived | TransactionTimeout | TransactionTerminated


# -- base ------------------------------------------------------------------------------------


class Transaction:
    """What every transaction shares: its request, peer, timers and state."""

    __slots__ = (
        "_heap_deadline",
        "_interval",
        "_timers",
        "addr",
        "key",
        "reliable",
        "request",
        "state",
        "timers",
    )

    def __init__(
        self,
        request: SipRequest,
        addr: Address,
        *,
        reliable: bool = False,
        timers: Timers | None = None,
        key: tuple[str, ...] = (),
    ) -> None:
        self.request = request
        self.addr = addr
        self.reliable = reliable
        self.timers = timers if timers is not None else Timers()
        self.key = key
        self.state = TransactionState.TRYING
        self._timers: dict[str, float] = {}
        self._interval = self.timers.t1
        self._heap_deadline: float | None = None

    @property
    def terminated(self) -> bool:
        return self.state is TransactionState.TERMINATED

    @property
    def method(self) -> str:
        return self.request.method

    def next_deadline(self) -> float | None:
        """When `handle_timer` must next be called, or None when no timer runs."""
        timers = self._timers
        if not timers:
            return None
        return min(timers.values())

    def handle_timer(self, now: float) -> list[Event]:
        """Fire every timer due at `now`, in deadline order."""
        events: list[Event] = []
        timers = self._timers
        while timers:
            name = min(timers, key=timers.__getitem__)
            if timers[name] > now:
                break
            del timers[name]
            self._fire(name, now, events)
        return events

    def _fire(self, name: str, now: float, events: list[Event]) -> None:
        raise NotImplementedError

    def _terminate(self, events: list[Event], *, timeout: bool = False) -> None:
        self._timers.clear()
        if self.state is TransactionState.TERMINATED:
            return
        self.state = TransactionState.TERMINATED
        if timeout:
            events.append(TransactionTimeout(self))
        events.append(TransactionTerminated(self))

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.request.method} {self.state.value} "
            f"branch={self.key[0] if self.key else None}>"
        )


# -- client transactions ---------------------------------------------------------------------


class ClientTransaction(Transaction):
    __slots__ = ("_data", "last_response")
    #: The state a started transaction is in, the timer that retransmits its request (on an
    #: unreliable transport) and the one that gives up waiting for a final response.
    _STARTED: ClassVar[TransactionState]
    _RETRANSMIT: ClassVar[str]
    _GIVE_UP: ClassVar[str]

    def __init__(
        self,
        request: SipRequest,
        addr: Address,
        *,
        reliable: bool = False,
        timers: Timers | None = None,
    ) -> None:
        key = client_transaction_key(request)
        super().__init__(request, addr, reliable=reliable, timers=timers, key=key)
        self._data = b""
        self.last_response: SipResponse | None = None

    def start(self, now: float) -> list[Event]:
        """Send the request and start the timers."""
        self.state = self._STARTED
        self._data = self.request.serialize()
        if not self.reliable:
            self._interval = self.timers.t1
            self._timers[self._RETRANSMIT] = now + self._interval
        self._timers[self._GIVE_UP] = now + self.timers.timeout
        return [Send(self._data, self.addr)]

    def handle_message(self, response: SipResponse, now: float) -> list[Event]:
        raise NotImplementedError


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.2 (figure 6): timers E, F, K."""

    __slots__ = ()
    _STARTED = TransactionState.TRYING
    _RETRANSMIT = "E"
    _GIVE_UP = "F"

    def handle_message(self, response: SipResponse, now: float) -> list[Event]:
        if self.state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            return []  # Completed: absorb retransmitted finals
        self.last_response = response
        events: list[Event] = [ResponseReceived(response, self)]
        if response.status < 200:
            self.state = TransactionState.PROCEEDING
            return events
        self.state = TransactionState.COMPLETED
        self._timers.clear()
        if self.reliable:
            self._terminate(events)
        else:
            self._timers["K"] = now + self.timers.t4
        return events

    def _fire(self, name: str, now: float, events: list[Event]) -> None:
        if name == "E":
            events.append(Send(self._data, self.addr))
            if self.state is TransactionState.TRYING:
                self._interval = min(2 * self._interval, self.timers.t2)
            else:
                self._interval = self.timers.t2
            self._timers["E"] = now + self._interval
        elif name == "F":
            self._terminate(events, timeout=True)
        elif name == "K":
            self._terminate(events)


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.1 (figure 5) with RFC 6026: timers A, B, D, M."""

    __slots__ = ("_ack",)
    _STARTED = TransactionState.CALLING
    _RETRANSMIT = "A"
    _GIVE_UP = "B"

    def __init__(
        self,
        request: SipRequest,
        addr: Address,
        *,
        reliable: bool = False,
        timers: Timers | None = None,
    ) -> None:
        super().__init__(request, addr, reliable=reliable, timers=timers)
        self._ack = b""

    def handle_message(self, response: SipResponse, now: float) -> list[Event]:
        state = self.state
        status = response.status
        if state in (TransactionState.CALLING, TransactionState.PROCEEDING):
            self.last_response = response
            events: list[Event] = [ResponseReceived(response, self)]
            if status < 200:
                self.state = TransactionState.PROCEEDING
                self._timers.pop("A", None)
            elif status < 300:
                self.state = TransactionState.ACCEPTED
                self._timers.clear()
                self._timers["M"] = now + self.timers.timeout
            else:
                self.state = TransactionState.COMPLETED
                self._timers.clear()
                self._ack = make_error_ack(self.request, response).serialize()
                events.append(Send(self._ack, self.addr))
                if self.reliable:
                    self._terminate(events)
                else:
                    self._timers["D"] = now + self.timers.d
            return events
        if state is TransactionState.ACCEPTED and 200 <= status < 300:
            # A 2xx retransmission (perhaps from another fork): the TU re-sends its ACK.
            return [ResponseReceived(response, self)]
        if state is TransactionState.COMPLETED and status >= 300:
            return [Send(self._ack, self.addr)]
        return []

    def _fire(self, name: str, now: float, events: list[Event]) -> None:
        if name == "A":
            if self.state is TransactionState.CALLING:
                events.append(Send(self._data, self.addr))
                self._interval *= 2
                self._timers["A"] = now + self._interval
        elif name == "B":
            self._terminate(events, timeout=True)
        elif name in ("D", "M"):
            self._terminate(events)


# -- server transactions ---------------------------------------------------------------------


class ServerTransaction(Transaction):
    __slots__ = ("_last", "last_response")

    def __init__(
        self,
        request: SipRequest,
        addr: Address,
        *,
        reliable: bool = False,
        timers: Timers | None = None,
        key: tuple[str, ...] = (),
    ) -> None:
        super().__init__(
            request,
            addr,
            reliable=reliable,
            timers=timers,
            key=key or server_transaction_key(request),
        )
        self._last = b""
        self.last_response: SipResponse | None = None

    def start(self, now: float) -> list[Event]:
        """Called once the request has been handed to the TU; may arm a timer."""
        return []

    def handle_message(self, request: SipRequest, now: float) -> list[Event]:
        """A retransmission of the request (or, for INVITE, the ACK of an error)."""
        raise NotImplementedError

    def respond(self, response: SipResponse, now: float) -> list[Event]:
        """Send `response` from the TU; returns the datagram to write."""
        raise NotImplementedError

    def _remember(self, response: SipResponse) -> Send:
        self.last_response = response
        self._last = response.serialize()
        return Send(self._last, self.addr)


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.2 (figure 8): timer J.

    A request the TU never answers is dropped after 64*T1 (the client has given up by then),
    so a stuck TU cannot make the transaction table grow without bound.
    """

    __slots__ = ()

    def start(self, now: float) -> list[Event]:
        self._timers["abandon"] = now + self.timers.timeout
        return []

    def handle_message(self, request: SipRequest, now: float) -> list[Event]:
        if self.state is TransactionState.TRYING or not self._last:
            return []
        if self.state is TransactionState.TERMINATED:
            return []
        return [Send(self._last, self.addr)]

    def respond(self, response: SipResponse, now: float) -> list[Event]:
        if self.state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            raise TransactionError(f"cannot respond in state {self.state.value}")
        events: list[Event] = [self._remember(response)]
        if response.status < 200:
            self.state = TransactionState.PROCEEDING
            return events
        self.state = TransactionState.COMPLETED
        self._timers.pop("abandon", None)
        if self.reliable:
            self._terminate(events)
        else:
            self._timers["J"] = now + self.timers.timeout
        return events

    def _fire(self, name: str, now: float, events: list[Event]) -> None:
        if name == "J":
            self._terminate(events)
        elif name == "abandon":
            self._terminate(events, timeout=True)


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.1 (figure 7) with RFC 6026: timers G, H, I, L, the 2xx retransmission
    of §13.3.1.4 (folded in here so the dialog layer need not run a timer), the 200 ms
    automatic 100 Trying, and giving up on a TU silent for `Timers.invite_answer` seconds."""

    __slots__ = ("acked",)

    def __init__(
        self,
        request: SipRequest,
        addr: Address,
        *,
        reliable: bool = False,
        timers: Timers | None = None,
        key: tuple[str, ...] = (),
    ) -> None:
        super().__init__(request, addr, reliable=reliable, timers=timers, key=key)
        self.state = TransactionState.PROCEEDING
        self.acked = False

    def start(self, now: float) -> list[Event]:
        self._timers["trying"] = now + self.timers.trying
        self._timers["abandon"] = now + self.timers.invite_answer
        return []

    def _send_trying(self) -> Send:
        return self._remember(make_response(self.request, 100))

    def handle_message(self, request: SipRequest, now: float) -> list[Event]:
        state = self.state
        if request.method == "ACK":
            if state is TransactionState.COMPLETED:
                self.state = TransactionState.CONFIRMED
                self._timers.clear()
                events: list[Event] = []
                if self.reliable:
                    self._terminate(events)
                else:
                    self._timers["I"] = now + self.timers.t4
                return events
            return []
        if state is TransactionState.PROCEEDING:
            if not self._last:
                self._timers.pop("trying", None)
                return [self._send_trying()]
            return [Send(self._last, self.addr)]
        if state is TransactionState.COMPLETED:
            return [Send(self._last, self.addr)]
        return []  # Accepted, Confirmed: absorb

    def respond(self, response: SipResponse, now: float) -> list[Event]:
        state = self.state
        status = response.status
        if state is TransactionState.ACCEPTED and 200 <= status < 300:
            return [self._remember(response)]  # the TU may re-send its 2xx
        if state is not TransactionState.PROCEEDING:
            raise TransactionError(f"cannot respond in state {state.value}")
        self._timers.pop("trying", None)
        events: list[Event] = [self._remember(response)]
        if status < 200:
            return events
        self._timers.pop("abandon", None)
        timers = self.timers
        if status < 300:
            self.state = TransactionState.ACCEPTED
            self._timers["L"] = now + timers.timeout
            if not self.reliable:
                self._interval = timers.t1
                self._timers["2xx"] = now + self._interval
            return events
        self.state = TransactionState.COMPLETED
        if not self.reliable:
            self._interval = timers.t1
            self._timers["G"] = now + self._interval
        self._timers["H"] = now + timers.timeout
        return events

    def ack_2xx(self, now: float) -> list[Event]:
        """The ACK for our 2xx arrived (matched by the layer): stop retransmitting."""
        self.acked = True
        self._timers.pop("2xx", None)
        return []

    def _fire(self, name: str, now: float, events: list[Event]) -> None:
        if name == "trying":
            if self.state is TransactionState.PROCEEDING and not self._last:
                events.append(self._send_trying())
        elif name in ("G", "2xx"):
            events.append(Send(self._last, self.addr))
            self._interval = min(2 * self._interval, self.timers.t2)
            self._timers[name] = now + self._interval
        elif name == "H":
            self._terminate(events, timeout=True)
        elif name == "I":
            self._terminate(events)
        elif name == "L":
            self._terminate(events, timeout=not self.acked)
        elif name == "abandon":
            self._terminate(events, timeout=True)


# -- keys and helper requests ----------------------------------------------------------------


def _sent_by(via: str) -> str:
    sent = via.partition(";")[0].split()
    return sent[-1].lower() if sent else ""


def client_transaction_key(message: SipRequest | SipResponse) -> tuple[str, ...]:
    """(branch, CSeq method): matches a response to the client transaction (§17.1.3)."""
    branch = message.branch
    if not branch:
        raise ValueError("the top Via has no branch")
    return (branch, message.cseq[1])


def server_transaction_key(request: SipRequest) -> tuple[str, ...]:
    """Key of the server transaction a request belongs to (§17.2.3).

    With an RFC 3261 branch: (branch, sent-by, method, ACK counted as INVITE). Without the
    magic cookie (RFC 2543 devices): Call-ID, CSeq number, method, From tag, sent-by, branch.
    """
    via = request.top_via or ""
    branch = header_param(via, "branch") or ""
    method = "INVITE" if request.method == "ACK" else request.method
    if branch.startswith(BRANCH_MAGIC):
        return (branch, _sent_by(via), method)
    return (
        "rfc2543",
        request.call_id,
        str(request.cseq[0]),
        method,
        request.from_tag or "",
        _sent_by(via),
        branch,
    )


def _copy_headers(request: SipRequest, names: Iterable[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name in names:
        for value in request.headers.get_lines(name):
            out.append((name, value))
    return out


def make_error_ack(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK for a 300-699 answer to `invite` (§17.1.1.3): same branch, To from the response."""
    via = invite.top_via or ""
    headers = Headers([("Via", via)])
    for name, value in _copy_headers(invite, ("From",)):
        headers.add(name, value)
    headers.add("To", response.headers.get("To") or invite.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq[0]} ACK")
    headers.add("Max-Forwards", "70")
    for name, value in _copy_headers(invite, ("Route",)):
        headers.add(name, value)
    return SipRequest("ACK", invite.uri, headers)


def make_cancel(invite: SipRequest) -> SipRequest:
    """The CANCEL for a pending `invite` (§9.1): same Request-URI, top Via, Call-ID, From,
    To, CSeq number and Route."""
    headers = Headers([("Via", invite.top_via or "")])
    for name, value in _copy_headers(invite, ("From", "To")):
        headers.add(name, value)
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq[0]} CANCEL")
    headers.add("Max-Forwards", "70")
    for name, value in _copy_headers(invite, ("Route",)):
        headers.add(name, value)
    return SipRequest("CANCEL", invite.uri, headers)


# -- the layer -------------------------------------------------------------------------------


class TransactionLayer:
    """All transactions of one endpoint, matched and timed together.

        events = layer.receive(parse_message(data), addr, now)
        for event in events: ...   # Send -> write; RequestReceived -> TU; ...
        events = layer.respond(event.transaction, make_response(...), now)
        txn, events = layer.send_request(request, addr, now)
        layer.handle_timer(now) at layer.next_deadline()

    `max_server_transactions` bounds memory under a request storm: past it, new requests
    are answered statelessly with 503 and Retry-After.
    """

    __slots__ = (
        "_accepted",
        "_client",
        "_heap",
        "_seq",
        "_server",
        "check_response_source",
        "foreign_responses",
        "max_server_transactions",
        "timers",
    )

    def __init__(
        self, *, timers: Timers | None = None, max_server_transactions: int | None = None
    ) -> None:
        self.timers = timers if timers is not None else Timers()
        self.max_server_transactions = max_server_transactions
        self._client: dict[tuple[str, ...], ClientTransaction] = {}
        self._server: dict[tuple[str, ...], ServerTransaction] = {}
        self._accepted: dict[tuple[str, int, str], InviteServerTransaction] = {}
        self._heap: list[tuple[float, int, Transaction]] = []
        self._seq = 0
        #: Take a response only from the address its request went to. The platform sends only to
        #: addresses it learned from packets, so they compare exactly; an answer from anywhere
        #: else (someone who saw the branch) is dropped and counted.
        self.check_response_source = False
        self.foreign_responses = 0

    def __len__(self) -> int:
        return len(self._client) + len(self._server)

    @property
    def client_transactions(self) -> int:
        return len(self._client)

    @property
    def server_transactions(self) -> int:
        return len(self._server)

    # -- incoming ----------------------------------------------------------------------------

    def receive(
        self,
        message: SipRequest | SipResponse,
        addr: Address,
        now: float,
        *,
        reliable: bool = False,
    ) -> list[Event]:
        """Feed one parsed message that arrived from `addr`."""
        if isinstance(message, SipResponse):
            return self._receive_response(message, addr, now)
        return self._receive_request(message, addr, now, reliable)

    def _receive_response(self, response: SipResponse, addr: Address, now: float) -> list[Event]:
        branch = response.branch
        cseq_method = response.cseq[1]
        txn = self._client.get((branch, cseq_method)) if branch else None
        if txn is not None and self.check_response_source and txn.addr != addr:
            self.foreign_responses += 1
            return []
        if txn is None:
            if cseq_method == "INVITE" and 200 <= response.status < 300:
                return [ResponseReceived(response, None)]
            return []
        return self._after(txn, txn.handle_message(response, now))

    def _receive_request(
        self, request: SipRequest, addr: Address, now: float, reliable: bool
    ) -> list[Event]:
        key = server_transaction_key(request)
        txn = self._server.get(key)
        if request.method == "ACK":
            if isinstance(txn, InviteServerTransaction) and txn.state in (
                TransactionState.COMPLETED,
                TransactionState.CONFIRMED,
            ):
                return self._after(txn, txn.handle_message(request, now))
            accepted = self._accepted.get(
                (request.call_id, request.cseq[0], request.from_tag or "")
            )
            events: list[Event] = []
            if accepted is not None:
                events.extend(accepted.ack_2xx(now))
            events.append(RequestReceived(request, addr, None))
            return events
        if txn is not None:
            return self._after(txn, txn.handle_message(request, now))
        limit = self.max_server_transactions
        if limit is not None and len(self._server) >= limit:
            busy = make_response(request, 503, headers=[("Retry-After", "5")])
            return [Send(busy.serialize(), addr)]
        new: ServerTransaction
        if request.method == "INVITE":
            new = InviteServerTransaction(
                request, addr, reliable=reliable, timers=self.timers, key=key
            )
        else:
            new = NonInviteServerTransaction(
                request, addr, reliable=reliable, timers=self.timers, key=key
            )
        self._server[key] = new
        events = [RequestReceived(request, addr, new)]
        events.extend(self._after(new, new.start(now)))
        return events

    # -- outgoing ----------------------------------------------------------------------------

    def send_request(
        self, request: SipRequest, addr: Address, now: float, *, reliable: bool = False
    ) -> tuple[ClientTransaction, list[Event]]:
        """Start a client transaction for `request` (its top Via must carry a new branch)."""
        if request.method == "ACK":
            raise TransactionError("ACK is not sent in a transaction; send its bytes directly")
        txn: ClientTransaction
        if request.method == "INVITE":
            txn = InviteClientTransaction(request, addr, reliable=reliable, timers=self.timers)
        else:
            txn = NonInviteClientTransaction(request, addr, reliable=reliable, timers=self.timers)
        if txn.key in self._client:
            raise TransactionError(f"a client transaction with branch {txn.key[0]} exists")
        self._client[txn.key] = txn
        return txn, self._after(txn, txn.start(now))

    def respond(
        self, transaction: ServerTransaction, response: SipResponse, now: float
    ) -> list[Event]:
        """Answer through a server transaction handed out in `RequestReceived`."""
        events = transaction.respond(response, now)
        if (
            isinstance(transaction, InviteServerTransaction)
            and transaction.state is TransactionState.ACCEPTED
        ):
            request = transaction.request
            self._accepted[(request.call_id, request.cseq[0], request.from_tag or "")] = transaction
        return self._after(transaction, events)

    def find_server_transaction(self, request: SipRequest) -> ServerTransaction | None:
        return self._server.get(server_transaction_key(request))

    def find_cancelled(self, cancel: SipRequest) -> InviteServerTransaction | None:
        """The INVITE server transaction a CANCEL refers to (§9.2), if still there."""
        key = server_transaction_key(cancel)
        if key[0] == "rfc2543":  # (marker, call-id, cseq, method, from tag, sent-by, branch)
            invite_key = (*key[:3], "INVITE", *key[4:])
        else:  # (branch, sent-by, method)
            invite_key = (key[0], key[1], "INVITE")
        txn = self._server.get(invite_key)
        return txn if isinstance(txn, InviteServerTransaction) else None

    # -- time --------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, txn = heap[0]
            if txn._heap_deadline == deadline and not txn.terminated:
                return deadline
            heapq.heappop(heap)
        return None

    def handle_timer(self, now: float) -> list[Event]:
        """Fire every transaction timer due at `now`."""
        events: list[Event] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, txn = heapq.heappop(heap)
            if txn._heap_deadline != deadline or txn.terminated:
                continue
            txn._heap_deadline = None
            events.extend(self._after(txn, txn.handle_timer(now)))
        return events

    # -- bookkeeping -------------------------------------------------------------------------

    def _after(self, txn: Transaction, events: list[Event]) -> list[Event]:
        if txn.terminated:
            self._forget(txn)
            return events
        deadline = txn.next_deadline()
        if deadline is None:
            txn._heap_deadline = None
        elif deadline != txn._heap_deadline:
            txn._heap_deadline = deadline
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, txn))
            if len(self._heap) > 64 + 4 * len(self):
                self._compact()
        return events

    def _forget(self, txn: Transaction) -> None:
        txn._heap_deadline = None
        if isinstance(txn, ClientTransaction):
            if self._client.get(txn.key) is txn:
                del self._client[txn.key]
            return
        if self._server.get(txn.key) is txn:
            del self._server[txn.key]
        if isinstance(txn, InviteServerTransaction):
            request = txn.request
            akey = (request.call_id, request.cseq[0], request.from_tag or "")
            if self._accepted.get(akey) is txn:
                del self._accepted[akey]

    def _compact(self) -> None:
        self._heap = [
            entry
            for entry in self._heap
            if entry[2]._heap_deadline == entry[0] and not entry[2].terminated
        ]
        heapq.heapify(self._heap)
