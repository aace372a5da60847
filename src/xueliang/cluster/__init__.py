"""Shared state for several processes: Redis behind the bus and presence interfaces, requests
between nodes, media placement, and the sweeper (docs/architecture.md, "The cluster")."""

from __future__ import annotations

from xueliang.tasks import cancelled

__all__ = ["cancelled"]
