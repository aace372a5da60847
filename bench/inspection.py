"""Inspections (巡检) end to end: the server inspects simulated GB/T 28181 cameras through its
media hub, and viewers join other cameras meanwhile.

Separate processes: the server (``xueliang serve``: SQLite, SIP and media on; its CPU from
/proc/<pid>/stat and RSS are what is reported), the simulator (``python -m xueliang.sim``:
``--devices`` NVRs of ``--channels`` cameras, 640×360 H.264, one key frame a second), and this
process asking ``POST /channels/{id}/diagnose`` with ``--concurrency`` at once, as the plan
would (the server's ``diagnosis.concurrency`` is set to the same). Prints ``name: value unit`` lines:

- ``inspection_rate``: cameras inspected per second (each opens its stream, samples 3 key frames
  within 4 s, decodes, diagnoses, keeps the result and closes the stream);
- ``inspection_server_cpu_ms_per_camera``: the server's CPU per camera inspected;
- ``inspection_worker_cpu_ms_per_camera``: the same of the diagnosis worker processes (decoding
  and diagnosis, at a lower priority);
- ``inspection_server_rss_mb_round_N``: the server's RSS after each round (bounded: no growth);
- ``viewer_first_frame_ms_{quiet,inspecting}``: a viewer joining a camera (INVITE to its first
  key frame over HTTP-FLV), median of ``--joins``, with nothing else going on and while the last
  round of inspections of the other cameras runs;
- ``viewer_lateness_ms_{quiet,inspecting}_{p50,p95,max}``: a viewer watching one camera all
  along (HTTP-FLV): each video frame's arrival against its timestamp (the simulator sends in
  real time), less the least such lateness seen; over 10 s of nothing else and over the last
  round of inspections. A server busy with inspections would deliver frames later.

    .venv/bin/python bench/inspection.py [--devices 8] [--channels 4] [--rounds 3] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from media import (
    Dechunker,
    cpu_ticks,
    first_frame_ms,
    free_port,
    http_get,
    login,
    rss_mb,
    server_env,
    wait_http,
)

TICK = os.sysconf("SC_CLK_TCK")


def worker_ticks(pid: int) -> int:
    """CPU of the server's child processes (the diagnosis workers), alive now."""
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # ppid
            total += int(fields[11]) + int(fields[12])
    return total


def start_server(tmp: Path, api_port: int, sip_port: int, concurrency: int) -> subprocess.Popen[bytes]:
    env = {
        **server_env(tmp, api_port),
        "XUELIANG_SIP__HOST": "127.0.0.1",
        "XUELIANG_SIP__PORT": str(sip_port),
        "XUELIANG_SIP__PASSWORD": "bench-sip-1",
        "XUELIANG_SIP__ADMISSION": "open",
        "XUELIANG_MEDIA__RTP_PORT": "0",
        "XUELIANG_MEDIA__RTP_TCP_PORT": "0",
        "XUELIANG_DIAGNOSIS__INSPECTIONS": "false",  # this script drives them
        "XUELIANG_DIAGNOSIS__CONCURRENCY": str(concurrency),
        "XUELIANG_MEDIA__IDLE_STOP_SECONDS": "1",  # a viewer's stream closes soon after it leaves
    }
    return subprocess.Popen([str(Path(sys.executable).with_name("xueliang")), "serve"], env=env, cwd=tmp)


def start_simulator(tmp: Path, sip_port: int, devices: int, channels: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "xueliang.sim", "--server", f"127.0.0.1:{sip_port}",
                             "--devices", str(devices), "--channels", str(channels), "--keepalive", "20",
                             "--password", "bench-sip-1"], cwd=tmp, stdout=subprocess.DEVNULL)


