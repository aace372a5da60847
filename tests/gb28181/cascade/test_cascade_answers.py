"""The link answering its upper, sans-IO: queries, catalog parts, controls, subscriptions and
NOTIFY, the media dispatch point, and every way an upper (or someone posing as it) gets it wrong."""

from __future__ import annotations

import pytest
from _cascade_upper import LOCAL_ID, REALM, UPPER, UPPER_ID, config, registered, upper_request

from xueliang.gb28181 import manscdp
from xueliang.gb28181.cascade import (
    AckReceived,
    ByeReceived,
    CancelReceived,
    CatalogQuery,
    CatalogSent,
    ControlReceived,
    DeviceInfoQuery,
    DeviceStatusQuery,
    InfoReceived,
    InviteReceived,
    Output,
    RecordInfoQuery,
    Refused,
    RequestAnswered,
    Subscribed,
    Unsubscribed,
    UpperLink,
)
from xueliang.gb28181.manscdp import CatalogItem
from xueliang.gb28181.sip import Send, SipRequest, SipResponse, make_response, parse_message


def link(**kw: object) -> UpperLink:
    kw.setdefault("keepalive_interval", 3600.0)  # no keepalive in the way of what is looked at
    lk = UpperLink(config(**kw), seed=7)
    registered(lk)
    return lk


def sent(out: list[Output]) -> list[SipRequest | SipResponse]:
    return [parse_message(o.data) for o in out if isinstance(o, Send)]


def responses(out: list[Output]) -> list[SipResponse]:
    return [m for m in sent(out) if isinstance(m, SipResponse)]


def requests(out: list[Output]) -> list[SipRequest]:
    return [m for m in sent(out) if isinstance(m, SipRequest)]


def events(out: list[Output]) -> list[object]:
    return [o for o in out if not isinstance(o, Send)]


def query(cmd: str, sn: int = 11, device_id: str = LOCAL_ID, encoding: str = "GB2312", **fields: object) -> bytes:
    return manscdp.encode_query(cmd, sn, device_id, encoding=encoding, **fields)  # type: ignore[arg-type]


def ok(req: SipRequest, status: int = 200) -> bytes:
    return make_response(req, status, to_tag="upper-tag").serialize()


def channels(n: int, name: str = "测试点位") -> list[CatalogItem]:
    return [
        CatalogItem(device_id=f"340201000013100{i:05d}", name=f"{name}{i}", manufacturer="海康", civil_code="340201",
                    parent_ids=[LOCAL_ID], status="ON" if i % 2 else "OFF", longitude=117.2, latitude=31.8,
                    ptz_type=1, parental=0, register_way=1, secrecy=0)
        for i in range(n)
    ]


# -- queries -----------------------------------------------------------------------------------


def test_catalog_query_is_answered_200_then_in_parts_within_the_udp_limit_a_window_at_a_time() -> None:
    lk = link()
    out = lk.receive(upper_request("MESSAGE", query("Catalog", sn=77)), 1.0, UPPER)
    assert [r.status for r in responses(out)] == [200]
    (q,) = events(out)
    assert isinstance(q, CatalogQuery) and q.sn == 77 and q.device_id == LOCAL_ID

    items = channels(40)
    out = lk.answer_catalog(q, items, 1.1)
    first = requests(out)
    assert len(first) == lk.config.catalog_window == 16  # the window: the rest wait for answers
    got: list[str] = []
    parts = 0
    pending = list(first)
    t = 1.2
    done: list[CatalogSent] = []
    while pending:
        req = pending.pop(0)
        data = req.serialize()
        assert len(data) <= 1300, len(data)
        assert req.method == "MESSAGE" and req.uri.startswith(f"sip:{UPPER_ID}@")
        msg = manscdp.decode(req.body)
        assert msg.cmd_type == "Catalog" and msg.root == "Response" and msg.sn == 77
        assert msg.sum_num == 40 and msg.list_num == len(msg.items) >= 1
        got += [i["DeviceID"] for i in msg.items]
        parts += 1
        more = lk.receive(ok(req), t, UPPER)
        pending += requests(more)
        done += [e for e in events(more) if isinstance(e, CatalogSent)]
        t += 0.01
    assert got == [i.device_id for i in items]  # every item once, in order
    assert parts > 16 and done == [CatalogSent(77, parts, 40, True, "", False)]
    assert lk.status.catalog_answers == 0


