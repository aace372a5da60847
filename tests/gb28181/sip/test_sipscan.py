"""The SIP parser's scans in C (sip/_sipscan.c) against the Python they stand in for: the header
block of ``message._parse`` and ``digest._parse_auth_params`` give the same values, or the same
``SipParseError``, either way, for any input. The C may leave an input to Python (it answers None);
it may never answer differently.

The module is loaded here even under ``XUELIANG_PURE_PYTHON=1`` (then message.py and digest.py run
interpreted, and the C is held to them as they are written); the tests that need it skip only when
it is not built, or was built from another source.
"""

from __future__ import annotations

import gc
import importlib
import re
import sys
import tracemalloc
from types import ModuleType
from typing import Any

import pytest
from _sip_samples import ALL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xueliang import _native
from xueliang.gb28181.sip import digest, message, uri
from xueliang.gb28181.sip.errors import SipParseError
from xueliang.gb28181.sip.message import Headers, SipRequest

_NAME = "xueliang.gb28181.sip._sipscan"


def _load() -> ModuleType | None:
    if not (_native._compiled(_NAME) and _native._fresh((_NAME,))):
        return None
    return importlib.import_module(_NAME)


_mod = _load()
needs_module = pytest.mark.skipif(_mod is None, reason="the _sipscan module is not built (or not from this source)")
_scan: Any = None if _mod is None else _mod.HeadScanner(message._EXACT, message._key_and_name).scan


# -- the header block ------------------------------------------------------------------------


def _python_head(data: bytes, start: int) -> tuple[str, list[tuple[str, str, str]], int, dict[str, str]] | SipParseError:
    """What _parse_with's Python reads from the head (before it checks the start line), and
    the index Headers._index makes of it."""
    lines, body_start = message._head_lines(data, start)
    items: list[tuple[str, str, str]] = []
    try:
        message._read_headers(lines, items)
    except SipParseError as exc:
        return exc
    return lines[0].strip(" \t\r"), items, body_start, Headers._wrap(list(items))._index()


def _start_of(data: bytes) -> int | None:
    start = 0
    while start < len(data) and data[start] in b"\r\n":
        start += 1
    return start if start < len(data) else None


def _same_head(data: bytes) -> None:
    """The scan gives what the Python gives, item for item, known names as _EXACT's own strings;
    it refuses only a head with a byte >= 0x80 or one the Python refuses too."""
    start = _start_of(data)
    if start is None:
        return
    got = _scan(data, start)
    want = _python_head(data, start)
    if got is None:
        head = data[start:] if isinstance(want, SipParseError) else data[start : want[2]]
        assert isinstance(want, SipParseError) or max(head, default=0) >= 0x80, (data, want)
        return
    assert not isinstance(want, SipParseError), (data, want)
    assert type(got) is tuple and got[:4] == want, data
    _, items, _, firsts, request = got
    assert type(firsts) is dict
    _same_request(data, request)
    for key, name, value in items:
        assert type(key) is str and type(name) is str and type(value) is str
        for exact_name, pair in message._EXACT.items():
            if pair[0] == key and pair[1] == name:
                assert key is pair[0] and name is pair[1], exact_name  # no new string per known name
                break


def _same_request(data: bytes, request: Any) -> None:
    """The scan's read-through request is what the Python makes of the message; it is None only
    where the Python refuses it, or takes a path the C leaves to it: a response, a word of the
    request line or CSeq that str.split() might cut elsewhere (a control character but tab)."""
    try:
        msg = message._parse_with(data, None)
    except SipParseError as exc:
        # only the body's check follows the read-through (the same Python for both)
        assert request is None or exc.reason == "Content-Length larger than the body", data
        return
    if request is None:
        if isinstance(msg, SipRequest):
            start = data.lstrip(b"\r\n").split(b"\n", 1)[0].strip(b" \t\r")
            cseq = msg.headers.get("CSeq") or ""
            assert any((c < 0x20 and c != 9) or c == 0x7F for c in start) or any(
                (ord(c) < 0x20 and c != "\t") or c == "\x7f" for c in cseq), data
        return
    assert isinstance(msg, SipRequest), data
    method, uri, length = request
    assert (method, uri) == (msg.method, msg.uri) and type(method) is str and type(uri) is str
    clen = msg.headers.get("Content-Length")
    assert length == (None if clen is None else int(clen)), data


def _outcome(data: bytes, scan: Any) -> tuple[Any, ...]:
    try:
        msg = message._parse_with(data, scan)
    except SipParseError as exc:
        return ("error", exc.reason, exc.status)
    start = (msg.method, msg.uri) if isinstance(msg, SipRequest) else (msg.status, msg.reason)
    return (type(msg).__name__, start, msg.headers._items, msg.headers._index(), msg.body)


def _same_parse(data: bytes) -> None:
    assert _outcome(data, _scan) == _outcome(data, None), data


def _mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], one_in: int = 8) -> st.SearchStrategy[Any]:
    """`common`, and `rare` about once in `one_in` draws (so that most messages get far enough)."""
    return st.integers(0, one_in - 1).flatmap(lambda i: rare if i == 0 else common)


