from __future__ import annotations

import pytest
from _sip_samples import (
    INVITE,
    KEEPALIVE_BODY,
    MESSAGE,
    OK,
    REGISTER,
    REGISTER_AUTH,
    SDP,
    UNAUTHORIZED,
)
from hypothesis import given
from hypothesis import strategies as st

from xueliang.gb28181.sip import (
    MAX_MESSAGE_SIZE,
    Headers,
    SipParseError,
    SipRequest,
    SipResponse,
    format_via,
    generate_branch,
    generate_tag,
    is_keepalive,
    make_request,
    make_response,
    parse_authorization,
    parse_message,
    response_bytes,
)


def request(data: bytes) -> SipRequest:
    msg = parse_message(data)
    assert isinstance(msg, SipRequest)
    return msg


def response(data: bytes) -> SipResponse:
    msg = parse_message(data)
    assert isinstance(msg, SipResponse)
    return msg


# -- real-looking GB/T 28181 traffic ----------------------------------------------------------


def test_register_without_authorization() -> None:
    msg = request(REGISTER)
    assert msg.method == "REGISTER"
    assert msg.uri == "sip:34020000002000000001@3402000000"
    assert msg.call_id == "1011047669"
    assert msg.cseq == (1, "REGISTER")
    assert msg.from_tag == "2043466181"
    assert msg.to_tag is None
    assert msg.branch == "z9hG4bK1371463273"
    assert msg.expires == 3600
    assert msg.content_length == 0
    assert msg.body == b""
    assert msg.headers.get("Contact") == "<sip:34020000001320000001@192.168.1.64:5060>"
    assert "Authorization" not in msg.headers


def test_register_with_authorization() -> None:
    msg = request(REGISTER_AUTH)
    value = msg.headers.get("authorization")
    assert value is not None
    creds = parse_authorization(value)
    assert creds.username == "34020000001320000001"
    assert creds.realm == "3402000000"
    assert creds.uri == "sip:34020000002000000001@3402000000"
    assert creds.qop is None
    assert msg.headers.get("X-GB-Ver") == "3.0"
    assert msg.cseq == (2, "REGISTER")


def test_message_with_manscdp_body() -> None:
    msg = request(MESSAGE)
    assert msg.method == "MESSAGE"
    assert msg.body == KEEPALIVE_BODY
    assert msg.content_type == "application/manscdp+xml"
    assert msg.headers.get("Content-Type") == "Application/MANSCDP+xml"


def test_invite_with_sdp() -> None:
    msg = request(INVITE)
    assert msg.method == "INVITE"
    assert msg.body == SDP
    assert msg.headers.get("Subject") == ("34020000001320000001:0200000001,34020000002000000001:0")
    assert msg.content_type == "application/sdp"
    assert msg.call_id == "9f2b6d1e0a4c@192.168.1.10"


def test_401_and_200_responses() -> None:
    r401 = response(UNAUTHORIZED)
    assert (r401.status, r401.reason) == (401, "Unauthorized")
    assert r401.to_tag == "99887766"
    assert r401.branch == "z9hG4bK1371463273"
    assert (r401.headers.get("WWW-Authenticate") or "").startswith("Digest realm=")
    r200 = response(OK)
    assert (r200.status, r200.reason) == (200, "OK")
    assert r200.is_success and not r200.is_provisional
    assert r200.headers.get("Date") == "2024-05-09T10:11:12.345"
    assert r200.expires == 3600


# -- tolerance ---------------------------------------------------------------------------------


