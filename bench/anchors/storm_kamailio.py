"""The registration storm of bench/sip_storm.py against Kamailio and xueliang, alternated.

The load is bench/sip_storm.py's own client, imported (not copied): N devices each REGISTER,
answer the 401 with an MD5 digest and send one Keepalive MESSAGE, started at ``--rate`` per
second. Per round this script runs the storm against

* **xueliang** — ``xueliang serve`` started as bench/sip_storm.py starts it (throw-away SQLite,
  media off, open admission); its CPU is the one process's utime + stime;
* **kamailio** — Debian's ``kamailio`` (5.6) with bench/anchors/kamailio.cfg (digest against
  the same fixed password, usrloc in memory, the MESSAGE answered 200), ``-n`` UDP workers
  on a free port; its CPU is utime + stime summed over the main process and every child
  (workers, timers), from /proc/<pid>/stat. With ``--kamailio-db sqlite`` its location table
  is also written back to a SQLite file every second (usrloc ``db_mode`` 2, WAL journal; Debian's
  package kamailio-sqlite-modules, installed by bench/anchors/setup.sh): the nearest job to
  xueliang's, which writes the storm to SQLite in 1 s batches;
* **answering** (``--target answering`` or ``all``) — xueliang's server with what follows a
  registration switched off (bench/anchors/answering_only.py: no device row, event, presence,
  bus event, history or queries): the SIP answers alone, the job Kamailio does here. Its lines
  are prefixed ``answering_``.

``--target both --rounds N`` alternates the two (who goes first alternates too) and prints
each run's ``name: value unit`` lines (Kamailio's prefixed ``kamailio_``), the 1-minute load
average at its start, then medians. ``storm_server_cpu_settled`` is the figure to compare:
the storm's CPU until the server has written it to its database (xueliang) less what the
idle server spends over that time; Kamailio without ``--kamailio-db`` writes no database, so
its settled figure is its answering alone.

    .venv/bin/python bench/anchors/storm_kamailio.py --target both --rounds 3
    .venv/bin/python bench/anchors/storm_kamailio.py --target all --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

import sip_storm  # noqa: E402  (bench/sip_storm.py, imported for its client and its storm)
from _process import stop  # noqa: E402  (bench/_process.py)

KAMAILIO_CFG = Path(__file__).resolve().parent / "kamailio.cfg"
_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float, float]:
    """(parent pid, utime, stime in seconds) of ``pid``."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[1]), int(fields[11]) / _TICK, int(fields[12]) / _TICK


def tree(root: int) -> list[int]:
    """``root`` and all its descendants (Kamailio forks its workers from the main process)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(entry)] = _stat(int(entry))[0]
    found, frontier = [root], [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found += kids
        frontier += kids
    return found


class Tree:
    """CPU-seconds and memory summed over a process and its children (the set fixed at start)."""

    def __init__(self, root: int) -> None:
        self.pids = tree(root)

    def cpu_split(self, pid: int) -> tuple[float, float]:  # pid: the root, already in self.pids
        user = system = 0.0
        for p in self.pids:
            with contextlib.suppress(OSError):
                _, u, s = _stat(p)
                user, system = user + u, system + s
        return user, system

    def cpu_seconds(self, pid: int) -> float:
        return sum(self.cpu_split(pid))

    def rss_mb(self, pid: int) -> float:
        """Proportional set size summed (shared memory counted once, not once per child)."""
        total = 0.0
        for p in self.pids:
            with contextlib.suppress(OSError), open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) / 1024
                        break
        return total


SCHEMA = Path("/usr/share/kamailio/db_sqlite")  # Debian's kamailio-sqlite-modules


def location_db(workdir: Path) -> list[str]:
    """A fresh SQLite file with Kamailio's own schema for usrloc; the -A defines naming it."""
    db = workdir / "location.db"
    con = sqlite3.connect(db)
    try:
        for script in ("standard-create.sql", "usrloc-create.sql"):
            con.executescript((SCHEMA / script).read_text())
        con.commit()
    finally:
        con.close()
    # sqlite:// and then the path; an absolute one gives four slashes
    return ["-A", f'DBURL="sqlite:///{db}"', "-A", f'DBJOURNAL="{db}=WAL;"']