_CANONICAL = [pair[1] for pair in message._EXACT.values()]
_NAMES = _mostly(
    st.one_of(
        st.sampled_from(sorted(message._EXACT)),  # every spelling _EXACT knows (compact forms too)
        st.text("abcXYZ-._!%*+`'~019", min_size=1, max_size=12),  # unknown tokens: _key_and_name
    ),
    st.one_of(
        st.sampled_from(_CANONICAL).map(lambda n: n.swapcase()),  # odd case: _key_and_name
        st.sampled_from(_CANONICAL).flatmap(lambda n: st.sampled_from([n + " ", " " + n, n + "\t", f"{n}\r"])),
        st.sampled_from(["", " ", "Vi a", "Via;", "V\u00efa", "\x00", "\u212a", "X-\u4e2d\u6587"]),  # refused, or lower()ed
    ),
    one_in=12,
)
_ASCII_VALUE = st.text(st.sampled_from(list("abc <>@;=:,\"\\/.-0123456789") + [" ", "\t"]), max_size=30)
_VALUES = _mostly(
    _ASCII_VALUE,
    st.tuples(_ASCII_VALUE, st.sampled_from(["\r", "\x00", "\u00e9", "\u6444", "\udcff", "\x7f"]), _ASCII_VALUE).map("".join),
    one_in=16,
)
_EOL = _mostly(st.sampled_from(["\r\n", "\n"]), st.sampled_from(["\r\r\n", "\r", "\n\r", " \r\n"]), one_in=20)


@st.composite
def _heads(draw: st.DrawFn, max_headers: int = 12) -> bytes:
    """A SIP-like message: start line, header lines (folded, odd, broken), blank line, body."""
    method = draw(_mostly(st.sampled_from(["REGISTER", "INVITE", "MESSAGE", "ACK"]),
                          st.sampled_from(["x y", "reg!ster", "\u00e9"])))
    start = draw(_mostly(
        st.sampled_from([f"{method} sip:34020000002000000001@3402000000 SIP/2.0", "SIP/2.0 200 OK",
                         "SIP/2.0 401 Unauthorized", "  SIP/2.0 100 Trying\t"]),
        st.sampled_from(["SIP/3.0 200 OK", f"{method} nouri SIP/2.0", "garbage", ""]),
    ))
    lines: list[str] = [start]
    if draw(_mostly(st.just(True), st.just(False))):  # what a message needs, so most parse to the end
        lines += ["Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1", "From: <sip:a@b>;tag=1", "To: <sip:a@b>",
                  "Call-ID: 1@x", f"CSeq: 1 {method}"]
    for _ in range(draw(st.integers(0, max_headers))):
        kind = draw(st.integers(0, 79))
        if kind < 60:
            sep = draw(_mostly(st.just(": "), st.sampled_from([":", " : ", ":\t", "::", ":  "]), one_in=3))
            lines.append(draw(_NAMES) + sep + draw(_VALUES))
        elif kind < 72:  # a continuation line
            lines.append(draw(st.sampled_from([" ", "\t", "  \t"])) + draw(_VALUES))
        elif kind < 73:  # no colon
            lines.append(draw(_NAMES) + draw(_VALUES.filter(lambda v: ":" not in v)))
        else:
            lines.append(draw(st.sampled_from(["Content-Length: 0", "l: 5", "Content-Length: x", "Expires: 60"])))
    if draw(st.integers(0, 19)) == 0:
        lines = draw(st.permutations(lines))
    text = "".join(line + draw(_EOL) for line in lines)
    end = draw(_mostly(st.just("\r\n"), st.sampled_from(["\n", "", "\r\n\r\n", "\r"]), one_in=10))
    lead = draw(_mostly(st.just(""), st.sampled_from(["\r\n", "\n\r\n", "\n"])))
    body = draw(st.binary(max_size=20))
    return lead.encode() + (text + end).encode("utf-8", "surrogateescape") + body


@needs_module
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), st.binary(max_size=60).map(lambda b: b"REGISTER sip:x SIP/2.0\r\n" + b)))
def test_any_bytes_give_the_same_head_and_message(data: bytes) -> None:
    _same_head(data)
    _same_parse(data)


@needs_module
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_heads())
def test_sip_like_messages_give_the_same_head_and_message(data: bytes) -> None:
    _same_head(data)
    _same_parse(data)


@needs_module
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_heads(max_headers=300))
def test_very_many_headers(data: bytes) -> None:
    _same_head(data)
    _same_parse(data)


