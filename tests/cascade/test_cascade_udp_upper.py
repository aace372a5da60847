"""The platform as a lower platform, against a real upper over UDP (and TCP) on loopback: the
registry in SQLite and PostgreSQL, the links driven by asyncio, the upper a socket of this
test's own that registers us (digest checked with hashlib), asks, subscribes and controls.

What is looked at: the catalog in parts (GB2312, within 1300-byte datagrams, nothing outside
the share), NOTIFY of additions, deletions and status within seconds, DeviceControl forwarded
only when the share allows it, refusals (wrong From, outside the share), the audit under the
upper's name, an upper that restarts, and a share changed under a running link."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gb28181" / "cascade"))
from _cascade_upper import LOCAL_ID, PASSWORD, UPPER_ID, Upper, upper_request
from tests.waiting import until

from xueliang.access.audit import AuditLog
from xueliang.bus import EventBus
from xueliang.cascade.links import CascadeLinks
from xueliang.cascade.share import Share
from xueliang.cascade.uppers import UpperIn, UpperPatch, UpperService
from xueliang.db.tables import AuditRecord, Channel, Device
from xueliang.gb28181 import manscdp
from xueliang.gb28181.cascade import Backoff
from xueliang.gb28181.sip import SipRequest, SipResponse, StreamFramer, make_response, parse_message
from xueliang.sealing import Sealer

NVR = "34020100001180000001"
#: SIP behaviour, not SQL: one backend (the catalog test and test_cascade_share.py run both).
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def cam(i: int, div: str = "340201", **kw: Any) -> dict[str, Any]:
    return {"id": f"{div}00001310{i:06d}", "name": f"南门广场{i}号", "kind": "camera", "device_id": NVR,
            "department": "公安局", "division_code": div, "point_class": 1, "status": "ON", **kw}


class LiveUpper:
    """The upper's side of the wire: registers us (`Upper`), answers our MESSAGEs and NOTIFYs
    200, and sends what a test asks to wherever we registered from."""

    def __init__(self) -> None:
        self.upper = Upper()
        self.peer: Any = None
        self.parts: list[SipRequest] = []
        self.notifies: list[SipRequest] = []
        self.answers: list[SipResponse] = []
        self.send_raw: Callable[[bytes], None] = lambda data: None
        self.notify_status = 200

    def on_message(self, data: bytes, addr: Any) -> bytes | None:
        msg = parse_message(data)
        if isinstance(msg, SipResponse):
            self.answers.append(msg)
            return None
        if msg.method == "REGISTER":
            self.peer = addr
        if msg.method == "NOTIFY":
            self.notifies.append(msg)
            return make_response(msg, self.notify_status, to_tag="up1").serialize()
        if msg.method == "MESSAGE" and b"<Response>" in msg.body:
            self.parts.append(msg)
            return make_response(msg, 200, to_tag="up1").serialize()
        return self.upper.handle(msg, asyncio.get_running_loop().time())

    def catalog(self, sn: int) -> list[dict[str, str]]:
        out = []
        for p in self.parts:
            m = manscdp.decode(p.body)
            if m.cmd_type == "Catalog" and m.sn == sn:
                out += m.items
        return out

    def bodies(self, cmd: str) -> list[manscdp.ManscdpMessage]:
        return [m for m in (manscdp.decode(p.body) for p in self.parts) if m.cmd_type == cmd]


class _UdpUpper(asyncio.DatagramProtocol):
    def __init__(self, live: LiveUpper) -> None:
        self.live = live

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]
        self.live.send_raw = lambda data: self.transport.sendto(data, self.live.peer)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        back = self.live.on_message(data, addr)
        if back is not None:
            self.transport.sendto(back, addr)




class RecordingDevices:
    """Stands in for the devices (the signalling service's DeviceCommands): records the commands
    the cascade forwards. The device side of PTZ has its own tests (tests/gb28181)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    async def ptz(self, device_id: str, channel_id: str, ptz_cmd: str) -> dict[str, Any]:
        self.calls.append(("ptz", device_id, channel_id, ptz_cmd))
        return {}

    async def control(self, device_id: str, target: str, command: str) -> dict[str, Any]:
        self.calls.append(("control", device_id, target, command))
        return {"result": "OK"}


@pytest.fixture
async def world(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[dict[str, Any]]:
    bus = EventBus()
    await bus.start()
    service = UpperService(sessions, Sealer(b"cascade-test-secret-0123456789"), bus)
    audit = AuditLog(sessions, None, flush_seconds=0.05)
    await audit.start()
    devices = RecordingDevices()
    links = CascadeLinks(service, local_id=LOCAL_ID, sip_host="127.0.0.1", audit=audit,
                         backoff=Backoff(initial=0.5, maximum=1.0, jitter=0.0), platform_name="市级平台")
    links.devices = devices  # type: ignore[assignment]
    async with sessions() as s:
        s.add(Device(id=NVR, name="NVR", online=True))
        await s.flush()
        for i in range(120):
            s.add(Channel(**cam(i, "340201" if i < 100 else "340301")))
        await s.commit()
    await links.start()
    live = LiveUpper()
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: _UdpUpper(live),
                                                                            local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    yield {"bus": bus, "service": service, "links": links, "live": live, "port": port, "audit": audit,
           "devices": devices, "sessions": sessions}
    await links.stop()
    transport.close()
    await audit.stop()
    await bus.stop()


async def connect(w: dict[str, Any], share: dict[str, Any], **kw: Any) -> int:
    row = await w["service"].create(UpperIn(name="province", sip_id=UPPER_ID, host="127.0.0.1", port=w["port"],
                                            password=PASSWORD, keepalive_interval=kw.pop("keepalive_interval", 30),
                                            share=Share.model_validate(share), **kw))
    await w["links"].settled()
    await until(lambda: w["links"].status(row)["state"] == "registered")
    return int(row.id)


async def audit_rows(w: dict[str, Any]) -> list[AuditRecord]:
    await w["audit"].flush()
    async with w["sessions"]() as s:
        return list((await s.scalars(select(AuditRecord).order_by(AuditRecord.seq))).all())


async def test_catalog_in_gb2312_parts_only_the_share_and_audited(world: dict[str, Any]) -> None:
    w, live = world, world["live"]
    await connect(w, {"divisions": ["340201"]})
    live.send_raw(upper_request("MESSAGE", manscdp.encode_query("Catalog", 41, LOCAL_ID)))
    await until(lambda: len(live.catalog(41)) == 100)
    items = live.catalog(41)
    assert sorted(i["DeviceID"] for i in items) == sorted(cam(i)["id"] for i in range(100))
    assert not any(i["DeviceID"].startswith("340301") for i in items)  # outside the share: never shown
    assert {i["Name"] for i in items} == {f"南门广场{i}号" for i in range(100)}
    parts = [p for p in live.parts if manscdp.decode(p.body).sn == 41]
    assert all(b'encoding="GB2312"' in p.body and "南门".encode("gb2312") in p.body for p in parts)
    assert all(len(p.serialize()) <= 1300 for p in parts) and len(parts) > 10
    assert {manscdp.decode(p.body).sum_num for p in parts} == {100}

    live.send_raw(upper_request("MESSAGE", manscdp.encode_query("DeviceInfo", 42, LOCAL_ID)))
    await until(lambda: bool(live.bodies("DeviceInfo")))
    info = manscdp.DeviceInfo.from_message(live.bodies("DeviceInfo")[0])
    assert (info.device_name, info.channel, info.result) == ("市级平台", 100, "OK")
    live.send_raw(upper_request("MESSAGE", manscdp.encode_query("DeviceStatus", 43, cam(110, "340301")["id"])))
    await until(lambda: bool(live.bodies("DeviceStatus")))
    st = manscdp.DeviceStatus.from_message(live.bodies("DeviceStatus")[0])
    assert st.result == "ERROR"  # outside the share: the same as an ID that does not exist

    rows = await audit_rows(w)
    mine = [r for r in rows if r.actor == f"upper:{UPPER_ID}"]
    assert {r.action for r in mine} >= {"cascade.catalog", "cascade.device_info", "cascade.device_status"}
    assert all(r.role == "upper" for r in mine)
    assert [r.outcome for r in mine if r.action == "cascade.device_status"] == ["denied"]


@SQLITE_ONLY
async def test_subscription_notifies_additions_deletions_and_status_within_seconds(world: dict[str, Any]) -> None:
    w, live = world, world["live"]
    await connect(w, {"divisions": ["340201"]})
    live.send_raw(upper_request("SUBSCRIBE", manscdp.encode_query("Catalog", 50, LOCAL_ID),
                                headers=[("Event", "Catalog"), ("Expires", "600")], call_id="sub-a"))
    await until(lambda: any(a.cseq[1] == "SUBSCRIBE" and a.status == 200 for a in live.answers))
    # The initial NOTIFY (RFC 6665 §4.2.1): the shared catalog as it stands, every item an ADD.
    await until(lambda: sum(len(manscdp.decode(n.body).items) for n in live.notifies) == 100)
    initial = list(live.notifies)
    assert {i["Event"] for n in initial for i in manscdp.decode(n.body).items} == {"ADD"}
    assert {manscdp.decode(n.body).sum_num for n in initial} == {100}
    del live.notifies[:]

    def notified() -> list[tuple[str, str]]:
        return [(i["DeviceID"], i["Event"]) for n in live.notifies for i in manscdp.decode(n.body).items]

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with w["sessions"]() as s:
        s.add(Channel(**cam(99999, name="新增点位")))
        await s.execute(delete(Channel).where(Channel.id == cam(1)["id"]))
        await s.execute(update(Channel).where(Channel.id == cam(2)["id"]).values(status="OFF"))
        await s.execute(update(Channel).where(Channel.id == cam(110, "340301")["id"]).values(status="OFF"))
        await s.commit()
    w["bus"].publish("channel.status", cam(2)["id"], status="OFF", device=NVR)
    await until(lambda: len(notified()) >= 3, timeout=5.0)
    took = loop.time() - t0
    assert sorted(notified()) == sorted([(cam(99999)["id"], "ADD"), (cam(1)["id"], "DEL"), (cam(2)["id"], "OFF")])
    assert took < 3.0, took
    n = live.notifies[0]
    assert n.call_id == "sub-a" and (n.headers.get("Subscription-State") or "").startswith("active")
    added = next(i for i in manscdp.decode(n.body).items if i["Event"] == "ADD")
    assert added["Name"] == "新增点位"

    # The device goes offline: every shared channel on it goes OFF for the upper.
    before = len(notified())
    async with w["sessions"]() as s:
        await s.execute(update(Device).where(Device.id == NVR).values(online=False))
        await s.commit()
    w["bus"].publish("device.offline", NVR)
    await until(lambda: len(notified()) >= before + 99)
    assert {e for _, e in notified()[before:]} == {"OFF"}
    assert not any(d.startswith("340301") for d, _ in notified())


@SQLITE_ONLY
async def test_device_control_only_when_shared_for_control(world: dict[str, Any]) -> None:
    w, live = world, world["live"]
    uid = await connect(w, {"divisions": ["340201"]})
    ptz_body = manscdp.encode_control(7, cam(3)["id"], PTZCmd="A50F0100000000B5")

    def statuses() -> list[int]:
        return [a.status for a in live.answers if a.cseq[1] == "MESSAGE"]

    live.send_raw(upper_request("MESSAGE", ptz_body))
    await until(lambda: statuses() == [403])  # viewing only: control refused
    await w["service"].update(uid, UpperPatch(share=Share(divisions=["340201"], control=True)))
    await w["links"].settled()
    live.send_raw(upper_request("MESSAGE", ptz_body))
    await until(lambda: statuses() == [403, 200])
    assert w["devices"].calls == [("ptz", NVR, cam(3)["id"], "A50F0100000000B5")]
    live.send_raw(upper_request("MESSAGE", manscdp.encode_control(8, cam(110, "340301")["id"], PTZCmd="A50F0100000000B5")))
    await until(lambda: statuses() == [403, 200, 404])  # outside the share: not found
    live.send_raw(upper_request("MESSAGE", manscdp.encode_control(9, cam(4)["id"], RecordCmd="Record")))
    await until(lambda: statuses() == [403, 200, 404, 200])
    await until(lambda: bool(live.bodies("DeviceControl")))
    assert manscdp.decode(live.parts[-1].body).fields["Result"] == "OK"
    assert w["devices"].calls[-1] == ("control", NVR, cam(4)["id"], "record_start")
    live.send_raw(upper_request("MESSAGE", ptz_body, from_user="34000000002000000001"))  # wrong From
    await until(lambda: statuses() == [403, 200, 404, 200, 403])
    assert len(w["devices"].calls) == 2

    rows = [r for r in await audit_rows(w) if r.actor == f"upper:{UPPER_ID}"]
    ptz_rows = [(r.outcome, r.status, r.resource_id) for r in rows if r.action == "device.ptz"]
    assert ptz_rows == [("denied", 403, cam(3)["id"]), ("ok", None, cam(3)["id"]),
                        ("denied", 404, cam(110, "340301")["id"])]
    assert any(r.action == "cascade.refused" and r.outcome == "denied" for r in rows)


@SQLITE_ONLY
async def test_an_upper_that_restarts_gets_us_back_and_its_new_subscription(world: dict[str, Any]) -> None:
    w, live = world, world["live"]
    await connect(w, {"all": True}, keepalive_interval=1)
    live.send_raw(upper_request("SUBSCRIBE", manscdp.encode_query("Catalog", 60, LOCAL_ID),
                                headers=[("Event", "Catalog"), ("Expires", "600")], call_id="before"))
    await until(lambda: any(a.cseq[1] == "SUBSCRIBE" for a in live.answers))
    # The upper restarts: it forgets us (keepalives 404) and its dialogs (NOTIFY 481).
    registers = sum(1 for _, r in live.upper.log if r.method == "REGISTER")
    live.upper.keepalive = lambda r: 404
    live.notify_status = 481
    await until(lambda: sum(1 for _, r in live.upper.log if r.method == "REGISTER") > registers)
    live.upper.keepalive = lambda r: 200
    row = (await w["service"].list())[0]
    await until(lambda: w["links"].status(row)["state"] == "registered")
    w["bus"].publish("channel.status", cam(5)["id"], status="OFF")
    async with w["sessions"]() as s:
        await s.execute(update(Channel).where(Channel.id == cam(5)["id"]).values(status="OFF"))
        await s.commit()
    await until(lambda: w["links"].status(row)["subscriptions"] == 0)  # 481: the old dialog ended
    live.notify_status = 200
    live.send_raw(upper_request("SUBSCRIBE", manscdp.encode_query("Catalog", 61, LOCAL_ID),
                                headers=[("Event", "Catalog"), ("Expires", "600")], call_id="after"))
    await until(lambda: w["links"].status(row)["subscriptions"] == 1)
    async with w["sessions"]() as s:
        await s.execute(update(Channel).where(Channel.id == cam(6)["id"]).values(status="OFF"))
        await s.commit()
    w["bus"].publish("channel.status", cam(6)["id"], status="OFF")

    def after() -> list[tuple[str, str]]:
        items = [i for n in live.notifies if n.call_id == "after" for i in manscdp.decode(n.body).items]
        return [(i["DeviceID"], i["Event"]) for i in items]

    await until(lambda: (cam(6)["id"], "OFF") in after())


@SQLITE_ONLY
async def test_a_changed_share_keeps_the_link_and_tells_the_subscriber(world: dict[str, Any]) -> None:
    w, live = world, world["live"]
    uid = await connect(w, {"divisions": ["340201", "340301"]})
    registers = sum(1 for _, r in live.upper.log if r.method == "REGISTER")
    live.send_raw(upper_request("SUBSCRIBE", manscdp.encode_query("Catalog", 70, LOCAL_ID),
                                headers=[("Event", "Catalog"), ("Expires", "600")], call_id="s"))
    await until(lambda: any(a.cseq[1] == "SUBSCRIBE" for a in live.answers))
    await asyncio.sleep(0.6)
    await w["service"].update(uid, UpperPatch(share=Share(divisions=["340201"])))
    await w["links"].settled()

    def deleted() -> list[str]:
        return [i["DeviceID"] for n in live.notifies for i in manscdp.decode(n.body).items if i["Event"] == "DEL"]

    await until(lambda: len(deleted()) >= 20)
    dels = deleted()
    assert sorted(dels) == sorted(cam(i, "340301")["id"] for i in range(100, 120))
    assert sum(1 for _, r in live.upper.log if r.method == "REGISTER") == registers  # no re-registration


@SQLITE_ONLY
async def test_over_tcp_registers_and_answers_a_catalog(world: dict[str, Any]) -> None:
    w = world
    live = LiveUpper()
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        framer = StreamFramer()
        live.send_raw = writer.write
        while data := await reader.read(65536):
            framer.feed(data)
            for m in framer.messages():
                back = live.on_message(m, writer.get_extra_info("peername"))
                if back is not None:
                    writer.write(back)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        row = await w["service"].create(UpperIn(name="tcp-up", sip_id=UPPER_ID, host="127.0.0.1", port=port,
                                                transport="tcp", password=PASSWORD,
                                                share=Share(divisions=["340201"])))
        await w["links"].settled()
        await until(lambda: w["links"].status(row)["state"] == "registered")
        assert w["links"].status(row)["transport"] == "tcp"
        live.send_raw(upper_request("MESSAGE", manscdp.encode_query("Catalog", 80, LOCAL_ID)))
        await until(lambda: len(live.catalog(80)) == 100)
        # Over TCP the parts are big: a few, not dozens.
        assert len([p for p in live.parts if manscdp.decode(p.body).sn == 80]) < 10
        # The upper drops the connection: we dial again and register again.
        before = sum(1 for _, r in live.upper.log if r.method == "REGISTER")
        for wr in writers:
            wr.close()
        await until(lambda: sum(1 for _, r in live.upper.log if r.method == "REGISTER") > before)
        await until(lambda: w["links"].status(row)["state"] == "registered")
    finally:
        server.close()


@SQLITE_ONLY
async def test_alarms_and_positions_reach_an_upper_that_subscribed_for_shared_channels_only(
        world: dict[str, Any]) -> None:
    w, live = world, world["live"]
    mapped = "44030000001310000003"
    await connect(w, {"divisions": ["340201"], "id_map": {cam(3)["id"]: mapped}})
    w["bus"].publish("alarm", cam(3)["id"], priority=1, method=5, time="2026-12-04T10:00:00",
                     description="越界")
    await asyncio.sleep(0.3)
    assert live.notifies == []  # nobody subscribed yet
    body = manscdp.encode_query("Alarm", 90, LOCAL_ID, StartAlarmPriority=1, EndAlarmPriority=4, AlarmMethod=0)
    live.send_raw(upper_request("SUBSCRIBE", body, headers=[("Event", "presence"), ("Expires", "600")],
                                call_id="alarms"))
    pos = manscdp.encode_query("MobilePosition", 91, LOCAL_ID, Interval=5)
    live.send_raw(upper_request("SUBSCRIBE", pos, headers=[("Event", "presence"), ("Expires", "600")],
                                call_id="positions"))
    await until(lambda: sum(1 for a in live.answers if a.cseq[1] == "SUBSCRIBE" and a.status == 200) == 2)
    w["bus"].publish("alarm", cam(110, "340301")["id"], priority=1, method=5, time="2026-12-04T10:00:01")
    w["bus"].publish("alarm", cam(3)["id"], priority=2, method=5, time="2026-12-04T10:00:02", description="越界")
    w["bus"].publish("mobile_position", cam(4)["id"], longitude=117.25, latitude=31.85, speed=3.5)
    await until(lambda: len(live.notifies) >= 2)
    await asyncio.sleep(0.3)
    got = {n.call_id: manscdp.decode(n.body) for n in live.notifies}
    assert set(got) == {"alarms", "positions"} and len(live.notifies) == 2  # the 340301 alarm: not shared
    alarm = manscdp.Alarm.from_message(got["alarms"])
    assert (alarm.device_id, alarm.priority, alarm.description) == (mapped, 2, "越界")  # its number for it
    assert got["positions"].device_id == cam(4)["id"] and got["positions"].fields["Longitude"] == "117.25"
    rows = [r for r in await audit_rows(w) if r.actor == f"upper:{UPPER_ID}"]
    assert [r.resource_id for r in rows if r.action == "cascade.alarm"] == [cam(3)["id"]]


@SQLITE_ONLY
async def test_a_hostile_upper_gets_its_statuses_and_the_link_keeps_serving(world: dict[str, Any]) -> None:
    w, live = world, world["live"]
    uid = await connect(w, {"divisions": ["340201"]})
    junk = [b"\x00\xff" * 100, b"INVITE garbage\r\n\r\n", b"SIP/2.0 200 OK\r\n\r\n",
            upper_request("MESSAGE", b"<Query>" + b"A" * 60_000 + b"</Query>"),  # a huge body
            upper_request("MESSAGE", b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY x "y">]><Query>&x;</Query>'),
            upper_request("MESSAGE", manscdp.encode_query("Catalog", 5, LOCAL_ID), from_user="34000000002000000009")]
    for data in junk:
        live.send_raw(data)
    for i in range(40):  # a subscription flood
        live.send_raw(upper_request("SUBSCRIBE", manscdp.encode_query("Catalog", 100 + i, LOCAL_ID),
                                    headers=[("Event", "Catalog"), ("Expires", "3600")], call_id=f"flood{i}"))
    await until(lambda: sum(1 for a in live.answers if a.cseq[1] == "SUBSCRIBE") == 40)
    subs = [a.status for a in live.answers if a.cseq[1] == "SUBSCRIBE"]
    assert subs.count(200) == 8 and subs.count(503) == 32
    msgs = sorted(a.status for a in live.answers if a.cseq[1] == "MESSAGE")
    assert msgs == [400, 400, 403], msgs  # huge, DOCTYPE; wrong From: garbage got no answer at all
    # still serving: the real catalog query is answered in full
    live.send_raw(upper_request("MESSAGE", manscdp.encode_query("Catalog", 7, LOCAL_ID)))
    await until(lambda: len(live.catalog(7)) == 100)
    row = await w["service"].get(uid)
    st = w["links"].status(row)
    assert st["state"] == "registered" and st["subscriptions"] == 8 and st["refused_requests"] >= 33
    assert live.catalog(5) == []  # the one asked in another's name was never answered


@SQLITE_ONLY
async def test_device_config_refused_with_result_error_unless_control_then_forwarded(world: dict[str, Any]) -> None:
    w, live = world, world["live"]
    sent: list[tuple[str, str, dict[str, Any]]] = []

    async def configure(device: str, target: str, fields: dict[str, Any]) -> dict[str, Any]:
        sent.append((device, target, fields))
        return {"ok": True, "sip_status": 200}

    w["links"].configure = configure
    uid = await connect(w, {"divisions": ["340201"]})
    body = manscdp.encode_control(31, cam(3)["id"], cmd_type="DeviceConfig", BasicParam={"Name": "南门", "Expiration": 3600})

    def answers() -> list[SipResponse]:
        return [a for a in live.answers if a.cseq[1] == "MESSAGE"]

    live.send_raw(upper_request("MESSAGE", body))
    await until(lambda: len(answers()) == 1)
    refused = answers()[0]
    assert refused.status == 403  # viewing only: refused, with a MANSCDP Result of ERROR
    doc = manscdp.decode(refused.body)
    assert (doc.root, doc.cmd_type, doc.sn, doc.fields["Result"]) == ("Response", "DeviceConfig", 31, "ERROR")
    assert sent == []

    await w["service"].update(uid, UpperPatch(share=Share(divisions=["340201"], control=True)))
    await w["links"].settled()
    outside = manscdp.encode_control(32, cam(110, "340301")["id"], cmd_type="DeviceConfig", BasicParam={"Name": "x"})
    live.send_raw(upper_request("MESSAGE", outside))
    await until(lambda: len(answers()) == 2)
    assert answers()[1].status == 404 and sent == []  # outside the share: not found
    live.send_raw(upper_request("MESSAGE", body))
    await until(lambda: len(answers()) == 3 and bool(live.bodies("DeviceConfig")))
    assert answers()[2].status == 200
    assert sent == [(NVR, cam(3)["id"], {"BasicParam": {"Name": "南门", "Expiration": "3600"}})]
    assert live.bodies("DeviceConfig")[-1].fields["Result"] == "OK"
    rows = [(r.action, r.outcome, r.status, r.resource_id) for r in await audit_rows(w)
            if r.actor == f"upper:{UPPER_ID}" and r.action == "cascade.DeviceConfig"]
    assert rows == [("cascade.DeviceConfig", "denied", 403, cam(3)["id"]),
                    ("cascade.DeviceConfig", "denied", 404, cam(110, "340301")["id"]),
                    ("cascade.DeviceConfig", "ok", None, cam(3)["id"])]


def config_control(sn: int, channel: str, sections: str) -> bytes:
    """A DeviceConfig ``<Control>`` with ``sections`` as the upper wrote them (raw XML)."""
    return (f'<?xml version="1.0" encoding="GB2312"?>\r\n<Control>\r\n<CmdType>DeviceConfig</CmdType>\r\n'
            f"<SN>{sn}</SN>\r\n<DeviceID>{channel}</DeviceID>\r\n{sections}\r\n</Control>\r\n").encode("gb2312")


VIDEO_PARAM_OPT = "<VideoParamOpt><DownloadSpeed>1/2/4</DownloadSpeed><Resolution>5/6</Resolution></VideoParamOpt>"
SVAC_ENCODE = ("<SVACEncodeConfig><ROIParam><ROIFlag>1</ROIFlag><ROINumber>2</ROINumber>"
               "<Item><ROISeq>1</ROISeq><TopLeft>10</TopLeft></Item><Item><ROISeq>2</ROISeq><TopLeft>20</TopLeft></Item>"
               "</ROIParam><AudioParam><AudioRecognitionFlag>0</AudioRecognitionFlag></AudioParam></SVACEncodeConfig>")


@SQLITE_ONLY
async def test_device_config_sections_beyond_basic_param_forwarded_only_with_control(world: dict[str, Any]) -> None:
    """VideoParamOpt, SVACEncodeConfig (its ROI Items repeated) and the others reach the device
    as the upper nested them, only where the share allows control and for a shared channel; a
    malformed or unknown section is refused with a reason, and nothing reaches the device."""
    w, live = world, world["live"]
    sent: list[tuple[str, str, dict[str, Any]]] = []

    async def configure(device: str, target: str, fields: dict[str, Any]) -> dict[str, Any]:
        sent.append((device, target, fields))
        return {"ok": True, "sip_status": 200}

    w["links"].configure = configure
    uid = await connect(w, {"divisions": ["340201"]})

    def answers() -> list[SipResponse]:
        return [a for a in live.answers if a.cseq[1] == "MESSAGE"]

    async def ask(body: bytes) -> SipResponse:
        n = len(answers())
        live.send_raw(upper_request("MESSAGE", body))
        await until(lambda: len(answers()) == n + 1)
        return answers()[-1]

    # everything but control: the channel is shared, the section well formed
    refused = await ask(config_control(41, cam(3)["id"], VIDEO_PARAM_OPT))
    assert refused.status == 403 and manscdp.decode(refused.body).fields["Result"] == "ERROR"
    assert sent == []

    await w["service"].update(uid, UpperPatch(share=Share(divisions=["340201"], control=True)))
    await w["links"].settled()
    # control, but a channel outside the share
    assert (await ask(config_control(42, cam(110, "340301")["id"], VIDEO_PARAM_OPT))).status == 404
    # malformed: text where a section's elements go, an unknown section, too deep, empty, twice
    bad = [("<VideoParamOpt>fast</VideoParamOpt>", 400, "is not a configuration section"),
           ("<FirmwareUpgrade><Url>http://x</Url></FirmwareUpgrade>", 501, "FirmwareUpgrade is not a DeviceConfig"),
           ("<VideoParamOpt>" + "<A>" * 8 + "1" + "</A>" * 8 + "</VideoParamOpt>", 400, "nested deeper"),
           ("", 400, "holds no configuration section"),
           (VIDEO_PARAM_OPT * 2, 400, "given twice"),
           ("<BasicParam><Password>x</Password></BasicParam>", 400, "BasicParam takes")]
    for i, (sections, status, why) in enumerate(bad):
        answer = await ask(config_control(50 + i, cam(3)["id"], sections))
        assert (answer.status, why in answer.reason) == (status, True), (sections, answer.status, answer.reason)
    assert sent == []
    # allowed: forwarded as nested, the repeated ROI Items kept in order; the device's answer returns
    ok = await ask(config_control(43, cam(3)["id"], VIDEO_PARAM_OPT + SVAC_ENCODE))
    assert ok.status == 200
    await until(lambda: any(b.sn == 43 for b in live.bodies("DeviceConfig")))
    assert [b.fields["Result"] for b in live.bodies("DeviceConfig") if b.sn == 43] == ["OK"]
    assert sent == [(NVR, cam(3)["id"], {
        "VideoParamOpt": {"DownloadSpeed": "1/2/4", "Resolution": "5/6"},
        "SVACEncodeConfig": {"ROIParam": {"ROIFlag": "1", "ROINumber": "2",
                                          "Item": [{"ROISeq": "1", "TopLeft": "10"}, {"ROISeq": "2", "TopLeft": "20"}]},
                             "AudioParam": {"AudioRecognitionFlag": "0"}}})]
    # what the device then receives is what the upper sent, section by section
    device_body = manscdp.encode_control(7, cam(3)["id"], cmd_type="DeviceConfig", **sent[0][2])
    assert manscdp.config_sections(device_body) == sent[0][2]
    rows = [(r.outcome, r.status) for r in await audit_rows(w)
            if r.actor == f"upper:{UPPER_ID}" and r.action == "cascade.DeviceConfig"]
    assert rows == [("denied", 403), ("denied", 404), *[("denied", st) for _, st, _ in bad], ("ok", None)]


@SQLITE_ONLY
async def test_larger_udp_parts_pack_many_items_and_keep_sum_num(world: dict[str, Any]) -> None:
    """sip.cascade_udp_message: on a network that passes IP fragments, a part carries as many
    items as fit in the larger message; SumNum and the Num of each part stay right."""
    w, live = world, world["live"]
    w["links"].udp_message = 8000
    await connect(w, {"divisions": ["340201"]})
    live.send_raw(upper_request("MESSAGE", manscdp.encode_query("Catalog", 44, LOCAL_ID)))
    await until(lambda: len(live.catalog(44)) == 100)
    parts = [p for p in live.parts if manscdp.decode(p.body).sn == 44]
    sizes = [len(p.serialize()) for p in parts]
    assert max(sizes) <= 8000 and max(sizes) > 4000 and len(parts) <= 10, sizes
    docs = [manscdp.decode(p.body) for p in parts]
    assert {d.sum_num for d in docs} == {100} and sum(len(d.items) for d in docs) == 100
    assert all(f'<DeviceList Num="{len(d.items)}">'.encode() in p.body for d, p in zip(docs, parts, strict=True))
    assert sorted(i["DeviceID"] for i in live.catalog(44)) == sorted(cam(i)["id"] for i in range(100))