def table_rows(db: Path, table: str) -> int:
    """Rows in ``table`` of a storm's SQLite file: Kamailio's ``location`` (location.db) or the
    devices of xueliang's registry (storm.db, sip_storm.storm_settings)."""
    with contextlib.closing(sqlite3.connect(db)) as con:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def start_kamailio(
    workdir: Path, port: int, children: int, exe: str, db: str = ""
) -> subprocess.Popen[bytes]:
    defines = location_db(workdir) if db == "sqlite" else []
    log = open(workdir / "kamailio.log", "wb")  # the child keeps its own descriptor
    with log:
        return subprocess.Popen(
            [
                exe,
                "-f", str(KAMAILIO_CFG),
                "-DD",  # stay in the foreground: this process is the main one
                "-E",
                "-Y", str(workdir),
                "-w", str(workdir),
                "-l", f"udp:127.0.0.1:{port}",
                "-n", str(children),
                "-m", "256",
                "-M", "16",
                *defines,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def one_run(args: argparse.Namespace, target: str) -> dict[str, str]:
    """One storm against a freshly started server; its ``name: value`` lines as a dict."""
    tmp = tempfile.TemporaryDirectory(prefix=f"storm-{target}-")
    work = Path(tmp.name)
    out = io.StringIO()
    saved = sip_storm.cpu_seconds, sip_storm.cpu_split, sip_storm.rss_mb
    if target == "kamailio":
        port = sip_storm.free_port_both()
        proc = start_kamailio(work, port, args.children, args.kamailio, args.kamailio_db)
    else:
        switch_off = "consequences" if target == "answering" else None  # the SIP answers alone
        proc, port = sip_storm.start_server(args.password, work, switch_off=switch_off)
    server = ("127.0.0.1", port)
    try:
        sip_storm.wait_ready(server, args.ready_timeout, proc, args.server_id, args.domain)
        time.sleep(1.0)
        if target == "kamailio":
            t = Tree(proc.pid)  # workers are forked by now: the probe was answered
            sip_storm.cpu_seconds, sip_storm.cpu_split, sip_storm.rss_mb = t.cpu_seconds, t.cpu_split, t.rss_mb
        load = os.getloadavg()
        with contextlib.redirect_stdout(out):
            asyncio.run(sip_storm.storm(args, server, proc.pid))
        if target == "kamailio" and args.kamailio_db:
            # the storm's settled figure waits 2 s after the last answer: were the rows written?
            print(f"storm_database_rows: {table_rows(work / 'location.db', 'location')} rows", file=out)
        elif target != "kamailio":  # the registry's rows: the storm's devices, or none when answering only
            print(f"storm_database_devices: {table_rows(work / 'storm.db', 'devices')} rows", file=out)
    finally:
        sip_storm.cpu_seconds, sip_storm.cpu_split, sip_storm.rss_mb = saved
        stop(proc)
        if proc.returncode not in (0, -2, 130, None):
            log = work / ("kamailio.log" if target == "kamailio" else "server.log")
            with contextlib.suppress(OSError):
                print(log.read_text()[-3000:], file=sys.stderr)
        tmp.cleanup()
    res = {"load_average": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min)"}
    for line in out.getvalue().splitlines():
        name, sep, value = line.partition(": ")
        if sep:
            res[name] = value
    return res


#: Each target's lines are printed under its prefix.
_PREFIX = {"xueliang": "", "kamailio": "kamailio_", "answering": "answering_"}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--target", choices=("xueliang", "kamailio", "both", "answering", "all"), default="both",
                    help="both: xueliang and Kamailio; answering: xueliang with what follows a registration "
                         "switched off (bench/anchors/answering_only.py); all: the three")
    ap.add_argument("--rounds", type=int, default=3, help="storms per target (alternated)")
    ap.add_argument("--devices", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=4000.0, help="devices started per second")
    ap.add_argument("--children", type=int, default=2, help="Kamailio UDP workers (-n)")
    ap.add_argument("--kamailio", default=shutil.which("kamailio") or "/usr/sbin/kamailio")
    ap.add_argument("--kamailio-db", choices=("", "sqlite"), default="",
                    help="write Kamailio's location table back to SQLite every second")
    # the storm client's settings, as bench/sip_storm.py has them
    ap.add_argument("--password", default="12345678")
    ap.add_argument("--server-id", default="34020000002000000001")
    ap.add_argument("--domain", default=None)
    ap.add_argument("--centre", default="34020000")
    ap.add_argument("--first-seq", type=int, default=1)
    ap.add_argument("--sockets", type=int, default=8)
    ap.add_argument("--local-host", default="127.0.0.1")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    args = ap.parse_args()
    args.domain = args.domain or args.server_id[:10]
    # sip_storm.py's client options this comparison does not use: Kamailio asks the devices
    # nothing after they register, so they answer nothing, for either server.
    args.answer_queries, args.channels = False, 1
    if args.password != "12345678":
        print("note: bench/anchors/kamailio.cfg holds the password 12345678", file=sys.stderr)

    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()

    targets = {"both": ["xueliang", "kamailio"], "all": ["xueliang", "kamailio", "answering"]}.get(args.target, [args.target])
    runs: dict[str, list[dict[str, str]]] = {t: [] for t in targets}
    ok = True
    for r in range(args.rounds):
        order = targets if r % 2 == 0 else targets[::-1]
        for target in order:
            print(f"# round {r + 1}/{args.rounds}: {target}", flush=True)
            res = one_run(args, target)
            runs[target].append(res)
            pre = _PREFIX[target]
            for name, value in res.items():
                print(f"{pre}{name}: {value}")
            ok = ok and res.get("storm_failures", "").split()[:1] == ["0"]
            sys.stdout.flush()

    def seconds(res: dict[str, str], name: str) -> float:
        return float(res.get(name, "nan s").split()[0])

    medians: dict[str, float] = {}
    for target, rs in runs.items():
        pre = _PREFIX[target]
        for name in ("storm_server_cpu", "storm_server_cpu_system", "storm_server_cpu_settled", "storm_wall"):
            values = [seconds(x, name) for x in rs]
            every = ", ".join(
                f"{v:.2f} (load {x['load_average'].split()[0]})"
                for v, x in zip(values, rs, strict=True)
            )
            med = statistics.median(values)
            if name == "storm_server_cpu_settled":
                medians[target] = med
            print(f"{pre}{name}_median: {med:.3f} s [{every}]")
    if medians.get("kamailio", 0) > 0:
        for target in ("xueliang", "answering"):
            if target in medians:
                print(f"anchor_storm_cpu_ratio_{target}_to_kamailio: {medians[target] / medians['kamailio']:.2f} x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
