"""Cascade in a cluster: one signalling node at a time registers to an upper (the cascade
lease), and a change made through another node reaches it over the bus."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.cluster.redis_server import RedisServer
from xueliang.app import Platform
from xueliang.cascade.uppers import UpperIn, UpperPatch
from xueliang.config import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "gb28181" / "cascade"))
from _cascade_upper import PASSWORD, UPPER_ID, Upper
from test_cascade_links_udp import serve, until


def settings(db_url: str, redis: str, node: str, var: Path) -> Settings:
    return Settings(
        database={"url": db_url}, storage={"var_dir": var}, secret_key="test-secret-0123456789abcdef",
        sip={"enabled": True, "host": "127.0.0.1", "port": 0}, media={"enabled": False},
        health={"enabled": False}, scheduler={"enabled": False},
        cluster={"redis_url": redis, "node_id": node, "stream": "xueliang:test-cascade"},
        access={"totp_required_roles": []},
    )


async def test_one_node_registers_and_hears_changes_made_on_another(db_url: str, redis_server: RedisServer,
                                                                    tmp_path: Path) -> None:
    a = Platform(settings(db_url, redis_server.url, "cas-a", tmp_path / "a"))
    b = Platform(settings(db_url, redis_server.url, "cas-b", tmp_path / "b"))
    proto, port, transport = await serve(Upper())
    await a.start(migrate=False)
    await b.start(migrate=False)
    try:
        assert a.cascade is not None and b.cascade is not None
        row = await b.uppers.create(UpperIn(name="省", sip_id=UPPER_ID, host="127.0.0.1", port=port,
                                            password=PASSWORD, keepalive_interval=60))
        await until(lambda: a.cascade is not None and a.cascade.status(row)["state"] == "registered", 10.0)
        assert b.cascade.status(row)["state"] == "not-running"
        await asyncio.sleep(0.5)
        assert sum(1 for _, r in proto.registers() if r.headers.get("Authorization")) == 1  # one node only
        row = await b.uppers.update(row.id, UpperPatch(enabled=False))
        await until(lambda: bool(proto.registers()) and proto.registers()[-1][1].expires == 0, 10.0)
        await until(lambda: a.cascade is not None and a.cascade.status(row)["state"] == "closed", 10.0)
    finally:
        await b.stop()
        await a.stop()
        transport.close()
