"""Interoperability: SIPp (Debian's sip-tester) plays a GB/T 28181 device against the signalling service."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.integration.conftest import PASSWORD
from tests.ports import free_port
from xueliang.db.tables import Channel, Device, Event

SIPP = shutil.which("sipp")
HERE = Path(__file__).parent / "sipp"
pytestmark = pytest.mark.skipif(SIPP is None, reason="sipp (sip-tester) not installed")


async def run_sipp(scenario: str, port: int, fields: list[str], tmp: Path, transport: str = "u1",
                   local_port: int = 0, calls: int = 1, server: bool = False) -> tuple[int, str]:
    inf = tmp / "device.csv"
    inf.write_text("SEQUENTIAL\n" + ";".join(fields) + "\n", encoding="utf-8")
    assert SIPP is not None
    proc = await asyncio.create_subprocess_exec(
        SIPP, *([] if server else [f"127.0.0.1:{port}"]), "-sf", str(HERE / scenario), "-inf", str(inf),
        "-m", str(calls), "-p", str(local_port or free_port()),
        "-t", transport, "-i", "127.0.0.1", "-au", fields[1], "-ap", fields[3], "-timeout", "20s", "-timeout_error", "-nostdin",
        "-trace_err", "-error_file", str(tmp / "err.log"),
        cwd=tmp, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 40)
    err = (tmp / "err.log").read_text(errors="replace") if (tmp / "err.log").exists() else ""
    return proc.returncode or 0, out.decode(errors="replace")[-2000:] + err[-3000:]


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_sipp_device_registers_keeps_alive_and_reports_catalog(signalling, sessions, tmp_path, transport) -> None:  # type: ignore[no-untyped-def]
    dev, chan = "34020000001320000101", "34020000001310000101"
    fields = [signalling.cfg.id, dev, signalling.cfg.domain, PASSWORD, chan]
    local = free_port()
    code, log = await run_sipp("device_uac.xml", signalling.endpoint.port, fields, tmp_path, transport, local)
    assert code == 0, log
    if transport == "u1":  # the queries follow on the same port (over TCP the connection closed with SIPp)
        code, log = await run_sipp("device_uas.xml", signalling.endpoint.port, fields, tmp_path, transport, local,
                                   calls=2, server=True)
        assert code == 0, log
    session = signalling.registrar.devices[dev]
    assert session.online and session.transport == ("tcp" if transport == "t1" else "udp")
    await asyncio.sleep(0.3)
    await signalling.writer.flush(all_keepalives=True)
    async with sessions() as s:
        d = await s.get(Device, dev)
        ch = await s.get(Channel, chan)
        kinds = (await s.scalars(select(Event.kind).where(Event.subject == dev))).all()
    assert d is not None and d.online and d.remote_port == local and "device.online" in kinds
    if transport == "u1":
        assert d.manufacturer == "SIPp" and d.firmware == "V3.6.1"
        # the catalog said GB2312 and was UTF-8: the name still reads right
        assert ch is not None and ch.name == "东门广场球机" and ch.device_id == dev and ch.status == "ON"
        assert ch.ptz_type == 1 and abs((ch.longitude or 0) - 118.38) < 1e-6 and ch.networked
    # SIPp stops sending keepalives: offline after 3 missed (interval 1 s in this test)
    for _ in range(60):
        if not signalling.registrar.devices[dev].online:
            break
        await asyncio.sleep(0.1)
    assert not signalling.registrar.devices[dev].online
    await signalling.writer.flush(all_keepalives=True)
    async with sessions() as s:
        assert (await s.get(Device, dev)).online is False  # type: ignore[union-attr]
        kinds = (await s.scalars(select(Event.kind).where(Event.subject == dev))).all()
        if transport == "u1":
            assert (await s.get(Channel, chan)).status == "OFF"  # type: ignore[union-attr]
    assert "device.offline" in kinds


async def test_sipp_device_over_ipv6(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same device on ::1: IPv6 transports, bracketed hosts in Via and Contact."""
    from xueliang.bus import EventBus
    from xueliang.config import SipConfig
    from xueliang.gb28181.service import SignallingService

    svc = SignallingService(SipConfig(host="::1", port=0, password=PASSWORD, admission="open", request_timeout=8.0),
                            sessions, EventBus(), nonce_secret=b"6" * 32)
    try:
        await svc.start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        dev = "34020000001320000106"
        inf = tmp_path / "device.csv"
        inf.write_text(f"SEQUENTIAL\n{svc.cfg.id};{dev};{svc.cfg.domain};{PASSWORD};34020000001310000106\n")
        assert SIPP is not None
        proc = await asyncio.create_subprocess_exec(
            SIPP, f"[::1]:{svc.endpoint.port}", "-sf", str(HERE / "device_uac.xml"), "-inf", str(inf), "-m", "1",
            "-t", "u1", "-i", "::1", "-au", dev, "-ap", PASSWORD, "-timeout", "20s", "-timeout_error", "-nostdin",
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 40)
        assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
        s = svc.registrar.devices[dev]
        assert s.online and s.addr is not None and s.addr[0] == "::1"
    finally:
        await svc.stop()


async def test_sipp_wrong_password_gets_403(signalling, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dev = "34020000001320000102"
    fields = [signalling.cfg.id, dev, signalling.cfg.domain, "not-the-password", "34020000001310000102"]
    code, log = await run_sipp("device_uac.xml", signalling.endpoint.port, fields, tmp_path)
    assert code != 0 and "403" in log
    assert dev not in signalling.registrar.devices or not signalling.registrar.devices[dev].online
