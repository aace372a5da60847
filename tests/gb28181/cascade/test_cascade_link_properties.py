"""Property tests: whatever the upper (or anyone on the path) sends, and whenever, the link
never raises, never asks to be woken in the past, and never sends more than a bounded number
of datagrams per unit of time. Plus the back-off policy's own bounds."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from _cascade_upper import UPPER, answer, config, sent_requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xueliang.gb28181.cascade import (
    Backoff,
    LinkState,
    Output,
    UpperLink,
    challenge_of,
)
from xueliang.gb28181.sip import Send, SipRequest, parse_message

WINDOW = 10.0
#: The most datagrams the link may send in any 10 s window, whatever it is fed. Worst case:
#: a registration round the upper drags through every retry we allow (401, stale twice, 423,
#: 401, stale twice: 8 REGISTERs), a loss re-registering at once, the retransmissions of the
#: keepalives still in flight (5 s interval, up to 7 of them, about 3 sends each per window)
#: and of the REGISTER. A tight loop would send thousands.
MAX_SENDS_PER_WINDOW = 50
#: New requests (distinct branches) in any window: retransmissions excluded.
MAX_NEW_REQUESTS_PER_WINDOW = 24

STATUSES = [100, 180, 200, 202, 302, 400, 401, 403, 404, 407, 408, 423, 480, 486, 500, 503, 603]

step = st.tuples(
    st.floats(min_value=0.0, max_value=90.0, allow_nan=False),
    st.one_of(
        st.just(("tick",)),
        st.tuples(st.just("garbage"), st.binary(max_size=64)),
        st.tuples(
            st.just("answer"),
            st.sampled_from(STATUSES),
            st.integers(min_value=0, max_value=3),  # which recent request: 0 = the latest
            st.sampled_from([None, "0", "1", "30", "3600", "999999999", "junk"]),
            st.booleans(),  # stale / qop variants of a challenge
        ),
        st.tuples(st.just("forged"), st.sampled_from([200, 401, 404])),
        st.just(("request",)),
        st.just(("close",)),
        st.just(("start",)),
        st.just(("lost",)),
    ),
)


def _response(req: SipRequest, status: int, value: str | None, flag: bool) -> bytes:
    headers: list[tuple[str, str]] = []
    if status in (401, 407):
        name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
        ch = f'Digest realm="3402000000", nonce="n{random.random()}"'
        if flag:
            ch += ', qop="auth", stale=TRUE'
        headers.append((name, ch))
    if value is not None:
        name = {423: "Min-Expires", 503: "Retry-After"}.get(status, "Expires")
        headers.append((name, value))
    return bytes(answer(req, status, headers))


def _drive(steps: list[tuple[float, tuple[object, ...]]], seed: int, interval: float) -> None:
    link = UpperLink(config(keepalive_interval=interval, register_expires=60), seed=seed)
    now = 0.0
    sends: list[tuple[float, bytes]] = []
    sent: list[SipRequest] = []

    def take(outputs: list[Output], t: float) -> None:
        for o in outputs:
            if isinstance(o, Send):
                assert o.addr == UPPER
                if not o.data.startswith(b"SIP/2.0"):  # requests we sent, not answers to the upper's
                    sends.append((t, o.data))
        sent.extend(sent_requests(outputs))
        del sent[:-8]
        d = link.next_deadline()
        # A deadline at or before now would make a faithful caller spin.
        assert d is None or d > t, (d, t, link.state)

    take(link.start(now), now)
    for dt, action in steps:
        target = now + dt
        # A faithful caller: wake at every deadline on the way.
        for _ in range(10_000):
            d = link.next_deadline()
            if d is None or d > target:
                break
            now = d
            take(link.tick(now), now)
        else:
            raise AssertionError("deadlines never advance")
        now = target
        kind = action[0]
        if kind == "tick":
            take(link.tick(now), now)
        elif kind == "garbage":
            data = action[1]
            assert isinstance(data, bytes)
            take(link.receive(data, now, UPPER), now)
        elif kind == "answer" and sent:
            _, status, back, value, flag = action
            assert isinstance(status, int) and isinstance(back, int) and isinstance(flag, bool)
            req = sent[max(0, len(sent) - 1 - back)]
            data = _response(req, status, value if isinstance(value, str) else None, flag)
            take(link.receive(data, now, UPPER), now)
        elif kind == "forged" and sent:
            status = action[1]
            assert isinstance(status, int)
            data = answer(sent[-1], status).replace(b"branch=z9hG4bK", b"branch=z9hG4bKx")
            take(link.receive(data, now, UPPER), now)
        elif kind == "request":
            data = (
                b"MESSAGE sip:34020100002000000001@203.0.113.7 SIP/2.0\r\nVia: SIP/2.0/UDP "
                b"10.0.0.1;branch=z9hG4bKq\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\n"
                b"Call-ID: x\r\nCSeq: 1 MESSAGE\r\n\r\n"
            )
            take(link.receive(data, now, UPPER), now)
        elif kind == "close":
            take(link.close(now), now)
        elif kind == "start":
            take(link.start(now), now)
        elif kind == "lost":
            take(link.connection_lost(now), now)
        status_view = link.status  # the read-only view never fails either
        assert status_view.state in LinkState

    times = [t for t, _ in sends]
    for i, t in enumerate(times):
        in_window = [s for s in sends[i:] if s[0] < t + WINDOW]
        assert len(in_window) <= MAX_SENDS_PER_WINDOW, (t, len(in_window))
        new = {_branch(data) for _, data in in_window}
        assert len(new) <= MAX_NEW_REQUESTS_PER_WINDOW, (t, len(new))


def _branch(data: bytes) -> str:
    msg = parse_message(data)
    return msg.branch or ""


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(step, max_size=60),
    seed=st.integers(min_value=0, max_value=2**32),
    interval=st.sampled_from([5.0, 60.0]),
)
def test_any_inputs_never_raise_and_stay_bounded(
    steps: list[tuple[float, tuple[object, ...]]], seed: int, interval: float
) -> None:
    _drive(steps, seed, interval)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=0.2, allow_nan=False),
            st.tuples(
                st.just("answer"),
                st.sampled_from([200, 401, 404, 423, 503]),
                st.integers(min_value=0, max_value=1),
                st.sampled_from([None, "1", "0"]),
                st.booleans(),
            ),
        ),
        max_size=300,
    ),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_an_upper_answering_instantly_cannot_make_a_storm(
    steps: list[tuple[float, tuple[object, ...]]], seed: int
) -> None:
    # The hostile case: every answer within 200 ms, chosen to provoke another REGISTER.
    _drive(steps, seed, 5.0)


# -- back-off ----------------------------------------------------------------------------------


def test_backoff_nominal_doubles_then_caps() -> None:
    b = Backoff(initial=2.0, maximum=60.0, jitter=0.2)
    assert [b.nominal(n) for n in range(1, 9)] == [2, 4, 8, 16, 32, 60, 60, 60]
    assert b.nominal(0) == 2.0 and b.nominal(10_000) == 60.0


@given(
    failures=st.integers(min_value=1, max_value=10_000),
    initial=st.floats(min_value=0.01, max_value=100),
    factor=st.floats(min_value=1, max_value=100),
    jitter=st.floats(min_value=0, max_value=0.99),
    seed=st.integers(),
)
def test_backoff_delay_within_bounds(
    failures: int, initial: float, factor: float, jitter: float, seed: int
) -> None:
    b = Backoff(initial=initial, maximum=initial * factor, jitter=jitter)
    d = b.delay(failures, random.Random(seed))
    assert b.nominal(failures) * (1 - jitter) - 1e-9 <= d <= b.nominal(failures) + 1e-9
    assert d >= initial * (1 - jitter) - 1e-9  # never a tight loop
    assert d <= initial * factor + 1e-9


@pytest.mark.parametrize(
    "kwargs", [{"initial": 0}, {"initial": 5, "maximum": 1}, {"jitter": 1.0}, {"jitter": -0.1}]
)
def test_backoff_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"transport": "SCTP"},
        {"port": 0},
        {"register_expires": 0},
        {"keepalive_interval": 0.1},
        {"keepalive_max_missed": 0},
    ],
)
def test_config_refuses_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        config(**kwargs)


# -- challenges --------------------------------------------------------------------------------


def _challenged(*values: str, status: int = 401) -> Callable[[], object]:
    req = sent_requests(UpperLink(config(), seed=1).start(0.0))[0]
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    resp = parse_message(answer(req, status, [(name, v) for v in values]))
    return lambda: challenge_of(resp)


def test_challenge_of_skips_what_it_cannot_answer() -> None:
    found = _challenged(
        "Basic realm=x",
        'Digest realm="r", nonce="1", algorithm=AKAv1-MD5',
        'Digest realm="r", nonce="2"',
    )()
    assert found is not None
    assert found.challenge.nonce == "2"  # type: ignore[attr-defined]
    assert found.answer_header == "Authorization"  # type: ignore[attr-defined]
    proxy = _challenged('Digest realm="r", nonce="3"', status=407)()
    assert proxy.answer_header == "Proxy-Authorization"  # type: ignore[attr-defined]
    assert _challenged('Digest nonce="no realm"')() is None
