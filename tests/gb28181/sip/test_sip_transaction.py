from __future__ import annotations

import pytest
from _sip_samples import INVITE, MESSAGE, REGISTER

from xueliang.gb28181.sip import (
    InviteClientTransaction,
    NonInviteClientTransaction,
    RequestReceived,
    ResponseReceived,
    Send,
    ServerTransaction,
    SipRequest,
    SipResponse,
    TransactionError,
    TransactionLayer,
    TransactionState,
    TransactionTerminated,
    TransactionTimeout,
    make_cancel,
    make_response,
    parse_message,
)
from xueliang.gb28181.sip.transaction import Event

PEER = ("192.168.1.64", 5060)


def req(data: bytes) -> SipRequest:
    msg = parse_message(data)
    assert isinstance(msg, SipRequest)
    return msg


def status_of(data: bytes) -> int:
    msg = parse_message(data)
    assert isinstance(msg, SipResponse)
    return msg.status


def server_txn(events: list[Event]) -> ServerTransaction:
    assert isinstance(events[0], RequestReceived)
    txn = events[0].transaction
    assert txn is not None
    return txn


def sends(events: list[Event]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, Send)]


def run_until(
    txn: InviteClientTransaction | NonInviteClientTransaction, end: float
) -> list[tuple[float, list[Event]]]:
    """Drive the transaction's timers exactly at its deadlines up to `end`."""
    log: list[tuple[float, list[Event]]] = []
    while (deadline := txn.next_deadline()) is not None and deadline <= end:
        log.append((deadline, txn.handle_timer(deadline)))
    return log


# -- client, non-INVITE ------------------------------------------------------------------------


def test_timer_e_schedule_and_f_timeout_on_udp() -> None:
    message = req(MESSAGE)
    txn = NonInviteClientTransaction(message, PEER)
    first = txn.start(0.0)
    assert sends(first) == [message.serialize()]
    log = run_until(txn, 100.0)
    retransmit_times = [t for t, events in log if sends(events)]
    # intervals 0.5, 1, 2, 4, 4, 4 ... (T2 cap) until F at 64*T1 = 32 s
    assert retransmit_times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    for _, events in log:
        for data in sends(events):
            assert data == message.serialize()
    last_time, last_events = log[-1]
    assert last_time == 32.0
    assert [type(e) for e in last_events] == [TransactionTimeout, TransactionTerminated]
    assert txn.state is TransactionState.TERMINATED
    assert txn.next_deadline() is None


def test_proceeding_retransmits_every_t2_and_final_stops_it() -> None:
    message = req(MESSAGE)
    txn = NonInviteClientTransaction(message, PEER)
    txn.start(0.0)
    trying = make_response(message, 100)
    events = txn.handle_message(trying, 0.2)
    assert [type(e) for e in events] == [ResponseReceived]
    assert txn.state is TransactionState.PROCEEDING
    assert sends(txn.handle_timer(0.5)) == [message.serialize()]
    assert txn.next_deadline() == 4.5  # T2 in Proceeding
    ok = make_response(message, 200)
    events = txn.handle_message(ok, 5.0)
    assert [type(e) for e in events] == [ResponseReceived]
    assert txn.state is TransactionState.COMPLETED
    assert txn.handle_message(ok, 5.1) == []  # retransmitted final absorbed
    assert txn.next_deadline() == 10.0  # timer K = T4
    assert [type(e) for e in txn.handle_timer(10.0)] == [TransactionTerminated]


def test_tcp_client_never_retransmits() -> None:
    message = req(MESSAGE)
    txn = NonInviteClientTransaction(message, PEER, reliable=True)
    assert len(sends(txn.start(0.0))) == 1
    log = run_until(txn, 100.0)
    assert [t for t, _ in log] == [32.0]  # only timer F
    assert sends(log[0][1]) == []
    assert isinstance(log[0][1][0], TransactionTimeout)
    txn2 = NonInviteClientTransaction(message, PEER, reliable=True)
    txn2.start(0.0)
    events = txn2.handle_message(make_response(message, 200), 1.0)
    assert [type(e) for e in events] == [ResponseReceived, TransactionTerminated]  # K = 0


# -- client, INVITE ----------------------------------------------------------------------------


