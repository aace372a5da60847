"""The cascade link's fuzz target (fuzz_cascade_link.py) for a bounded number of runs, from
seeds that reach each kind of request (a catalog query, a subscription, a control, garbage)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from xueliang.gb28181 import manscdp

ROOT = Path(__file__).resolve().parents[2]
TARGET = Path(__file__).resolve().parent / "fuzz_cascade_link.py"
LOCAL_ID = "34020100002000000001"

pytestmark = pytest.mark.slow


def seeds() -> list[bytes]:
    catalog = manscdp.encode_query("Catalog", 1, LOCAL_ID)
    control = manscdp.encode_control(2, "34020100001310000001", PTZCmd="A50F0100000000B5")
    record = manscdp.encode_query("RecordInfo", 3, "34020100001310000001", StartTime="2026-12-01T00:00:00")
    return [
        b"\x01" + catalog + b"\x00\x01\x03x",
        b"\x02" + catalog + b"\x00\x01\x02t" + catalog,
        b"\x01" + control + b"\x00\x01\x01" + record,
        b"\x00INVITE sip:x@y SIP/2.0\r\n\r\n\x00\x01\x04v=0",
        b"\x01<Query><CmdType>DeviceInfo</CmdType><SN>1</SN></Query>",
    ]


def test_the_link_keeps_its_contract_under_fuzzing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, s in enumerate(seeds()):
        (corpus / f"seed{i}").write_bytes(s)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    cmd = [sys.executable, str(TARGET), f"-artifact_prefix={artifacts}/", "-max_len=2048", "-timeout=10",
           "-runs=2500", "-max_total_time=40", "-seed=1", str(corpus)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, errors="replace", timeout=180)
    found = [(f.name, f.read_bytes()[:2000]) for f in artifacts.iterdir()]
    assert proc.returncode == 0, (found, "\n".join(proc.stderr.splitlines()[-30:]))