_HAND = [
    *ALL.values(),
    b"REGISTER sip:x SIP/2.0\r\nVia: a\r\n b\r\n\tc\r\n \r\nFrom: f\r\nTo: t\r\nCall-ID: 1\r\nCSeq: 1 REGISTER\r\n\r\n",
    b"REGISTER sip:x SIP/2.0\nVia:\n  more\nf:x\nt:y\ni:z\nCSeq: 1 REGISTER\n\nbody",  # LF only, an empty value folded
    b"REGISTER sip:x SIP/2.0\r\nv: a\r\n\r\n",  # missing headers: the same error
    b"REGISTER sip:x SIP/2.0\r\n continued\r\n\r\n",  # continuation first
    b"REGISTER sip:x SIP/2.0\r\nno colon\r\n\r\n",
    b"garbage\r\nno colon\r\n\r\n",  # the start line's error comes first
    b"garbage\r\nVi a: x\r\n\r\n",  # and before _key_and_name's
    b"REGISTER sip:x SIP/2.0\r\nVi a: x\r\n\r\n",
    b"REGISTER sip:x SIP/2.0\r\nFrom: \xe5\xbc\xa0\r\n\r\n",  # UTF-8: the Python reads it
    b"REGISTER sip:x SIP/2.0\r\nFrom: \xd5\xc5\r\n\r\n",  # GB2312: surrogateescape
    b"REGISTER sip:x SIP/2.0\r\nX: 1\r\n\r\n\xff\xfe",  # a binary body: the head is ASCII
    b"REGISTER sip:x SIP/2.0\r\nX\x00Y: a\x00b\r\n\r\n",
    b"REGISTER sip:x SIP/2.0\r\nX: a\rb\r\r\nY: \r\r\n\r\n",
    b"REGISTER sip:x SIP/2.0\r\nX: a\r\n\r",  # no end of head: all of it
    b"REGISTER sip:x SIP/2.0\r\nX: a\n\r",
    b"REGISTER sip:x SIP/2.0\r\nX: a\r\n",
    b"REGISTER sip:x SIP/2.0",
    b"R",
    b"\r\n\r\nREGISTER sip:x SIP/2.0\r\nX:\r\n\r\n",
    b"REGISTER sip:x SIP/2.0\r\nVIA: a\r\nvIa: b\r\nV: c\r\nCall-Id: d\r\nCseq: 1 REGISTER\r\nWww-Authenticate: x\r\n\r\n",
    b"SIP/2.0 200 OK\r\n\xe2\x84\xaa: x\r\n\r\n",  # the Kelvin sign lower()s to "k" (Supported)
]


@needs_module
@pytest.mark.parametrize("data", _HAND)
def test_by_hand(data: bytes) -> None:
    _same_head(data)
    _same_parse(data)


@needs_module
def test_what_it_gives_exactly() -> None:
    first, items, body_start, firsts, request = _scan(b"\r\nINVITE sip:a@b SIP/2.0 \r\nv:  x \r\n y\r\nX-A :\r\n\r\nbody", 2)
    assert first == "INVITE sip:a@b SIP/2.0"
    assert items == [("via", "Via", "x y"), ("x-a", "X-A", "")]
    assert items[0][0] is message._EXACT["v"][0] and items[0][1] is message._EXACT["v"][1]
    assert body_start == len(b"\r\nINVITE sip:a@b SIP/2.0 \r\nv:  x \r\n y\r\nX-A :\r\n\r\n")
    assert firsts == {"via": "x y", "x-a": ""} and request is None  # the folded value; no From, To, ...
    assert _scan(b"A\n\nB", 0) == ("A", [], 3, {}, None)
    assert _scan(b"A\n\r\nB", 0) == ("A", [], 4, {}, None)
    assert _scan(b"A\r\nQ: c", 0) == ("A", [("q", "Q", "c")], 7, {"q": "c"}, None)
    assert _scan(bytearray(b"A\r\nVia: c\r\n\r\n"), 0) == ("A", [("via", "Via", "c")], 13, {"via": "c"}, None)
    assert _scan(memoryview(b"xxA\r\n\r\n")[2:], 0) == ("A", [], 5, {}, None)
    # the first line of a key gives its value, as Headers._index has it
    assert _scan(b"A\r\nv: 1\r\nVia: 2\r\n 3\r\nX-A: 4\r\nx-a: 5\r\n\r\n", 0)[3] == {"via": "1", "x-a": "4"}
    assert _scan(b"A\r\nB: \xc3\xa9\r\n\r\n", 0) is None  # non-ASCII: the Python decodes it
    assert _scan(b"\xc3\xa9\r\n\r\nB: x", 0) is None
    assert _scan(b"A\r\n\r\n\xc3\xa9", 0) == ("A", [], 5, {}, None)  # the body is not the head's
    assert _scan(b"A\r\nno colon\r\n\r\n", 0) is None
    assert _scan(b"A\r\n cont\r\n\r\n", 0) is None
    assert _scan(b"A\r\nVi a: x\r\n\r\n", 0) is None  # _key_and_name refuses it
    register = (b"REGISTER sip:3402000000@3402000000 SIP/2.0\r\nVia: SIP/2.0/UDP h;rport;branch=z9hG4bK1\r\n"
                b"From: <sip:1@d>;tag=1\r\nTo: <sip:1@d>\r\nCall-ID: c\r\nCSeq: 7 REGISTER\r\nl: 2\r\n\r\nab")
    request = _scan(register, 0)[4]
    assert request == ("REGISTER", "sip:3402000000@3402000000", 2)
    assert request[0] is _scan(register, 0)[4][0]  # a known method: one str, not one a message
    assert _scan(register.replace(b"l: 2\r\n", b""), 0)[4] == ("REGISTER", "sip:3402000000@3402000000", None)
    assert _scan(register.replace(b"REGISTER sip", b"XNEW sip").replace(b"7 REGISTER", b"7 XNEW"), 0)[4][0] == "XNEW"
    for odd in [(b" SIP/2.0\r\nVia", b" SIP/3.0\r\nVia"), (b"CSeq: 7 REGISTER", b"CSeq: 7 INVITE"), (b"To: <sip:1@d>\r\n", b""),
                (b"CSeq: 7", b"CSeq: 2147483648"), (b"CSeq: 7", b"CSeq: x7"), (b"l: 2", b"l: 2x"), (b"l: 2", b"l: "),
                (b" sip:3402000000@3402000000 ", b" nocolon "), (b"REGISTER sip", b"REG<ISTER sip"),
                (b"REGISTER sip", b"REGISTER\x0bsip"), (b"CSeq: 7 REGISTER", b"CSeq: 7 REGISTER x")]:
        assert register.replace(*odd) != register
        assert _scan(register.replace(*odd), 0)[4] is None, odd  # the Python reads it (and mostly refuses it)


