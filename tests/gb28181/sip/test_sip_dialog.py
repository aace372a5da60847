from __future__ import annotations

import pytest
from _sip_samples import INVITE

from xueliang.gb28181.sip import (
    Dialog,
    DialogState,
    SipRequest,
    SipResponse,
    dialog_id_of_request,
    format_via,
    generate_branch,
    make_request,
    make_response,
    parse_message,
)

VIA = format_via("UDP", "192.168.1.10", 5060, "z9hG4bKnew")


def roundtrip_req(msg: SipRequest) -> SipRequest:
    back = parse_message(msg.serialize())
    assert isinstance(back, SipRequest)
    return back


def invite_and_ok(record_route: list[str] | None = None) -> tuple[SipRequest, SipResponse]:
    invite = parse_message(INVITE)
    assert isinstance(invite, SipRequest)
    ok = make_response(
        invite,
        200,
        to_tag="dev42",
        headers=[("Contact", "<sip:34020000001320000001@192.168.1.64:5060>")]
        + [("Record-Route", r) for r in record_route or []],
        body=b"v=0\r\n",
    )
    return invite, ok


def test_uac_invite_dialog_ack_and_bye() -> None:
    invite, ok = invite_and_ok()
    dialog = Dialog.from_response(invite, ok)
    assert dialog.id == ("9f2b6d1e0a4c@192.168.1.10", "598316730", "dev42")
    assert dialog.state is DialogState.CONFIRMED
    assert dialog.remote_target == "sip:34020000001320000001@192.168.1.64:5060"
    assert dialog.matches(ok)

    ack = roundtrip_req(dialog.create_ack(via=VIA))
    assert ack.method == "ACK"
    assert ack.uri == "sip:34020000001320000001@192.168.1.64:5060"
    assert ack.cseq == (1, "ACK")  # same number as the INVITE
    assert ack.branch == "z9hG4bKnew"  # a new transaction
    assert ack.from_tag == "598316730" and ack.to_tag == "dev42"
    assert ack.call_id == invite.call_id

    bye = roundtrip_req(
        dialog.create_request("BYE", via=format_via("UDP", "h", 5060, generate_branch()))
    )
    assert bye.cseq == (2, "BYE")
    assert bye.uri == dialog.remote_target
    assert bye.headers.get("From") == "<sip:34020000002000000001@3402000000>;tag=598316730"
    assert bye.headers.get("To") == "<sip:34020000001320000001@3402000000>;tag=dev42"
    assert "Route" not in bye.headers
    assert dialog.state is DialogState.TERMINATED


def test_info_with_mansrtsp_body_increments_cseq() -> None:
    invite, ok = invite_and_ok()
    dialog = Dialog.from_response(invite, ok)
    body = b"PLAY RTSP/1.0\r\nCSeq: 1\r\nRange: npt=now-\r\n"
    info = dialog.create_request("INFO", via=VIA, body=body, content_type="Application/MANSRTSP")
    info2 = dialog.create_request("INFO", via=VIA, body=body, content_type="Application/MANSRTSP")
    assert info.cseq == (2, "INFO") and info2.cseq == (3, "INFO")
    back = roundtrip_req(info)
    assert back.body == body
    assert back.headers.get("Content-Type") == "Application/MANSRTSP"


def test_route_set_loose_and_strict() -> None:
    invite, ok = invite_and_ok(["<sip:proxy2.example;lr>", "<sip:proxy1.example;lr>"])
    loose = Dialog.from_response(invite, ok)
    # UAC: the route set is the Record-Route in reverse
    assert loose.route_set == ["<sip:proxy1.example;lr>", "<sip:proxy2.example;lr>"]
    bye = loose.create_request("BYE", via=VIA)
    assert bye.uri == loose.remote_target
    assert bye.headers.get_all("Route") == loose.route_set

    invite, ok = invite_and_ok(["<sip:strict.example>"])
    strict = Dialog.from_response(invite, ok)
    bye = strict.create_request("BYE", via=VIA)
    assert bye.uri == "sip:strict.example"
    assert bye.headers.get_all("Route") == ["<sip:34020000001320000001@192.168.1.64:5060>"]


