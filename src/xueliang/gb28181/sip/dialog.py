"""SIP dialogs (RFC 3261 §12, RFC 6665 for subscriptions), sans-IO.

A `Dialog` holds what identifies a dialog and what is needed to send requests inside it:
Call-ID, local and remote tags, local and remote CSeq, remote target (the peer's Contact),
route set. In GB/T 28181 dialogs come from INVITE (live view, playback, download: BYE, INFO
with MANSRTSP, ACK for the 2xx, MediaStatus MESSAGE) and from SUBSCRIBE (Catalog, Alarm,
MobilePosition: NOTIFY, refreshing SUBSCRIBE).

Create one with `Dialog.from_response` (we sent the INVITE/SUBSCRIBE), `Dialog.from_request`
(we answered it) or `Dialog.from_notify` (a NOTIFY created the subscription dialog), then
`create_request(...)`, `create_ack(...)`, and feed it in-dialog traffic with
`receive_request` / `receive_response`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from .errors import SipParseError
from .message import Headers, SipRequest, SipResponse
from .uri import parse_name_addr

__all__ = [
    "Dialog",
    "DialogState",
    "dialog_id_of_request",
    "dialog_id_of_response",
]

DialogId = tuple[str, str, str]
"""(Call-ID, local tag, remote tag)."""

_TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class DialogState(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


def dialog_id_of_request(request: SipRequest) -> DialogId:
    """The id, from our side, of the dialog an incoming request belongs to."""
    return (request.call_id, request.to_tag or "", request.from_tag or "")


def dialog_id_of_response(response: SipResponse) -> DialogId:
    """The id, from our side, of the dialog a response to our request belongs to."""
    return (response.call_id, response.from_tag or "", response.to_tag or "")


def _without_tag(value: str) -> str:
    address = parse_name_addr(value)
    address.params.pop("tag", None)
    return str(address)


def _contact_uri(message: SipRequest | SipResponse) -> str | None:
    contacts = message.headers.get_all("Contact")
    if not contacts or contacts[0].strip() == "*":
        return None
    return str(parse_name_addr(contacts[0]).uri)


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str
    """Our address as a name-addr without tag (the From of our requests)."""
    remote_uri: str
    """The peer's address as a name-addr without tag (the To of our requests)."""
    remote_target: str
    """The peer's Contact URI: the Request-URI of our in-dialog requests."""
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 0
    """The last CSeq number we used; `create_request` increments it."""
    remote_cseq: int | None = None
    local_contact: str | None = None
    """Our Contact value, sent in target-refresh requests (INVITE, SUBSCRIBE, NOTIFY...)."""
    state: DialogState = DialogState.CONFIRMED
    is_uac: bool = True
    method: str = "INVITE"
    """The method that created the dialog (INVITE or SUBSCRIBE)."""
    event: str | None = None
    """For a subscription dialog: the Event header value (Catalog, presence...)."""
    invite_cseq: int | None = None
    """CSeq number of the (re-)INVITE whose 2xx `create_ack` acknowledges."""

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    # -- creation ----------------------------------------------------------------------------

    @classmethod
    def from_response(
        cls, request: SipRequest, response: SipResponse, *, local_contact: str | None = None
    ) -> Dialog:
        """UAC side: our INVITE/SUBSCRIBE got a 1xx-with-tag (early) or 2xx (confirmed)."""
        remote_tag = response.to_tag
        local_tag = request.from_tag
        if not remote_tag or not local_tag:
            raise SipParseError("A dialog needs tags on both sides")
        remote_target = _contact_uri(response)
        to_value = response.headers.get("To") or ""
        from_value = request.headers.get("From") or ""
        routes = list(reversed(response.headers.get_all("Record-Route")))
        cseq = request.cseq[0]
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=_without_tag(from_value),
            remote_uri=_without_tag(to_value),
            remote_target=remote_target or str(parse_name_addr(to_value).uri),
            route_set=routes,
            local_cseq=cseq,
            remote_cseq=None,
            local_contact=local_contact or request.headers.get_first("Contact"),
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
            is_uac=True,
            method=request.method,
            event=request.headers.get("Event"),
            invite_cseq=cseq if request.method == "INVITE" else None,
        )

    @classmethod
    def from_request(
        cls,
        request: SipRequest,
        local_tag: str,
        *,
        local_contact: str | None = None,
        early: bool = False,
    ) -> Dialog:
        """UAS side: we answer `request` with a response whose To carries `local_tag`."""
        remote_tag = request.from_tag
        if not remote_tag:
            raise SipParseError("The request's From has no tag")
        from_value = request.headers.get("From") or ""
        to_value = request.headers.get("To") or ""
        remote_target = _contact_uri(request)
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=_without_tag(to_value),
            remote_uri=_without_tag(from_value),
            remote_target=remote_target or str(parse_name_addr(from_value).uri),
            route_set=request.headers.get_all("Record-Route"),
            local_cseq=0,
            remote_cseq=request.cseq[0],
            local_contact=local_contact,
            state=DialogState.EARLY if early else DialogState.CONFIRMED,
            is_uac=False,
            method=request.method,
            event=request.headers.get("Event"),
        )

    @classmethod
    def from_notify(
        cls, subscribe: SipRequest, notify: SipRequest, *, local_contact: str | None = None
    ) -> Dialog:
        """Subscriber side: a NOTIFY for our SUBSCRIBE creates (or confirms) the dialog,
        possibly before the 200 to the SUBSCRIBE arrives (RFC 6665 §4.1.2.4)."""
        remote_tag = notify.from_tag
        local_tag = subscribe.from_tag
        if not remote_tag or not local_tag:
            raise SipParseError("A dialog needs tags on both sides")
        from_value = notify.headers.get("From") or ""
        remote_target = _contact_uri(notify)
        return cls(
            call_id=subscribe.call_id,
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=_without_tag(subscribe.headers.get("From") or ""),
            remote_uri=_without_tag(from_value),
            remote_target=remote_target or str(parse_name_addr(from_value).uri),
            route_set=notify.headers.get_all("Record-Route"),
            local_cseq=subscribe.cseq[0],
            remote_cseq=notify.cseq[0],
            local_contact=local_contact or subscribe.headers.get_first("Contact"),
            state=DialogState.CONFIRMED,
            is_uac=True,
            method="SUBSCRIBE",
            event=subscribe.headers.get("Event"),
        )

    # -- requests inside the dialog ----------------------------------------------------------

    def _request_uri_and_routes(self) -> tuple[str, list[str]]:
        """§12.2.1.1: loose routing when the first route has `lr`, strict routing otherwise."""
        if not self.route_set:
            return self.remote_target, []
        first = parse_name_addr(self.route_set[0])
        if "lr" in first.uri.params:
            return self.remote_target, list(self.route_set)
        first.uri.headers = None
        return str(first.uri), [*self.route_set[1:], f"<{self.remote_target}>"]

    def _build(
        self,
        method: str,
        cseq: int,
        via: str,
        body: bytes,
        content_type: str | None,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] | None,
        max_forwards: int,
    ) -> SipRequest:
        uri, routes = self._request_uri_and_routes()
        extra: list[tuple[str, str]] = []
        if headers is not None:
            extra = list(headers.items() if isinstance(headers, Mapping) else headers)
        out = Headers()
        out.add("Via", via)
        out.add("From", f"{self.local_uri};tag={self.local_tag}")
        out.add("To", f"{self.remote_uri};tag={self.remote_tag}")
        out.add("Call-ID", self.call_id)
        out.add("CSeq", f"{cseq} {method}")
        out.add("Max-Forwards", str(max_forwards))
        for route in routes:
            out.add("Route", route)
        if method in _TARGET_REFRESH and self.local_contact:
            out.add("Contact", self.local_contact)
        if (
            method in ("SUBSCRIBE", "NOTIFY")
            and self.event
            and not any(name.strip().lower() in ("event", "o") for name, _ in extra)
        ):
            out.add("Event", self.event)
        if content_type is not None:
            out.add("Content-Type", content_type)
        for name, value in extra:
            out.add(name, value)
        return SipRequest(method, uri, out, body)

    def create_request(
        self,
        method: str,
        *,
        via: str,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] | None = None,
        max_forwards: int = 70,
    ) -> SipRequest:
        """A request inside the dialog (BYE, INFO, MESSAGE, NOTIFY, SUBSCRIBE, re-INVITE).

        `via` is the full Via value with a fresh branch (see `format_via`). The local CSeq
        is incremented. For ACK use `create_ack`; CANCEL is built from the INVITE.
        """
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"use create_ack / make_cancel for {method}")
        self.local_cseq += 1
        request = self._build(
            method, self.local_cseq, via, body, content_type, headers, max_forwards
        )
        if method == "INVITE":
            self.invite_cseq = self.local_cseq
        elif method == "BYE":
            self.state = DialogState.TERMINATED
        return request

    def create_ack(
        self,
        *,
        via: str,
        cseq: int | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipRequest:
        """The ACK for a 2xx to our INVITE (§13.2.2.4): CSeq number of the INVITE, new branch."""
        number = cseq if cseq is not None else self.invite_cseq
        if number is None:
            raise ValueError("no INVITE to acknowledge in this dialog")
        return self._build("ACK", number, via, body, content_type, None, 70)

    # -- traffic from the peer ---------------------------------------------------------------

    def matches(self, message: SipRequest | SipResponse) -> bool:
        """True when an incoming request or a response to our request is in this dialog."""
        if isinstance(message, SipRequest):
            return dialog_id_of_request(message) == self.id
        return dialog_id_of_response(message) == self.id

    def receive_request(self, request: SipRequest) -> bool:
        """Account for an in-dialog request from the peer (§12.2.2).

        Returns False when it is out of order (its CSeq is below the last one): answer 500.
        Updates the remote target on target-refresh requests, and the state on BYE or a
        NOTIFY with `Subscription-State: terminated`.
        """
        number = request.cseq[0]
        method = request.method
        if method not in ("ACK", "CANCEL"):
            if self.remote_cseq is not None and number < self.remote_cseq:
                return False
            self.remote_cseq = number
        if method in _TARGET_REFRESH:
            target = _contact_uri(request)
            if target is not None:
                self.remote_target = target
        if method == "BYE":
            self.state = DialogState.TERMINATED
        elif method == "NOTIFY":
            substate = request.headers.get("Subscription-State") or ""
            if substate.strip().lower().startswith("terminated"):
                self.state = DialogState.TERMINATED
        return True

    def receive_response(self, response: SipResponse) -> None:
        """Account for a response to a request we sent in the dialog (§12.2.1.2)."""
        status = response.status
        method = response.cseq[1]
        if 200 <= status < 300:
            if self.state is DialogState.EARLY:
                self.state = DialogState.CONFIRMED
            if method in _TARGET_REFRESH:
                target = _contact_uri(response)
                if target is not None:
                    self.remote_target = target
        elif status in (408, 481):
            self.state = DialogState.TERMINATED
