"""The cluster as its operators see it: which nodes are alive, with which roles, where."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from xueliang.api.deps import PlatformDep, SignallingManager

router = APIRouter(tags=["cluster"])


@router.get("/cluster/nodes")
async def cluster_nodes(platform: PlatformDep, _: SignallingManager) -> dict[str, Any]:
    """The nodes alive now, with their roles, addresses and load (this one alone when not a
    cluster). Addresses are the network's layout: signalling administrators only."""
    return {"node": platform.node, "nodes": [n.as_dict() for n in await platform.presence.nodes()]}