def test_compact_headers_map_to_full_names() -> None:
    data = (
        b"MESSAGE sip:a@b SIP/2.0\r\n"
        b"v: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bKx\r\n"
        b"f: <sip:c@d>;tag=1\r\n"
        b"t: <sip:a@b>\r\n"
        b"i: abc\r\n"
        b"CSeq: 1 MESSAGE\r\n"
        b"m: <sip:c@1.2.3.4>\r\n"
        b"c: Application/MANSCDP+xml\r\n"
        b"k: timer\r\n"
        b"o: Catalog\r\n"
        b"u: presence\r\n"
        b"s: hello\r\n"
        b"e: gzip\r\n"
        b"l: 3\r\n"
        b"\r\n"
        b"xyz"
    )
    msg = request(data)
    h = msg.headers
    assert msg.call_id == "abc"
    assert msg.branch == "z9hG4bKx"
    assert msg.from_tag == "1"
    assert h.get("Contact") == "<sip:c@1.2.3.4>"
    assert h.get("Content-Type") == "Application/MANSCDP+xml"
    assert h.get("Supported") == "timer"
    assert h.get("Event") == "Catalog"
    assert h.get("Allow-Events") == "presence"
    assert h.get("Subject") == "hello"
    assert h.get("Content-Encoding") == "gzip"
    assert msg.body == b"xyz"
    # lookup by compact name works too, and output uses full names
    assert h.get("i") == "abc"
    out = msg.serialize()
    assert b"\r\nCall-ID: abc\r\n" in out
    assert b"\r\nContent-Length: 3\r\n" in out
    assert b"\r\ni:" not in out


def test_header_names_any_case() -> None:
    data = REGISTER.replace(b"Call-ID:", b"CALL-id:").replace(b"CSeq:", b"cseq:")
    data = data.replace(b"Expires:", b"EXPIRES  :")
    msg = request(data)
    assert msg.call_id == "1011047669"
    assert msg.expires == 3600
    assert msg.headers.get("call-ID") == "1011047669"
    assert b"\r\nCall-ID: 1011047669\r\n" in msg.serialize()
    assert b"\r\nCSeq: 1 REGISTER\r\n" in msg.serialize()


def test_folded_header_lines_are_joined() -> None:
    data = REGISTER.replace(
        b"User-Agent: IP Camera\r\n", b"User-Agent: IP\r\n   Camera\r\n\tV5.0\r\n"
    )
    msg = request(data)
    assert msg.headers.get("User-Agent") == "IP Camera V5.0"


def test_lf_only_line_endings() -> None:
    head, _, body = MESSAGE.partition(b"\r\n\r\n")
    msg = request(head.replace(b"\r\n", b"\n") + b"\n\n" + body)
    assert msg.cseq == (20, "MESSAGE")
    assert msg.headers.get("User-Agent") == "IP Camera"
    assert msg.body == KEEPALIVE_BODY
    # mixed: LF header lines, CRLF blank line
    msg = request(head.replace(b"\r\n", b"\n") + b"\n\r\n" + body)
    assert msg.body == KEEPALIVE_BODY


def test_leading_crlf_keepalives_are_skipped() -> None:
    msg = request(b"\r\n\r\n\r\n" + REGISTER)
    assert msg.method == "REGISTER"
    assert is_keepalive(b"\r\n\r\n")
    assert not is_keepalive(b"")
    assert not is_keepalive(REGISTER)
    with pytest.raises(SipParseError):
        parse_message(b"\r\n\r\n")


def test_missing_content_length_takes_rest_of_datagram() -> None:
    data = MESSAGE.replace(b"Content-Length: " + str(len(KEEPALIVE_BODY)).encode() + b"\r\n", b"")
    msg = request(data)
    assert msg.content_length is None
    assert msg.body == KEEPALIVE_BODY


def test_body_longer_than_content_length_is_cut() -> None:
    msg = request(MESSAGE + b"garbage")
    assert msg.body == KEEPALIVE_BODY


def test_body_shorter_than_content_length_is_an_error() -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(MESSAGE[:-10])
    assert info.value.status == 400
    assert "Content-Length" in info.value.reason


