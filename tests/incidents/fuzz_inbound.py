"""Coverage-guided fuzz target (atheris, libFuzzer) for what emergency systems send: the
signature header and the inbound case body.

    python -m tests.incidents.fuzz_inbound [libFuzzer flags] [corpus dirs]

Contract: the header parser returns a header that renders and parses back to itself, or raises
SignatureError; the body parser returns a case that serializes and parses back to the same
case, or raises pydantic's ValidationError, which ``explain`` turns into a message. Anything
else escapes, and libFuzzer reports it as a crash. tests/incidents/test_fuzz_inbound.py runs it
for a bounded number of runs from the kept corpus (tests/incidents/fuzz_corpus/).
"""

from __future__ import annotations

import sys

import atheris

import xueliang  # noqa: F401  (its import guard first, as tests/fuzz/targets.py does)

with atheris.instrument_imports(include=["xueliang.incidents"]):
    from xueliang.incidents import inbound, signature

from pydantic import ValidationError


def target(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    try:
        h = signature.parse(text)
    except signature.SignatureError as exc:
        if not str(exc):
            raise AssertionError("a refusal without a reason") from None
    else:
        if signature.parse(h.render()) != h:
            raise AssertionError(f"{text!r} does not render back")
    try:
        case = inbound.parse_inbound(data)
    except ValidationError as exc:
        if not inbound.explain(exc):
            raise AssertionError("a refusal without a reason") from None
    else:
        again = inbound.parse_inbound(case.model_dump_json().encode())
        if again != case:
            raise AssertionError(f"{data!r} does not serialize back")


def main(argv: list[str]) -> None:
    sys.setrecursionlimit(2000)
    atheris.Setup([f"{sys.executable} -m tests.incidents.fuzz_inbound", *argv[1:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