@needs_module
def test_the_scanner_refuses_wrong_arguments() -> None:
    assert _mod is not None
    scanner = _mod.HeadScanner(message._EXACT, message._key_and_name)
    for args in [("A\r\n", 0), (None, 0), (b"A", "0"), (b"A", 0.0), (b"A",), (b"A", 0, 1)]:
        with pytest.raises(TypeError):
            scanner.scan(*args)
    for args2 in [(b"", 0), (b"A", 1), (b"A", -1)]:
        with pytest.raises(ValueError):
            scanner.scan(*args2)
    with pytest.raises(OverflowError):
        scanner.scan(b"A", 2**70)
    for bad in [(message._EXACT,), (list(message._EXACT.items()), message._key_and_name),
                (message._EXACT, None), ({"é": ("é", "é")}, message._key_and_name),
                ({"Via": "via"}, message._key_and_name), ({"Via": ("via",)}, message._key_and_name),
                ({"Via": ("via", b"Via")}, message._key_and_name), ({1: ("a", "b")}, message._key_and_name)]:
        with pytest.raises(TypeError):
            _mod.HeadScanner(*bad)
    with pytest.raises(TypeError):
        _mod.HeadScanner(exact=message._EXACT, key_and_name=message._key_and_name)


@needs_module
def test_the_name_callback() -> None:
    assert _mod is not None

    def broken(name: str) -> Any:
        raise RuntimeError(name)

    def interrupt(name: str) -> Any:
        raise KeyboardInterrupt

    data = b"A\r\nVia: 1\r\nX-Odd: 2\r\n\r\n"
    assert _mod.HeadScanner({}, lambda n: (n.lower(), n)).scan(data, 0) == (
        "A", [("via", "Via", "1"), ("x-odd", "X-Odd", "2")], len(data), {"via": "1", "x-odd": "2"}, None)
    assert _mod.HeadScanner(message._EXACT, broken).scan(data, 0) is None  # the Python will meet it
    with pytest.raises(KeyboardInterrupt):
        _mod.HeadScanner(message._EXACT, interrupt).scan(data, 0)
    for answer in ["x", ("x",), ("x", 1), None]:
        with pytest.raises(TypeError):
            _mod.HeadScanner(message._EXACT, lambda n, a=answer: a).scan(data, 0)
    buffer = bytearray(data)

    def meddle(name: str) -> tuple[str, str]:  # what it reads is a copy: nothing changes under it
        buffer[:] = b"\xff" * len(buffer)
        return name.lower(), name

    assert _mod.HeadScanner({}, meddle).scan(buffer, 0) == (
        "A", [("via", "Via", "1"), ("x-odd", "X-Odd", "2")], len(data), {"via": "1", "x-odd": "2"}, None)
    exact = dict(message._EXACT)
    scanner = _mod.HeadScanner(exact, message._key_and_name)
    exact["Via"] = ("changed", "Changed")  # the scanner keeps its own copy
    del exact
    gc.collect()
    assert scanner.scan(data, 0)[1][0] == ("via", "Via", "1")


def _refuse(name: str) -> tuple[str, str]:
    raise SipParseError(f"Invalid header name {name!r}")


def _heap_growth(fn: Any, rounds: int) -> int:
    fn()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(rounds):
            fn()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@needs_module