def test_invite_timer_a_doubles_and_b_times_out() -> None:
    invite = req(INVITE)
    txn = InviteClientTransaction(invite, PEER)
    assert sends(txn.start(0.0)) == [invite.serialize()]
    log = run_until(txn, 100.0)
    times = [t for t, events in log if sends(events)]
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # A doubles with no cap
    assert log[-1][0] == 32.0
    assert [type(e) for e in log[-1][1]] == [TransactionTimeout, TransactionTerminated]


def test_invite_provisional_stops_timer_a() -> None:
    invite = req(INVITE)
    txn = InviteClientTransaction(invite, PEER)
    txn.start(0.0)
    txn.handle_message(make_response(invite, 100), 0.1)
    assert txn.state is TransactionState.PROCEEDING
    assert txn.next_deadline() == 32.0  # only B left
    assert sends(txn.handle_timer(1.0)) == []


def test_invite_error_response_is_acked_and_ack_replayed() -> None:
    invite = req(INVITE)
    txn = InviteClientTransaction(invite, PEER)
    txn.start(0.0)
    busy = make_response(invite, 486, to_tag="dev1")
    events = txn.handle_message(busy, 1.0)
    assert isinstance(events[0], ResponseReceived)
    (ack_bytes,) = sends(events)
    ack = req(ack_bytes)
    assert ack.method == "ACK"
    assert ack.uri == invite.uri
    assert ack.cseq == (1, "ACK")
    assert ack.branch == invite.branch
    assert ack.to_tag == "dev1"
    assert ack.from_tag == invite.from_tag
    assert txn.state is TransactionState.COMPLETED
    assert sends(txn.handle_message(busy, 1.5)) == [ack_bytes]  # retransmitted 486
    assert txn.next_deadline() == 33.0  # timer D = 32 s
    assert [type(e) for e in txn.handle_timer(33.0)] == [TransactionTerminated]


def test_invite_2xx_goes_to_accepted_and_passes_retransmissions() -> None:
    invite = req(INVITE)
    txn = InviteClientTransaction(invite, PEER)
    txn.start(0.0)
    ok = make_response(invite, 200, to_tag="dev1")
    assert [type(e) for e in txn.handle_message(ok, 0.3)] == [ResponseReceived]
    assert txn.state is TransactionState.ACCEPTED
    assert [type(e) for e in txn.handle_message(ok, 0.8)] == [ResponseReceived]
    assert txn.next_deadline() == pytest.approx(32.3)


# -- server side, through the layer ------------------------------------------------------------


def test_server_absorbs_retransmitted_request_by_replaying_response() -> None:
    layer = TransactionLayer()
    register = req(REGISTER)
    events = layer.receive(register, PEER, 0.0)
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    txn = events[0].transaction
    assert txn is not None
    # retransmission before the TU answered: absorbed silently
    assert layer.receive(req(REGISTER), PEER, 0.4) == []
    unauthorized = make_response(register, 401, to_tag="t")
    out = layer.respond(txn, unauthorized, 0.5)
    assert sends(out) == [unauthorized.serialize()]
    assert isinstance(out[0], Send) and out[0].addr == PEER
    # retransmission after the answer: the same bytes again, and no new RequestReceived
    replay = layer.receive(req(REGISTER), PEER, 1.0)
    assert sends(replay) == [unauthorized.serialize()]
    assert layer.server_transactions == 1
    # timer J = 64*T1 later the transaction is gone
    assert layer.next_deadline() == 32.5
    assert [type(e) for e in layer.handle_timer(32.5)] == [TransactionTerminated]
    assert len(layer) == 0
    assert layer.next_deadline() is None
    # a later retransmission is a new request for the TU
    again = layer.receive(req(REGISTER), PEER, 40.0)
    assert isinstance(again[0], RequestReceived)


def test_server_over_tcp_terminates_at_once() -> None:
    layer = TransactionLayer()
    events = layer.receive(req(REGISTER), PEER, 0.0, reliable=True)
    txn = server_txn(events)
    assert txn is not None
    out = layer.respond(txn, make_response(txn.request, 200, to_tag="t"), 0.1)
    assert [type(e) for e in out] == [Send, TransactionTerminated]
    assert len(layer) == 0
    with pytest.raises(TransactionError):
        txn.respond(make_response(txn.request, 200), 0.2)


