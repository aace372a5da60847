"""Invitation codes (邀请码), sans-IO: making one, reading what a person typed, and the digest
that is stored instead of the code.

A code is 16 characters of Crockford's base32 (0-9 and A-Z without I, L, O, U): 80 random bits,
shown in four groups (``7K3M-Q9XD-2HVA-PB4R``). Read leniently: case, spaces and dashes do not
matter, and O/I/L typed for 0/1/1 are taken as those. Only the SHA-256 of the canonical form is
kept: 80 random bits need no slow hash (2^80 guesses against a leaked table are out of reach),
and the join route is rate-limited besides (residents/service.py).
"""

from __future__ import annotations

import hashlib
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 16
#: Entropy of a code, in bits (16 characters of 32 symbols).
BITS = LENGTH * 5
_SAME = str.maketrans({"O": "0", "I": "1", "L": "1"})


class BadCode(ValueError):
    """What was typed is not the shape of a code."""


def new_code() -> str:
    """A fresh random code in its display form."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return display(raw)


def display(canonical: str) -> str:
    return "-".join(canonical[i:i + 4] for i in range(0, LENGTH, 4))


def canonical(typed: str) -> str:
    """The code as stored (16 characters of the alphabet) from what a person typed; BadCode
    when it cannot be one."""
    if len(typed) > 64:
        raise BadCode("an invitation code is 16 characters")
    s = "".join(c for c in typed.upper() if c not in " -\t").translate(_SAME)
    if len(s) != LENGTH:
        raise BadCode("an invitation code is 16 characters")
    if any(c not in ALPHABET for c in s):
        raise BadCode("an invitation code holds letters and digits only")
    return s


def digest(canonical_code: str) -> str:
    """What is stored for a code: the SHA-256 of its canonical form, in hex."""
    return hashlib.sha256(("xueliang-resident-code:" + canonical_code).encode()).hexdigest()
