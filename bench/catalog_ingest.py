"""Catalog ingest: one lower platform reports 100,000 channels, 20 per MESSAGE (issue 3).

Starts `xueliang serve` (SQLite in a temp dir, or `--database URL`) as a separate process,
registers a lower platform with digest from this process, answers the platform's Catalog query
with the split response, and measures the time from the query to all channels being in the
registry. Prints `name: value unit` lines.
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from xueliang.gb28181 import manscdp
from xueliang.gb28181.sip import (
    format_via,
    generate_branch,
    generate_call_id,
    generate_tag,
    make_authorization,
    make_request,
    make_response,
    parse_message,
)

ROOT = Path(__file__).resolve().parent.parent
SERVER_ID = "34020000002000000001"
DOMAIN = "3402000000"
PLATFORM_ID = "34020000002000000777"  # a lower platform (type 200)
PASSWORD = "bench-pass-1"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=100_000)
    ap.add_argument("--per-message", type=int, default=20)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    sip_port, api_port = free_port(), free_port(socket.SOCK_STREAM)
    db = tmp / "ingest.db"
    env = {**os.environ, "XUELIANG_SIP__PORT": str(sip_port), "XUELIANG_API__PORT": str(api_port),
           "XUELIANG_DATABASE__URL": f"sqlite+aiosqlite:///{db}", "XUELIANG_SIP__PASSWORD": PASSWORD,
           "XUELIANG_SIP__ADMISSION": "open",
           "XUELIANG_MEDIA__ENABLED": "false", "XUELIANG_STORAGE__VAR_DIR": str(tmp),
           "XUELIANG_SIP__RATE_LIMIT_PER_ADDRESS": "100000", "XUELIANG_LOG_LEVEL": "warning"}
    server = subprocess.Popen([str(ROOT / ".venv/bin/xueliang"), "serve"], env=env, cwd=tmp)
    try:
        run(a, sip_port, db, server.pid)
    finally:
        server.terminate()
        server.wait(10)


def run(a: argparse.Namespace, sip_port: int, db: Path, pid: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    port = sock.getsockname()[1]
    srv = ("127.0.0.1", sip_port)
    for _ in range(100):
        try:
            sqlite3.connect(db).execute("select 1 from devices").fetchall()
            break
        except sqlite3.Error:
            time.sleep(0.1)
    tag, call_id = generate_tag(), generate_call_id()

    def register(cseq: int, auth: str | None = None) -> bytes:
        h = [("Expires", "3600")] + ([("Authorization", auth)] if auth else [])
        return make_request("REGISTER", f"sip:{SERVER_ID}@{DOMAIN}", via=format_via("UDP", "127.0.0.1", port, generate_branch()),
                            from_=f"<sip:{PLATFORM_ID}@{DOMAIN}>;tag={tag}", to=f"<sip:{PLATFORM_ID}@{DOMAIN}>",
                            call_id=call_id, cseq=cseq, contact=f"<sip:{PLATFORM_ID}@127.0.0.1:{port}>", headers=h).serialize()

    time.sleep(1.0)
    sock.sendto(register(1), srv)
    r = parse_message(sock.recv(65535))
    auth = make_authorization(username=PLATFORM_ID, password=PASSWORD, challenge=r.headers.get("WWW-Authenticate") or "",
                              method="REGISTER", uri=f"sip:{SERVER_ID}@{DOMAIN}")
    sock.sendto(register(2, auth), srv)
    # wait for the 200 and the Catalog query
    query = None
    while query is None:
        m = parse_message(sock.recv(65535))
        if getattr(m, "method", None) == "MESSAGE" and b"Catalog" in m.body:
            query = m
    sock.sendto(make_response(query, 200).serialize(), srv)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    cpu0 = cpu_seconds(pid)
    sn = manscdp.decode(query.body).sn
    items = [manscdp.CatalogItem(device_id=f"3402000000131{i:07d}", name=f"通道{i}", manufacturer="bench",
                                 parental=0, parent_ids=[PLATFORM_ID], status="ON", civil_code="340200")
             for i in range(a.channels)]
    sock.setblocking(False)
    # A real lower platform sends each MESSAGE in a transaction: retransmit until the 200 (timer E),
    # with a window of messages in flight.
    pending: dict[str, tuple[bytes, float]] = {}
    window = 64
    chunks = manscdp.split_catalog(items, a.per_message)
    n = 0
    while n < len(chunks) or pending:
        while n < len(chunks) and len(pending) < window:
            body = manscdp.encode_catalog_response(sn, PLATFORM_ID, a.channels, chunks[n])
            branch = generate_branch()
            msg = make_request("MESSAGE", f"sip:{SERVER_ID}@{DOMAIN}", via=format_via("UDP", "127.0.0.1", port, branch),
                               from_=f"<sip:{PLATFORM_ID}@{DOMAIN}>;tag={tag}", to=f"<sip:{SERVER_ID}@{DOMAIN}>",
                               call_id=f"{call_id}-{n}", cseq=1, headers=[("Content-Type", "Application/MANSCDP+xml")],
                               body=body).serialize()
            pending[branch] = (msg, time.perf_counter())
            sock.sendto(msg, srv)
            n += 1
        try:
            while True:
                resp = parse_message(sock.recv(65535))
                if getattr(resp, "status", 0) >= 200:
                    pending.pop(resp.branch or "", None)
        except BlockingIOError:
            pass
        now = time.perf_counter()
        for branch, (msg, sent) in list(pending.items()):
            if now - sent > 0.5:
                pending[branch] = (msg, now)
                sock.sendto(msg, srv)
        time.sleep(0.001)
    sent_at = time.perf_counter() - t0
    count = 0
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        try:
            count = sqlite3.connect(db).execute("select count(*) from channels where device_id = ?", (PLATFORM_ID,)).fetchone()[0]
        except sqlite3.Error:
            count = 0
        if count >= a.channels:
            break
        time.sleep(0.2)
    total = time.perf_counter() - t0
    print(f"catalog_channels: {count} count")
    print(f"catalog_messages: {-(-a.channels // a.per_message)} count")
    print(f"catalog_send_time: {sent_at:.1f} s")
    print(f"catalog_ingest_time: {total:.1f} s")
    print(f"catalog_server_cpu: {cpu_seconds(pid) - cpu0:.1f} s")
    if count < a.channels:
        print(f"catalog_missing: {a.channels - count} count", file=sys.stderr)


if __name__ == "__main__":
    main()
