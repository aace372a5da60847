from __future__ import annotations

import pytest

from xueliang.gb28181.sip import (
    SipParseError,
    SipUri,
    format_via,
    header_param,
    parse_name_addr,
    parse_uri,
    parse_via,
    split_header_list,
    stamp_via,
)


def test_parse_gb28181_uri() -> None:
    uri = parse_uri("sip:34020000001320000001@192.168.1.64:5060;transport=udp")
    assert uri.scheme == "sip"
    assert uri.user == "34020000001320000001"
    assert uri.host == "192.168.1.64"
    assert uri.port == 5060
    assert uri.params == {"transport": "udp"}
    assert uri.transport == "UDP"
    assert uri.hostport == "192.168.1.64:5060"
    assert str(uri) == "sip:34020000001320000001@192.168.1.64:5060;transport=udp"


def test_parse_uri_domain_only_and_password_and_headers() -> None:
    assert parse_uri("sip:3402000000") == SipUri("3402000000")
    uri = parse_uri("SIPS:alice:secret@example.com;lr?subject=x")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips",
        "alice",
        "secret",
        "example.com",
        None,
    )
    assert uri.params == {"lr": None}
    assert uri.headers == "subject=x"
    assert str(uri) == "sips:alice:secret@example.com;lr?subject=x"


def test_parse_ipv6_uri() -> None:
    uri = parse_uri("sip:34020000001320000001@[2001:db8::1]:5062")
    assert uri.host == "2001:db8::1"
    assert uri.port == 5062
    assert str(uri) == "sip:34020000001320000001@[2001:db8::1]:5062"
    assert parse_uri("sip:[::1]").host == "::1"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nocolon",
        "sip:",
        "sip:user@",
        "sip:a@host:99999",
        "sip:a@host:x",
        "sip:[::1",
        "sip:[zz]:5060",
        "sip:a@ho st",
        "sip:a@[::1]x",
    ],
)
def test_bad_uris(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_unsupported_scheme_is_416() -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri("http://example.com")
    assert info.value.status == 416


def test_name_addr_forms() -> None:
    a = parse_name_addr('"Camera \\"1\\"" <sip:34020000001320000001@3402000000>;tag=abc')
    assert a.display_name == 'Camera "1"'
    assert a.uri.user == "34020000001320000001"
    assert a.tag == "abc"
    assert parse_name_addr(str(a)) == a

    b = parse_name_addr("Cam <sip:x@y>")
    assert b.display_name == "Cam"
    c = parse_name_addr("sip:x@y;tag=9")  # addr-spec: params belong to the header
    assert c.uri.params == {}
    assert c.tag == "9"
    assert str(c) == "<sip:x@y>;tag=9"
    d = parse_name_addr("<sip:x@y;lr>;expires=60")
    assert d.uri.params == {"lr": None}
    assert d.params == {"expires": "60"}


@pytest.mark.parametrize("text", ['"open <sip:x@y>', '"name" sip:x@y', "<sip:x@y", "<http:x>"])
def test_bad_name_addr(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_name_addr(text)


def test_header_param_fast_path() -> None:
    assert header_param("<sip:a@b;tag=no>;tag=yes", "tag") == "yes"
    assert header_param("<sip:a@b;tag=no>", "tag") is None
    assert header_param("sip:a@b;TAG=1", "tag") == "1"
    assert header_param('SIP/2.0/UDP h;branch="z9hG4bKq"', "branch") == "z9hG4bKq"
    assert header_param("SIP/2.0/UDP h;rport;branch=z", "rport") == ""


def test_via_parse_and_format() -> None:
    via = parse_via("SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1")
    assert via.transport == "UDP"
    assert (via.host, via.port) == ("192.168.1.64", 5060)
    assert via.branch == "z9hG4bK1"
    assert via.wants_rport and via.rport is None
    assert str(via) == "SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1"
    spaced = parse_via("SIP / 2.0 / tcp [::1]:5070 ;branch=z9hG4bK2;received=10.0.0.1")
    assert spaced.transport == "TCP"
    assert spaced.host == "::1" and spaced.port == 5070
    assert spaced.received == "10.0.0.1"
    assert spaced.response_address() == ("10.0.0.1", 5070)
    assert format_via("udp", "10.0.0.2", 5060, "z9hG4bK3") == (
        "SIP/2.0/UDP 10.0.0.2:5060;rport;branch=z9hG4bK3"
    )
    with pytest.raises(SipParseError):
        parse_via("SIP/2.0 host")


def test_stamp_via_rfc3581() -> None:
    # rport requested: fill it in and add received, even when the host matches
    assert stamp_via("SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK1", "10.0.0.5", 6000) == (
        "SIP/2.0/UDP 10.0.0.5:5060;rport=6000;branch=z9hG4bK1;received=10.0.0.5"
    )
    # no rport, host differs: received only
    assert stamp_via("SIP/2.0/UDP 192.168.1.64:5060;branch=z9hG4bK1", "203.0.113.9", 1) == (
        "SIP/2.0/UDP 192.168.1.64:5060;branch=z9hG4bK1;received=203.0.113.9"
    )
    # no rport, same host: unchanged
    value = "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1"
    assert stamp_via(value, "10.0.0.5", 5060) == value
    # only the top value of a combined header changes
    combined = "SIP/2.0/UDP a;rport;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK0"
    assert stamp_via(combined, "1.1.1.1", 9).endswith(", SIP/2.0/UDP b;branch=z9hG4bK0")
    via = parse_via(split_header_list(stamp_via(combined, "1.1.1.1", 9))[0])
    assert via.response_address() == ("1.1.1.1", 9)
