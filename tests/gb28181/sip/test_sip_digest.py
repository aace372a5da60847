from __future__ import annotations

import pytest
from _sip_samples import REGISTER
from hypothesis import given
from hypothesis import strategies as st

from xueliang.gb28181.sip import (
    NonceFactory,
    NonceStatus,
    SipParseError,
    compute_ha1,
    compute_response,
    digest,
    make_authorization,
    make_challenge,
    parse_authorization,
    parse_challenge,
    parse_message,
    verify,
    verify_ha1,
)

RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
    'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def test_rfc2617_vector() -> None:
    assert (
        compute_response(
            username="Mufasa",
            realm="testrealm@host.com",
            password="Circle Of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )
    creds = parse_authorization(RFC2617_AUTHORIZATION)
    assert creds.username == "Mufasa"
    assert creds.qop == "auth"
    assert creds.nc == "00000001"
    assert creds.opaque == "5ccc069c403ebaf9f0171e9517f40e41"
    assert verify(creds, "GET", "Circle Of Life")
    assert not verify(creds, "GET", "Circle of Life")
    assert not verify(creds, "POST", "Circle Of Life")
    assert verify_ha1(creds, "GET", compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life"))


def test_gb28181_case_without_qop() -> None:
    # HA1 = MD5(user:realm:password), HA2 = MD5(REGISTER:uri), response = MD5(HA1:nonce:HA2)
    import hashlib

    def md5(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    user, realm, password = "34020000001320000001", "3402000000", "12345678"
    nonce, uri = "9bd055", "sip:34020000002000000001@3402000000"
    expected = md5(f"{md5(f'{user}:{realm}:{password}')}:{nonce}:{md5(f'REGISTER:{uri}')}")
    got = compute_response(
        username=user, realm=realm, password=password, method="REGISTER", uri=uri, nonce=nonce
    )
    assert got == expected
    # a device that sends unquoted values, odd spacing, a different order and no algorithm
    header = (
        f'Digest   response={expected.upper()},username = "{user}" ,uri="{uri}",'
        f'realm="{realm}",nonce={nonce}'
    )
    creds = parse_authorization(header)
    assert creds.algorithm is None and creds.qop is None
    assert verify(creds, "REGISTER", password)
    assert not verify(creds, "REGISTER", "wrong")


def test_challenge_and_client_round_trip_with_and_without_qop() -> None:
    for qop in (False, True):
        challenge = make_challenge("3402000000", "abc123", qop=qop, opaque="op")
        assert challenge.startswith('Digest realm="3402000000", nonce="abc123"')
        assert ('qop="auth"' in challenge) is qop
        parsed = parse_challenge(challenge)
        assert parsed.realm == "3402000000"
        assert parsed.qop == (("auth",) if qop else ())
        auth = make_authorization(
            username="34020000001320000001",
            password="pw",
            challenge=challenge,
            method="REGISTER",
            uri="sip:34020000002000000001@3402000000",
            cnonce="c0ffee",
        )
        creds = parse_authorization(auth)
        assert creds.opaque == "op"
        assert (creds.qop == "auth") is qop
        assert verify(creds, "REGISTER", "pw")
        assert not verify(creds, "REGISTER", "px")


def test_sha256_and_md5_sess() -> None:
    for algorithm in ("SHA-256", "MD5-sess", "SHA-256-sess"):
        challenge = make_challenge("r", "n", qop=True, algorithm=algorithm)
        auth = make_authorization(
            username="u", password="p", challenge=challenge, method="REGISTER", uri="sip:r"
        )
        creds = parse_authorization(auth)
        assert creds.algorithm == algorithm
        assert verify(creds, "REGISTER", "p")
        assert not verify(creds, "REGISTER", "q")


def test_unknown_algorithm_fails_verification_not_crash() -> None:
    creds = parse_authorization(
        'Digest username="u", realm="r", nonce="n", uri="sip:r", response="00", algorithm=ROT13'
    )
    assert verify(creds, "REGISTER", "p") is False
    nonascii = parse_authorization(
        'Digest username="u", realm="r", nonce="n", uri="sip:r", response="ζζ"'
    )
    assert verify(nonascii, "REGISTER", "p") is False


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Basic dXNlcjpwYXNz",
        'Digest username="u", realm="r"',
        'Digest username="u, realm="r", nonce="n", uri="x", response="y"',
        'Digest username="u", realm="r", nonce="n", uri="x", response="y", qop=auth',
        'Digest username="u", realm="r", nonce="n", uri="x", response="y", qop=bogus, nc=1, cnonce=2',
        "Digest junk",
    ],
)
def test_bad_authorization(value: str) -> None:
    with pytest.raises(SipParseError):
        parse_authorization(value)


def test_stateless_nonces() -> None:
    factory = NonceFactory(b"secret")
    nonce = factory.issue(1_700_000_000.0)
    assert len(nonce) == 32 and all(c in "0123456789abcdef" for c in nonce)
    assert factory.check(nonce, 1_700_000_100.0, max_age=300)
    assert factory.status(nonce, 1_700_000_400.0, max_age=300) is NonceStatus.STALE
    assert not factory.check(nonce, 1_700_000_400.0, max_age=300)
    assert NonceFactory(b"other").status(nonce, 1_700_000_001.0) is NonceStatus.INVALID
    forged = f"{1_700_000_100:010x}" + nonce[10:]
    assert factory.status(forged, 1_700_000_101.0) is NonceStatus.INVALID
    assert factory.status("short", 0.0) is NonceStatus.INVALID
    assert factory.status("é" * 32, 0.0) is NonceStatus.INVALID
    # Two in the same second for the same context differ, and each checks on its own.
    a, b = factory.issue(1_700_000_000.2, "ctx"), factory.issue(1_700_000_000.9, "ctx")
    assert a != b and a[:10] == b[:10]
    assert factory.check(a, 1_700_000_001.0, context="ctx") and factory.check(b, 1_700_000_001.0, context="ctx")
    assert factory.status(a[:10] + b[10:16] + a[16:], 1_700_000_001.0, context="ctx") is NonceStatus.INVALID
    bound = factory.issue(100.0, context="34020000001320000001")
    assert factory.check(bound, 101.0, context="34020000001320000001")
    assert not factory.check(bound, 101.0, context="34020000001320000002")


def test_register_challenge_flow_end_to_end() -> None:
    factory = NonceFactory(b"k")
    nonce = factory.issue(10.0)
    challenge = make_challenge("3402000000", nonce)
    register = parse_message(REGISTER)
    auth = make_authorization(
        username="34020000001320000001",
        password="12345678",
        challenge=challenge,
        method="REGISTER",
        uri=register.uri if hasattr(register, "uri") else "",
    )
    creds = parse_authorization(auth)
    assert factory.check(creds.nonce, 20.0)
    assert verify(creds, "REGISTER", "12345678")


# The parameter list has a one-call fast path and a match-by-match checked path; whatever the
# text, both must give the same parameters or the fast path must hand over to the checked one.
_PARAM_TEXT = st.text(alphabet=st.sampled_from(list('ab=", \t\\xyz\r')), max_size=40)


@given(st.lists(st.tuples(st.sampled_from(["username", "Realm", "nonce", "qop", "x"]),
                          st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8),
                          st.booleans()), max_size=6),
       st.sampled_from([", ", ",", " , ", ",\t"]), st.sampled_from(["", ",", " ", ", "]))
def test_auth_params_fast_path_agrees_on_well_formed_lists(params: list[tuple[str, str, bool]], sep: str,
                                                           tail: str) -> None:
    def render(value: str, quoted: bool) -> str:
        if quoted or not value or any(c in value for c in ' \t,="\\'):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return value

    rest = sep.join(f"{name}={render(value, quoted)}" for name, value, quoted in params) + tail
    expected = {name.lower(): value if (quoted or not value or any(c in value for c in ' \t,="\\')) else value.strip(" \t")
                for name, value, quoted in params}
    assert digest._parse_auth_params("Digest " + rest) == ("digest", expected)


@given(_PARAM_TEXT)
def test_auth_params_fast_path_agrees_with_checked_path(rest: str) -> None:
    try:
        checked: dict[str, str] | None = digest._checked_params(rest)
    except SipParseError:
        checked = None
    try:
        fast: dict[str, str] | None = digest._parse_auth_params("Digest " + rest)[1]
    except SipParseError:
        fast = None
    if not rest[:1].isspace() and rest.strip():  # the scheme split eats surrounding whitespace
        assert fast == checked


@given(st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("utf-8", "surrogateescape")),
                 st.sampled_from(["\ud800", "a\udfff", "\udc80\ud800"])))
