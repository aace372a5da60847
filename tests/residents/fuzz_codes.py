"""Coverage-guided fuzz target (atheris, libFuzzer) for what a phone sends: the invitation code
typed by a resident and the report form.

    python -m tests.residents.fuzz_codes [libFuzzer flags] [corpus dirs]

Contract: ``codes.canonical`` returns 16 symbols of the alphabet that read back to themselves
from their display form, or raises BadCode with a reason; the report form (JSON here) gives a
``ReportIn`` with finite coordinates in range that serializes and parses back to itself, or
raises pydantic's ValidationError. Anything else escapes, and libFuzzer reports it as a crash.
tests/residents/test_fuzz_codes.py runs it for a bounded number of runs from the kept corpus.
"""

from __future__ import annotations

import math
import sys

import atheris

import xueliang  # noqa: F401  (its import guard first, as tests/fuzz/targets.py does)

with atheris.instrument_imports(include=["xueliang.residents", "xueliang.incidents.reports"]):
    from xueliang.incidents.reports import ReportIn
    from xueliang.residents import codes

from pydantic import ValidationError


def target(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    try:
        c = codes.canonical(text)
    except codes.BadCode as exc:
        if not str(exc):
            raise AssertionError("a refusal without a reason") from None
    else:
        if len(c) != codes.LENGTH or set(c) - set(codes.ALPHABET) or codes.canonical(codes.display(c)) != c:
            raise AssertionError(f"{text!r} read as {c!r}")
    try:
        r = ReportIn.model_validate_json(data)
    except ValidationError:
        return
    if not (math.isfinite(r.longitude) and math.isfinite(r.latitude)):
        raise AssertionError(f"{data!r} gave a point not on the earth")
    if ReportIn.model_validate_json(r.model_dump_json()) != r:
        raise AssertionError(f"{data!r} does not serialize back")


def main(argv: list[str]) -> None:
    sys.setrecursionlimit(2000)
    atheris.Setup([f"{sys.executable} -m tests.residents.fuzz_codes", *argv[1:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
