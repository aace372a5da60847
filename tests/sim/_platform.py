"""A tiny fake GB/T 28181 platform for the simulator tests, on top of ``SipEndpoint``.

Only what the tests need: a digest registrar (with or without qop), a record of every
MESSAGE/NOTIFY that arrives, and helpers to send queries, SUBSCRIBE and INVITE to a device.
It does not depend on the real registrar.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from xueliang.gb28181 import manscdp
from xueliang.gb28181.endpoint import Incoming, SipEndpoint
from xueliang.gb28181.manscdp import ManscdpMessage
from xueliang.gb28181.sip import (
    Dialog,
    NonceFactory,
    SipParseError,
    SipRequest,
    SipResponse,
    generate_call_id,
    generate_tag,
    make_challenge,
    make_request,
    parse_authorization,
    verify,
)

SERVER_ID = "34020000002000000001"
DOMAIN = "3402000000"


@dataclass
class Registration:
    device_id: str
    addr: tuple[str, int]
    transport: str
    call_id: str
    expires: int
    contact: str
    version: str | None
    count: int = 1


@dataclass
class Received:
    device_id: str
    method: str
    msg: ManscdpMessage
    body: bytes
    request: SipRequest
    at: float = field(default_factory=time.monotonic)


class FakePlatform:
    def __init__(
        self, password: str = "12345678", *, qop: bool = True, host: str = "127.0.0.1"
    ) -> None:
        self.password = password
        self.qop = qop
        self.host = host
        self.ep = SipEndpoint(host, 0, self._handle, udp=True, tcp=True, user_agent="fake-platform")
        self.nonces = NonceFactory()
        self.registrations: dict[str, Registration] = {}
        self.register_log: list[tuple[str, int, str]] = []  # (device id, status, call id)
        self.keepalives: Counter[str] = Counter()
        self.received: list[Received] = []
        self._cseq = 0
        self._sn = 100
        self._changed = asyncio.Event()
        self.on_message: Callable[[Incoming, ManscdpMessage], bool] | None = None

    async def start(self) -> None:
        for _ in range(20):  # UDP got a port whose number another process holds on TCP
            try:
                await self.ep.start()
                return
            except OSError:
                await self.ep.stop()
                self.ep = SipEndpoint(self.host, 0, self._handle, user_agent="fake-platform")
        raise OSError("no port for the fake platform")

    async def stop(self) -> None:
        await self.ep.stop()

    @property
    def address(self) -> str:
        return f"{self.ep.host}:{self.ep.port}"

    # -- waiting -------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("condition not met in time")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.05))
            except TimeoutError:
                pass

    def messages(
        self, cmd_type: str, device_id: str | None = None, sn: int | None = None
    ) -> list[Received]:
        return [
            r
            for r in self.received
            if r.msg.cmd_type == cmd_type
            and (device_id is None or r.device_id == device_id)
            and (sn is None or r.msg.sn == sn)
        ]

    # -- incoming ------------------------------------------------------------------------------

    def _handle(self, inc: Incoming) -> None:
        req = inc.request
        if req.method == "REGISTER":
            self._register(inc)
        elif req.method in ("MESSAGE", "NOTIFY"):
            self._message(inc)
        elif req.method == "ACK":
            pass
        else:
            inc.respond(200)
        self._changed.set()

    def _register(self, inc: Incoming) -> None:
        req = inc.request
        user = req.headers.get("From") or ""
        device_id = user.split("sip:", 1)[1].split("@", 1)[0]
        expires_text = req.headers.get("Expires")
        if expires_text is None:
            inc.respond(400, "Missing Expires")
            return
        auth = req.headers.get("Authorization")
        if auth is None:
            challenge = make_challenge(DOMAIN, self.nonces.issue(time.time()), qop=self.qop)
            inc.respond(401, headers=[("WWW-Authenticate", challenge)])
            self.register_log.append((device_id, 401, req.call_id))
            return
        try:
            creds = parse_authorization(auth)
        except SipParseError:
            inc.respond(400)
            return
        if not (
            self.nonces.check(creds.nonce, time.time()) and verify(creds, "REGISTER", self.password)
        ):
            inc.respond(403)
            self.register_log.append((device_id, 403, req.call_id))
            return
        expires = int(expires_text)
        date = dt.datetime.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        contact = req.headers.get("Contact") or ""
        inc.respond(200, headers=[("Date", date), ("Contact", contact), ("Expires", str(expires))])
        self.register_log.append((device_id, 200, req.call_id))
        if expires == 0:
            self.registrations.pop(device_id, None)
            return
        old = self.registrations.get(device_id)
        self.registrations[device_id] = Registration(
            device_id,
            inc.addr,
            inc.transport,
            req.call_id,
            expires,
            contact,
            req.headers.get("X-GB-Ver"),
            (old.count + 1) if old else 1,
        )

    def _message(self, inc: Incoming) -> None:
        req = inc.request
        try:
            msg = manscdp.decode(req.body)
        except manscdp.ManscdpError:
            inc.respond(400)
            return
        if self.on_message is not None and not self.on_message(inc, msg):
            return
        inc.respond(200)
        if msg.cmd_type == "Keepalive":
            self.keepalives[msg.device_id] += 1
            return
        self.received.append(Received(msg.device_id, req.method, msg, req.body, req))

    # -- outgoing ------------------------------------------------------------------------------

    def next_sn(self) -> int:
        self._sn += 1
        return self._sn

    def _request(
        self,
        method: str,
        target: str,
        reg: Registration,
        body: bytes = b"",
        content_type: str | None = "Application/MANSCDP+xml",
        headers: list[tuple[str, str]] | None = None,
    ) -> SipRequest:
        self._cseq += 1
        host, port = reg.addr
        extra = list(headers or [])
        if content_type:
            extra.insert(0, ("Content-Type", content_type))
        return make_request(
            method,
            f"sip:{target}@{host}:{port}",
            via=self.ep.via(reg.transport),
            from_=f"<sip:{SERVER_ID}@{DOMAIN}>;tag={generate_tag()}",
            to=f"<sip:{target}@{DOMAIN}>",
            call_id=generate_call_id(),
            cseq=self._cseq,
            contact=f"<sip:{SERVER_ID}@{self.ep.hostport}>",
            headers=extra,
            body=body,
        )

    async def send(
        self, device_id: str, body: bytes, target: str | None = None, timeout: float = 5.0
    ) -> SipResponse:
        reg = self.registrations[device_id]
        req = self._request("MESSAGE", target or device_id, reg, body)
        return await self.ep.request(req, reg.addr, reg.transport, timeout=timeout)

    async def query(
        self, device_id: str, cmd_type: str, target: str | None = None, **fields: manscdp.FieldValue
    ) -> int:
        """Send a Query; returns its SN."""
        sn = self.next_sn()
        body = manscdp.encode_query(cmd_type, sn, target or device_id, **fields)
        resp = await self.send(device_id, body, target)
        assert resp.status == 200, resp.status
        return sn

    async def control(
        self, device_id: str, target: str | None = None, **fields: manscdp.FieldValue
    ) -> int:
        sn = self.next_sn()
        body = manscdp.encode_control(sn, target or device_id, **fields)
        resp = await self.send(device_id, body, target)
        assert resp.status == 200, resp.status
        return sn

    async def subscribe(
        self, device_id: str, cmd_type: str = "Catalog", expires: int = 600
    ) -> tuple[SipResponse, Dialog, SipRequest]:
        reg = self.registrations[device_id]
        body = manscdp.encode_query(cmd_type, self.next_sn(), device_id)
        req = self._request(
            "SUBSCRIBE",
            device_id,
            reg,
            body,
            headers=[("Event", cmd_type), ("Expires", str(expires))],
        )
        resp = await self.ep.request(req, reg.addr, reg.transport, timeout=5)
        return resp, Dialog.from_response(req, resp), req

    async def invite(
        self, device_id: str, channel_id: str, sdp: str, timeout: float = 5.0
    ) -> tuple[SipResponse, Dialog | None, Registration]:
        reg = self.registrations[device_id]
        req = self._request(
            "INVITE",
            channel_id,
            reg,
            sdp.encode(),
            content_type="APPLICATION/SDP",
            headers=[("Subject", f"{channel_id}:0,{SERVER_ID}:0")],
        )
        resp = await self.ep.request(req, reg.addr, reg.transport, timeout=timeout)
        if not resp.is_success:
            return resp, None, reg
        dialog = Dialog.from_response(req, resp)
        ack = dialog.create_ack(via=self.ep.via(reg.transport))
        self.ep.send(ack, reg.addr, reg.transport)
        return resp, dialog, reg

    async def in_dialog(
        self,
        dialog: Dialog,
        reg: Registration,
        method: str,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipResponse:
        req = dialog.create_request(
            method, via=self.ep.via(reg.transport), body=body, content_type=content_type
        )
        return await self.ep.request(req, reg.addr, reg.transport, timeout=5)
