"""``python -m xueliang.sim --server HOST:PORT --devices N --channels M``: the device simulator
without the ``xueliang`` CLI (same options as ``xueliang simulate``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from xueliang.sim.simulator import run_simulator


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def _platform_password() -> str | None:
    """There is no factory password: the platform's own, where this machine can see it."""
    import os
    from pathlib import Path

    env = os.environ.get("XUELIANG_SIP__PASSWORD")
    if env:
        return env
    kept = Path("var") / "sip_password"
    return kept.read_text().strip() if kept.is_file() else None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m xueliang.sim", description=__doc__)
    ap.add_argument("--server", required=True, help="host:port of the platform's SIP server")
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--channels", type=int, default=1, help="1: IPCs; more: NVRs")
    ap.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    ap.add_argument(
        "--password", default=_platform_password(),
        help="the platform's SIP password (default: XUELIANG_SIP__PASSWORD, else var/sip_password, "
        "where a platform started without one keeps the one it generated)",
    )
    ap.add_argument("--server-id", default="34020000002000000001")
    ap.add_argument("--domain", default=None)
    ap.add_argument("--center-code", default="34020000")
    ap.add_argument("--keepalive", type=float, default=60.0)
    ap.add_argument("--split-catalog", action="store_true", help="one catalog item per MESSAGE")
    ap.add_argument("--gbk", action="store_true", help="GB2312-declared GBK bodies")
    ap.add_argument("--h265", action="store_true")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--announce", default=None, help="address put in Contact and SDP")
    ap.add_argument("--gb-version", default="2.0", choices=["2.0", "3.0", "mixed"])
    ap.add_argument("--register-rate", type=float, default=200.0)
    ap.add_argument("--no-video", action="store_true")
    ap.add_argument("--video-size", type=_size, default=(640, 360))
    ap.add_argument("--video-bitrate", type=int, default=None)
    ap.add_argument("--first-seq", type=int, default=1)
    ap.add_argument("--log-level", default="INFO")
    args = ap.parse_args(argv)
    if not args.password:
        ap.error("give --password: the platform's SIP password (there is no factory default)")
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await run_simulator(
            args.server,
            args.devices,
            args.channels,
            transport=args.transport,
            password=args.password,
            server_id=args.server_id,
            domain=args.domain,
            center_code=args.center_code,
            keepalive=args.keepalive,
            split_catalog=args.split_catalog,
            gbk=args.gbk,
            h265=args.h265,
            bind=args.bind,
            announce=args.announce,
            gb_version=args.gb_version,
            register_rate=args.register_rate,
            video=not args.no_video,
            video_size=args.video_size,
            video_bitrate=args.video_bitrate,
            first_seq=args.first_seq,
            summary_interval=30.0,
            stop=stop,
        )

    asyncio.run(run())


if __name__ == "__main__":
    main()