def test_no_leak() -> None:
    # One object kept per call would be 20000 of them here: over half a megabyte.
    assert _mod is not None
    odd = _mod.HeadScanner(message._EXACT, _refuse)  # every unknown name: refused, left to Python
    inputs = [*_HAND, b"A\r\n" + b"X-Unknown: v\r\n Folded\r\n" * 20 + b"\r\n"]
    via = message._EXACT["Via"]
    refs = sys.getrefcount(via[0]), sys.getrefcount(via[1])

    def once() -> None:
        for data in inputs:
            start = _start_of(data)
            if start is not None:
                _scan(data, start)
                odd.scan(data, start)
        for value in _AUTH_HAND:
            _mod.parse_auth_params(value)

    assert _heap_growth(once, 20000 // len(inputs)) < 64 * 1024
    assert (sys.getrefcount(via[0]), sys.getrefcount(via[1])) == refs


def test_the_scanner_is_used_when_it_may_load() -> None:
    loaded = _native.extension(_NAME) is not None
    assert (message._scan_head is not None) == loaded
    assert (digest._auth_params_c is not None) == loaded
    assert (message._response_c is not None) == loaded
    assert (uri._stamp_via_c is not None) == loaded
    assert (message._cseq_c is not None) == loaded


# -- digest parameter lists ------------------------------------------------------------------


def _auth_outcome(fn: Any, value: str) -> tuple[Any, ...]:
    """(scheme, params in order), or (SipParseError, reason, status): not the string "error",
    which is also the scheme of the header value 'ERROR' (hypothesis found it)."""
    try:
        scheme, params = fn(value)
    except SipParseError as exc:
        return (SipParseError, exc.reason, exc.status)
    return scheme, list(params.items())  # in order


def _tiles(value: str) -> bool:
    """Whether _parse_auth_params_py takes its one-findall path for `value`."""
    text = value.strip(" \t")
    head = text.split(None, 1)
    rest = text if head and "=" in head[0] else (head[1] if len(head) > 1 else "")
    return sum(len(f[0]) for f in digest._PARAM_WHOLE.findall(rest)) == len(rest)


def _same_auth(value: str) -> None:
    assert _mod is not None
    want = _auth_outcome(digest._parse_auth_params_py, value)
    got = _mod.parse_auth_params(value)
    if got is None:
        # Left to the regexes: only what the C does not read (non-ASCII, control characters),
        # or a list whose matches do not tile.
        assert re.search(r"[^\t\x20-\x7e]", value) or not _tiles(value), value
    else:
        assert type(got) is tuple and type(got[0]) is str and type(got[1]) is dict
        assert want[0] is not SipParseError and (got[0], list(got[1].items())) == want, value
    assert _auth_outcome(digest._parse_auth_params, value) == want, value


_PARAM_NAMES = _mostly(
    st.sampled_from(["username", "realm", "nonce", "uri", "response", "algorithm", "qop", "nc", "cnonce",
                     "opaque", "stale", "domain"]).flatmap(lambda n: st.sampled_from([n, n, n.upper(), n.title()])),
    st.text("abcXYZ019-_.;\\/:'", min_size=1, max_size=8),
    one_in=3,
)
_QUOTED = st.lists(_mostly(st.sampled_from(list("ab ,=\t:;@")), st.sampled_from(['\\"', "\\\\", "\\x", "\\ "])),
                   max_size=12).map("".join)
_BARE = st.text(st.sampled_from(list("abMD5 \t=;:/\\")), max_size=10)


@st.composite
def _auth_values(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 8))):
        name = draw(_PARAM_NAMES)
        eq = draw(_mostly(st.sampled_from(["=", " = ", "\t=", "= "]), st.just(""), one_in=30))
        if draw(st.booleans()):
            close = _mostly(st.just('"'), st.sampled_from(["", '" ', '"x', '\\"', '\\', '""']), one_in=20)
            value = '"' + draw(_QUOTED) + draw(close)
        else:
            value = draw(_mostly(_BARE, st.sampled_from(['a"b', '"', 'x"']), one_in=30))
        parts.append(name + eq + value)
    seps = _mostly(st.sampled_from([",", ", ", " ,", " , ", "\t,", ",\t"]), st.sampled_from([",,", " ", ""]), one_in=30)
    text = "".join(p + draw(seps) for p in parts[:-1]) + (parts[-1] if parts else "")
    text += draw(_mostly(st.just(""), st.sampled_from([",", ", ", " ,, ", "\t", ",,"]), one_in=4))
    scheme = draw(_mostly(st.sampled_from(["Digest ", "digest  ", "DIGEST\t"]),
                          st.sampled_from(["Basic ", "", " ", "x=y ", 'Dig"est ', "Digest"]), one_in=4))
    lead = draw(st.sampled_from(["", "", " ", "\t "]))
    odd = draw(_mostly(st.just(""), st.sampled_from(["\u00e9", "\x00", "\n", "\x1c", "\x7f", "\u6444", "\udcff"]),
                       one_in=10))
    cut = draw(st.integers(0, len(text)))
    return lead + scheme + text[:cut] + odd + text[cut:]


@needs_module
@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.text(max_size=80), st.text(st.sampled_from(list('a=", \t\\b')), max_size=40)))
def test_any_text_gives_the_same_params(value: str) -> None:
    _same_auth(value)


@needs_module
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_auth_values())
def test_digest_lists_give_the_same_params(value: str) -> None:
    _same_auth(value)


