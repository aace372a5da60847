"""Ending a server a benchmark started: SIGINT (its clean shutdown), then SIGKILL after 10 s."""

from __future__ import annotations

import signal
import subprocess


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