class Watcher:
    """A viewer that stays: (arrival, FLV timestamp) of every video frame, tagged by window."""

    def __init__(self) -> None:
        self.window: str | None = None
        self.frames: list[tuple[str | None, float, int]] = []

    async def run(self, port: int, path: str, token: str) -> None:
        reader, writer, _ = await http_get(port, path, token)
        de, body, pos = Dechunker(), b"", 13
        try:
            while True:
                data = await reader.read(262144)
                if not data:
                    return
                now = time.monotonic()
                body += de.feed(data)
                while pos + 11 <= len(body):
                    size = int.from_bytes(body[pos + 1: pos + 4], "big")
                    if pos + 11 + size + 4 > len(body):
                        break
                    if body[pos] == 9:
                        ts = int.from_bytes(body[pos + 4: pos + 7], "big") | (body[pos + 7] << 24)
                        self.frames.append((self.window, now, ts))
                    pos += 11 + size + 4
                body, pos = body[pos:], 0
        finally:
            writer.close()

    def lateness(self) -> dict[str, list[float]]:
        if not self.frames:
            return {}
        _, a0, t0 = self.frames[0]
        late = [(w, (a - a0) - (t - t0) / 1000) for w, a, t in self.frames]
        least = min(x for _, x in late)
        out: dict[str, list[float]] = {}
        for w, x in late:
            if w is not None:
                out.setdefault(w, []).append((x - least) * 1000)
        return out


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=8)
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--joins", type=int, default=6)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        api_port, sip_port = free_port(), free_port()
        server = start_server(tmp, api_port, sip_port, a.concurrency)
        sim = None
        try:
            base = f"http://127.0.0.1:{api_port}"
            wait_http(base, server)
            sim = start_simulator(tmp, sip_port, a.devices, a.channels)
            async with httpx.AsyncClient(base_url=base, timeout=60) as c:
                token = await login(c)
                c.headers["Authorization"] = f"Bearer {token}"
                want = a.devices * a.channels
                deadline = time.monotonic() + 90
                while True:
                    items = (await c.get("/api/v1/channels", params={"status": "ON", "limit": 1000})).json()["items"]
                    if len(items) >= want or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(1)
                cams = sorted(i["id"] for i in items)
                print(f"cameras: {len(cams)} count")
                viewers, watched, inspected = cams[: a.joins], cams[a.joins], cams[a.joins + 1:]
                watcher = Watcher()
                watching = asyncio.create_task(watcher.run(api_port, f"/api/v1/channels/{watched}/live.flv", token))
                await asyncio.sleep(3.0)  # past its first frames
                watcher.window = "quiet"
                await asyncio.sleep(10.0)
                watcher.window = None

                async def joins() -> list[float]:
                    out = []
                    for ch in viewers:
                        out.append(await first_frame_ms(api_port, f"/api/v1/channels/{ch}/live.flv", token, False))
                        await asyncio.sleep(3.0)  # its stream closes again (no reader): the next join INVITEs
                    return out

                quiet = await joins()
                failures = 0

                async def one(ch: str, sem: asyncio.Semaphore) -> None:
                    nonlocal failures
                    async with sem:
                        r = await c.post(f"/api/v1/channels/{ch}/diagnose")
                        if r.status_code != 200 or not r.json()["picture"]:
                            failures += 1

                busy: list[float] = []
                for rnd in range(1, a.rounds + 1):
                    sem = asyncio.Semaphore(a.concurrency)
                    c0, w0, t0 = cpu_ticks(server.pid), worker_ticks(server.pid), time.perf_counter()
                    ended: list[tuple[float, int, int]] = []

                    async def round_(sem: asyncio.Semaphore = sem, ended: list[tuple[float, int, int]] = ended) -> None:
                        await asyncio.gather(*(one(ch, sem) for ch in inspected))
                        ended.append((time.perf_counter(), cpu_ticks(server.pid), worker_ticks(server.pid)))

                    work = asyncio.create_task(round_())
                    if rnd == a.rounds:  # steady state (the first round also starts the workers)
                        watcher.window = "inspecting"
                        busy = await joins()
                    await work
                    watcher.window = None
                    wall = ended[0][0] - t0
                    cpu = (ended[0][1] - c0) / TICK
                    wcpu = (ended[0][2] - w0) / TICK
                    print(f"inspection_rate_round_{rnd}: {len(inspected) / wall:.2f} cameras/s")
                    print(f"inspection_server_cpu_ms_per_camera_round_{rnd}: {cpu / len(inspected) * 1000:.0f} ms")
                    print(f"inspection_worker_cpu_ms_per_camera_round_{rnd}: {wcpu / len(inspected) * 1000:.0f} ms")
                    print(f"inspection_server_rss_mb_round_{rnd}: {rss_mb(server.pid):.0f} MB")
                print(f"inspection_failures: {failures} count")
                print(f"viewer_first_frame_ms_quiet: {statistics.median(quiet):.0f} ms (max {max(quiet):.0f}; {[round(x) for x in quiet]})")
                print(f"viewer_first_frame_ms_inspecting: {statistics.median(busy):.0f} ms (max {max(busy):.0f}; {[round(x) for x in busy]})")
                watching.cancel()
                for w, xs in watcher.lateness().items():
                    print(f"viewer_frames_{w}: {len(xs)} count")
                    for q, name in ((0.5, "p50"), (0.95, "p95"), (1.0, "max")):
                        print(f"viewer_lateness_ms_{w}_{name}: {_pct(xs, q):.1f} ms")
        finally:
            for proc in (sim, server):
                if proc is None:
                    continue
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


if __name__ == "__main__":
    asyncio.run(main())