def test_invite_server_sends_trying_after_200ms_and_retransmits_error() -> None:
    layer = TransactionLayer()
    invite = req(INVITE)
    events = layer.receive(invite, PEER, 0.0)
    txn = server_txn(events)
    assert txn is not None
    assert layer.next_deadline() == pytest.approx(0.2)
    (trying,) = sends(layer.handle_timer(0.2))
    assert status_of(trying) == 100
    # INVITE retransmission replays the 100
    assert sends(layer.receive(req(INVITE), PEER, 0.5)) == [trying]
    not_found = make_response(invite, 404, to_tag="x")
    layer.respond(txn, not_found, 1.0)
    # timer G: 0.5, 1, 2, 4, 4 ... until ACK
    times = []
    now = 1.0
    while (deadline := layer.next_deadline()) is not None and deadline < 6.0:
        now = deadline
        if sends(layer.handle_timer(now)):
            times.append(now - 1.0)
    assert times == [0.5, 1.5, 3.5]
    ack = req(INVITE.replace(b"INVITE sip:", b"ACK sip:").replace(b"1 INVITE", b"1 ACK"))
    assert layer.receive(ack, PEER, 5.0) == []  # absorbed: ACK of an error
    assert txn.state is TransactionState.CONFIRMED
    assert layer.next_deadline() == 10.0  # timer I = T4
    assert [type(e) for e in layer.handle_timer(10.0)] == [TransactionTerminated]
    assert len(layer) == 0


def test_invite_server_timer_h_when_no_ack() -> None:
    layer = TransactionLayer()
    invite = req(INVITE)
    txn = server_txn(layer.receive(invite, PEER, 0.0))
    assert txn is not None
    layer.respond(txn, make_response(invite, 486, to_tag="x"), 0.0)
    events: list[Event] = []
    while (deadline := layer.next_deadline()) is not None:
        events.extend(layer.handle_timer(deadline))
    assert any(isinstance(e, TransactionTimeout) for e in events)
    assert deadline is None and len(layer) == 0


def test_invite_server_2xx_retransmitted_until_ack_with_new_branch() -> None:
    layer = TransactionLayer()
    invite = req(INVITE)
    txn = server_txn(layer.receive(invite, PEER, 0.0))
    assert txn is not None
    ok = make_response(invite, 200, to_tag="dev")
    assert sends(layer.respond(txn, ok, 0.1)) == [ok.serialize()]
    assert sends(layer.handle_timer(0.6)) == [ok.serialize()]
    ack = req(
        INVITE.replace(b"INVITE sip:", b"ACK sip:")
        .replace(b"1 INVITE", b"1 ACK")
        .replace(b"z9hG4bK8c1a2b3d4e5f", b"z9hG4bKackbranch")
    )
    events = layer.receive(ack, PEER, 0.7)
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    assert events[0].transaction is None  # a 2xx ACK belongs to the dialog
    # no more retransmissions; the transaction lingers for timer L then ends without timeout
    later: list[Event] = []
    while (deadline := layer.next_deadline()) is not None:
        later.extend(layer.handle_timer(deadline))
    assert sends(later) == []
    assert [type(e) for e in later] == [TransactionTerminated]


def test_layer_client_transaction_matching() -> None:
    layer = TransactionLayer()
    message = req(MESSAGE)
    txn, events = layer.send_request(message, PEER, 0.0)
    assert sends(events) == [message.serialize()]
    # a response with another branch is not ours
    stray = make_response(message, 200)
    stray.headers.set("Via", "SIP/2.0/UDP 192.168.1.64:5060;branch=z9hG4bKother")
    assert layer.receive(stray, PEER, 0.1) == []
    ok = make_response(message, 200)
    events = layer.receive(ok, PEER, 0.2)
    assert isinstance(events[0], ResponseReceived) and events[0].transaction is txn
    assert layer.receive(ok, PEER, 0.3) == []
    with pytest.raises(TransactionError):
        layer.send_request(SipRequest("ACK", "sip:x@y", message.headers), PEER, 0.0)