def test_uas_dialog_from_request_and_cseq_ordering() -> None:
    invite = parse_message(INVITE.replace(b"Max-Forwards: 70", b"Record-Route: <sip:p;lr>"))
    assert isinstance(invite, SipRequest)
    dialog = Dialog.from_request(invite, "local9", local_contact="<sip:dev@192.168.1.64>")
    assert dialog.id == (invite.call_id, "local9", "598316730")
    assert dialog.remote_target == "sip:34020000002000000001@192.168.1.10:5060"
    assert dialog.route_set == ["<sip:p;lr>"]  # UAS keeps the order
    assert dialog.remote_cseq == 1
    # an in-dialog request from the peer
    bye = SipRequest("BYE", dialog.remote_target, invite.headers.copy())
    bye.headers.set("To", f"{invite.headers.get('To')};tag=local9")
    bye.headers.set("CSeq", "2 BYE")
    assert dialog_id_of_request(bye) == dialog.id
    assert dialog.matches(bye)
    assert dialog.receive_request(bye)
    assert dialog.state is DialogState.TERMINATED
    stale = SipRequest("INFO", dialog.remote_target, bye.headers.copy())
    stale.headers.set("CSeq", "1 INFO")
    assert dialog.receive_request(stale) is False  # out of order: answer 500
    # our own first request starts the local CSeq at 1
    msg = dialog.create_request("MESSAGE", via=VIA)
    assert msg.cseq == (1, "MESSAGE")
    assert msg.headers.get("From") == "<sip:34020000001320000001@3402000000>;tag=local9"


def test_subscribe_dialog_notify_and_refresh() -> None:
    subscribe = make_request(
        "SUBSCRIBE",
        "sip:34020000001320000001@192.168.1.64:5060",
        via=VIA,
        from_="<sip:34020000002000000001@3402000000>;tag=sub1",
        to="<sip:34020000001320000001@3402000000>",
        call_id="subcall",
        cseq=10,
        contact="<sip:34020000002000000001@192.168.1.10:5060>",
        headers=[("Event", "Catalog"), ("Expires", "3600")],
    )
    # the device's NOTIFY arrives before the 200
    notify = make_request(
        "NOTIFY",
        "sip:34020000002000000001@192.168.1.10:5060",
        via=format_via("UDP", "192.168.1.64", 5060, "z9hG4bKn1"),
        from_="<sip:34020000001320000001@3402000000>;tag=dev7",
        to="<sip:34020000002000000001@3402000000>;tag=sub1",
        call_id="subcall",
        cseq=1,
        contact="<sip:34020000001320000001@192.168.1.64:5060>",
        headers=[("Event", "Catalog"), ("Subscription-State", "active;expires=3600")],
    )
    dialog = Dialog.from_notify(subscribe, notify)
    assert dialog.id == ("subcall", "sub1", "dev7")
    assert dialog.event == "Catalog"
    assert dialog_id_of_request(notify) == dialog.id
    refresh = roundtrip_req(
        dialog.create_request("SUBSCRIBE", via=VIA, headers=[("Expires", "3600")])
    )
    assert refresh.cseq == (11, "SUBSCRIBE")
    assert refresh.headers.get("Event") == "Catalog"
    assert refresh.headers.get("Contact") == "<sip:34020000002000000001@192.168.1.10:5060>"
    assert refresh.uri == "sip:34020000001320000001@192.168.1.64:5060"
    ended = SipRequest("NOTIFY", notify.uri, notify.headers.copy())
    ended.headers.set("CSeq", "2 NOTIFY")
    ended.headers.set("Subscription-State", "terminated;reason=timeout")
    assert dialog.receive_request(ended)
    assert dialog.state is DialogState.TERMINATED


def test_notifier_side_builds_notify() -> None:
    subscribe = make_request(
        "SUBSCRIBE",
        "sip:34020000002000000002@10.0.0.2",
        via=VIA,
        from_="<sip:34020000002000000001@3402000000>;tag=up1",
        to="<sip:34020000002000000002@3402000000>",
        call_id="casc",
        cseq=3,
        contact="<sip:34020000002000000001@10.0.0.1:5060>",
        headers=[("Event", "Catalog")],
    )
    dialog = Dialog.from_request(subscribe, "low1", local_contact="<sip:low@10.0.0.2:5060>")
    notify = dialog.create_request(
        "NOTIFY",
        via=VIA,
        headers=[("Subscription-State", "active;expires=3600")],
        content_type="Application/MANSCDP+xml",
        body=b"<Notify/>",
    )
    assert notify.uri == "sip:34020000002000000001@10.0.0.1:5060"
    assert notify.headers.get("Event") == "Catalog"
    assert notify.to_tag == "up1" and notify.from_tag == "low1"


def test_early_dialog_confirmed_by_2xx_and_terminated_by_481() -> None:
    invite, ok = invite_and_ok()
    ringing = make_response(invite, 180, to_tag="dev42")
    dialog = Dialog.from_response(invite, ringing)
    assert dialog.state is DialogState.EARLY
    dialog.receive_response(ok)
    assert dialog.state is DialogState.CONFIRMED
    info = dialog.create_request("INFO", via=VIA)
    dialog.receive_response(make_response(info, 481))
    assert dialog.state is DialogState.TERMINATED


def test_ack_and_cancel_not_built_by_create_request() -> None:
    invite, ok = invite_and_ok()
    dialog = Dialog.from_response(invite, ok)
    with pytest.raises(ValueError):
        dialog.create_request("ACK", via=VIA)
