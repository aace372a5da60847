"""Invitation codes (residents/codes.py) and the phone's report form (incidents/reports.py),
property-tested: any text either reads as a code of 16 symbols of the alphabet or is refused
with BadCode, never anything else; what is made reads back; typing variants read the same;
the report form takes or refuses any values with a ValidationError, never anything else."""

from __future__ import annotations

import math
import random
import string

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from xueliang.errors import Invalid
from xueliang.incidents.reports import ReportIn, photo_type
from xueliang.residents import codes


@given(st.text(max_size=80))
@settings(max_examples=600)
def test_any_text_is_a_code_or_refused(typed: str) -> None:
    try:
        c = codes.canonical(typed)
    except codes.BadCode:
        return
    assert len(c) == codes.LENGTH and set(c) <= set(codes.ALPHABET)
    assert codes.canonical(codes.display(c)) == c


@given(st.binary(max_size=100))
@settings(max_examples=400)
def test_bytes_decoded_anyhow_never_break_the_reader(data: bytes) -> None:
    for text in (data.decode("latin-1"), data.decode("utf-8", "replace")):
        try:
            codes.canonical(text)
        except codes.BadCode:
            pass


@given(st.integers(0, 2**32), st.sampled_from(["", " ", "-", "--", "\t"]), st.booleans())
def test_typing_variants_read_the_same(seed: int, sep: str, lower: bool) -> None:
    rnd = random.Random(seed)
    c = "".join(rnd.choice(codes.ALPHABET) for _ in range(codes.LENGTH))
    typed = sep.join(c[i:i + 4] for i in range(0, 16, 4))
    typed = typed.lower() if lower else typed
    typed = typed.replace("0", "O").replace("1", rnd.choice("IL")) if seed % 2 else typed
    assert codes.canonical(typed) == c


def test_codes_are_long_random_and_stored_as_digests() -> None:
    made = {codes.canonical(codes.new_code()) for _ in range(2000)}
    assert len(made) == 2000 and codes.BITS == 80
    assert all(len(codes.digest(c)) == 64 and set(codes.digest(c)) <= set(string.hexdigits.lower()) for c in made)
    assert len({codes.digest(c) for c in made}) == 2000
    # every symbol appears: the alphabet is used whole (no bias to a few symbols)
    assert set("".join(made)) == set(codes.ALPHABET)


FIELDS = {
    "category": st.one_of(st.text(max_size=40), st.integers()),
    "description": st.text(max_size=1100),
    "longitude": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10)),
    "latitude": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10)),
    "anonymous": st.one_of(st.booleans(), st.text(max_size=5)),
    "other": st.text(max_size=5),
}


@given(st.fixed_dictionaries({}, optional=FIELDS))
@settings(max_examples=600)
def test_the_report_form_takes_or_refuses_any_values(d: dict[str, object]) -> None:
    try:
        r = ReportIn.model_validate(d)
    except ValidationError:
        return
    assert "other" not in d
    assert math.isfinite(r.longitude) and -180 <= r.longitude <= 180
    assert math.isfinite(r.latitude) and -90 <= r.latitude <= 90
    assert 1 <= len(r.category) <= 32 and len(r.description) <= 1000


@given(st.binary(max_size=64))
def test_photos_are_judged_by_their_bytes(data: bytes) -> None:
    try:
        kind = photo_type(data)
    except Invalid:
        assert not data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"))
        return
    assert kind == ("image/png" if data.startswith(b"\x89PNG") else "image/jpeg")
