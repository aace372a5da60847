"""The browser console: size of the built script, and the map with 100,000 channels (issue 6).

1. Sizes of the built JavaScript (raw and gzip): everything, what the first page load fetches
   (index.html's script and its preloads), and what the map page adds.
2. A demo database with the demo city plus generated channels up to ``--channels`` (SQL inserts
   through the registry's table models), served by ``xueliang demo --no-devices``; Debian's
   Chromium opens the map logged in and waits for ``window.__xueliangMapReady``. Reported: time
   to the first points drawn, time until every point is loaded, clustered and drawn (MapLibre,
   WebGL), the time from a jump (pan or zoom) to the view fully drawn again, and the longest frame
   and frame rate during animated moves.

Prints ``name: value unit`` lines. Needs the console built (``cd web && npm run build``).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONSOLE = ROOT / "src" / "xueliang" / "static" / "console"
sys.path.insert(0, str(ROOT))

from tests import browser as browser_launcher  # noqa: E402  (the launcher the tests use)


def out(name: str, value: float | int | str, unit: str = "") -> None:
    print(f"{name}: {value} {unit}".rstrip(), flush=True)


# ---- 1. script sizes ---------------------------------------------------------------------------
def _imports(chunk: Path) -> set[str]:
    """Static imports of a built chunk (`import ... from "./x.js"`), not dynamic import()."""
    text = chunk.read_text(errors="replace")
    return {m for m in re.findall(r'(?:^|[;}\s])import\s*(?:[^"\'();]*?from\s*)?["\']\./([^"\']+\.js)["\']', text)}


def _closure(names: set[str], assets: Path) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in seen or not (assets / n).is_file():
            continue
        seen.add(n)
        todo.extend(_imports(assets / n))
    return seen


def sizes() -> None:
    assets = CONSOLE / "assets"
    if not (CONSOLE / "index.html").is_file():
        sys.exit("the console is not built: cd web && npm ci && npm run build")
    js = sorted(assets.glob("*.js"))

    def raw_gz(files: set[str] | list[Path]) -> tuple[int, int]:
        paths = [assets / f if isinstance(f, str) else f for f in files]
        data = [p.read_bytes() for p in paths]
        return sum(len(d) for d in data), sum(len(gzip.compress(d, 9)) for d in data)

    r, g = raw_gz(js)
    out("console_js_total_raw", round(r / 1024, 1), "KiB")
    out("console_js_total_gzip", round(g / 1024, 1), "KiB")
    html = (CONSOLE / "index.html").read_text()
    entry = set(re.findall(r'(?:src|href)="/assets/([^"]+\.js)"', html))
    initial = _closure(entry, assets)
    r, g = raw_gz(initial)
    out("console_js_initial_raw", round(r / 1024, 1), "KiB")
    out("console_js_initial_gzip", round(g / 1024, 1), "KiB")
    map_chunk = next((p.name for p in js if p.name.startswith("MapPage-")), None)
    if map_chunk:
        r, g = raw_gz(_closure({map_chunk}, assets) | initial)
        out("console_js_map_page_gzip", round(g / 1024, 1), "KiB")
    biggest = max(js, key=lambda p: p.stat().st_size)
    out("console_js_largest_chunk_gzip", round(len(gzip.compress(biggest.read_bytes(), 9)) / 1024, 1),
        f"KiB ({biggest.name.split('-')[0]})")


# ---- 2. the map with N channels ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def make_database(n: int, seed: int = 11) -> int:
    """The demo city, then generated channels up to `n` spread around its units."""
    from sqlalchemy import func, insert, select

    from xueliang.config import Settings
    from xueliang.db.engine import create_engine
    from xueliang.db.tables import Channel, Device, Unit
    from xueliang.demo import prepare

    settings = Settings()
    await prepare(settings, fresh=True)
    engine = create_engine(settings.database.url)
    rnd = random.Random(seed)
    async with engine.begin() as c:
        have = int(await c.scalar(select(func.count()).select_from(Channel)) or 0)
        anchors = [
            tuple(r)
            for r in (
                await c.execute(
                    select(Channel.longitude, Channel.latitude, Channel.division_code, Unit.id,
                           Unit.department, Device.id)
                    .join(Unit, Unit.id == Channel.unit_id)
                    .join(Device, Device.id == Channel.device_id)
                    .where(Channel.longitude.is_not(None))
                )
            ).all()
        ]
        rows: list[dict[str, Any]] = []
        for i in range(max(0, n - have)):
            lon, lat, div, unit_id, dept, dev = rnd.choice(anchors)
            tier = rnd.choices(["high", "building", "street"], weights=[1, 2, 6])[0]
            cls = rnd.choices([1, 2, 3], weights=[1, 6, 12])[0]
            rows.append({
                "id": f"{div[:6]}00001319{i:06d}",
                "name": f"生成点位{i:06d}",
                "kind": "camera",
                "device_id": dev,
                "unit_id": unit_id,
                "department": dept,
                "division_code": div,
                "point_class": cls,
                "coverage": rnd.choice("ABC"),
                "tier": tier,
                "ptz_type": 1 if tier == "high" else 3,
                "longitude": round(lon + rnd.gauss(0, 0.02), 6),
                "latitude": round(lat + rnd.gauss(0, 0.015), 6),
                "address": "生成地址",
                "key_site": False,
                "retention_days_required": 30,
                "status": rnd.choices(["ON", "OFF", "UNKNOWN"], weights=[80, 12, 8])[0],
                "networked": True,
            })
            if len(rows) == 5000:
                await c.execute(insert(Channel), rows)
                rows = []
        if rows:
            await c.execute(insert(Channel), rows)
        total = int(await c.scalar(select(func.count()).select_from(Channel)) or 0)
    await engine.dispose()
    return total


def login(base: str) -> dict[str, Any]:
    body = json.dumps({"username": "duty", "password": "xueliang-demo"}).encode()
    req = urllib.request.Request(base + "/api/v1/auth/login", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return dict(json.load(r))


MOVES = """async (hideCameras) => {
  const m = window.__xueliangMap;  // MapLibre (WebGL, SwiftShader in the headless browser)
  // the same moves with the cameras' layers hidden: the difference is what the points cost
  for (const id of ['cam-clusters', 'cam-points']) m.setLayoutProperty(id, 'visibility', hideCameras ? 'none' : 'visible');
  const idle = () => new Promise((r) => m.once('idle', r));
  const c = m.getCenter(), z = m.getZoom();
  const ops = [];
  for (const dz of [1, 2, 3, 4, 2, 0, -1]) ops.push([c.lng, c.lat, z + dz]);
  for (let i = 0; i < 8; i++) ops.push([c.lng + 0.04 * (i - 4), c.lat + (i % 2 ? 0.03 : -0.03), z + 2]);
  const times = [];
  for (const [lng, lat, zz] of ops) {
    const t0 = performance.now();
    m.jumpTo({ center: [lng, lat], zoom: zz });
    await idle();  // every tile fetched, the clusters of the view made, all drawn
    times.push(performance.now() - t0);
  }
  // animated zooms and pans: the longest gap between frames
  let last = performance.now(), worst = 0, frames = 0, running = true;
  const tick = () => { const t = performance.now(); worst = Math.max(worst, t - last); last = t; frames++; if (running) requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  const t0 = performance.now();
  for (const [lng, lat, zz] of [[c.lng, c.lat, z + 1], [c.lng + 0.03, c.lat + 0.02, z + 2], [c.lng, c.lat, z]]) {
    m.flyTo({ center: [lng, lat], zoom: zz, duration: 600 });
    await new Promise((r) => m.once('moveend', r));
  }
  m.panBy([300, 200], { duration: 500 });
  await new Promise((r) => m.once('moveend', r));
  running = false;
  const fps = frames / ((performance.now() - t0) / 1000);
  times.sort((a, b) => a - b);
  return { median: times[times.length >> 1], max: times[times.length - 1], worstFrame: worst, fps };
}"""


def map_timing(n: int, runs: int) -> None:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="xl-bench-console-"))
    port = free_port()
    env = {
        **os.environ,
        "XUELIANG_DATABASE__URL": f"sqlite+aiosqlite:///{tmp}/demo.db",
        "XUELIANG_API__PORT": str(port),
        "XUELIANG_STORAGE__VAR_DIR": str(tmp),
        "XUELIANG_SIP__ENABLED": "false",
        "XUELIANG_MEDIA__ENABLED": "false",
    }
    os.environ.update({k: v for k, v in env.items() if k.startswith("XUELIANG_")})
    t0 = time.perf_counter()
    total = asyncio.run(make_database(n))
    out("bench_channels", total, "channels")
    out("bench_database_build", round(time.perf_counter() - t0, 1), "s")
    exe = Path(sys.executable).parent / "xueliang"
    proc = subprocess.Popen([str(exe), "demo", "--no-devices"], env=env, cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.2)
        session = login(base)
        with sync_playwright() as p:
            b = browser_launcher.launch(p, autoplay=False)
            for run in range(runs):
                ctx = b.new_context(viewport={"width": 1600, "height": 900})
                ctx.add_init_script(
                    f"localStorage.setItem('xl.token', {json.dumps(session['access_token'])});"
                    f"localStorage.setItem('xl.user', {json.dumps(json.dumps(session['user']))});"
                )
                page = ctx.new_page()
                page.goto(base + "/app/map")
                # polled (wait_for_function would need eval, which the console's CSP forbids)
                deadline = time.monotonic() + 180
                while not page.evaluate("() => window.__xueliangMapReady !== undefined"):
                    if time.monotonic() > deadline:
                        sys.exit("the map did not get ready in 180 s")
                    time.sleep(0.05)
                ready = page.evaluate("window.__xueliangMapReady")
                first = page.evaluate("window.__xueliangMapFirst")
                suffix = "" if run == 0 else f"_run{run + 1}"
                out(f"map_points{suffix}", ready["points"], f"points on the map (of {ready['total']} channels)")
                out(f"map_ready{suffix}", first["mapMs"], "ms from navigation (MapLibre's style loaded)")
                out(f"map_first_points_set{suffix}", first["setMs"], "ms from navigation (first points given to the map)")
                out(f"map_first_points_drawn{suffix}", first["ms"], "ms from navigation")
                out(f"map_all_points_ready{suffix}", ready["ms"], "ms from navigation")
                out(f"map_points_load{suffix}", ready["loadMs"], f"ms (API, {ready['via']})")
                for hide, what in ((False, ""), (True, "_no_cameras")):
                    moves = page.evaluate(MOVES, hide)
                    out(f"map_drawn_after_move_median{what}{suffix}", round(moves["median"], 1),
                        "ms (jump to drawn: tiles, clusters)")
                    out(f"map_drawn_after_move_max{what}{suffix}", round(moves["max"], 1), "ms")
                    out(f"map_longest_frame_animated{what}{suffix}", round(moves["worstFrame"], 1), "ms")
                    out(f"map_frames_animated{what}{suffix}", round(moves["fps"], 1), "frames/s")
                ctx.close()
            b.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=2, help="map loads in fresh browser contexts")
    ap.add_argument("--sizes-only", action="store_true")
    a = ap.parse_args()
    sizes()
    if a.sizes_only:
        return
    if not browser_launcher.available():
        out("map", "skipped", "(no /usr/bin/chromium)")
        return
    map_timing(a.channels, a.runs)


if __name__ == "__main__":
    main()