_AUTH_HAND = [
    'Digest username="34020000001320000001", realm="3402000000", nonce="0a4b", uri="sip:3402@3402", '
    'response="9625d92b", algorithm=MD5',
    'Digest username="a", qop=auth, nc=00000001, cnonce="x"',
    'username="a",realm=b',  # no scheme
    "Digest", "", " \t ", "Digest ,", "Digest a=1,", "Digest a=1,,", "Digest a=1, ,", "Digest ,a=1",
    'Digest a="x\\"y", b="\\\\", c="\\z"', 'Digest a="', 'Digest a="x\\"', 'Digest a="x\\', 'Digest a="x" y',
    "Digest a=x\"y\"", "Digest a=,b=", "Digest a= , b = c d ", 'Digest a=""', "Digest A=1, a=2, B=3",
    "Digest =x", "Digest a", "Digest a b=c", "Digest a=b=c", "Basic abc==", "Digest\ta=1", "DiGeSt a=1",
    'Digest realm="中"', "Digest a=1\n", "Digest a=\x1c1",
]


@needs_module
@pytest.mark.parametrize("value", _AUTH_HAND)
def test_digest_by_hand(value: str) -> None:
    _same_auth(value)


@needs_module
def test_digest_exactly() -> None:
    assert _mod is not None
    scheme, params = _mod.parse_auth_params(_AUTH_HAND[0])
    assert scheme == "digest" and list(params) == ["username", "realm", "nonce", "uri", "response", "algorithm"]
    assert params["uri"] == "sip:3402@3402" and params["algorithm"] == "MD5"
    assert _mod.parse_auth_params('Digest a="x\\"y", B = z ,') == ("digest", {"a": 'x"y', "b": "z"})
    assert _mod.parse_auth_params("x=1") == ("", {"x": "1"})
    assert _mod.parse_auth_params("Basic") == ("basic", {})
    assert _mod.parse_auth_params("Digest a=1,,") is None  # the checked loop's
    assert _mod.parse_auth_params('Digest realm="中"') is None
    for bad in [b"Digest a=1", None, 1]:
        with pytest.raises(TypeError):
            _mod.parse_auth_params(bad)


# -- CSeq ------------------------------------------------------------------------------------


def _cseq_py(value: str) -> Any:
    cseq_c, message._cseq_c = message._cseq_c, None
    try:
        return message._parse_cseq(value)
    except SipParseError as exc:
        return exc.reason
    finally:
        message._cseq_c = cseq_c


@needs_module
@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.text(max_size=24), st.text(st.sampled_from(list("0123456789 \tREGISTERx\x0b\x1c\u0663")), max_size=24),
                 st.tuples(st.integers(0, 2**34), st.sampled_from([" ", "  ", "\t", " \t"]),
                           st.sampled_from(["REGISTER", "MESSAGE", "INVITE", "X-NEW", "é"])).map(lambda t: f"{t[0]}{t[1]}{t[2]}")))
def test_any_cseq_reads_as_the_python_reads_it(value: str) -> None:
    """The C reads a CSeq as _parse_cseq does, or leaves it to it: only a value the Python
    refuses, or one with a control character or non-ASCII text that split() might cut elsewhere."""
    assert _mod is not None
    got, want = _mod.cseq(value), _cseq_py(value)
    if got is not None:
        assert got == want and type(got[0]) is int and type(got[1]) is str, value
    else:
        assert isinstance(want, str) or not value.isascii() or any(ord(c) < 0x20 and c != "\t" for c in value), value


@needs_module
def test_cseq_exactly() -> None:
    assert _mod is not None
    assert _mod.cseq("7 REGISTER") == (7, "REGISTER")
    assert _mod.cseq(" 2147483647\tX ") == (2147483647, "X")
    assert _mod.cseq("7 REGISTER")[1] is _mod.cseq("8 REGISTER")[1]  # a known method: one str
    for none in ["2147483648 REGISTER", "12345678901 A", "7", "7 A B", "x7 A", "", "7\x0bA", "٣ A"]:
        assert _mod.cseq(none) is None, none
    for bad in [b"7 A", None, 7]:
        with pytest.raises(TypeError):
            _mod.cseq(bad)


# -- a response to a request ------------------------------------------------------------------

_response: Any = None if _mod is None else _mod.HeadScanner(message._EXACT, message._key_and_name).response


def _same_response(items: list[tuple[str, str, str]], extra: list[tuple[str, str]], status: int, method: str) -> None:
    """The C writes the response the Python writes, byte for byte; it leaves to the Python (None)
    only what it does not write: a part that is not ASCII, a name _EXACT does not spell, a
    Content-Length among the extras, a CR or LF in an extra (the Python raises), over 64 lines."""
    request = SipRequest(method, "sip:a@b", Headers._wrap(list(items)))
    start = f"SIP/2.0 {status} Some Reason"
    routes = 100 < status < 300 and method in message._DIALOG_METHODS
    got = _response(start, request.headers._items, extra, routes)
    try:
        want = message._response_bytes_py(request, start, status, extra)
    except (ValueError, SipParseError):
        assert got is None
        return
    if got is not None:
        assert got == want, (items, extra)
        return
    copied = message._response_items(request, status, None)
    parts = [p for item in copied for p in item[1:]] + [p for pair in extra for p in pair]
    assert (not all(p.isascii() for p in parts) or any(n not in message._EXACT for n, _ in extra)
            or any(message._key(n) == "content-length" for n, _ in extra) or len(copied) + len(extra) > 64), (items, extra)