def test_encode_gives_back_the_bytes_of_any_text(text: str) -> None:
    """Text decoded with surrogateescape encodes to its bytes again; other lone surrogates
    (no bytes of their own) as surrogatepass writes them; anything else is its UTF-8."""
    try:
        want = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        want = text.encode("utf-8", "surrogatepass")
    assert digest._encode(text) == want


@given(st.text(max_size=300))
def test_md5_is_md5_of_the_utf8_text(text: str) -> None:
    """The digests' MD5 (CPython's own where built in) is hashlib's of the encoded text."""
    import hashlib

    assert digest._md5(text) == hashlib.md5(digest._encode(text)).hexdigest()


@given(st.binary(min_size=1, max_size=64), st.floats(min_value=0, max_value=16**10 - 1), st.text(max_size=40))
def test_a_nonce_mac_is_keyed_blake2b_of_stamp_sequence_and_context(secret: bytes, now: float, context: str) -> None:
    """The MAC of a nonce, from a copy of the keyed state, is the one-shot keyed BLAKE2b: the
    same for every factory sharing the secret (a cluster's nodes), call after call."""
    import hashlib

    factory = NonceFactory(secret)
    for _ in range(3):
        nonce = factory.issue(now, context)
        head, mac = nonce[:16], nonce[16:]
        assert mac == hashlib.blake2b(digest._encode(f"{head}:{context}"), key=secret, digest_size=8).hexdigest()
        assert NonceFactory(secret).check(nonce, now, context=context)
