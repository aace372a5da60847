"""Property tests: round trips, and fuzzing that may only ever raise SipParseError."""

from __future__ import annotations

from _sip_samples import ALL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xueliang.gb28181.sip import (
    Headers,
    SipParseError,
    SipRequest,
    SipResponse,
    StreamFramer,
    parse_authorization,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
)
from xueliang.gb28181.sip.message import _parse

TOKEN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(alphabet=TOKEN, min_size=1, max_size=12)
# header values: printable ASCII, Chinese, no CR/LF, no surrounding whitespace
value_chars = st.sampled_from([chr(c) for c in range(0x20, 0x7F)] + list("摄像机通道设备\t"))
values = st.text(alphabet=value_chars, max_size=40).map(lambda s: s.strip(" \t"))
SAMPLES = list(ALL.values())


@st.composite
def messages(draw: st.DrawFn) -> SipRequest | SipResponse:
    method = draw(st.sampled_from(["REGISTER", "MESSAGE", "INVITE", "BYE", "NOTIFY"]) | tokens)
    headers = Headers(
        [
            ("Via", f"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{draw(tokens)}"),
            ("From", f"<sip:{draw(tokens)}@3402000000>;tag={draw(tokens)}"),
            ("To", f"<sip:{draw(tokens)}@3402000000>"),
            ("Call-ID", draw(tokens)),
            ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
        ]
    )
    extra = draw(st.lists(st.tuples(tokens.map(lambda t: "X-" + t), values), max_size=6))
    for name, value in extra:
        headers.add(name, value)
    order = draw(st.permutations(range(len(headers))))
    items = headers.items()
    headers = Headers([items[i] for i in order])
    body = draw(st.binary(max_size=300))
    if draw(st.booleans()):
        return SipRequest(method, f"sip:{draw(tokens)}@{draw(tokens)}", headers, body)
    reason = draw(st.text(alphabet="abcdefghij KLMNOP", max_size=20)).strip()
    return SipResponse(draw(st.integers(100, 699)), reason, headers, body)


@settings(max_examples=400, deadline=None)
@given(messages())
def test_round_trip(msg: SipRequest | SipResponse) -> None:
    data = msg.serialize()
    back = parse_message(data)
    expected_headers = msg.headers.copy()
    expected_headers.add("Content-Length", str(len(msg.body)))
    assert type(back) is type(msg)
    assert back.headers == expected_headers
    assert back.body == msg.body
    if isinstance(msg, SipRequest):
        assert isinstance(back, SipRequest)
        assert (back.method, back.uri) == (msg.method, msg.uri)
    else:
        assert isinstance(back, SipResponse)
        assert (back.status, back.reason) == (msg.status, msg.reason)
    assert back.serialize() == data  # canonical: serialising again changes nothing


def _only_parse_errors(data: bytes) -> None:
    for parser in (_parse, parse_message):  # the unguarded parser must be robust by itself
        try:
            msg = parser(data)
        except SipParseError as exc:
            assert exc.reason and 400 <= exc.status <= 599
            continue
        # whatever parsed must serialise, and its helpers fail only with SipParseError
        msg.serialize()
        for helper in ("call_id", "cseq", "from_tag", "to_tag", "branch", "expires"):
            try:
                getattr(msg, helper)
            except SipParseError:
                pass


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _only_parse_errors(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SAMPLES),
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete", "dup", "cut"]),
            st.integers(0, 2000),
            st.binary(min_size=1, max_size=8)
            | st.sampled_from(
                [b"\r\n", b"\n", b":", b" ", b";", b",", b'"', b"<", b"\x00", b"\xff"]
            ),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_fuzz_mutated_valid_messages(
    sample: bytes, mutations: list[tuple[str, int, bytes]]
) -> None:
    data = bytearray(sample)
    for kind, pos, chunk in mutations:
        pos %= len(data) + 1
        if kind == "flip" and data:
            data[pos % len(data)] ^= chunk[0] or 1
        elif kind == "insert":
            data[pos:pos] = chunk
        elif kind == "delete":
            del data[pos : pos + len(chunk)]
        elif kind == "dup":
            data[pos:pos] = data[pos : pos + 40]
        elif kind == "cut":
            del data[pos:]
    _only_parse_errors(bytes(data))


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_text_parsers(text: str) -> None:
    for parser in (parse_uri, parse_name_addr, parse_via, parse_authorization):
        try:
            parser(text)
        except SipParseError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300) | st.sampled_from(SAMPLES), max_size=12))
def test_fuzz_framer(chunks: list[bytes]) -> None:
    framer = StreamFramer(max_header_size=1024, max_body_size=1024)
    for chunk in chunks:
        framer.feed(chunk)
        while True:
            try:
                data = framer.next_message()
            except SipParseError:
                continue
            if data is None:
                break
            assert len(data) <= 2048 + 4
        assert framer.buffered <= 1024 + 1024 + 300 + max(map(len, SAMPLES))
