"""Registration storm and steady keepalive load for the GB/T 28181 signalling server.

Storm (default): from this separate process, N devices (default 10,000) each REGISTER, answer
the 401 with an MD5 digest (qop=auth when offered), and send one Keepalive MESSAGE. New
devices start at ``--rate`` per second (default 4,000 devices/s; each device is three SIP
requests, so about 12,000 requests/s at full speed). Prints ``name: value unit`` lines:

    storm_devices, storm_registered, storm_keepalives, storm_failures, storm_wall (first
    request to last answer), storm_server_cpu (utime+stime of the server process during the
    storm, from /proc/<pid>/stat), storm_server_cpu_settled (the same until the server has
    written the storm to its database, less what it spends idle over that time; the storm
    starts once the started server is quiet), storm_rate (requests answered / wall), latency percentiles
    (first REGISTER → keepalive answered), retransmissions; storm_server_cpu_thread_<name>
    (where the server's CPU went: ``main`` is the event loop's thread, the others are summed by
    thread name, e.g. the database driver's threads; not idle-corrected).

With ``--callgrind`` the started server runs under valgrind's callgrind and the storm's
instructions are counted instead (all threads, idle-corrected like the settled CPU):
storm_server_instructions_settled. Callgrind is about 50× slower: use a low ``--rate`` (5–8
devices/s) and a long ``--ready-timeout``; at such rates the server's per-batch costs weigh far
more than in a real storm, so compare such counts only with each other.

Steady (``--steady N``): N devices register (at ``--rate``), then each sends a Keepalive every
``--interval`` seconds (spread evenly) for ``--duration`` seconds; prints the server's CPU %
of one core and RSS over that window.

Without ``--server`` the script starts ``.venv/bin/xueliang serve`` itself on free ports with
a throw-away SQLite database, media disabled, and the per-address rate limit raised (all
devices come from one address here; a real deployment sees one address per device). With
``--server host:port`` give ``--server-pid`` to measure the server's CPU. ``--switch-off PART``
starts bench/anchors/answering_only.py's server instead, with ``history`` (the health history
recorder), ``writer`` (the signalling writer's rows) or ``consequences`` (all that follows a
registration) switched off: what the storm costs without it.

    .venv/bin/python bench/sip_storm.py [--devices 10000] [--rate 4000]
    .venv/bin/python bench/sip_storm.py --steady 100000 --interval 60 --duration 180

The client is lean on purpose (pre-built message templates, a few UDP sockets shared by all
devices, responses parsed by hand, one timer heap for retransmissions) so that the load it
generates is not limited by its own CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import heapq
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _process import free_port as free_port_both  # a port free for TCP and UDP
from _process import stop as stop_process  # bench/_process.py (this folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------------
# server process helpers
# --------------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")
SETTLE = 2.0  # seconds: longer than the server's 1 s persistence batches
QUIET = 0.03  # of a core: below this the started server is settled
IDLE_CG = 20.0  # seconds of the idle server counted under callgrind


def cpu_split(pid: int) -> tuple[float, float]:
    """(utime, stime) of ``pid`` in seconds (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[11]) / _TICK, int(fields[12]) / _TICK


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds."""
    return sum(cpu_split(pid))


def thread_cpu(pid: int) -> dict[str, float]:
    """utime + stime of each thread of ``pid`` (seconds), summed by thread name."""
    out: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            name = data[data.index(b"(") + 1 : data.rindex(b")")].decode(errors="replace")
            name = "main" if tid == str(pid) else re.sub(r"[^A-Za-z]+", "_", name).strip("_") or "thread"
            fields = data[data.rindex(b")") + 2 :].split()
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / _TICK
    return out


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def storm_settings(password: str, workdir: Path, sip_port: int) -> dict[str, str]:
    """The storm server's settings (environment): SQLite under ``workdir``, media off, every
    device admitted, the per-address limit raised (all devices come from one address here)."""
    return {
        "XUELIANG_SIP__HOST": "127.0.0.1",
        "XUELIANG_SIP__PORT": str(sip_port),
        "XUELIANG_SIP__PASSWORD": password,
        "XUELIANG_SIP__ADMISSION": "open",  # the storm's devices are not in the registry
        "XUELIANG_SIP__RATE_LIMIT_PER_ADDRESS": "10000000",
        "XUELIANG_DATABASE__URL": f"sqlite+aiosqlite:///{workdir / 'storm.db'}",
        "XUELIANG_MEDIA__ENABLED": "false",
        "XUELIANG_BOOTSTRAP_ADMIN": "admin",
        "XUELIANG_BOOTSTRAP_PASSWORD": secrets.token_urlsafe(12) + "Aa1!",
        "XUELIANG_STORAGE__VAR_DIR": str(workdir / "var"),
    }


def start_server(
    password: str, workdir: Path, callgrind: bool = False, switch_off: str | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    """``xueliang serve`` on free ports with :func:`storm_settings`; with ``switch_off`` (what
    follows a registration, ``consequences``, or one part of it) the server of
    bench/anchors/answering_only.py with that switched off."""
    exe = ROOT / ".venv" / "bin" / "xueliang"
    if not exe.exists():
        found = shutil.which("xueliang")
        if found is None:
            raise SystemExit("xueliang executable not found; pass --server host:port")
        exe = Path(found)
    sip_port = free_port_both()
    env = {
        **os.environ,
        **storm_settings(password, workdir, sip_port),
        "XUELIANG_API__HOST": "127.0.0.1",
        "XUELIANG_API__PORT": str(free_port(socket.SOCK_STREAM)),
    }
    if switch_off is not None:
        env["XUELIANG_BENCH_SWITCH_OFF"] = switch_off
    with open(workdir / "server.log", "wb") as log:  # the child keeps its own descriptor
        cmd = [str(exe), "serve"]
        if switch_off is not None and callgrind:
            raise ValueError("the answering-only server is not run under callgrind")
        if switch_off is not None:
            cmd = [sys.executable, str(ROOT / "bench" / "anchors" / "answering_only.py"), "serve"]
        if callgrind:
            # instructions counted only between callgrind_control -i on and the dumps
            cmd = [
                "valgrind", "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={workdir / 'callgrind.out'}", sys.executable, *cmd,
            ]
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, sip_port


# --------------------------------------------------------------------------------------------
# the lean client
# --------------------------------------------------------------------------------------------

_STATUS = re.compile(rb"^SIP/2\.0 (\d{3})")
_CALL_ID = re.compile(rb"\r\n(?:Call-ID|i|call-id|Call-Id)\s*:\s*([^\r\n]+)", re.IGNORECASE)
_AUTH = re.compile(rb"\r\nWWW-Authenticate\s*:\s*([^\r\n]+)", re.IGNORECASE)
_PARAM = re.compile(rb'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')
_CSEQ = re.compile(rb"\r\nCSeq\s*:\s*(\d+)", re.IGNORECASE)
_RETRY_AFTER = re.compile(rb"\r\nRetry-After\s*:\s*(\d+)", re.IGNORECASE)
# the platform's own requests (queries after a registration), answered with --answer-queries
_REQUEST = re.compile(rb"^([A-Z]+) sips?:(\d+)@[^ ]+ SIP/2\.0\r\n")
_COPIED = re.compile(rb"^(?:Via|v|From|f|To|t|Call-ID|i|CSeq)\s*:.*$", re.IGNORECASE | re.MULTILINE)
_QUERY = re.compile(rb"<CmdType>\s*(\w+)\s*</CmdType>.*?<SN>\s*(\d+)\s*</SN>.*?<DeviceID>\s*(\d+)\s*</DeviceID>", re.S)

REGISTER, AUTH_REGISTER, KEEPALIVE, DONE, FAILED = 0, 1, 2, 3, 4


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@dataclass
class Stats:
    sent: int = 0
    answered: int = 0
    retransmissions: int = 0
    overloaded: int = 0
    registered: int = 0
    keepalives: int = 0
    failures: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    first_send: float = 0.0
    last_answer: float = 0.0
    queries: dict[str, int] = field(default_factory=dict)  # the platform's queries, by CmdType
    replies_acked: int = 0  # our Response MESSAGEs the platform answered with a 200
    last_query: float = 0.0


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, client: Client) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.client.on_datagram(data)

    def error_received(self, exc: Exception) -> None:
        pass


class Client:
    """N simulated devices over a few UDP sockets; everything keyed by device index."""

    def __init__(
        self,
        server: tuple[str, int],
        n: int,
        *,
        password: str,
        server_id: str,
        domain: str,
        centre: str,
        first_seq: int,
        sockets: int,
        local_host: str,
    ) -> None:
        self.server = server
        self.n = n
        self.password = password
        self.server_id = server_id
        self.domain = domain
        self.local_host = local_host
        self.run = secrets.token_hex(4)
        self.ids = [f"{centre}00132{first_seq + i:07d}" for i in range(n)]
        self.phase = [REGISTER] * n
        self.started = [0.0] * n
        self.sent_at = [0.0] * n
        self.last = [b""] * n
        self.gen = [0] * n
        self.cseq = [0] * n
        self.keepalive_due: list[float] = []
        self.stats = Stats()
        self.n_sockets = max(1, sockets)
        self.transports: list[asyncio.DatagramTransport] = []
        self.ports: list[int] = []
        self.timers: list[tuple[float, int, int, float]] = []  # (deadline, idx, gen, rto)
        self.done = asyncio.Event()
        self.pending = n
        self.uri = f"sip:{server_id}@{server[0]}:{server[1]}"
        self.sn = 1
        self.steady = False
        #: answer the platform's queries as a device does (--answer-queries): a 200 to its
        #: MESSAGE, then the Response (a Catalog of ``channels`` cameras, a DeviceInfo)
        self.answer_queries = False
        self.replied = asyncio.Event()
        self.channels = 1
        self.index = {dev: i for i, dev in enumerate(self.ids)}
        self.centre = centre
        self.first_seq = first_seq

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.n_sockets):
            tr, _ = await loop.create_datagram_endpoint(
                lambda: _Proto(self), local_addr=(self.local_host, 0)
            )
            sock = tr.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024 * 1024)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024 * 1024)
            self.transports.append(tr)
            self.ports.append(tr.get_extra_info("sockname")[1])

    def close(self) -> None:
        for tr in self.transports:
            tr.close()

    # -- messages --------------------------------------------------------------------------

    def _register(self, i: int, auth: str = "") -> bytes:
        self.cseq[i] += 1
        dev = self.ids[i]
        port = self.ports[i % self.n_sockets]
        return (
            f"REGISTER {self.uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.local_host}:{port};rport;branch=z9hG4bK{secrets.token_hex(8)}\r\n"
            f"From: <sip:{dev}@{self.domain}>;tag={self.run}{i}\r\n"
            f"To: <sip:{dev}@{self.domain}>\r\n"
            f"Call-ID: storm-{self.run}-{i}\r\n"
            f"CSeq: {self.cseq[i]} REGISTER\r\n"
            f"Contact: <sip:{dev}@{self.local_host}:{port}>\r\n"
            "Max-Forwards: 70\r\n"
            "Expires: 3600\r\n"
            "X-GB-Ver: 2.0\r\n"
            "User-Agent: sip-storm\r\n"
            f"{auth}"
            "Content-Length: 0\r\n\r\n"
        ).encode()

    def _keepalive(self, i: int) -> bytes:
        self.cseq[i] += 1
        self.sn += 1
        dev = self.ids[i]
        body = (
            '<?xml version="1.0" encoding="GB2312"?>\r\n<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n'
            f"<SN>{self.sn}</SN>\r\n<DeviceID>{dev}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n"
        ).encode()
        return self._message(i, f"{i}k", f"storm-{self.run}-{i}-{self.cseq[i]}", self.cseq[i], body)

    def _message(self, i: int, tag: str, call_id: str, cseq: int, body: bytes) -> bytes:
        """A MESSAGE from device ``i`` to the platform."""
        head = (
            f"MESSAGE {self.uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.local_host}:{self.ports[i % self.n_sockets]};rport;"
            f"branch=z9hG4bK{secrets.token_hex(8)}\r\n"
            f"From: <sip:{self.ids[i]}@{self.domain}>;tag={self.run}{tag}\r\n"
            f"To: <sip:{self.server_id}@{self.domain}>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} MESSAGE\r\n"
            "Max-Forwards: 70\r\n"
            "Content-Type: Application/MANSCDP+xml\r\n"
            "User-Agent: sip-storm\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        return head + body

    def _authorization(self, i: int, header: bytes) -> str:
        params = {
            m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
            for m in _PARAM.finditer(header)
        }
        realm = (params.get(b"realm") or b"").decode()
        nonce = (params.get(b"nonce") or b"").decode()
        qop = (params.get(b"qop") or b"").decode()
        opaque = params.get(b"opaque")
        user = self.ids[i]
        ha1 = md5(f"{user}:{realm}:{self.password}")
        ha2 = md5(f"REGISTER:{self.uri}")
        parts = [
            f'Digest username="{user}"',
            f'realm="{realm}"',
            f'nonce="{nonce}"',
            f'uri="{self.uri}"',
        ]
        if "auth" in [q.strip() for q in qop.split(",")]:
            cnonce = secrets.token_hex(8)
            response = md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
            parts += [
                f'response="{response}"',
                "algorithm=MD5",
                "qop=auth",
                "nc=00000001",
                f'cnonce="{cnonce}"',
            ]
        else:
            parts += [f'response="{md5(f"{ha1}:{nonce}:{ha2}")}"', "algorithm=MD5"]
        if opaque is not None:
            parts.append(f'opaque="{opaque.decode()}"')
        return f"Authorization: {', '.join(parts)}\r\n"

    # -- sending ---------------------------------------------------------------------------

    def send(self, i: int, data: bytes) -> None:
        now = time.monotonic()
        self.last[i] = data
        self.gen[i] += 1
        self.sent_at[i] = now
        self.transports[i % self.n_sockets].sendto(data, self.server)
        self.stats.sent += 1
        if not self.stats.first_send:
            self.stats.first_send = now
        heapq.heappush(self.timers, (now + 0.5, i, self.gen[i], 1.0))

    def start_device(self, i: int) -> None:
        self.started[i] = time.monotonic()
        self.phase[i] = REGISTER
        self.send(i, self._register(i))

    def _finish(self, i: int, ok: bool) -> None:
        self.phase[i] = DONE if ok else FAILED
        self.gen[i] += 1
        if ok:
            self.stats.latencies.append(time.monotonic() - self.started[i])
        else:
            self.stats.failures += 1
        self.pending -= 1
        if self.pending <= 0:
            self.done.set()

    def on_datagram(self, data: bytes) -> None:
        m = _STATUS.match(data)
        if m is None:
            if self.answer_queries:
                self.on_request(data)
            return
        status = int(m.group(1))
        if status < 200:
            return
        cm = _CALL_ID.search(data)
        if cm is None:
            return
        parts = cm.group(1).strip().split(b"-")
        if parts[0] == b"stormq":  # the platform took one of our Responses
            if status == 200:
                self.stats.replies_acked += 1
                if self.stats.replies_acked >= 2 * self.n:  # a Catalog and a DeviceInfo each
                    self.replied.set()
            return
        if len(parts) < 3 or parts[1].decode() != self.run:
            return
        i = int(parts[2])
        if i >= self.n:
            return
        sm = _CSEQ.search(data)
        if sm is None or int(sm.group(1)) != self.cseq[i]:
            return  # an answer to a retransmission of an earlier step
        keepalive_answer = len(parts) >= 4
        phase = self.phase[i]
        if keepalive_answer != (phase == KEEPALIVE):
            return  # a late answer to an earlier step
        stats = self.stats
        stats.answered += 1
        stats.last_answer = time.monotonic()
        stats.statuses[status] = stats.statuses.get(status, 0) + 1
        if status == 503:
            stats.overloaded += 1
            ra = _RETRY_AFTER.search(data)
            delay = min(5.0, float(ra.group(1))) if ra else 1.0
            heapq.heappush(self.timers, (time.monotonic() + delay, i, self.gen[i], -1.0))
            return
        if phase == REGISTER:
            if status == 401:
                am = _AUTH.search(data)
                if am is None:
                    self._finish(i, False)
                    return
                self.phase[i] = AUTH_REGISTER
                self.send(i, self._register(i, self._authorization(i, am.group(1))))
            elif 200 <= status < 300:  # no authentication asked
                self._registered(i)
            else:
                self._finish(i, False)
        elif phase == AUTH_REGISTER:
            if 200 <= status < 300:
                self._registered(i)
            else:
                self._finish(i, False)
        elif phase == KEEPALIVE:
            if 200 <= status < 300:
                stats.keepalives += 1
                if self.steady:
                    self.phase[i] = DONE
                    self.gen[i] += 1
                    return
                self._finish(i, True)
            else:
                stats.failures += 1 if self.steady else 0
                if not self.steady:
                    self._finish(i, False)

    # -- the platform's queries (--answer-queries) -----------------------------------------

    def on_request(self, data: bytes) -> None:
        """A request from the platform: a 200 (with a To tag), and for a MANSCDP query the
        device's Response in a MESSAGE of its own, as a camera sends them."""
        m = _REQUEST.match(data)
        i = self.index.get(m.group(2).decode()) if m is not None else None
        if m is None or i is None:
            return
        head, _, body = data.partition(b"\r\n\r\n")
        lines = _COPIED.findall(head)
        ok = [b"SIP/2.0 200 OK"]
        for line in lines:
            line = line.rstrip(b"\r")
            if line.split(b":", 1)[0].strip().lower() in (b"to", b"t") and b"tag=" not in line:
                line += b";tag=" + self.run.encode()
            ok.append(line)
        ok.append(b"Content-Length: 0\r\n\r\n")
        # from the device's own socket: the platform takes answers only from where it asked
        tr = self.transports[i % self.n_sockets]
        tr.sendto(b"\r\n".join(ok), self.server)
        if m.group(1) != b"MESSAGE":
            return
        q = _QUERY.search(body)
        if q is None:
            return
        cmd, sn = q.group(1).decode(), int(q.group(2))
        stats = self.stats
        stats.queries[cmd] = stats.queries.get(cmd, 0) + 1
        stats.last_query = time.monotonic()
        reply = self._reply(i, cmd, sn)
        if reply is not None:
            tr.sendto(reply, self.server)

    def _reply(self, i: int, cmd: str, sn: int) -> bytes | None:
        dev = self.ids[i]
        if cmd == "Catalog":
            items = "".join(
                f"<Item><DeviceID>{self.centre}00131{(self.first_seq + i) * self.channels + k:07d}</DeviceID>"
                f"<Name>storm camera {i}.{k}</Name><Manufacturer>storm</Manufacturer><Model>IPC</Model>"
                f"<Owner>storm</Owner><CivilCode>{self.centre[:6]}</CivilCode><Address>bench</Address>"
                f"<Parental>0</Parental><ParentID>{dev}</ParentID><SafetyWay>0</SafetyWay>"
                f"<RegisterWay>1</RegisterWay><Secrecy>0</Secrecy><Status>ON</Status></Item>"
                for k in range(self.channels)
            )
            xml = (f"<CmdType>Catalog</CmdType><SN>{sn}</SN><DeviceID>{dev}</DeviceID>"
                   f"<SumNum>{self.channels}</SumNum><DeviceList Num=\"{self.channels}\">{items}</DeviceList>")
        elif cmd == "DeviceInfo":
            xml = (f"<CmdType>DeviceInfo</CmdType><SN>{sn}</SN><DeviceID>{dev}</DeviceID><Result>OK</Result>"
                   f"<DeviceName>storm {i}</DeviceName><Manufacturer>storm</Manufacturer><Model>IPC-1</Model>"
                   f"<Firmware>V1.0</Firmware><Channel>{self.channels}</Channel>")
        else:
            return None
        body = f'<?xml version="1.0" encoding="GB2312"?>\r\n<Response>\r\n{xml}\r\n</Response>\r\n'.encode()
        self.sn += 1
        return self._message(i, f"{i}q", f"stormq-{self.run}-{i}-{self.sn}", 1, body)

    def _registered(self, i: int) -> None:
        self.stats.registered += 1
        if self.steady:
            self.phase[i] = DONE
            self.gen[i] += 1
            self.pending -= 1
            self.stats.latencies.append(time.monotonic() - self.started[i])
            if self.pending <= 0:
                self.done.set()
            return
        self.phase[i] = KEEPALIVE
        self.send(i, self._keepalive(i))

    def send_keepalive(self, i: int) -> None:
        if self.phase[i] not in (DONE, KEEPALIVE):
            return
        self.phase[i] = KEEPALIVE
        self.send(i, self._keepalive(i))

    async def timer_loop(self) -> None:
        """Retransmit unanswered requests (500 ms doubling to 4 s; give up after 32 s)."""
        while True:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            timers = self.timers
            while timers and timers[0][0] <= now:
                _, i, gen, rto = heapq.heappop(timers)
                if gen != self.gen[i] or self.phase[i] in (DONE, FAILED):
                    continue
                if rto < 0:  # a 503: try the same step again, as new
                    data = self.last[i]
                    self.transports[i % self.n_sockets].sendto(data, self.server)
                    self.stats.sent += 1
                    self.sent_at[i] = now
                    heapq.heappush(timers, (now + 0.5, i, gen, 1.0))
                    continue
                if now - self.sent_at[i] > 32.0:  # timer F: give up
                    if self.steady:
                        self.stats.failures += 1
                        self.phase[i] = DONE
                        self.gen[i] += 1
                    else:
                        self._finish(i, False)
                    continue
                self.transports[i % self.n_sockets].sendto(self.last[i], self.server)
                self.stats.retransmissions += 1
                heapq.heappush(timers, (now + rto, i, gen, min(rto * 2, 4.0)))

    async def launch(self, rate: float) -> None:
        """Start devices at ``rate`` per second (in 5 ms batches)."""
        t0 = time.monotonic()
        started = 0
        while started < self.n:
            due = min(self.n, int((time.monotonic() - t0) * rate) + 1)
            while started < due:
                self.start_device(started)
                started += 1
            await asyncio.sleep(0.005)


