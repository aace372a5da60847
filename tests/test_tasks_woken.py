"""Waits with a deadline keep a cancellation. In Python 3.11, ``asyncio.wait_for`` returns the
inner result, and so loses the cancellation, when the awaited event is set in the same turn as
the task is cancelled: a background loop stopped that way goes on, and whoever stops it waits
for ever (the SIP endpoint's stop hung so in CI). ``tasks.woken`` waits under ``asyncio.timeout``,
and no code of the platform calls ``wait_for``."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path

from xueliang.tasks import woken

SRC = Path(__file__).resolve().parents[1] / "src" / "xueliang"


async def test_a_loop_cancelled_in_the_turn_of_its_wake_up_ends() -> None:
    wake = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            await woken(wake, 30)
            wake.clear()
            rounds += 1

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)  # waiting for its wake-up
    wake.set()  # woken ...
    task.cancel()  # ... in the very turn it is stopped
    done, _ = await asyncio.wait({task}, timeout=2.0)
    assert done, "the cancellation was lost: the loop went on"
    assert task.cancelled()
    assert rounds == 0


async def test_woken_says_whether_the_event_came() -> None:
    ev = asyncio.Event()
    assert await woken(ev, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, ev.set)
    assert await woken(ev, 5) is True
    assert await woken(ev, None) is True  # already set: at once


def _wait_for_calls(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "wait_for" and isinstance(node.value, ast.Name) \
                and node.value.id == "asyncio":
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "asyncio" and any(a.name == "wait_for" for a in node.names):
            lines.append(node.lineno)
    return lines


def test_the_check_finds_wait_for() -> None:
    assert _wait_for_calls(ast.parse("import asyncio\nasync def f(e):\n    await asyncio.wait_for(e.wait(), 1)\n")) == [3]
    assert _wait_for_calls(ast.parse("from asyncio import sleep, wait_for\n")) == [1]
    assert _wait_for_calls(ast.parse("async def f(w):\n    await w.wait_for(timeout=1)\n")) == []


def test_no_code_of_the_platform_waits_with_wait_for() -> None:
    found = [f"{p.relative_to(SRC)}:{n}" for p in sorted(SRC.rglob("*.py"))
             for n in _wait_for_calls(ast.parse(p.read_text(encoding="utf-8")))]
    assert not found, f"asyncio.wait_for can lose a cancellation in 3.11; use tasks.woken or asyncio.timeout: {found}"