def test_layer_takes_answers_only_from_where_the_request_went() -> None:
    """Someone who saw our branch on the camera network answers in the device's place (a 200
    to an INVITE with its own SDP, a DeviceControl refused): dropped and counted. The device's
    own answer still completes the transaction."""
    layer = TransactionLayer()
    layer.check_response_source = True
    for request in (req(MESSAGE), req(INVITE)):
        txn, _ = layer.send_request(request, PEER, 0.0)
        forged = make_response(request, 200, to_tag="t")
        assert layer.receive(forged, ("192.168.1.66", 5060), 0.1) == []
        assert layer.receive(forged, (PEER[0], 5070), 0.1) == []
        events = layer.receive(make_response(request, 200, to_tag="t"), PEER, 0.2)
        assert isinstance(events[0], ResponseReceived) and events[0].transaction is txn
    assert layer.foreign_responses == 4


def test_layer_stray_2xx_to_invite_goes_to_tu() -> None:
    layer = TransactionLayer()
    ok = make_response(req(INVITE), 200, to_tag="t")
    events = layer.receive(ok, PEER, 0.0)
    assert len(events) == 1 and isinstance(events[0], ResponseReceived)
    assert events[0].transaction is None


def test_cancel_finds_the_invite_transaction() -> None:
    layer = TransactionLayer()
    invite = req(INVITE)
    txn = server_txn(layer.receive(invite, PEER, 0.0))
    cancel = req(make_cancel(invite).serialize())
    assert cancel.cseq == (1, "CANCEL") and cancel.branch == invite.branch
    events = layer.receive(cancel, PEER, 0.1)
    assert isinstance(events[0], RequestReceived)
    assert events[0].transaction is not txn  # CANCEL has its own transaction
    assert layer.find_cancelled(cancel) is txn


def test_rfc2543_branchless_device_is_matched() -> None:
    layer = TransactionLayer()
    old = REGISTER.replace(b";branch=z9hG4bK1371463273", b"")
    events = layer.receive(req(old), PEER, 0.0)
    txn = server_txn(events)
    assert txn is not None
    layer.respond(txn, make_response(txn.request, 200, to_tag="a"), 0.1)
    assert len(sends(layer.receive(req(old), PEER, 0.2))) == 1


def test_storm_memory_bounded_and_503_past_limit() -> None:
    layer = TransactionLayer(max_server_transactions=100)
    for i in range(150):
        data = REGISTER.replace(b"z9hG4bK1371463273", f"z9hG4bK{i}".encode())
        events = layer.receive(req(data), PEER, 0.0)
        if i < 100:
            txn = server_txn(events)
            assert txn is not None
            layer.respond(txn, make_response(txn.request, 200, to_tag="x"), 0.0)
        else:
            (busy,) = sends(events)
            assert status_of(busy) == 503
    assert layer.server_transactions == 100
    layer.handle_timer(40.0)
    assert len(layer) == 0
    assert layer.next_deadline() is None


def test_layer_deadlines_follow_many_transactions() -> None:
    layer = TransactionLayer()
    for i in range(5):
        data = MESSAGE.replace(b"z9hG4bK2066101355", f"z9hG4bKm{i}".encode())
        layer.send_request(req(data), PEER, float(i))
    assert layer.next_deadline() == 0.5
    fired = layer.handle_timer(2.0)
    # due: txn 0 (E at 0.5) and txn 1 (E at 1.5); both re-armed from now: 2.0 + 1.0
    assert len(sends(fired)) == 2
    assert layer.next_deadline() == 2.5  # txn 2, started at 2.0
    layer.handle_timer(2.5)
    assert layer.next_deadline() == 3.0


def test_unanswered_requests_do_not_leak() -> None:
    layer = TransactionLayer()
    layer.receive(req(REGISTER), PEER, 0.0)
    layer.receive(req(INVITE), PEER, 0.0)
    assert len(layer) == 2
    events = layer.handle_timer(32.0)  # non-INVITE: the client gave up at 64*T1
    assert [type(e) for e in events] == [Send, TransactionTimeout, TransactionTerminated]
    assert status_of(sends(events)[0]) == 100
    assert len(layer) == 1
    events = layer.handle_timer(180.0)  # INVITE: Timers.invite_answer
    assert [type(e) for e in events] == [TransactionTimeout, TransactionTerminated]
    assert len(layer) == 0
