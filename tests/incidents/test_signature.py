"""The signed-request header of emergency systems (incidents/signature.py), property-tested:
what a sender signs verifies; any change of method, path, body, time or key does not; any
header text parses or is refused with SignatureError, never another exception."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from xueliang.incidents import signature
from xueliang.incidents.signature import SignatureError, SignedHeader

KEY = b"k" * 32
key_ids = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)
bodies = st.binary(max_size=512)
stamps = st.integers(min_value=0, max_value=10**11)


@given(key_ids, stamps, bodies, st.sampled_from(["POST", "PUT"]), st.from_regex(r"/[a-z/]{0,30}", fullmatch=True))
def test_what_is_signed_verifies_and_round_trips(key_id: str, ts: int, body: bytes, method: str, path: str) -> None:
    h = signature.sign(KEY, method, path, body, ts, key_id)
    assert signature.parse(h.render()) == h
    signature.check(h, KEY, method, path, body, now=ts, window=300)


@given(stamps, bodies, bodies)
def test_another_body_does_not_verify(ts: int, body: bytes, other: bytes) -> None:
    h = signature.sign(KEY, "POST", "/p", body, ts, "k1")
    if other != body:
        with pytest.raises(SignatureError, match="BodyHash"):
            signature.check(h, KEY, "POST", "/p", other, now=ts, window=300)
        # a sender that rehashes the body but cannot sign it
        forged = SignedHeader(h.key_id, ts, signature.body_hash(other), h.signature)
        with pytest.raises(SignatureError, match="does not verify"):
            signature.check(forged, KEY, "POST", "/p", other, now=ts, window=300)


@given(stamps, st.integers(min_value=-10_000, max_value=10_000))
def test_the_replay_window(ts: int, skew: int) -> None:
    h = signature.sign(KEY, "POST", "/p", b"{}", ts, "k1")
    if abs(skew) > 300:
        with pytest.raises(SignatureError, match="timestamp"):
            signature.check(h, KEY, "POST", "/p", b"{}", now=ts + skew, window=300)
    else:
        signature.check(h, KEY, "POST", "/p", b"{}", now=ts + skew, window=300)


@given(bodies, st.binary(min_size=1, max_size=64))
def test_another_key_path_or_method_does_not_verify(body: bytes, key: bytes) -> None:
    h = signature.sign(KEY, "POST", "/api/v1/incidents/inbound", body, 1000, "k1")
    for args in ((key, "POST", "/api/v1/incidents/inbound"), (KEY, "PUT", "/api/v1/incidents/inbound"),
                 (KEY, "POST", "/api/v1/incidents/inbound/")):
        if args[0] == KEY and args[1:] == ("POST", "/api/v1/incidents/inbound"):
            continue
        with pytest.raises(SignatureError):
            signature.check(h, args[0], args[1], args[2], body, now=1000, window=300)


@settings(max_examples=400)
@given(st.text(max_size=700))
def test_any_header_parses_or_is_refused_clearly(text: str) -> None:
    try:
        h = signature.parse(text)
    except SignatureError as exc:
        assert str(exc)
        return
    assert signature.parse(h.render()) == h


@given(key_ids, stamps)
def test_fields_in_any_order_with_spaces(key_id: str, ts: int) -> None:
    h = signature.sign(KEY, "POST", "/p", b"x", ts, key_id)
    text = (f"XL-HMAC-SHA256  Signature={h.signature} ,BodyHash={h.body_hash},  Timestamp={ts}, "
            f"Credential={key_id}")
    assert signature.parse(text) == h


@pytest.mark.parametrize(("header", "why"), [
    ("Bearer abc", "scheme"),
    ("XL-HMAC-SHA256 Credential=k", "missing"),
    ("XL-HMAC-SHA256 Credential=k, Credential=k, Timestamp=1, BodyHash=" + "0" * 64 + ", Signature=" + "0" * 64,
     "twice"),
    ("XL-HMAC-SHA256 Credential=k, Timestamp=-1, BodyHash=" + "0" * 64 + ", Signature=" + "0" * 64, "Timestamp"),
    ("XL-HMAC-SHA256 Credential=k, Timestamp=1, BodyHash=" + "A" * 64 + ", Signature=" + "0" * 64, "BodyHash"),
    ("XL-HMAC-SHA256 Credential=k k, Timestamp=1, BodyHash=" + "0" * 64 + ", Signature=" + "0" * 64, "Credential"),
    ("XL-HMAC-SHA256 Nonce=1, Credential=k, Timestamp=1, BodyHash=" + "0" * 64 + ", Signature=" + "0" * 64,
     "unknown field"),
    ("XL-HMAC-SHA256 " + "x" * 600, "longer"),
])
def test_bad_headers_are_named(header: str, why: str) -> None:
    with pytest.raises(SignatureError, match=why):
        signature.parse(header)
