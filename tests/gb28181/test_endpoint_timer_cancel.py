"""The endpoint's timer task ends when cancelled, even in the very turn something woke it: with
3.11's ``asyncio.wait_for`` the cancellation was lost then, the task went on, and
``SipEndpoint.stop()`` waited for it for ever (a test's teardown hung 420 s in CI)."""

from __future__ import annotations

import asyncio

from xueliang.gb28181.endpoint import SipEndpoint


async def test_the_timer_task_ends_when_cancelled_as_it_wakes() -> None:
    ep = SipEndpoint("127.0.0.1", 0, tcp=False)
    await ep.start()
    await asyncio.sleep(0.05)  # the timer task is waiting for its next deadline
    task = ep._timer_task
    assert task is not None
    ep._wake.set()  # a new transaction's deadline woke it ...
    task.cancel()  # ... in the very turn the endpoint is stopped
    done, _ = await asyncio.wait({task}, timeout=2.0)
    try:
        assert done, "the cancellation was lost: stop() would wait for ever"
    finally:
        ep._timer_task = None
        task.cancel()
        await ep.stop()
