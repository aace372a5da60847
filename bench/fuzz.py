"""Coverage-guided fuzzing of the parsers, for longer than the suite does (atheris, libFuzzer).

Prints ``name: value unit`` lines per target: executions, executions per second, inputs that
reached new coverage, coverage (edges) and crashes. Each target runs in its own process
(``python -m tests.fuzz.targets``, see tests/fuzz/targets.py for what each one checks), starting
from the kept corpus ``tests/fuzz/corpus/<target>/``; new inputs go to a scratch directory.
A crash leaves its input in ``--artifacts`` (default test-artifacts/fuzz/) and is printed.

    python bench/fuzz.py --seconds 300 --target sip          # one target for five minutes
    python bench/fuzz.py --seconds 60                        # every target, a minute each
    python bench/fuzz.py --seconds 60 --merge                # and keep what found new coverage
    python bench/fuzz.py --seconds 30 --seed --merge         # re-seed from the tests' samples

``--merge`` minimises (``-merge=1``) the new inputs into the kept corpus, which only grows by
inputs that add coverage; ``--seed`` starts from the samples in tests/ and the builders
(tests/fuzz/make_corpus.py) as well.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
sys.path.insert(0, str(ROOT))

from tests.fuzz.run import TARGET_NAMES, fuzz_command  # noqa: E402


def _stat(text: str, name: str) -> int:
    m = re.search(rf"stat::{name}:\s*(\d+)", text)
    return int(m.group(1)) if m else 0


def _coverage(text: str) -> int:
    found = re.findall(r"cov: (\d+)", text)
    return int(found[-1]) if found else 0


def run_target(name: str, seconds: float, seeds: Path | None, merge: bool, artifacts: Path) -> int:
    kept = CORPUS / name
    kept.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as scratch:
        dirs = [Path(scratch), kept] + ([seeds / name] if seeds and (seeds / name).is_dir() else [])
        cmd = fuzz_command(name, dirs, artifacts=artifacts,
                           flags=[f"-max_total_time={int(seconds)}", "-print_final_stats=1"])
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, errors="replace")
        out = proc.stderr
        crashes = sorted(artifacts.glob("crash-*")) + sorted(artifacts.glob("timeout-*")) \
            + sorted(artifacts.glob("oom-*"))
        crashed = proc.returncode != 0
        runs = _stat(out, "number_of_executed_units")
        rate = _stat(out, "average_exec_per_sec")
        new = _stat(out, "new_units_added")
        print(f"fuzz_{name}_executions: {runs} runs")
        print(f"fuzz_{name}_exec_rate: {rate} execs/s")
        print(f"fuzz_{name}_new_coverage: {new} inputs")
        print(f"fuzz_{name}_coverage: {_coverage(out)} edges")
        print(f"fuzz_{name}_crashes: {1 if crashed else 0} crashes")
        if crashed:
            tail = "\n".join(out.splitlines()[-40:])
            print(f"# {name} crashed (exit {proc.returncode}):\n{tail}", file=sys.stderr)
            for c in crashes:
                print(f"# input {c}: {c.read_bytes()[:400]!r}", file=sys.stderr)
        if merge and not crashed:
            sources = [Path(scratch)] + ([seeds / name] if seeds and (seeds / name).is_dir() else [])
            subprocess.run(fuzz_command(name, [kept, *sources], artifacts=artifacts,
                                        flags=["-merge=1"]),
                           cwd=ROOT, capture_output=True, check=False)
            size = sum(f.stat().st_size for f in kept.iterdir())
            print(f"fuzz_{name}_corpus: {len(list(kept.iterdir()))} inputs")
            print(f"fuzz_{name}_corpus_size: {size / 1024:.1f} KB")
        return 1 if crashed else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60, help="per target")
    ap.add_argument("--target", action="append", choices=TARGET_NAMES,
                    help="repeatable; default: every target")
    ap.add_argument("--merge", action="store_true", help="minimise new inputs into the corpus")
    ap.add_argument("--seed", action="store_true", help="also start from the tests' samples")
    ap.add_argument("--artifacts", type=Path, default=ROOT / "test-artifacts" / "fuzz")
    args = ap.parse_args()
    seeds: Path | None = None
    failures = 0
    with tempfile.TemporaryDirectory(prefix="fuzz-seeds-") as tmp:
        if args.seed:
            seeds = Path(tmp)
            subprocess.run([sys.executable, "-m", "tests.fuzz.make_corpus", str(seeds)],
                           cwd=ROOT, check=True, env=dict(os.environ))
        for name in args.target or TARGET_NAMES:
            failures += run_target(name, args.seconds, seeds, args.merge, args.artifacts)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