def test_catalog_parts_in_gb2312_and_utf8_carry_the_chinese_names_through() -> None:
    for charset, declared in (("GB2312", b'encoding="GB2312"'), ("UTF-8", b'encoding="UTF-8"')):
        lk = link(charset=charset)
        (q,) = events(lk.receive(upper_request("MESSAGE", query("Catalog", encoding=charset)), 1.0, UPPER))
        assert isinstance(q, CatalogQuery)
        req = requests(lk.answer_catalog(q, channels(1, "南门广场"), 1.1))[0]
        assert declared in req.body
        assert ("南门广场0".encode("gb18030" if charset == "GB2312" else "utf-8")) in req.body
        assert manscdp.decode(req.body).items[0]["Name"] == "南门广场0"


def test_an_empty_catalog_is_one_part_with_sumnum_0() -> None:
    lk = link()
    (q,) = events(lk.receive(upper_request("MESSAGE", query("Catalog")), 1.0, UPPER))
    assert isinstance(q, CatalogQuery)
    (req,) = requests(lk.answer_catalog(q, [], 1.1))
    msg = manscdp.decode(req.body)
    assert msg.sum_num == 0 and msg.items == []
    assert events(lk.receive(ok(req), 1.2, UPPER)) == [CatalogSent(11, 1, 0, True, "", False)]


def test_a_part_the_upper_never_answers_stops_the_answer_after_the_retransmissions() -> None:
    lk = link()
    (q,) = events(lk.receive(upper_request("MESSAGE", query("Catalog")), 1.0, UPPER))
    assert isinstance(q, CatalogQuery)
    out = lk.answer_catalog(q, channels(40), 1.1)
    assert len(requests(out)) == 16
    t = 1.1
    evs: list[object] = []
    while t < 40.0:
        t = lk.next_deadline() or 100.0
        if t > 40.0:
            break
        more = lk.tick(t)
        evs += [e for e in events(more) if isinstance(e, CatalogSent)]
        assert all(r.method in ("MESSAGE", "REGISTER") for r in requests(more))
    (failed,) = evs
    assert isinstance(failed, CatalogSent) and not failed.ok and "no answer" in failed.reason and failed.parts == 16


def test_a_third_catalog_query_while_two_are_answered_is_busy() -> None:
    lk = link()
    statuses = []
    for _ in range(3):
        out = lk.receive(upper_request("MESSAGE", query("Catalog")), 1.0, UPPER)
        statuses += [r.status for r in responses(out)]
    assert statuses == [200, 200, 486]


def test_device_info_and_status_are_answered_200_then_by_message() -> None:
    lk = link()
    (q,) = events(lk.receive(upper_request("MESSAGE", query("DeviceInfo")), 1.0, UPPER))
    assert isinstance(q, DeviceInfoQuery)
    (req,) = requests(lk.answer_device_info(q, 1.1, name="市平台", manufacturer="xueliang", channels=12))
    info = manscdp.DeviceInfo.from_message(manscdp.decode(req.body))
    assert (info.device_name, info.channel, info.result) == ("市平台", 12, "OK")
    (s,) = events(lk.receive(upper_request("MESSAGE", query("DeviceStatus", device_id="34020100001310000099")), 1.2, UPPER))
    assert isinstance(s, DeviceStatusQuery)
    (req,) = requests(lk.answer_device_status(s, 1.3, found=False))
    st = manscdp.DeviceStatus.from_message(manscdp.decode(req.body))
    assert (st.device_id, st.result, st.online) == ("34020100001310000099", "ERROR", "OFFLINE")


# -- controls and the media dispatch point -----------------------------------------------------


def test_control_waits_for_the_drivers_verdict_and_a_retransmission_gets_the_same_answer() -> None:
    lk = link()
    body = manscdp.encode_control(5, "34020100001310000001", PTZCmd="A50F0100000000B5")
    data = upper_request("MESSAGE", body, branch="z9hG4bKctl1")
    out = lk.receive(data, 1.0, UPPER)
    assert responses(out) == []
    (c,) = events(out)
    assert isinstance(c, ControlReceived) and c.fields["PTZCmd"] == "A50F0100000000B5"
    assert c.cmd_type == "DeviceControl" and c.device_id == "34020100001310000001"
    assert [r.status for r in responses(lk.respond(c.request, 403, 1.1))] == [403]
    again = lk.receive(data, 1.5, UPPER)  # the upper did not hear us: the same answer, no new event
    assert [r.status for r in responses(again)] == [403] and events(again) == []
    assert lk.respond(c.request, 200, 1.6) == []  # answered already: nothing