_RESPONSE_NAMES = st.sampled_from(["Via", "v", "From", "f", "To", "t", "Call-ID", "i", "CSeq", "Record-Route",
                                   "Contact", "Max-Forwards", "X-Odd", "x-odd", "Content-Length", "l", "Expires"])
_RESPONSE_VALUES = _mostly(st.text(st.characters(codec="ascii", exclude_characters="\r\n"), max_size=20),
                           st.sampled_from(["\u00e9", "a\udcffb", "中"]))


@st.composite
def _request_items(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    items = []
    for name, value in draw(st.lists(st.tuples(_RESPONSE_NAMES, _RESPONSE_VALUES), max_size=12)):
        items.append(message._item(name, value))
    return items


@needs_module
@settings(max_examples=1500, deadline=None)
@given(items=_request_items(),
       extra=st.lists(st.tuples(_mostly(st.sampled_from(["Date", "Expires", "User-Agent", "WWW-Authenticate", "Contact"]),
                                        st.sampled_from(["content-length", "X-Odd", "expires", "EXPIRES", "Via", " Date"])),
                                _mostly(_RESPONSE_VALUES, st.sampled_from(["a\r\nInjected: 1", "b\nc", "\r"]))),
                      max_size=4),
       status=st.sampled_from([100, 180, 200, 299, 300, 401, 500]),
       method=st.sampled_from(["REGISTER", "MESSAGE", "INVITE", "SUBSCRIBE", "BYE"]))
def test_any_response_is_written_as_the_python_writes_it(items: list[tuple[str, str, str]], extra: list[tuple[str, str]],
                                                         status: int, method: str) -> None:
    _same_response(items, extra, status, method)


@needs_module
def test_response_exactly() -> None:
    items = [message._item(n, v) for n, v in [("v", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("Max-Forwards", "70"),
                                              ("f", "<sip:1@d>;tag=1"), ("t", "<sip:1@d>"), ("i", "c1"),
                                              ("CSeq", "1 REGISTER"), ("Record-Route", "<sip:p;lr>"), ("l", "5")]]
    assert _response("SIP/2.0 200 OK", items, [("Expires", "3600"), ("User-Agent", "x")], False) == (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nFrom: <sip:1@d>;tag=1\r\nTo: <sip:1@d>\r\n"
        b"Call-ID: c1\r\nCSeq: 1 REGISTER\r\nExpires: 3600\r\nUser-Agent: x\r\nContent-Length: 0\r\n\r\n")
    assert b"Record-Route: <sip:p;lr>\r\n" in _response("SIP/2.0 200 OK", items, [], True)
    assert _response("SIP/2.0 200 OK", items, [("X-Unknown", "1")], False) is None  # not in _EXACT
    assert _response("SIP/2.0 200 OK", items, [("Expires", "1\r\nX: 2")], False) is None  # the Python raises
    assert _response("SIP/2.0 200 OK", items, [("Content-Length", "1")], False) is None
    assert _response("SIP/2.0 200 \u00e9", items, [], False) is None
    assert _response("SIP/2.0 200 OK", [items[0]] * 64, [], False) is not None
    assert _response("SIP/2.0 200 OK", [items[0]] * 64, [("Expires", "1")], False) is None  # 65 lines
    assert _response("SIP/2.0 200 OK", [("via", "Via", 1)], [], False) is None
    for bad in [("s", items, []), (b"s", items, [], False), ("s", tuple(items), [], False), ("s", items, (), False)]:
        with pytest.raises(TypeError):
            _response(*bad)


# -- the top Via -----------------------------------------------------------------------------


def _same_stamp(value: str, host: str, port: int) -> None:
    """The C stamps an ASCII Via as the Python does (or sends it down the full path alike), and
    leaves anything else (not ASCII, a port beyond 64 bits) to the Python (False)."""
    assert _mod is not None
    got = _mod.stamp_via(value, host, port)
    if not (value.isascii() and host.isascii() and -(2**63) <= port < 2**63):
        assert got is False, (value, host)
        return
    want = uri._stamp_via_fast_py(value, host, port)
    assert got == want and type(got) is type(want), (value, host, port, got, want)


_VIA_PARTS = st.sampled_from(["SIP/2.0/UDP ", "10.0.0.5:5060", ";rport", ";RPort", ";rport=5", ";rportx", ";branch=z9hG4bK1",
                              ";received=1.2.3.4", ";ReCeIvEd", ",", '"', " ", "\t", ";", "x", "\u00e9", "\udcff"])


@needs_module
@settings(max_examples=1500, deadline=None)
@given(value=st.one_of(st.text(max_size=40), st.lists(_VIA_PARTS, max_size=8).map("".join)),
       host=st.one_of(st.sampled_from(["192.0.2.7", "::1", "", "h\u00e9"]), st.text(max_size=8)),
       port=st.one_of(st.integers(0, 65535), st.integers(-(2**70), 2**70)))
def test_any_via_is_stamped_as_the_python_does(value: str, host: str, port: int) -> None:
    _same_stamp(value, host, port)


@needs_module
def test_stamp_via_exactly() -> None:
    assert _mod is not None
    via = "SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK1"
    assert _mod.stamp_via(via, "203.0.113.9", 40123) == (
        "SIP/2.0/UDP 10.0.0.5:5060;rport=40123;branch=z9hG4bK1;received=203.0.113.9")
    assert _mod.stamp_via("SIP/2.0/UDP a;RPORT", "h", 1) == "SIP/2.0/UDP a;RPORT=1;received=h"
    for full_path in ["SIP/2.0/UDP a;branch=b", "SIP/2.0/UDP a;rport=5", "SIP/2.0/UDP a;rport;RECEIVED=x",
                      "SIP/2.0/UDP a;rport, SIP/2.0/UDP b", 'SIP/2.0/UDP a;rport;x="y"', "SIP/2.0/UDP a;rportx"]:
        assert _mod.stamp_via(full_path, "h", 1) is None, full_path
    assert _mod.stamp_via("SIP/2.0/UDP \u00e9;rport", "h", 1) is False
    assert _mod.stamp_via(via, "h\u00e9", 1) is False
    assert _mod.stamp_via(via, "h", 2**70) is False
    for bad in [(via, "h"), (via, "h", "1"), (via, b"h", 1), (b"v", "h", 1), (via, "h", True), (via, "h", 1.0)]:
        with pytest.raises(TypeError):
            _mod.stamp_via(*bad)


# -- serialising -----------------------------------------------------------------------------

_PART = st.one_of(
    st.text(st.characters(codec="ascii"), max_size=12),
    st.text(max_size=6),  # anything, lone surrogates too (a surrogateescape'd input)
    st.sampled_from(["content-length", "Content-Length", "via", "Via", "", "0", "12345"]),
)
_ITEMS = st.lists(st.tuples(_PART, _PART, _PART), max_size=8)


@needs_module
@settings(max_examples=600, deadline=None)
@given(start=_PART, items=_ITEMS, body=st.binary(max_size=40))
def test_serialize_writes_what_the_python_writes(start: str, items: list[tuple[str, str, str]], body: bytes) -> None:
    """Byte for byte the Python's message, or None (left to it) only where a part is not ASCII;
    one Content-Length, the first one's place, saying len(body)."""
    assert _mod is not None
    got = _mod.serialize(start, items, body)
    parts = [start, *(p for item in items for p in item)]
    if not all(p.isascii() for p in parts):
        assert got is None
        return
    assert got == message._serialize_py(start, items, body)


@needs_module
def test_serialize_edges() -> None:
    assert _mod is not None
    items = [("via", "Via", "SIP/2.0/UDP a"), ("content-length", "Content-Length", "999"),
             ("content-length", "l", "7"), ("to", "To", "<sip:b>")]
    assert _mod.serialize("SIP/2.0 200 OK", items, b"xy") == (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a\r\nContent-Length: 2\r\nTo: <sip:b>\r\n\r\nxy")
    assert _mod.serialize("X", [], b"") == b"X\r\nContent-Length: 0\r\n\r\n"
    assert _mod.serialize("X", [("a", "A", "\u00e9")], b"") is None
    assert _mod.serialize("X", [("a", "A")], b"") is None  # not an item: the Python's to refuse
    assert _mod.serialize("X", [["a", "A", "b"]], b"") is None
    for args in [(b"X", [], b""), ("X", (), b""), ("X", [], "")]:
        with pytest.raises(TypeError):
            _mod.serialize(*args)
    with pytest.raises(TypeError):
        _mod.serialize("X", [])


@needs_module
def test_serialize_keeps_no_reference() -> None:
    assert _mod is not None
    # strings of their own (not interned ones that other code holds too), so that their counts are ours
    items = [tuple("".join([p, "?"])[:-1] for p in item)
             for item in [("via", "Via", "SIP/2.0/UDP a"), ("content-length", "Content-Length", "12"),
                          ("x-odd", "X-Odd", "\u00e9t\u00e9")]]  # (one-character strings are shared)
    body = bytes(bytearray(b"body"))
    refs = [sys.getrefcount(p) for item in items for p in item] + [sys.getrefcount(body)]

    def once() -> None:
        _mod.serialize("SIP/2.0 200 OK", items[:2], body)  # written in C
        _mod.serialize("SIP/2.0 200 OK", items, body)  # left to Python

    assert _heap_growth(once, 10000) < 64 * 1024
    assert [sys.getrefcount(p) for item in items for p in item] + [sys.getrefcount(body)] == refs