def test_gb2312_display_name_survives_round_trip() -> None:
    name = "摄像机".encode("gb2312")
    data = REGISTER.replace(b"From: <sip:", b'From: "' + name + b'" <sip:')
    msg = request(data)
    assert msg.serialize() == data


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"", 400, "Empty"),
        (b"HELLO\r\n\r\n", 400, "request line"),
        (b"SIP/2.0 99 Odd\r\n\r\n", 400, "status"),
        (b"SIP/2.0 2000 OK\r\n\r\n", 400, "status"),
        (b"SIP/3.0 200 OK\r\n\r\n", 505, "version"),
        (b"REGISTER sip:a SIP/3.0\r\n\r\n", 505, "version"),
        (b"REG(ISTER sip:a SIP/2.0\r\n\r\n", 400, "method"),
        (b"REGISTER nocolon SIP/2.0\r\n\r\n", 400, "Request-URI"),
        (REGISTER.replace(b"Call-ID: 1011047669\r\n", b""), 400, "Call-ID"),
        (REGISTER.replace(b"CSeq: 1 REGISTER", b"CSeq: one REGISTER"), 400, "CSeq"),
        (REGISTER.replace(b"CSeq: 1 REGISTER", b"CSeq: 1 INVITE"), 400, "CSeq"),
        (REGISTER.replace(b"Max-Forwards: 70", b"Max Forwards 70"), 400, "header"),
        (REGISTER.replace(b"Content-Length: 0", b"Content-Length: -1"), 400, "Content-Length"),
        (REGISTER.replace(b"Via:", b" Via:", 1), 400, "continuation"),
        (b" Via: x\r\nREGISTER sip:a SIP/2.0\r\n\r\n", 400, ""),
    ],
)
def test_malformed_input_gets_a_reason(data: bytes, status: int, words: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == status
    assert words.lower() in info.value.reason.lower()
    assert info.value.reason  # always a human phrase


def test_oversized_message_refused_with_513() -> None:
    big = MESSAGE + b"x" * MAX_MESSAGE_SIZE
    with pytest.raises(SipParseError) as info:
        parse_message(big)
    assert info.value.status == 513
    assert "Too Large" in info.value.reason


def test_bad_expires_is_reported_by_helper() -> None:
    msg = request(REGISTER.replace(b"Expires: 3600", b"Expires: soon"))
    with pytest.raises(SipParseError):
        _ = msg.expires


# -- headers -----------------------------------------------------------------------------------


def test_headers_multidict_operations() -> None:
    h = Headers([("Via", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2")])
    h.add("v", "SIP/2.0/TCP c;branch=z9hG4bK3")
    h.add("X-Custom", "1")
    assert h.get_all("Via") == [
        "SIP/2.0/UDP a;branch=z9hG4bK1",
        "SIP/2.0/UDP b;branch=z9hG4bK2",
        "SIP/2.0/TCP c;branch=z9hG4bK3",
    ]
    assert len(h.get_lines("via")) == 2
    assert h.get_first("Via") == "SIP/2.0/UDP a;branch=z9hG4bK1"
    h.set("x-custom", "2")
    assert h.get("X-CUSTOM") == "2"
    h.add("X-Custom", "3")
    h.set("X-Custom", "4")
    assert h.get_all("X-Custom") == ["4"]
    assert h.remove("VIA") == 2
    assert "Via" not in h
    assert h.items() == [("X-Custom", "4")]
    h.prepend("Route", "<sip:p;lr>")
    assert h.items()[0] == ("Route", "<sip:p;lr>")
    with pytest.raises(ValueError):
        h.add("Subject", "evil\r\nInjected: 1")
    with pytest.raises(SipParseError):
        h.add("Bad Name", "x")


def test_contact_list_split_respects_quotes() -> None:
    h = Headers([("Contact", '"Smith, J" <sip:j@a>, <sip:k@b>;expires=60')])
    assert h.get_all("Contact") == ['"Smith, J" <sip:j@a>', "<sip:k@b>;expires=60"]
    h2 = Headers([("Date", "Sat, 13 Nov 2010 23:29:00 GMT")])
    assert h2.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]


def test_branch_from_comma_combined_via() -> None:
    data = REGISTER.replace(
        b"Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1371463273",
        b"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKtop , SIP/2.0/UDP 192.168.1.64;branch=z9hG4bKx",
    )
    assert request(data).branch == "z9hG4bKtop"


# -- builders ----------------------------------------------------------------------------------


def test_make_response_copies_rfc3261_headers() -> None:
    reg = request(
        REGISTER.replace(b"Via:", b"Via: SIP/2.0/UDP 10.1.1.1;branch=z9hG4bKproxy\r\nVia:", 1)
    )
    resp = make_response(
        reg,
        401,
        to_tag="77",
        headers=[("WWW-Authenticate", 'Digest realm="3402000000", nonce="n"')],
    )
    assert resp.reason == "Unauthorized"
    assert resp.headers.get_lines("Via") == reg.headers.get_lines("Via")
    assert resp.headers.get("From") == reg.headers.get("From")
    assert resp.headers.get("To") == "<sip:34020000001320000001@3402000000>;tag=77"
    assert resp.call_id == reg.call_id
    assert resp.cseq == reg.cseq
    assert "Contact" not in resp.headers
    assert "User-Agent" not in resp.headers
    out = resp.serialize()
    assert out.startswith(b"SIP/2.0 401 Unauthorized\r\n")
    assert out.endswith(b"Content-Length: 0\r\n\r\n")
    assert parse_message(out) == resp.__class__(
        401, "Unauthorized", Headers([*resp.headers.items(), ("Content-Length", "0")])
    )


def test_make_response_keeps_existing_to_tag_and_reason_override() -> None:
    resp = make_response(
        request(
            OK.replace(b"SIP/2.0 200 OK", b"BYE sip:a@b SIP/2.0").replace(
                b"CSeq: 2 REGISTER", b"CSeq: 2 BYE"
            )
        ),
        200,
        "Fine",
        to_tag="new",
    )
    assert resp.to_tag == "99887766"
    assert resp.reason == "Fine"
    assert make_response(request(REGISTER), 599).reason == "Server Error"


def test_make_response_copies_record_route_for_dialog_creating_2xx() -> None:
    inv = request(INVITE.replace(b"Max-Forwards: 70\r\n", b"Record-Route: <sip:p1;lr>\r\n"))
    assert make_response(inv, 200, to_tag="t").headers.get("Record-Route") == "<sip:p1;lr>"
    assert "Record-Route" not in make_response(inv, 486, to_tag="t").headers


_HEADER_VALUES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@given(
    sample=st.sampled_from([REGISTER, REGISTER_AUTH, MESSAGE, INVITE.replace(b"Max-Forwards: 70\r\n",
                                                                            b"Record-Route: <sip:p1;lr>\r\n")]),
    status=st.integers(100, 699),
    reason=st.none() | st.text(st.characters(codec="ascii", exclude_characters="\r\n"), max_size=20),
    headers=st.lists(st.tuples(st.sampled_from(["Date", "expires", "Contact", "User-Agent", "X-Odd", "WWW-Authenticate",
                                                "content-length", "v", "Via"]),
                               _HEADER_VALUES | st.sampled_from(["a\r\nInjected: 1", "b\nc"])), max_size=5),
)
def test_response_bytes_is_make_response_serialised(sample: bytes, status: int, reason: str | None,
                                                    headers: list[tuple[str, str]]) -> None:
    """The stateless answers (REGISTER, keepalive) are written without a response object, byte for
    byte what make_response and serialize write, and refuse a header value that would split a line
    as they do."""
    req = request(sample)
    try:
        want: bytes | type[Exception] = make_response(req, status, reason, headers=headers).serialize()
    except ValueError:
        want = ValueError
    if want is ValueError:
        with pytest.raises(ValueError):
            response_bytes(req, status, reason, headers)
    else:
        assert response_bytes(req, status, reason, headers) == want


def test_make_request_and_serialize_content_length() -> None:
    branch = generate_branch()
    assert branch.startswith("z9hG4bK") and len(branch) > 16
    tag = generate_tag()
    req = make_request(
        "MESSAGE",
        "sip:34020000001320000001@192.168.1.64:5060",
        via=format_via("UDP", "192.168.1.10", 5060, branch),
        from_=f"<sip:34020000002000000001@3402000000>;tag={tag}",
        to="<sip:34020000001320000001@3402000000>",
        call_id="c1",
        cseq=7,
        headers=[("Content-Type", "Application/MANSCDP+xml")],
        body=KEEPALIVE_BODY,
    )
    data = bytes(req)
    assert f"\r\nContent-Length: {len(KEEPALIVE_BODY)}\r\n\r\n".encode() in data
    back = request(data)
    assert back.branch == branch
    assert back.from_tag == tag
    assert back.cseq == (7, "MESSAGE")
    assert back.body == KEEPALIVE_BODY
    assert back.headers.get("Max-Forwards") == "70"


def test_serialize_fixes_a_wrong_content_length_in_place() -> None:
    msg = request(MESSAGE)
    msg.body = b"<short/>"
    out = msg.serialize()
    assert b"Content-Length: 8\r\n" in out
    assert out.count(b"Content-Length") == 1
    assert request(out).body == b"<short/>"


def test_stamp_via_records_nat_source() -> None:
    msg = request(REGISTER)
    msg.stamp_via("203.0.113.9", 40123)
    assert msg.headers.get("Via") == (
        "SIP/2.0/UDP 192.168.1.64:5060;rport=40123;branch=z9hG4bK1371463273;received=203.0.113.9"
    )
    resp = make_response(msg, 200)
    assert "rport=40123" in (resp.headers.get("Via") or "")


# Headers keep an index of each name's first value; whatever is done to them, every read must
# agree with a plain list of lines (the model).
_NAMES = ["Via", "v", "From", "f", "CSeq", "Contact", "X-Custom", "x-custom"]
_OPS = st.lists(st.tuples(st.sampled_from(["add", "prepend", "set", "remove", "get", "parse", "stamp"]),
                          st.sampled_from(_NAMES), st.sampled_from(["a", "b;x=1", "SIP/2.0/UDP h:1"])),
                max_size=25)


@given(_OPS)
def test_headers_index_agrees_with_the_lines(ops: list[tuple[str, str, str]]) -> None:
    from xueliang.gb28181.sip.message import _key

    req = parse_message(REGISTER)
    h = req.headers
    model = [(_key(n), v) for n, v in h.items()]
    for op, name, value in ops:
        key = _key(name)
        if op == "add":
            h.add(name, value)
            model.append((key, value))
        elif op == "prepend":
            h.prepend(name, value)
            model.insert(0, (key, value))
        elif op == "set":
            h.set(name, value)
            i = next((i for i, (k, _) in enumerate(model) if k == key), None)
            if i is None:
                model.append((key, value))
            else:
                model = model[:i] + [(key, value)] + [m for m in model[i + 1 :] if m[0] != key]
        elif op == "remove":
            h.remove(name)
            model = [m for m in model if m[0] != key]
        elif op == "stamp" and any(k == "via" for k, _ in model):
            try:
                req.stamp_via("192.0.2.7", 5099)
            except (SipParseError, ValueError):
                continue  # not a Via we can stamp: nothing changed
            i = next(i for i, (k, _) in enumerate(model) if k == "via")
            model[i] = ("via", h.get_lines("Via")[0])
            assert "received=192.0.2.7" in model[i][1] or "rport=5099" in model[i][1]
        elif op == "parse":
            try:
                req = parse_message(req.serialize())
            except SipParseError:
                continue  # the operations made it invalid (no CSeq, a bad one): a new one is not read
            h = req.headers
        for n in _NAMES:
            k = _key(n)
            assert h.get(n) == next((v for kk, v in model if kk == k), None)
            assert (n in h) == any(kk == k for kk, _ in model)
