"""A burst of requests starts a few per loop turn (api/admission.py), in arrival order."""

from __future__ import annotations

import asyncio
from typing import Any

from xueliang.api.admission import TurnAdmission


class _Recorder:
    """An ASGI app that notes the loop turn in which each request reached it."""

    def __init__(self) -> None:
        self.turn = 0
        self.entered: list[tuple[int, int]] = []  # (request number, turn)

    async def ticker(self, turns: int) -> None:
        # One increment per loop turn: call_soon from a callback runs at the next turn.
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def tick(left: int) -> None:
            self.turn += 1
            if left:
                loop.call_soon(tick, left - 1)
            else:
                done.set_result(None)

        loop.call_soon(tick, turns)
        await done

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.entered.append((scope["n"], self.turn))


async def _nothing() -> dict[str, Any]:
    return {}


async def _ignore(message: dict[str, Any]) -> None:
    return None


async def test_a_burst_starts_per_turn_in_arrival_order() -> None:
    app = _Recorder()
    gate = TurnAdmission(app, per_turn=2)
    ticker = asyncio.create_task(app.ticker(40))
    await asyncio.sleep(0)
    requests = [asyncio.create_task(gate({"type": "http", "n": n}, _nothing, _ignore)) for n in range(7)]
    await asyncio.gather(*requests)
    await ticker
    assert [n for n, _ in app.entered] == list(range(7))  # arrival order kept
    per_turn: dict[int, int] = {}
    for _, turn in app.entered:
        per_turn[turn] = per_turn.get(turn, 0) + 1
    assert max(per_turn.values()) <= 2, per_turn  # never more than per_turn in one turn
    assert len(per_turn) >= 4  # 7 requests, 2 a turn: spread over at least four turns
    assert gate.deferred == 5


async def test_outside_a_burst_a_request_starts_at_once() -> None:
    app = _Recorder()
    gate = TurnAdmission(app, per_turn=2)
    for n in range(3):
        await gate({"type": "http", "n": n}, _nothing, _ignore)
        await asyncio.sleep(0.01)  # quiet: the next comes turns later
    assert [n for n, _ in app.entered] == [0, 1, 2] and gate.deferred == 0


async def test_a_request_that_leaves_while_waiting_does_not_hold_up_the_rest() -> None:
    app = _Recorder()
    gate = TurnAdmission(app, per_turn=1)
    first = asyncio.create_task(gate({"type": "http", "n": 0}, _nothing, _ignore))
    gone = asyncio.create_task(gate({"type": "http", "n": 1}, _nothing, _ignore))
    last = asyncio.create_task(gate({"type": "websocket", "n": 2}, _nothing, _ignore))
    await asyncio.sleep(0)  # all three have arrived; 1 and 2 wait
    gone.cancel()
    await asyncio.wait_for(asyncio.gather(first, last), 2)
    assert [n for n, _ in app.entered] == [0, 2] and gone.cancelled()


async def test_lifespan_is_not_queued() -> None:
    app = _Recorder()
    gate = TurnAdmission(app, per_turn=1)
    gate._used = 1  # this turn's room taken
    await asyncio.wait_for(gate({"type": "lifespan", "n": 9}, _nothing, _ignore), 1)
    assert app.entered == [(9, 0)] and gate.deferred == 0


def test_the_app_admits_before_every_other_layer() -> None:
    from xueliang.api.live_send import RawSend
    from xueliang.api.main import _App

    stack = _App().build_middleware_stack()
    assert isinstance(stack, TurnAdmission) and isinstance(stack.app, RawSend)
