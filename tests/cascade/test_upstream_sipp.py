"""Interoperability: SIPp (Debian's sip-tester) plays an upper platform asking xueliang for a
shared camera's live video: its INVITE (UDP, and TCP with either role), our 200, its ACK, the
video at its RTP port (decoded by FFmpeg), its BYE and our 200."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.cascade.test_upstream_links import AS_UPPER_KNOWS, LOCAL_ID, world_at
from tests.gb28181.cascade._cascade_upper import UPPER_ID
from tests.media._ps_rtp_peer import RtpPeer

SIPP = shutil.which("sipp")
SCENARIO = Path(__file__).parent / "sipp" / "upper_invite.xml"
pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (sip-tester) not installed")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def sipp_upper(to: tuple[str, int], port: int, fields: list[str], tmp: Path) -> tuple[int, str]:
    inf = tmp / "upper.csv"
    inf.write_text("SEQUENTIAL\n" + ";".join(fields) + "\n", encoding="utf-8")
    assert SIPP is not None
    proc = await asyncio.create_subprocess_exec(
        SIPP, f"{to[0]}:{to[1]}", "-sf", str(SCENARIO), "-inf", str(inf), "-m", "1", "-p", str(port), "-t", "u1",
        "-i", "127.0.0.1", "-timeout", "20s", "-timeout_error", "-nostdin", "-trace_err",
        "-error_file", str(tmp / "err.log"), cwd=tmp, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 40)
    err = (tmp / "err.log").read_text(errors="replace") if (tmp / "err.log").exists() else ""
    return proc.returncode or 0, out.decode(errors="replace")[-2000:] + err[-3000:]


# The database plays no part in SIP interoperability (test_upstream_links.py runs both backends).
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("media", ["udp", "tcp"])
async def test_sipp_upper_plays_a_shared_camera(
        sessions: async_sessionmaker[AsyncSession], tmp_path: Path, media: str) -> None:
    """UDP; and TCP where SIPp's SDP says a=setup:passive (the upper listens, we connect)."""
    port = free_udp_port()
    peer = RtpPeer()
    rtp_port = await (peer.udp() if media == "udp" else peer.listen())
    async with world_at(sessions, port, registered=False) as w:
        fields = [UPPER_ID, AS_UPPER_KNOWS, LOCAL_ID, str(rtp_port), "0200000888",
                  "RTP/AVP" if media == "udp" else "TCP/RTP/AVP", "" if media == "udp" else "a=setup:passive"]
        code, log = await sipp_upper(w["to"], port, fields, tmp_path)
        assert code == 0, log
        assert peer.got.ssrcs == {200000888} and peer.got.sequence_gaps() == 0
        assert len({p.timestamp for p in peer.got.packets if p.marker}) >= 20  # ~2 s at 25 fps, less start-up
        assert peer.got.decode(tmp_path)[:3] == ("h264", 320, 240)
        await asyncio.sleep(0.1)
        assert w["upstream"].sessions() == []  # its BYE ended the session
        if media == "tcp":
            assert peer.connections == 1
    peer.close()