@pytest.mark.parametrize(("method", "event"), [("INVITE", InviteReceived), ("BYE", ByeReceived),
                                               ("INFO", InfoReceived), ("CANCEL", CancelReceived)])
def test_dialog_requests_are_handed_to_the_media_side_unanswered(method: str, event: type) -> None:
    lk = link()
    out = lk.receive(upper_request(method, b"v=0\r\n", content_type="application/sdp"), 1.0, UPPER)
    assert [type(e) for e in events(out)] == [event]
    assert [r.status for r in responses(out)] == []


def test_invite_2xx_is_retransmitted_until_the_ack() -> None:
    lk = link()
    (inv,) = events(lk.receive(upper_request("INVITE", b"v=0\r\n", content_type="application/sdp",
                                             call_id="inv1", branch="z9hG4bKinv1"), 1.0, UPPER))
    assert isinstance(inv, InviteReceived)
    out = lk.respond(inv.request, 200, 1.1, body=b"v=0\r\n", content_type="application/sdp", to_tag="us")
    assert [r.status for r in responses(out)] == [200]
    again = lk.tick(lk.next_deadline() or 0.0)
    assert [r.status for r in responses(again)] == [200]  # no ACK yet: sent again
    ack = upper_request("ACK", call_id="inv1", branch="z9hG4bKack1", to_tag="us", cseq=1)  # its own branch
    assert [type(e) for e in events(lk.receive(ack, 2.0, UPPER))] == [AckReceived]
    later = []
    for _ in range(5):
        d = lk.next_deadline()
        if d is None or d > 30.0:
            break
        later += responses(lk.tick(d))
    assert later == []  # the ACK stopped the retransmissions


def test_record_info_is_handed_out_unanswered_and_answered_by_the_caller() -> None:
    lk = link()
    body = query("RecordInfo", device_id="34020100001310000001", StartTime="2026-12-01T00:00:00",
                 EndTime="2026-12-01T01:00:00", Type="all")
    (rq,) = events(lk.receive(upper_request("MESSAGE", body), 1.0, UPPER))
    assert isinstance(rq, RecordInfoQuery) and rq.message.fields["StartTime"] == "2026-12-01T00:00:00"
    assert [r.status for r in responses(lk.respond(rq.request, 501, 1.1))] == [501]


def test_send_request_reports_the_final_answer_or_the_timeout() -> None:
    lk = link()
    req = lk.send_message(manscdp.encode_keepalive(1, LOCAL_ID), 1.0)
    assert len(requests(req)) == 1
    built = requests(lk.send_request(requests(lk.send_message(b"x", 1.0))[0], 1.0))[0]
    ans = events(lk.receive(ok(built, 202), 1.1, UPPER))
    assert len(ans) == 1 and isinstance(ans[0], RequestAnswered) and ans[0].response is not None
    assert ans[0].response.status == 202


# -- who may ask -------------------------------------------------------------------------------


def test_a_request_from_another_address_or_another_from_is_refused_403_and_reveals_nothing() -> None:
    lk = link()
    out = lk.receive(upper_request("MESSAGE", query("Catalog")), 1.0, ("10.6.6.6", 5060))
    (r,) = [o for o in out if isinstance(o, Send)]
    assert r.addr == ("10.6.6.6", 5060) and parse_message(r.data).status == 403  # type: ignore[union-attr]
    assert [type(e) for e in events(out)] == [Refused]
    other_upper = "34000000002000000001"  # another upper, on this upper's socket
    out = lk.receive(upper_request("MESSAGE", query("Catalog"), from_user=other_upper), 1.1, UPPER)
    assert [r.status for r in responses(out)] == [403]
    assert [type(e) for e in events(out)] == [Refused]
    assert lk.status.refused_requests == 2 and lk.status.catalog_answers == 0


