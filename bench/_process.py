"""The servers a benchmark starts: a port for them, and ending them (SIGINT, its clean
shutdown, then SIGKILL after 10 s)."""

from __future__ import annotations

import random
import signal
import socket
import subprocess


def free_port() -> int:
    """A port free for both TCP and UDP, below the ephemeral range: a port the kernel hands out
    for 0 may meanwhile become a client connection's local port (the server then fails to bind
    it, seen with two benches on the machine)."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        try:
            for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, k) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port in 20000-31999")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
