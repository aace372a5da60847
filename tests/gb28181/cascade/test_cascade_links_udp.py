"""The platform's links to upper platforms, end to end over real UDP on loopback: rows in the
database (UpperService), links driven by asyncio (CascadeLinks), and an upper of the test's
own (_cascade_upper.Upper: 401 challenge, digest checked with hashlib, 200, keepalives)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from _cascade_upper import LOCAL_ID, PASSWORD, UPPER_ID, Upper
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.waiting import until

from xueliang.cascade.links import CascadeLinks
from xueliang.cascade.uppers import UpperIn, UpperPatch, UpperService
from xueliang.errors import NotFound
from xueliang.gb28181.cascade import Backoff
from xueliang.gb28181.sip import SipRequest, parse_message
from xueliang.sealing import Sealer


class UdpUpper(asyncio.DatagramProtocol):
    """`Upper` over a real UDP socket."""

    def __init__(self, upper: Upper) -> None:
        self.upper = upper
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        msg = parse_message(data)
        if not isinstance(msg, SipRequest):
            return
        answer = self.upper.handle(msg, asyncio.get_running_loop().time())
        if answer is not None and self.transport is not None:
            self.transport.sendto(answer, addr)

    def registers(self) -> list[tuple[float, SipRequest]]:
        return [(t, r) for t, r in self.upper.log if r.method == "REGISTER"]

    def keepalives(self) -> list[tuple[float, SipRequest]]:
        return [(t, r) for t, r in self.upper.log if r.method == "MESSAGE"]


async def serve(upper: Upper) -> tuple[UdpUpper, int, asyncio.DatagramTransport]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(lambda: UdpUpper(upper), local_addr=("127.0.0.1", 0))
    return proto, transport.get_extra_info("sockname")[1], transport


@pytest.fixture
async def service(sessions: async_sessionmaker[AsyncSession]) -> UpperService:
    return UpperService(sessions, Sealer(b"cascade-test-secret-0123456789"))


@pytest.fixture
async def links(service: UpperService) -> AsyncIterator[CascadeLinks]:
    cl = CascadeLinks(service, local_id=LOCAL_ID, sip_host="127.0.0.1",
                      backoff=Backoff(initial=1.0, maximum=4.0, jitter=0.0))
    await cl.start()
    yield cl
    await cl.stop()


def upper_in(port: int, **kw: Any) -> UpperIn:
    values: dict[str, Any] = {"name": "province", "sip_id": UPPER_ID, "host": "127.0.0.1", "port": port,
                              "password": PASSWORD, "keepalive_interval": 1, "register_expires": 3600}
    values.update(kw)
    return UpperIn(**values)


async def test_registers_keeps_alive_and_unregisters_when_disabled(service: UpperService,
                                                                   links: CascadeLinks) -> None:
    proto, port, transport = await serve(Upper())
    try:
        row = await service.create(upper_in(port))
        await links.settled()
        stored = await service.get(row.id)
        assert stored.password.startswith("v1:") and PASSWORD not in stored.password  # sealed at rest
        await until(lambda: links.status(stored)["state"] == "registered")
        assert proto.upper.verified == [True]  # the digest, checked by the upper's own hashlib code
        first = proto.registers()[0][1]
        assert first.headers.get("Authorization") is None and str(first.headers.get("From")).find(LOCAL_ID) >= 0
        st = links.status(stored)
        assert st["registered_until"] is not None and st["last_error"] is None

        await until(lambda: len(proto.keepalives()) >= 2, timeout=5.0)
        await until(lambda: links.status(stored)["keepalives_answered"] >= 2)
        assert b"Keepalive" in proto.keepalives()[0][1].body

        before = len(proto.registers())
        row = await service.update(row.id, UpperPatch(enabled=False))
        await links.settled()
        last = proto.registers()[before:]
        assert [r.expires for _, r in last][-1] == 0, [r.expires for _, r in last]
        st = links.status(row)
        assert st["state"] == "closed" and st["unregistered"] is True
        n = len(proto.upper.log)
        await asyncio.sleep(1.5)
        assert len(proto.upper.log) == n  # nothing more once closed: no keepalive, no REGISTER
    finally:
        transport.close()


async def test_wrong_password_backs_off_then_a_changed_row_restarts_the_link(service: UpperService,
                                                                              links: CascadeLinks) -> None:
    proto, port, transport = await serve(Upper(password="not-" + PASSWORD))
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        row = await service.create(upper_in(port))
        await links.settled()
        await asyncio.sleep(3.5)
        in_window = [t for t, _ in proto.registers() if t - t0 <= 3.5]
        # Rounds at ~0, 1 and 3 s (back-off 1, 2): two REGISTERs each (401, answer, 401).
        # A storm would be hundreds.
        assert 2 <= len(in_window) <= 8, len(in_window)
        assert proto.upper.verified and not any(proto.upper.verified)
        st = links.status(row)
        assert st["state"] in ("backing-off", "registering")
        assert st["consecutive_failures"] >= 2 and st["last_status"] == 401 and st["last_error"]
        assert st["next_action_at"] is not None

        proto.upper.password = "not-" + PASSWORD + "-either"
        row = await service.update(row.id, UpperPatch(password="not-" + PASSWORD + "-either"))
        await links.settled()
        await until(lambda: links.status(row)["state"] == "registered")
        assert links.status(row)["consecutive_failures"] == 0
    finally:
        # registered at the end: the links stop (and unregister) while the upper still answers,
        # rather than in the fixture's teardown, after the socket closed, waiting out the timeout
        await links.stop()
        transport.close()


async def test_deleted_upper_unregisters_and_is_gone(service: UpperService, links: CascadeLinks) -> None:
    proto, port, transport = await serve(Upper())
    try:
        row = await service.create(upper_in(port, keepalive_interval=60))
        await links.settled()
        await until(lambda: links.status(row)["state"] == "registered")
        await service.delete(row.id)
        await links.settled()
        assert proto.registers()[-1][1].expires == 0
        assert row.id not in links.drivers
        with pytest.raises(NotFound):
            await service.get(row.id)
    finally:
        transport.close()


async def test_bound_to_every_address_the_contact_names_the_route_to_the_upper(service: UpperService) -> None:
    links = CascadeLinks(service, local_id=LOCAL_ID, sip_host="0.0.0.0")
    await links.start()
    proto, port, transport = await serve(Upper())
    try:
        row = await service.create(upper_in(port, keepalive_interval=60))
        await links.settled()
        await until(lambda: links.status(row)["state"] == "registered")
        contact = str(proto.registers()[0][1].headers.get("Contact"))
        assert f"@127.0.0.1:{links.drivers[row.id].local_port}" in contact, contact
    finally:
        await links.stop()
        transport.close()


async def test_tcp_upper_nobody_listening_backs_off_with_the_reason(service: UpperService,
                                                                     links: CascadeLinks) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    row = await service.create(upper_in(port, transport="TCP"))
    await links.settled()
    assert row.transport == "tcp"
    await until(lambda: links.status(row)["state"] == "backing-off")
    st = links.status(row)
    assert st["transport"] == "tcp" and "cannot connect" in st["last_error"] and st["consecutive_failures"] >= 1


async def test_no_upper_runs_nothing(service: UpperService, links: CascadeLinks) -> None:
    assert links.drivers == {} and await service.list() == []