# --------------------------------------------------------------------------------------------
# runs
# --------------------------------------------------------------------------------------------


def wait_ready(
    server: tuple[str, int],
    timeout: float,
    proc: subprocess.Popen[bytes] | None,
    server_id: str,
    domain: str,
) -> None:
    """Send an unauthenticated REGISTER until the server answers anything (a 401, usually)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.3)
        port = s.getsockname()[1]
        n = 0
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}; see its log")
            n += 1
            dev = "34020000001329999999"
            probe = (
                f"REGISTER sip:{server_id}@{server[0]}:{server[1]} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};rport;branch=z9hG4bKprobe{n}\r\n"
                f"From: <sip:{dev}@{domain}>;tag=p{n}\r\nTo: <sip:{dev}@{domain}>\r\n"
                f"Call-ID: probe-{n}\r\nCSeq: {n} REGISTER\r\n"
                f"Contact: <sip:{dev}@127.0.0.1:{port}>\r\nExpires: 0\r\n"
                "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ).encode()
            s.sendto(probe, server)
            try:
                s.recvfrom(65536)
                return
            except TimeoutError:
                time.sleep(0.2)
    raise SystemExit(f"no SIP answer from {server[0]}:{server[1]} within {timeout:.0f} s")


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def _client(args: argparse.Namespace, server: tuple[str, int], n: int) -> Client:
    client = Client(
        server,
        n,
        password=args.password,
        server_id=args.server_id,
        domain=args.domain or args.server_id[:10],
        centre=args.centre,
        first_seq=args.first_seq,
        sockets=args.sockets,
        local_host=args.local_host,
    )
    client.answer_queries = args.answer_queries
    client.channels = args.channels
    return client


def _callgrind(pid: int, *what: str) -> None:
    subprocess.run(["callgrind_control", *what, str(pid)], check=True, capture_output=True)


def _callgrind_dump(pid: int, workdir: Path, n: int) -> int:
    """Dump the counts since the last dump (part ``n``); its instructions (Ir)."""
    _callgrind(pid, "-d")
    part = workdir / f"callgrind.out.{n}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            for line in part.read_text(errors="replace").splitlines():
                if line.startswith(("totals:", "summary:")):
                    return int(line.split()[1])
        time.sleep(0.5)
    raise SystemExit(f"no callgrind dump {part}")


async def _launch(client: Client, args: argparse.Namespace) -> None:
    """The storm: every device registers at ``args.rate`` a second, until all have or time is up."""
    launcher = asyncio.create_task(client.launch(args.rate))
    try:
        await asyncio.wait_for(client.done.wait(), args.timeout)
    except TimeoutError:
        pass
    launcher.cancel()


async def _quiet(pid: int, per_core: float, seconds: float, limit: float) -> None:
    deadline, quiet = time.monotonic() + limit, 0
    while time.monotonic() < deadline and quiet < 2 * seconds:
        c = cpu_seconds(pid)
        await asyncio.sleep(0.5)
        quiet = quiet + 1 if cpu_seconds(pid) - c < 0.5 * per_core else 0


async def storm_callgrind(args: argparse.Namespace, server: tuple[str, int], pid: int, workdir: Path) -> int:
    """The storm's instructions in the server (all its threads), settled: from the first request
    until the server is quiet again, less the idle server's instructions per second over that time
    (measured first, over ``IDLE_CG`` seconds)."""
    client = _client(args, server, args.devices)
    await client.open()
    timers = asyncio.create_task(client.timer_loop())
    await _quiet(pid, 0.15, 5.0, 600.0)  # start-up jobs done (valgrind without instrumentation)
    _callgrind(pid, "-i", "on")
    _callgrind(pid, "-z")
    t = time.monotonic()
    await asyncio.sleep(IDLE_CG)
    idle = _callgrind_dump(pid, workdir, 1)
    idle_rate = idle / (time.monotonic() - t)
    t0 = time.monotonic()
    await _launch(client, args)
    await asyncio.sleep(SETTLE)
    await _quiet(pid, 0.5, 3.0, 120.0)  # the writers' batches done
    total = _callgrind_dump(pid, workdir, 2)
    t2 = time.monotonic()
    timers.cancel()
    client.close()
    s = client.stats
    print(f"storm_devices: {args.devices} devices")
    print(f"storm_keepalives: {s.keepalives} answered")
    print(f"storm_failures: {args.devices - s.keepalives} devices")
    print(f"storm_target_rate: {args.rate:.0f} devices/s")
    print(f"storm_retransmissions: {s.retransmissions} packets")
    print(f"storm_callgrind_window: {t2 - t0:.1f} s")
    print(f"storm_callgrind_idle: {idle_rate / 1e6:.1f} Minstr/s")
    print(f"storm_callgrind_total: {total / 1e6:.1f} Minstr")
    print(f"storm_server_instructions_settled: {(total - idle_rate * (t2 - t0)) / 1e6:.1f} Minstr")
    if args.callgrind_keep:
        shutil.copy(workdir / "callgrind.out.2", args.callgrind_keep)
        shutil.copy(workdir / "callgrind.out.1", args.callgrind_keep + ".idle")
    return 0 if s.keepalives == args.devices else 1


async def storm(args: argparse.Namespace, server: tuple[str, int], pid: int | None) -> int:
    client = _client(args, server, args.devices)
    await client.open()
    timers = asyncio.create_task(client.timer_loop())
    idle_rate = 0.0
    if pid:
        # A server just started catches up on its scheduled jobs (yesterday's report, rollups)
        # and imports what they need: seconds of CPU that are not the storm's. Wait for quiet.
        deadline, quiet = time.monotonic() + 60, 0
        while time.monotonic() < deadline and quiet < 6:  # 3 s in a row
            c = cpu_seconds(pid)
            await asyncio.sleep(0.5)
            quiet = quiet + 1 if cpu_seconds(pid) - c < 0.5 * QUIET else 0
        # what the idle server spends anyway (housekeeping), to take out of the tail below
        c = cpu_seconds(pid)
        await asyncio.sleep(2 * SETTLE)  # periodic jobs (every 2 s) averaged in
        idle_rate = (cpu_seconds(pid) - c) / (2 * SETTLE)
    threads0 = thread_cpu(pid) if pid else {}
    split0 = cpu_split(pid) if pid else (0.0, 0.0)
    cpu0 = sum(split0) if pid else None
    t0 = time.monotonic()
    await _launch(client, args)
    split1 = cpu_split(pid) if pid else (0.0, 0.0)
    cpu1 = sum(split1) if pid else None
    if client.answer_queries:
        # Every device answers the platform's Catalog and DeviceInfo queries; then the server
        # stores them: until both are in for every device (or the time is up) and it is quiet.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.replied.wait(), args.timeout)
        if pid:
            await _quiet(pid, 0.1, 1.0, 60.0)
    # The server writes what the storm changed (new devices, online events) in 1 s batches:
    # wait for that too, so the figure is the whole cost of the storm, not just the answering.
    await asyncio.sleep(SETTLE)
    cpu2 = cpu_seconds(pid) if pid else None
    threads2 = thread_cpu(pid) if pid else {}
    t2 = time.monotonic()
    timers.cancel()
    client.close()
    s = client.stats
    wall = max(1e-9, (s.last_answer or time.monotonic()) - s.first_send)
    print(f"storm_devices: {args.devices} devices")
    print(f"storm_registered: {s.registered} devices")
    print(f"storm_keepalives: {s.keepalives} answered")
    print(f"storm_failures: {args.devices - s.keepalives} devices")
    print(f"storm_wall: {wall:.3f} s")
    if cpu0 is not None and cpu1 is not None and cpu2 is not None:
        print(f"storm_server_cpu: {cpu1 - cpu0:.3f} s")
        # the kernel's share (UDP send and receive, wake-ups) of the answering
        print(f"storm_server_cpu_system: {split1[1] - split0[1]:.3f} s")
        print(f"storm_server_cpu_settled: {cpu2 - cpu0 - idle_rate * (t2 - t0):.3f} s")
        # where it went: the event loop's thread, the database driver's threads (aiosqlite
        # runs each connection in a thread of its own), others (not idle-corrected)
        for name in sorted(threads2):
            spent = threads2[name] - threads0.get(name, 0.0)
            if spent > 0:
                print(f"storm_server_cpu_thread_{name}: {spent:.3f} s")
    print(f"storm_rate: {s.answered / wall:.0f} msg/s")
    print(f"storm_target_rate: {args.rate:.0f} devices/s")
    print(f"storm_requests: {s.sent} sent")
    print(f"storm_retransmissions: {s.retransmissions} packets")
    print(f"storm_overloaded: {s.overloaded} answers")
    if client.answer_queries:
        for cmd in ("Catalog", "DeviceInfo"):
            print(f"storm_queries_{cmd.lower()}: {s.queries.get(cmd, 0)} answered")
        print(f"storm_query_replies_acked: {s.replies_acked} messages")
        if s.last_query:
            print(f"storm_queries_wall: {s.last_query - s.first_send:.3f} s")
    print(f"storm_latency_p50: {_pct(s.latencies, 50) * 1000:.1f} ms")
    print(f"storm_latency_p99: {_pct(s.latencies, 99) * 1000:.1f} ms")
    if pid:
        print(f"storm_server_rss: {rss_mb(pid):.0f} MB")
    other = {k: v for k, v in s.statuses.items() if k not in (200, 401)}
    if other:
        print(f"storm_other_statuses: {other}", file=sys.stderr)
    return 0 if s.keepalives == args.devices else 1


async def steady(args: argparse.Namespace, server: tuple[str, int], pid: int | None) -> int:
    n = args.steady
    client = _client(args, server, n)
    client.steady = True
    await client.open()
    timers = asyncio.create_task(client.timer_loop())
    t_reg = time.monotonic()
    await client.launch(args.rate)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.done.wait(), max(60.0, n / args.rate * 3))
    print(f"steady_devices: {n} devices")
    print(f"steady_registered: {client.stats.registered} devices")
    print(f"steady_register_wall: {time.monotonic() - t_reg:.1f} s")
    # Keepalives spread evenly over the interval.
    interval = args.interval
    t0 = time.monotonic()
    cpu0 = cpu_seconds(pid) if pid else None
    k0 = client.stats.keepalives
    samples: list[tuple[float, float]] = []
    next_sample = t0 + args.sample
    last_cpu, last_t = cpu0, t0
    sent = 0
    end = t0 + args.duration
    while time.monotonic() < end:
        now = time.monotonic()
        due = int((now - t0) / interval * n)
        while sent < due:
            client.send_keepalive(sent % n)
            sent += 1
        if pid and now >= next_sample and last_cpu is not None:
            cpu = cpu_seconds(pid)
            samples.append(((cpu - last_cpu) / (now - last_t) * 100, rss_mb(pid)))
            last_cpu, last_t = cpu, now
            next_sample += args.sample
            print(
                f"  t={now - t0:5.0f} s  server cpu {samples[-1][0]:5.1f} %  rss {samples[-1][1]:6.0f} MB",
                file=sys.stderr,
            )
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - t0
    await asyncio.sleep(1.0)
    timers.cancel()
    client.close()
    print(f"steady_keepalive_rate: {(client.stats.keepalives - k0) / elapsed:.0f} msg/s")
    print(f"steady_keepalive_failures: {client.stats.failures} keepalives")
    if pid and cpu0 is not None:
        print(f"steady_server_cpu: {(cpu_seconds(pid) - cpu0) / elapsed * 100:.1f} %")
        if samples:
            print(f"steady_server_cpu_max: {max(c for c, _ in samples):.1f} %")
        print(f"steady_server_rss: {rss_mb(pid):.0f} MB")
    return 0 if client.stats.failures == 0 else 1


def parse_server(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return (host.strip("[]") or "127.0.0.1", int(port or 5060))


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--server", help="host:port of a running server (default: start one)")
    ap.add_argument("--server-pid", type=int, help="pid of that server, to measure its CPU")
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=4000.0, help="devices started per second")
    ap.add_argument("--password", default="12345678")
    ap.add_argument("--server-id", default="34020000002000000001")
    ap.add_argument("--domain", default=None)
    ap.add_argument("--centre", default="34020000", help="8-digit centre code of device IDs")
    ap.add_argument("--first-seq", type=int, default=1)
    ap.add_argument("--sockets", type=int, default=8, help="client UDP sockets")
    ap.add_argument("--local-host", default="127.0.0.1")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--steady", type=int, default=0, help="steady mode: number of devices")
    ap.add_argument("--interval", type=float, default=60.0, help="steady keepalive interval")
    ap.add_argument("--duration", type=float, default=180.0, help="steady measurement window")
    ap.add_argument("--sample", type=float, default=10.0, help="steady CPU sampling period")
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    ap.add_argument("--answer-queries", action="store_true",
                    help="devices answer the platform's queries after registering (Catalog, DeviceInfo) "
                    "as cameras do; the settled figure then waits for both to be stored")
    ap.add_argument("--channels", type=int, default=1, help="cameras in each device's Catalog")
    ap.add_argument(
        "--callgrind",
        action="store_true",
        help="run the started server under valgrind's callgrind and count the instructions of the "
        "storm (all threads; slow: use a low --rate such as 50, and a long --ready-timeout)",
    )
    ap.add_argument("--callgrind-keep", help="copy the storm's callgrind profile to this file")
    ap.add_argument(
        "--switch-off", choices=("consequences", "history", "writer"),
        help="run the server of bench/anchors/answering_only.py with this part of what follows a "
        "registration switched off (consequences: all of it), to see what each part costs",
    )
    args = ap.parse_args()

    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()

    proc: subprocess.Popen[bytes] | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.server:
        server = parse_server(args.server)
        pid = args.server_pid
    else:
        tmp = tempfile.TemporaryDirectory(prefix="sip-storm-")
        proc, port = start_server(args.password, Path(tmp.name), callgrind=args.callgrind,
                                  switch_off=args.switch_off)
        server, pid = ("127.0.0.1", port), proc.pid
    try:
        wait_ready(
            server, args.ready_timeout, proc, args.server_id, args.domain or args.server_id[:10]
        )
        if pid:
            time.sleep(1.0)  # let start-up work settle before measuring
        if args.callgrind:
            if not pid or tmp is None:
                raise SystemExit("--callgrind needs the server started by this script")
            return asyncio.run(storm_callgrind(args, server, pid, Path(tmp.name)))
        return asyncio.run(steady(args, server, pid) if args.steady else storm(args, server, pid))
    finally:
        if proc is not None:
            stop_process(proc)
        if tmp is not None:
            if proc is not None and proc.returncode not in (0, -2, 130, None):
                print((Path(tmp.name) / "server.log").read_text()[-3000:], file=sys.stderr)
            tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