@pytest.mark.parametrize(("data", "status"), [
    (upper_request("MESSAGE", b"<Query><CmdType>Catalog</CmdType>"), 400),
    (upper_request("MESSAGE", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Query/>'), 400),
    (upper_request("MESSAGE", b"\xff\xfe\x00garbage"), 400),
    (upper_request("MESSAGE", b"<Query><CmdType>Catalog</CmdType></Query>", content_type="text/plain"), 415),
    (upper_request("MESSAGE", query("PresetQuery")), 501),
    (upper_request("MESSAGE", b"<Query>" + b"<Item>x</Item>" * 4000 + b"</Query>"), 400),
    (upper_request("OPTIONS"), 200),
    (upper_request("REGISTER"), 405),
    (upper_request("NOTIFY", query("Catalog")), 481),
    (upper_request("PUBLISH"), 501),
])
def test_malformed_and_odd_requests_get_their_status_and_never_an_event(data: bytes, status: int) -> None:
    lk = link()
    out = lk.receive(data, 1.0, UPPER)
    assert [r.status for r in responses(out)] == [status]
    assert all(isinstance(e, Refused) for e in events(out))


def test_garbage_and_oversized_datagrams_are_dropped_without_a_word() -> None:
    lk = link()
    for data in (b"\x00" * 10, b"INVITE\r\n\r\n", b"A" * 70_000, upper_request("MESSAGE", b"x" * 70_000)):
        assert lk.receive(data, 1.0, UPPER) == []
    assert lk.status.ignored_datagrams == 4


# -- subscriptions -----------------------------------------------------------------------------


def subscribe(lk: UpperLink, now: float, expires: int = 600, call_id: str = "sub1", cseq: int = 1,
              to_tag: str | None = None, event: str = "Catalog", body: bytes | None = None) -> list[Output]:
    return lk.receive(upper_request("SUBSCRIBE", query("Catalog") if body is None else body, call_id=call_id,
                                    cseq=cseq, to_tag=to_tag,
                                    headers=[("Event", event), ("Expires", str(expires))]), now, UPPER)


def test_catalog_subscription_notify_refresh_and_end() -> None:
    lk = link()
    out = subscribe(lk, 1.0)
    (r,) = responses(out)
    assert r.status == 200 and r.headers.get("Expires") == "600" and r.to_tag
    assert manscdp.decode(r.body).fields["Result"] == "OK"
    (s,) = events(out)
    assert isinstance(s, Subscribed) and s.kind == "Catalog" and not s.refreshed
    tag = r.to_tag

    changes = [CatalogItem(device_id="34020100001310000007", event="OFF"),
               CatalogItem(device_id="34020100001310000008", name="新点位", event="ADD")]
    (n,) = requests(lk.notify_catalog(changes, 2.0))
    assert n.method == "NOTIFY" and n.call_id == "sub1" and n.from_tag == tag and n.to_tag == "up1"
    assert n.headers.get("Event") == "Catalog"
    assert (n.headers.get("Subscription-State") or "").startswith("active;expires=59")
    items = manscdp.decode(n.body).items
    assert [(i["DeviceID"], i["Event"]) for i in items] == [("34020100001310000007", "OFF"),
                                                            ("34020100001310000008", "ADD")]
    assert items[1]["Name"] == "新点位" and "Name" not in items[0]
    assert events(lk.receive(ok(n), 2.1, UPPER))[0] == CatalogSent(1, 1, 2, True, "", True)

    out = subscribe(lk, 100.0, expires=900, cseq=2, to_tag=tag)
    assert [(x.status, x.headers.get("Expires")) for x in responses(out)] == [(200, "900")]
    assert isinstance(events(out)[0], Subscribed) and events(out)[0].refreshed  # type: ignore[attr-defined]
    assert lk.subscriptions.next_expiry() == 1000.0

    out = subscribe(lk, 200.0, expires=0, cseq=3, to_tag=tag)
    assert [x.status for x in responses(out)] == [200]
    (last,) = requests(out)
    assert last.method == "NOTIFY" and (last.headers.get("Subscription-State") or "").startswith("terminated")
    assert [type(e) for e in events(out)] == [Unsubscribed]
    assert len(lk.subscriptions) == 0 and requests(lk.notify_catalog(changes, 201.0)) == []


def test_a_subscription_lapses_at_its_expiry() -> None:
    lk = link()
    subscribe(lk, 1.0, expires=120)
    out = lk.tick(121.0)
    assert any(isinstance(e, Unsubscribed) and e.reason == "expired" for e in events(out))
    assert len(lk.subscriptions) == 0


def test_an_upper_that_restarted_answers_notify_481_and_the_subscription_ends() -> None:
    lk = link()
    subscribe(lk, 1.0)
    (n,) = requests(lk.notify_catalog([CatalogItem(device_id="34020100001310000007", event="ON")], 2.0))
    out = lk.receive(ok(n, 481), 2.1, UPPER)
    assert any(isinstance(e, Unsubscribed) and "481" in e.reason for e in events(out))
    assert len(lk.subscriptions) == 0
    # It subscribes again after its restart: a new dialog, NOTIFYs flow again.
    subscribe(lk, 3.0, call_id="sub2")
    assert [r.call_id for r in requests(lk.notify_catalog([CatalogItem(device_id="34020100001310000007",
                                                                       event="OFF")], 4.0))] == ["sub2"]


def test_refresh_of_an_unknown_dialog_is_481_and_an_unknown_event_489() -> None:
    lk = link()
    assert [r.status for r in responses(subscribe(lk, 1.0, to_tag="nope"))] == [481]
    assert [r.status for r in responses(subscribe(lk, 1.0, event="weather", body=b""))] == [489]
    assert [r.status for r in responses(subscribe(lk, 1.0, expires=0, call_id="fetch"))] == [200]
    assert len(lk.subscriptions) == 0


def test_a_subscription_flood_is_refused_503_and_memory_stays_bounded() -> None:
    lk = link()
    statuses = [r.status for i in range(50) for r in responses(subscribe(lk, 1.0, call_id=f"flood{i}"))]
    assert statuses == [200] * 8 + [503] * 42
    assert len(lk.subscriptions) == 8


def test_alarm_subscription_by_presence_gets_alarm_notifies() -> None:
    lk = link()
    body = query("Alarm", StartAlarmPriority=1, EndAlarmPriority=4, AlarmMethod=0)
    out = subscribe(lk, 1.0, event="presence", body=body, call_id="alarm1")
    assert [type(e) for e in events(out)] == [Subscribed] and events(out)[0].kind == "Alarm"  # type: ignore[attr-defined]
    alarm = manscdp.encode_alarm_notify(3, "34020100001310000001", priority=1, method=5,
                                        time="2026-12-04T10:00:00")
    (n,) = requests(lk.notify("Alarm", alarm, 2.0))
    assert n.call_id == "alarm1" and n.body == alarm
    assert requests(lk.notify("MobilePosition", b"x", 2.0)) == []  # nobody subscribed to that


def test_catalog_notify_of_many_changes_is_cut_into_parts() -> None:
    lk = link()
    subscribe(lk, 1.0)
    items = [CatalogItem(device_id=c.device_id, name=c.name, event="ADD", civil_code="340201") for c in channels(30)]
    first = requests(lk.notify_catalog(items, 2.0))
    assert 1 < len(first) <= 16 and all(len(r.serialize()) <= 1300 for r in first)
    got = [i["DeviceID"] for r in first for i in manscdp.decode(r.body).items]
    pending = list(first)
    while pending:
        more = requests(lk.receive(ok(pending.pop(0)), 2.1, UPPER))
        got += [i["DeviceID"] for r in more for i in manscdp.decode(r.body).items]
        pending += more
    assert got == [i.device_id for i in items]


def test_unregistered_link_sends_no_answers() -> None:
    lk = UpperLink(config(), seed=3)
    assert lk.receive(upper_request("MESSAGE", query("Catalog")), 1.0, UPPER) == []  # idle: not ours yet
    assert lk.status.ignored_datagrams == 1
    assert REALM == UPPER_ID[:10]


def test_a_gb2312_body_from_the_upper_is_read_with_its_chinese_intact() -> None:
    lk = link()
    body = manscdp.encode_control(6, "34020100001310000001", cmd_type="DeviceConfig", encoding="GB2312",
                                  BasicParam={"Name": "南门广场", "Expiration": 3600})
    assert "南门广场".encode("gb2312") in body and "南门广场".encode() not in body
    (c,) = events(lk.receive(upper_request("MESSAGE", body), 1.0, UPPER))
    assert isinstance(c, ControlReceived) and c.cmd_type == "DeviceConfig" and c.fields["Name"] == "南门广场"
