"""Shared state for several processes: Redis behind the bus and presence interfaces, requests
between nodes, media placement, and the sweeper (docs/architecture.md, "The cluster")."""

from __future__ import annotations

import asyncio


def cancelled() -> bool:
    """True when the running task was asked to stop. redis-py can swallow a cancellation that
    lands in a blocking read, so loops around one ask this as well as catching it."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
